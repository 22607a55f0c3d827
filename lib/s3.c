/*
 * s3: the S3 client object and its write options, what S3's error bodies
 * mean, and the plumbing every call stands on: struct s3_op, the request's
 * common fields and headers, sending. The calls that are one request each
 * are s3_object.c, ListObjectsV2 s3_list.c, the upload of a file (one PUT,
 * or in parts) s3_upload.c, the checksums s3_checksum.c; they stand on this
 * file, and nothing here calls them.
 */
#include "s3_impl.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The path of key's object: "/bucket/key" in path style, else "/key"
 * (the bucket goes in the host). */
static void
s3_key_path(const struct s3 *s, struct buf *b, const char *key)
{
	if (s->path_style)
		buf_printf(b, "/%s/%s", s->bucket, key);
	else
		buf_printf(b, "/%s", key);
}

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
	s3_key_path(s, &op->path, key);
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

/* A copy of an optional string: NULL for NULL or "". -1 out of memory. */
static int
s3_opt_dup(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL || *src == '\0')
		return 0;
	*dst = strdup(src);
	return *dst == NULL ? -1 : 0;
}

/*
 * Whether a virtual-hosted request ("bucket.host") cannot reach this
 * endpoint, so that only path style can: an IP address or localhost (no
 * name under it resolves), or a bucket with a dot over https (its name
 * breaks the certificate's wildcard). The SDKs fall back the same way.
 */
static int
s3_needs_path_style(const char *origin, const char *bucket)
{
	char host[256], buf[sizeof(struct in6_addr)];
	const char *h = strstr(origin, "://");
	size_t n;

	h = h != NULL ? h + 3 : origin;
	if (strncmp(origin, "https://", 8) == 0 && strchr(bucket, '.') != NULL)
		return 1;
	if (*h == '[')
		return 1; /* an IPv6 literal */
	n = strcspn(h, ":/");
	if (n >= sizeof(host))
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	return strcmp(host, "localhost") == 0 ||
	       inet_pton(AF_INET, host, buf) == 1;
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
	if (!s->path_style &&
	    s3_needs_path_style(aws_client_endpoint(client), s->bucket)) {
		s->path_style = 1;
		s->forced_path_style = 1;
	}
	s->threshold = opts->multipart_threshold ? opts->multipart_threshold
	                                         : 16u * S3_MIB;
	s->part_size = opts->part_size ? opts->part_size : 8u * S3_MIB;
	if (s->part_size < 5u * S3_MIB)
		s->part_size = 5u * S3_MIB;
	s->parts_in_flight = opts->parts_in_flight ? opts->parts_in_flight : 4;
	s->sse_bucket_key = opts->sse_bucket_key;
	s->checksum = opts->checksum;
	if (s3_opt_dup(&s->storage_class, opts->storage_class) == -1 ||
	    s3_opt_dup(&s->sse, opts->sse) == -1 ||
	    s3_opt_dup(&s->sse_kms_key_id, opts->sse_kms_key_id) == -1 ||
	    s3_opt_dup(&s->expected_bucket_owner,
	               opts->expected_bucket_owner) == -1) {
		err_sys(e, "s3: out of memory");
		s3_free(s);
		return NULL;
	}
	return s;
}

void
s3_free(struct s3 *s)
{
	if (s == NULL)
		return;
	free(s->bucket);
	free(s->storage_class);
	free(s->sse);
	free(s->sse_kms_key_id);
	free(s->expected_bucket_owner);
	free(s);
}

size_t
s3_write_headers(const struct s3 *s, struct sigv4_kv *h, size_t n)
{
	if (s->storage_class != NULL) {
		h[n].name = "x-amz-storage-class";
		h[n++].value = s->storage_class;
	}
	if (s->sse == NULL)
		return n;
	h[n].name = "x-amz-server-side-encryption";
	h[n++].value = s->sse;
	if (strcmp(s->sse, "aws:kms") != 0)
		return n;
	if (s->sse_kms_key_id != NULL) {
		h[n].name = "x-amz-server-side-encryption-aws-kms-key-id";
		h[n++].value = s->sse_kms_key_id;
	}
	if (s->sse_bucket_key) {
		h[n].name = "x-amz-server-side-encryption-bucket-key-enabled";
		h[n++].value = "true";
	}
	return n;
}

char *
s3_presign_get(struct s3 *s, const char *key, int expires_secs,
               struct aws_presigned *out, struct err *e)
{
	struct aws_presign_req req;
	char host_prefix[80];
	struct buf path;
	char *url;

	buf_init(&path, 0);
	s3_key_path(s, &path, key);
	if (buf_cstr(&path) == NULL) {
		err_sys(e, "s3: out of memory");
		return NULL;
	}
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = path.data;
	req.expires_secs = expires_secs;
	if (!s->path_style) {
		snprintf(host_prefix, sizeof(host_prefix), "%s.", s->bucket);
		req.host_prefix = host_prefix;
	}
	url = aws_presign(s->client, &req, out, e);
	buf_cleanup(&path);
	return url;
}

struct aws_client *
s3_client(const struct s3 *s)
{
	return s->client;
}

int
s3_forced_path_style(const struct s3 *s)
{
	return s->forced_path_style;
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

void
s3_copy_etag(char *dst, size_t dstlen, const char *text, size_t len)
{
	if (len > 0 && text[0] != '"' && len + 3 <= dstlen) {
		dst[0] = '"';
		memcpy(dst + 1, text, len);
		dst[len + 1] = '"';
		dst[len + 2] = '\0';
		return;
	}
	s3_copy_text(dst, dstlen, text, len);
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

/* --- the requests' plumbing -------------------------------------------- */

int
s3_send_arg(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
            void *arg, struct err *e)
{
	struct aws_request r = *req;
	struct sigv4_kv *h = NULL;
	int rc;

	r.path = op->path.data;
	if (op->s->expected_bucket_owner != NULL) {
		/* aws_send copies the headers: this array may go after. */
		h = calloc(req->nheaders + 1, sizeof(*h));
		if (h == NULL) {
			err_sys(e, "s3: calloc");
			return -1;
		}
		if (req->nheaders > 0)
			memcpy(h, req->headers, req->nheaders * sizeof(*h));
		h[req->nheaders].name = "x-amz-expected-bucket-owner";
		h[req->nheaders].value = op->s->expected_bucket_owner;
		r.headers = h;
		r.nheaders = req->nheaders + 1;
	}
	rc = aws_send(op->s->client, &r, cb, arg, e) != NULL ? 0 : -1;
	free(h);
	return rc;
}

int
s3_send(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
        struct err *e)
{
	return s3_send_arg(op, req, cb, op, e);
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
