/*
 * s3_upload: the upload of a file. Below the multipart threshold (or from
 * memory) it is one PutObject, s3.c's; past it, an upload in parts:
 * CreateMultipartUpload (its UploadId told to the caller at once, so that
 * an upload cut short by a crash can be aborted later), then the parts,
 * parts_in_flight at a time, each read with pread and signed with its own
 * SHA-256 (from the caller's s3_parts when it has them, else read once
 * more to compute it), then CompleteMultipartUpload with the parts' ETags. The
 * first failure stops new parts; once none is in flight the upload is aborted
 * and that first failure reported.
 */
#include "s3_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void s3_mp_pump(struct s3_op *op);

static void
s3_mp_on_abort(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;

	(void)resp;
	(void)e; /* the first error is the one worth reporting */
	s3_op_finish(op, &op->first_err);
}

/* Records the first failure; once nothing is in flight, aborts. */
static void
s3_mp_fail(struct s3_op *op, const struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[1];
	struct err serr;
	char hp[300];

	if (!op->failed) {
		op->failed = 1;
		op->first_err = *e;
	}
	if (op->inflight > 0)
		return;
	if (op->upload_id == NULL || e->kind == ERR_CANCEL) {
		s3_op_finish(op, &op->first_err);
		return;
	}
	q[0].name = "uploadId";
	q[0].value = op->upload_id;
	s3_req_init(op->s, &req, "DELETE", hp, sizeof(hp));
	req.query = q;
	req.nquery = 1;
	err_clear(&serr);
	if (s3_send(op, &req, s3_mp_on_abort, &serr) == -1)
		s3_op_finish(op, &op->first_err);
}

static void
s3_mp_on_part(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_part *part = arg;
	struct s3_op *op = part->op;
	struct err perr;

	op->inflight--;
	if (e != NULL) {
		s3_mp_fail(op, e);
		return;
	}
	if (http_response_header(resp, "ETag", part->etag,
	                         sizeof(part->etag)) == -1) {
		err_clear(&perr);
		err_set(&perr, ERR_PARSE, "s3: part %u answered no ETag",
		        part->number);
		s3_mp_fail(op, &perr);
		return;
	}
	op->parts_done++;
	s3_mp_pump(op);
}

static int
s3_mp_send_part(struct s3_op *op, struct s3_part *part, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[2], h[2];
	uint64_t off = (uint64_t)(part->number - 1) * op->part_size;
	uint64_t len = op->body.len - off;
	char hp[300], num[16], sha[65];

	if (len > op->part_size)
		len = op->part_size;
	/* Each part is signed with its own hash: from the pass that hashed
	 * the file, or read for it now. */
	if (s3_parts_digest(op->body.parts, op->part_size, part->number - 1,
	                    sha, part->checksum) == -1 &&
	    s3_checksum_part(op->body.fd, off, len, sha, part->checksum, e) ==
	        -1)
		return -1;
	snprintf(num, sizeof(num), "%u", part->number);
	q[0].name = "partNumber";
	q[0].value = num;
	q[1].name = "uploadId";
	q[1].value = op->upload_id;
	s3_req_init(op->s, &req, "PUT", hp, sizeof(hp));
	req.query = q;
	req.nquery = 2;
	req.body_fd = op->body.fd;
	req.fd_offset = off;
	req.fd_len = len;
	req.payload_hash = sha;
	req.max_response = 64 * 1024;
	if (op->s->checksum) {
		/* The part's own checksum; Complete lists them all. */
		h[0].name = "x-amz-sdk-checksum-algorithm";
		h[0].value = "SHA256";
		h[1].name = "x-amz-checksum-sha256";
		h[1].value = part->checksum;
		req.headers = h;
		req.nheaders = 2;
	}
	return s3_send_arg(op, &req, s3_mp_on_part, part, e);
}

static void s3_mp_complete(struct s3_op *op);

static void
s3_mp_pump(struct s3_op *op)
{
	struct err e;

	if (op->failed) {
		s3_mp_fail(op, &op->first_err);
		return;
	}
	while (op->inflight < op->s->parts_in_flight &&
	       op->next_part < op->nparts) {
		err_clear(&e);
		if (s3_mp_send_part(op, &op->parts[op->next_part], &e) == -1) {
			s3_mp_fail(op, &e);
			return;
		}
		op->next_part++;
		op->inflight++;
	}
	if (op->parts_done == op->nparts)
		s3_mp_complete(op);
}

static void
s3_mp_on_complete(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;

	if (e != NULL) {
		s3_mp_fail(op, e);
		return;
	}
	s3_on_xml_etag(resp, NULL, op);
}

static void
s3_mp_complete(struct s3_op *op)
{
	struct aws_request req;
	struct sigv4_kv q[1], h[1];
	struct err e;
	char hp[300];
	unsigned i;

	buf_reset(&op->xml);
	buf_puts(&op->xml, "<CompleteMultipartUpload xmlns="
	                   "\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < op->nparts; i++) {
		buf_printf(&op->xml, "<Part><PartNumber>%u</PartNumber><ETag>",
		           op->parts[i].number);
		xml_escape(&op->xml, op->parts[i].etag);
		buf_puts(&op->xml, "</ETag>");
		if (op->s->checksum)
			buf_printf(&op->xml,
			           "<ChecksumSHA256>%s</ChecksumSHA256>",
			           op->parts[i].checksum);
		buf_puts(&op->xml, "</Part>");
	}
	buf_puts(&op->xml, "</CompleteMultipartUpload>");
	err_clear(&e);
	if (buf_cstr(&op->xml) == NULL) {
		err_set(&e, ERR_SYS, "s3: out of memory");
		s3_mp_fail(op, &e);
		return;
	}
	q[0].name = "uploadId";
	q[0].value = op->upload_id;
	h[0].name = "content-type";
	h[0].value = "application/xml";
	s3_req_init(op->s, &req, "POST", hp, sizeof(hp));
	req.query = q;
	req.nquery = 1;
	req.headers = h;
	req.nheaders = 1;
	req.body = op->xml.data;
	req.body_len = op->xml.len;
	req.max_response = 64 * 1024;
	op->r.multipart = 1;
	op->r.parts = op->nparts;
	if (s3_send(op, &req, s3_mp_on_complete, &e) == -1)
		s3_mp_fail(op, &e);
}

static int
s3_upload_id_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct s3_op *op = arg;

	if (strcmp(path, "InitiateMultipartUploadResult/UploadId") == 0) {
		free(op->upload_id);
		op->upload_id = strndup(text, len);
	}
	return 0;
}

static void
s3_mp_on_create(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	struct err perr;

	if (e != NULL) {
		s3_op_finish(op, e);
		return;
	}
	err_clear(&perr);
	if (xml_parse(resp->body.data ? resp->body.data : "", resp->body.len,
	              s3_upload_id_elem, op, &perr) == -1 ||
	    op->upload_id == NULL) {
		if (perr.kind == ERR_NONE)
			err_set(&perr, ERR_PARSE,
			        "s3: no UploadId in the answer");
		s3_op_finish(op, &perr);
		return;
	}
	if (op->body.started != NULL)
		op->body.started(op->upload_id, op->body.started_arg);
	s3_mp_pump(op);
}

int
s3_upload_multipart(struct s3 *s, const char *key, const struct s3_body *body,
                    const char *content_type, const struct s3_meta *meta,
                    size_t nmeta, s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[1], *h;
	struct s3_op *op;
	struct buf names;
	uint64_t n, size;
	unsigned i;
	char hp[300];
	int rc;

	if (body->fd < 0) {
		err_set(e, ERR_INVALID, "s3: multipart needs a file body");
		return -1;
	}
	size = s3_part_size(s->part_size, body->len);
	if (size > S3_MAX_PART) {
		err_set(e, ERR_INVALID,
		        "s3: %" PRIu64 " bytes is more than one S3 object can "
		        "hold (%u parts of 5 GiB)",
		        body->len, S3_MAX_PARTS);
		return -1;
	}
	n = (body->len + size - 1) / size;
	if (n == 0)
		n = 1;
	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	op->body = *body;
	op->part_size = size;
	op->nparts = (unsigned)n;
	op->parts = calloc(n, sizeof(*op->parts));
	h = calloc(nmeta + 2 + S3_WRITE_HEADERS, sizeof(*h));
	if (op->parts == NULL || h == NULL) {
		err_sys(e, "s3: calloc");
		free(h);
		s3_op_free(op);
		return -1;
	}
	for (i = 0; i < op->nparts; i++) {
		op->parts[i].op = op;
		op->parts[i].number = i + 1;
	}
	buf_init(&names, 0);
	q[0].name = "uploads";
	q[0].value = "";
	s3_req_init(s, &req, "POST", hp, sizeof(hp));
	req.query = q;
	req.nquery = 1;
	req.headers = h;
	req.nheaders = s3_meta_headers(h, 0, content_type, meta, nmeta, &names);
	req.nheaders = s3_write_headers(s, h, req.nheaders);
	if (s->checksum) {
		/* Composite: SHA-256 has no full-object form for multipart. */
		h[req.nheaders].name = "x-amz-checksum-algorithm";
		h[req.nheaders++].value = "SHA256";
	}
	req.max_response = 64 * 1024;
	rc = s3_start(op, &req, s3_mp_on_create, e);
	buf_cleanup(&names);
	free(h);
	return rc;
}

int
s3_upload(struct s3 *s, const char *key, const struct s3_body *body,
          const char *content_type, const struct s3_meta *meta, size_t nmeta,
          s3_done_cb cb, void *arg, struct err *e)
{
	if (body->fd >= 0 && s3_multipart(s, body->len))
		return s3_upload_multipart(s, key, body, content_type, meta,
		                           nmeta, cb, arg, e);
	return s3_put_object(s, key, body, content_type, meta, nmeta, cb, arg,
	                     e);
}
