/*
 * s3_object: the S3 calls that are one request each (or two, when a store
 * answers without an ETag): PutObject, DeleteObject, HeadObject (also with
 * the object's checksum), CopyObject, AbortMultipartUpload,
 * GetBucketVersioning; and the answer with an ETag in XML that
 * CompleteMultipartUpload shares with CopyObject. Each is a struct s3_op
 * of s3.c.
 */
#include "s3_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s3_etag_from(struct s3_op *op, struct http_response *resp)
{
	char etag[sizeof(op->r.etag)];

	if (http_response_header(resp, "ETag", etag, sizeof(etag)) == 0)
		s3_copy_etag(op->r.etag, sizeof(op->r.etag), etag,
		             strlen(etag));
}

static void
s3_on_simple(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;

	if (e != NULL) {
		s3_op_finish(op, e);
		return;
	}
	op->r.status = resp->status;
	s3_etag_from(op, resp);
	s3_op_finish(op, NULL);
}

/* PutObject's answer: also the checksum S3 confirmed, if it was sent. */
static void
s3_on_put(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;

	if (e == NULL && op->s->checksum) {
		(void)http_response_header(resp, "x-amz-checksum-sha256",
		                           op->r.checksum_sha256,
		                           sizeof(op->r.checksum_sha256));
		if (op->r.checksum_sha256[0] == '\0')
			op->r.notes |= S3_NOTE_NO_CHECKSUM;
	}
	s3_on_simple(resp, e, arg);
}

/* Fills the request's common fields: method, bucket host, no body. */
int
s3_put_object(struct s3 *s, const char *key, const struct s3_body *body,
              const char *content_type, const struct s3_meta *meta,
              size_t nmeta, s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct s3_op *op;
	struct sigv4_kv *h;
	struct buf names;
	char hp[300], sum[48];
	int rc;

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	h = calloc(nmeta + 3 + S3_WRITE_HEADERS, sizeof(*h));
	if (h == NULL) {
		err_sys(e, "s3: calloc");
		s3_op_free(op);
		return -1;
	}
	buf_init(&names, 0);
	s3_req_init(s, &req, "PUT", hp, sizeof(hp));
	req.headers = h;
	req.nheaders = s3_meta_headers(h, 0, content_type, meta, nmeta, &names);
	req.nheaders = s3_write_headers(s, h, req.nheaders);
	if (s->checksum) {
		if (body->sha256 != NULL) {
			if (s3_checksum_from_hex(body->sha256, sum,
			                         sizeof(sum)) == -1) {
				err_set(e, ERR_INVALID, "s3: bad SHA-256");
				rc = -1;
				s3_op_free(op);
				goto done;
			}
		} else {
			s3_checksum_of(body->data, (size_t)body->len, sum);
		}
		h[req.nheaders].name = "x-amz-sdk-checksum-algorithm";
		h[req.nheaders++].value = "SHA256";
		h[req.nheaders].name = "x-amz-checksum-sha256";
		h[req.nheaders++].value = sum;
	}
	if (body->fd >= 0) {
		req.body_fd = body->fd;
		req.fd_len = body->len;
	} else {
		req.body = body->data;
		req.body_len = (size_t)body->len;
	}
	req.payload_hash = body->sha256;
	req.max_response = 64 * 1024;
	rc = s3_start(op, &req, s3_on_put, e);
done:
	buf_cleanup(&names);
	free(h);
	return rc;
}

int
s3_delete_object(struct s3 *s, const char *key, const char *if_match,
                 s3_done_cb cb, void *arg, struct err *e)
{
	struct sigv4_kv h[1] = {{"If-Match", if_match}};
	struct aws_request req;
	struct s3_op *op;
	char hp[300];

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	s3_req_init(s, &req, "DELETE", hp, sizeof(hp));
	if (if_match != NULL && if_match[0] != '\0') {
		req.headers = h;
		req.nheaders = 1;
	}
	return s3_start(op, &req, s3_on_simple, e);
}

static void
s3_on_head(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	char len[32];

	if (e != NULL) {
		s3_op_finish(op, e);
		return;
	}
	op->r.status = resp->status;
	s3_etag_from(op, resp);
	if (http_response_header(resp, "Content-Length", len, sizeof(len)) == 0)
		op->r.size = strtoull(len, NULL, 10);
	(void)http_response_header(resp, "Content-Type", op->r.content_type,
	                           sizeof(op->r.content_type));
	(void)http_response_header(resp, "x-amz-meta-sha256", op->r.sha256_meta,
	                           sizeof(op->r.sha256_meta));
	(void)http_response_header(resp, "x-amz-checksum-sha256",
	                           op->r.checksum_sha256,
	                           sizeof(op->r.checksum_sha256));
	s3_op_finish(op, NULL);
}

/* HeadObject, asking for the checksum too or not. */
static int
s3_head(struct s3 *s, const char *key, int checksum, s3_done_cb cb, void *arg,
        struct err *e)
{
	struct sigv4_kv h[1] = {{"x-amz-checksum-mode", "ENABLED"}};
	struct aws_request req;
	struct s3_op *op;
	char hp[300];

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	s3_req_init(s, &req, "HEAD", hp, sizeof(hp));
	if (checksum) {
		req.headers = h;
		req.nheaders = 1;
	}
	return s3_start(op, &req, s3_on_head, e);
}

int
s3_head_object(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
               struct err *e)
{
	return s3_head(s, key, 0, cb, arg, e);
}

int
s3_head_checksum(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
                 struct err *e)
{
	return s3_head(s, key, 1, cb, arg, e);
}

static int
s3_etag_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct s3_op *op = arg;
	const char *leaf = strrchr(path, '/');

	if (leaf != NULL && strcmp(leaf, "/ETag") == 0)
		s3_copy_etag(op->r.etag, sizeof(op->r.etag), text, len);
	else if (leaf != NULL && strcmp(leaf, "/ChecksumSHA256") == 0)
		s3_copy_text(op->r.checksum_sha256,
		             sizeof(op->r.checksum_sha256), text, len);
	return 0;
}

/* An XML answer through elem; 0, or -1 when op was finished with the
 * transport's or the parser's error. */
static int
s3_xml_answer(struct s3_op *op, struct http_response *resp, const struct err *e,
              xml_end_cb elem)
{
	struct err perr;

	if (e != NULL) {
		s3_op_finish(op, e);
		return -1;
	}
	op->r.status = resp->status;
	err_clear(&perr);
	if (xml_parse(resp->body.data ? resp->body.data : "", resp->body.len,
	              elem, op, &perr) == -1) {
		s3_op_finish(op, &perr);
		return -1;
	}
	return 0;
}

int
s3_xml_etag_answer(struct s3_op *op, struct http_response *resp,
                   const struct err *e)
{
	return s3_xml_answer(op, resp, e, s3_etag_elem);
}

/* The HeadObject after an answer without an ETag (or, for multipart,
 * without the checksum): what the answer left out. */
static void
s3_on_etag_head(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	struct err perr;

	if (e != NULL && op->r.etag[0] != '\0') {
		/* Only the checksum was wanted: the upload stands. */
		op->r.notes |= S3_NOTE_NO_CHECKSUM;
		s3_op_finish(op, NULL);
		return;
	}
	if (e != NULL) {
		s3_op_finish(op, e);
		return;
	}
	if (op->r.etag[0] == '\0') {
		s3_etag_from(op, resp);
		if (op->r.etag[0] == '\0') {
			err_clear(&perr);
			err_set(&perr, ERR_PARSE,
			        "s3: no ETag in the answer, nor from "
			        "HeadObject");
			s3_op_finish(op, &perr);
			return;
		}
		op->r.notes |= S3_NOTE_ETAG_BY_HEAD;
	}
	if (op->r.multipart && op->s->checksum &&
	    op->r.checksum_sha256[0] == '\0') {
		(void)http_response_header(resp, "x-amz-checksum-sha256",
		                           op->r.checksum_sha256,
		                           sizeof(op->r.checksum_sha256));
		/* A store that kept no checksum: said, not failed. */
		if (op->r.checksum_sha256[0] == '\0')
			op->r.notes |= S3_NOTE_NO_CHECKSUM;
	}
	s3_op_finish(op, NULL);
}

/*
 * CopyObject and CompleteMultipartUpload answer an ETag in XML. Some
 * stores (Ceph RGW 16.2 after CompleteMultipartUpload) answer an empty
 * one though the object is whole, and some (moto) leave out the checksum
 * they keep: what is missing then comes from HeadObject, which answers
 * the object as it now is (the caller holds the key: no other upload of
 * it runs meanwhile).
 */
void
s3_on_xml_etag(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	struct sigv4_kv h[1] = {{"x-amz-checksum-mode", "ENABLED"}};
	struct aws_request req;
	struct err serr;
	char hp[300];
	int need_sum;

	if (s3_xml_etag_answer(op, resp, e) == -1)
		return;
	need_sum = op->r.multipart && op->s->checksum &&
	           op->r.checksum_sha256[0] == '\0';
	if (op->r.etag[0] != '\0' && !need_sum) {
		s3_op_finish(op, NULL);
		return;
	}
	s3_req_init(op->s, &req, "HEAD", hp, sizeof(hp));
	if (need_sum) {
		req.headers = h;
		req.nheaders = 1;
	}
	err_clear(&serr);
	if (s3_send(op, &req, s3_on_etag_head, &serr) == -1)
		s3_op_finish(op, &serr);
}

int
s3_copy_object(struct s3 *s, const char *src_key, const char *dst_key,
               s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv h[3 + S3_WRITE_HEADERS];
	struct s3_op *op;
	struct buf src;
	char hp[300];
	int rc = -1;

	op = s3_op_new(s, dst_key, cb, arg, e);
	if (op == NULL)
		return -1;
	buf_init(&src, 0);
	buf_printf(&src, "/%s/", s->bucket);
	sigv4_uri_encode(&src, src_key, strlen(src_key), 1);
	if (buf_cstr(&src) == NULL) {
		err_sys(e, "s3: out of memory");
		goto done;
	}
	h[0].name = "x-amz-copy-source";
	h[0].value = src.data;
	h[1].name = "x-amz-metadata-directive";
	h[1].value = "COPY";
	s3_req_init(s, &req, "PUT", hp, sizeof(hp));
	req.headers = h;
	/* A copy gets the bucket's defaults, not the source's class and
	 * encryption: the options go again. */
	req.nheaders = s3_write_headers(s, h, 2);
	if (s->checksum) {
		h[req.nheaders].name = "x-amz-checksum-algorithm";
		h[req.nheaders++].value = "SHA256";
	}
	req.max_response = 64 * 1024;
	rc = s3_send(op, &req, s3_on_xml_etag, e);
done:
	buf_cleanup(&src);
	if (rc == -1)
		s3_op_free(op);
	return rc;
}

int
s3_abort_multipart(struct s3 *s, const char *key, const char *upload_id,
                   s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[1];
	struct s3_op *op;
	char hp[300];

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	q[0].name = "uploadId";
	q[0].value = upload_id;
	s3_req_init(s, &req, "DELETE", hp, sizeof(hp));
	req.query = q;
	req.nquery = 1;
	req.max_response = 64 * 1024;
	return s3_start(op, &req, s3_on_simple, e);
}

static int
s3_versioning_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct s3_op *op = arg;

	const char *leaf = strrchr(path, '/');

	/* The leaf only: the root's name may carry S3's namespace. */
	if (leaf != NULL && strcmp(leaf, "/Status") == 0)
		s3_copy_text(op->r.versioning, sizeof(op->r.versioning), text,
		             len);
	return 0;
}

static void
s3_on_versioning(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;

	if (s3_xml_answer(op, resp, e, s3_versioning_elem) == 0)
		s3_op_finish(op, NULL);
}

int
s3_get_versioning(struct s3 *s, s3_done_cb cb, void *arg, struct err *e)
{
	struct sigv4_kv q[1] = {{"versioning", ""}};
	struct aws_request req;
	struct s3_op *op;
	char hp[300];

	op = s3_op_new(s, "", cb, arg, e);
	if (op == NULL)
		return -1;
	s3_req_init(s, &req, "GET", hp, sizeof(hp));
	req.query = q;
	req.nquery = 1;
	req.max_response = 64 * 1024;
	return s3_start(op, &req, s3_on_versioning, e);
}
