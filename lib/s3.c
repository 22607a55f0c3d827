/*
 * s3: the S3 client object, what S3's error bodies mean, and the calls that
 * are one request each: PutObject, DeleteObject, HeadObject, CopyObject,
 * AbortMultipartUpload, GetBucketVersioning. ListObjectsV2 is s3_list.c,
 * the upload of a file (one PUT, or in parts) s3_upload.c; both stand on
 * this file's struct s3_op and request helpers, and nothing here calls
 * them.
 */
#include "s3_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s3_op *
s3_op_new(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
          struct err *e)
{
	struct s3_op *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		err_sys(e, "s3: calloc");
		return NULL;
	}
	op->s = s;
	op->cb = cb;
	op->arg = arg;
	buf_init(&op->path, 0);
	buf_init(&op->xml, 0);
	if (s->path_style)
		buf_printf(&op->path, "/%s/%s", s->bucket, key);
	else
		buf_printf(&op->path, "/%s", key);
	if (buf_cstr(&op->path) == NULL) {
		err_sys(e, "s3: out of memory");
		buf_cleanup(&op->path);
		free(op);
		return NULL;
	}
	return op;
}

void
s3_op_free(struct s3_op *op)
{
	size_t i;

	for (i = 0; i < op->r.nobjects; i++)
		free(op->r.objects[i].key);
	free(op->r.objects);
	free(op->r.next_token);
	free(op->upload_id);
	free(op->parts);
	buf_cleanup(&op->path);
	buf_cleanup(&op->xml);
	free(op);
}

void
s3_op_finish(struct s3_op *op, const struct err *e)
{
	op->cb(e == NULL ? &op->r : NULL, e, op->arg);
	s3_op_free(op);
}

struct s3 *
s3_new(struct aws_client *client, const struct s3_opts *opts, struct err *e)
{
	struct s3 *s;

	if (opts->bucket == NULL || *opts->bucket == '\0') {
		err_set(e, ERR_INVALID, "s3: no bucket");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->bucket = strdup(opts->bucket)) == NULL) {
		err_sys(e, "s3: out of memory");
		free(s);
		return NULL;
	}
	s->client = client;
	aws_client_set_protocol(client, SIGV4_S3, s3_parse_error);
	s->path_style = opts->path_style;
	s->threshold = opts->multipart_threshold ? opts->multipart_threshold
	                                         : 16u * S3_MIB;
	s->part_size = opts->part_size ? opts->part_size : 8u * S3_MIB;
	if (s->part_size < 5u * S3_MIB)
		s->part_size = 5u * S3_MIB;
	s->parts_in_flight = opts->parts_in_flight ? opts->parts_in_flight : 4;
	return s;
}

void
s3_free(struct s3 *s)
{
	if (s == NULL)
		return;
	free(s->bucket);
	free(s);
}

struct aws_client *
s3_client(const struct s3 *s)
{
	return s->client;
}

/* --- errors ------------------------------------------------------------ */

void
s3_copy_text(char *dst, size_t dstlen, const char *text, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, text, len);
	dst[len] = '\0';
}

/* A name for a bodiless error (HEAD has none), as the SDKs give it. */
static const char *
s3_status_code(long status)
{
	switch (status) {
	case 301:
		return "PermanentRedirect";
	case 400:
		return "BadRequest";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 412:
		return "PreconditionFailed";
	case 500:
		return "InternalError";
	case 503:
		return "ServiceUnavailable";
	default:
		return "";
	}
}

int
s3_parse_error(const struct http_response *resp, struct err *e)
{
	char msg[sizeof(e->message)];
	int is_error;

	is_error = xml_aws_error(resp->body.data, resp->body.len, e);
	if (resp->status >= 200 && resp->status < 300 && !is_error)
		return 0;
	e->kind = ERR_HTTP;
	e->http_status = resp->status;
	if (e->code[0] == '\0')
		snprintf(e->code, sizeof(e->code), "%s",
		         s3_status_code(resp->status));
	if (e->request_id[0] == '\0')
		(void)http_response_header(resp, "x-amz-request-id",
		                           e->request_id,
		                           sizeof(e->request_id));
	snprintf(msg, sizeof(msg), "%s", e->message);
	snprintf(e->message, sizeof(e->message), "HTTP %ld %.64s%s%.400s",
	         resp->status, e->code[0] ? e->code : "error",
	         msg[0] ? ": " : "", msg);
	return 1;
}

/* --- simple calls ------------------------------------------------------ */

static void
s3_etag_from(struct s3_op *op, struct http_response *resp)
{
	(void)http_response_header(resp, "ETag", op->r.etag,
	                           sizeof(op->r.etag));
}

int
s3_send(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
        struct err *e)
{
	struct aws_request r = *req;

	r.path = op->path.data;
	return aws_send(op->s->client, &r, cb, op, e) != NULL ? 0 : -1;
}

/* A call's first request: the op is freed when it cannot be sent. */
int
s3_start(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
         struct err *e)
{
	if (s3_send(op, req, cb, e) == 0)
		return 0;
	s3_op_free(op);
	return -1;
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

/* Fills the request's common fields: method, bucket host, no body. */
void
s3_req_init(struct s3 *s, struct aws_request *req, const char *method,
            char *host_prefix, size_t hplen)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->body_fd = -1;
	if (!s->path_style) {
		snprintf(host_prefix, hplen, "%s.", s->bucket);
		req->host_prefix = host_prefix;
	}
}

/* Content-Type and x-amz-meta-* as signed headers; names into names[]. */
size_t
s3_meta_headers(struct sigv4_kv *h, size_t n, const char *content_type,
                const struct s3_meta *meta, size_t nmeta, struct buf *names)
{
	size_t i, *offs = NULL;

	if (content_type != NULL && *content_type != '\0') {
		h[n].name = "content-type";
		h[n++].value = content_type;
	}
	buf_reset(names);
	if (nmeta == 0)
		return n;
	offs = calloc(nmeta, sizeof(*offs));
	if (offs == NULL)
		return n;
	for (i = 0; i < nmeta; i++) {
		offs[i] = names->len;
		buf_printf(names, "x-amz-meta-%s", meta[i].name);
		buf_putc(names, '\0');
	}
	if (buf_cstr(names) != NULL)
		for (i = 0; i < nmeta; i++) {
			h[n].name = names->data + offs[i];
			h[n++].value = meta[i].value;
		}
	free(offs);
	return n;
}

int
s3_put_object(struct s3 *s, const char *key, const struct s3_body *body,
              const char *content_type, const struct s3_meta *meta,
              size_t nmeta, s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct s3_op *op;
	struct sigv4_kv *h;
	struct buf names;
	char hp[300];
	int rc;

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	h = calloc(nmeta + 1, sizeof(*h));
	if (h == NULL) {
		err_sys(e, "s3: calloc");
		s3_op_free(op);
		return -1;
	}
	buf_init(&names, 0);
	s3_req_init(s, &req, "PUT", hp, sizeof(hp));
	req.headers = h;
	req.nheaders = s3_meta_headers(h, 0, content_type, meta, nmeta, &names);
	if (body->fd >= 0) {
		req.body_fd = body->fd;
		req.fd_len = body->len;
	} else {
		req.body = body->data;
		req.body_len = (size_t)body->len;
	}
	req.payload_hash = body->sha256;
	req.max_response = 64 * 1024;
	rc = s3_start(op, &req, s3_on_simple, e);
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
	s3_op_finish(op, NULL);
}

int
s3_head_object(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
               struct err *e)
{
	struct aws_request req;
	struct s3_op *op;
	char hp[300];

	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	s3_req_init(s, &req, "HEAD", hp, sizeof(hp));
	return s3_start(op, &req, s3_on_head, e);
}

static int
s3_etag_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct s3_op *op = arg;
	const char *leaf = strrchr(path, '/');

	if (leaf != NULL && strcmp(leaf, "/ETag") == 0)
		s3_copy_text(op->r.etag, sizeof(op->r.etag), text, len);
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

/* CopyObject and CompleteMultipartUpload answer an ETag in XML. */
void
s3_on_xml_etag(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	struct err perr;

	if (s3_xml_answer(op, resp, e, s3_etag_elem) == -1)
		return;
	if (op->r.etag[0] == '\0') {
		err_clear(&perr);
		err_set(&perr, ERR_PARSE, "s3: no ETag in the answer");
		s3_op_finish(op, &perr);
		return;
	}
	s3_op_finish(op, NULL);
}

int
s3_copy_object(struct s3 *s, const char *src_key, const char *dst_key,
               s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv h[2];
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
	req.nheaders = 2;
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
