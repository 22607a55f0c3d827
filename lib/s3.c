#include "s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "imagemeta.h"
#include "text.h"
#include "xml.h"

#define S3_MIB (1024u * 1024u)
#define S3_MAX_PARTS 10000u

struct s3 {
	struct aws_client *client;
	char *bucket;
	int path_style;
	uint64_t threshold;
	uint64_t part_size;
	unsigned parts_in_flight;
};

struct s3_op;

struct s3_part {
	struct s3_op *op;
	unsigned number; /* 1-based */
	char etag[80];
};

struct s3_op {
	struct s3 *s;
	s3_done_cb cb;
	void *arg;
	struct s3_result r;
	struct buf path;
	/* multipart */
	struct s3_body body;
	char *upload_id;
	struct s3_part *parts;
	unsigned nparts;
	unsigned next_part;
	unsigned parts_done;
	unsigned inflight;
	int failed;
	struct err first_err;
	struct buf xml;
};

static struct s3_op *
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

static void
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

static void
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

const char *
s3_bucket(const struct s3 *s)
{
	return s->bucket;
}

struct aws_client *
s3_client(const struct s3 *s)
{
	return s->client;
}

/* --- errors ------------------------------------------------------------ */

static void
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

static int
s3_send(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
        struct err *e)
{
	struct aws_request r = *req;

	r.path = op->path.data;
	return aws_send(op->s->client, &r, cb, op, e) != NULL ? 0 : -1;
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
static void
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
static size_t
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
	rc = s3_send(op, &req, s3_on_simple, e);
	buf_cleanup(&names);
	free(h);
	if (rc == -1)
		s3_op_free(op);
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
	if (s3_send(op, &req, s3_on_simple, e) == -1) {
		s3_op_free(op);
		return -1;
	}
	return 0;
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
	if (s3_send(op, &req, s3_on_head, e) == -1) {
		s3_op_free(op);
		return -1;
	}
	return 0;
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
static void
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
	if (s3_send(op, &req, s3_on_simple, e) == -1) {
		s3_op_free(op);
		return -1;
	}
	return 0;
}

/* --- ListObjectsV2 ----------------------------------------------------- */

/* encoding-type=url keys: %XX and '+' for space, as botocore decodes. */
static char *
s3_url_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;
	int hi, lo;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len &&
		    (hi = text_hexval(s[i + 1])) >= 0 &&
		    (lo = text_hexval(s[i + 2])) >= 0) {
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

struct s3_list_ctx {
	struct s3_op *op;
	size_t cap;
	int truncated;
	int url_encoded;
	struct s3_object cur;
	int failed;
};

static int
s3_list_push(struct s3_list_ctx *x)
{
	struct s3_result *r = &x->op->r;
	struct s3_object *o;
	size_t ncap;

	if (r->nobjects == x->cap) {
		ncap = x->cap ? x->cap * 2 : 64;
		o = realloc(r->objects, ncap * sizeof(*o));
		if (o == NULL)
			return -1;
		r->objects = o;
		x->cap = ncap;
	}
	r->objects[r->nobjects++] = x->cur;
	memset(&x->cur, 0, sizeof(x->cur));
	return 0;
}

static int
s3_list_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct s3_list_ctx *x = arg;
	struct s3_result *r = &x->op->r;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0) {
		free(x->cur.key);
		x->cur.key = strndup(text, len);
	} else if (strcmp(path, "ListBucketResult/Contents/Size") == 0) {
		x->cur.size = strtoull(text, NULL, 10);
	} else if (strcmp(path, "ListBucketResult/Contents/ETag") == 0) {
		s3_copy_text(x->cur.etag, sizeof(x->cur.etag), text, len);
	} else if (strcmp(path, "ListBucketResult/Contents") == 0) {
		if (x->cur.key == NULL || s3_list_push(x) == -1) {
			x->failed = 1;
			return -1;
		}
	} else if (strcmp(path, "ListBucketResult/IsTruncated") == 0) {
		x->truncated = len == 4 && strncmp(text, "true", 4) == 0;
	} else if (strcmp(path, "ListBucketResult/NextContinuationToken") ==
	           0) {
		free(r->next_token);
		r->next_token = strndup(text, len);
	} else if (strcmp(path, "ListBucketResult/EncodingType") == 0) {
		x->url_encoded = len == 3 && strncmp(text, "url", 3) == 0;
	}
	return 0;
}

static void
s3_on_list(struct http_response *resp, const struct err *e, void *arg)
{
	struct s3_op *op = arg;
	struct s3_list_ctx x;
	struct err perr;
	size_t i;
	char *k;

	if (e != NULL) {
		s3_op_finish(op, e);
		return;
	}
	memset(&x, 0, sizeof(x));
	x.op = op;
	err_clear(&perr);
	op->r.status = resp->status;
	if (xml_parse(resp->body.data ? resp->body.data : "", resp->body.len,
	              s3_list_elem, &x, &perr) == -1 ||
	    x.failed) {
		free(x.cur.key);
		if (perr.kind == ERR_NONE)
			err_set(&perr, ERR_PARSE,
			        "s3: bad ListObjectsV2 answer");
		s3_op_finish(op, &perr);
		return;
	}
	free(x.cur.key);
	for (i = 0; x.url_encoded && i < op->r.nobjects; i++) {
		k = s3_url_decode(op->r.objects[i].key,
		                  strlen(op->r.objects[i].key));
		if (k == NULL) {
			err_sys(&perr, "s3: out of memory");
			s3_op_finish(op, &perr);
			return;
		}
		free(op->r.objects[i].key);
		op->r.objects[i].key = k;
	}
	if (!x.truncated) {
		free(op->r.next_token);
		op->r.next_token = NULL;
	}
	s3_op_finish(op, NULL);
}

int
s3_list_objects(struct s3 *s, const char *prefix, const char *token,
                unsigned max_keys, s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[5];
	struct s3_op *op;
	char hp[300], mk[16];
	size_t n = 0;

	op = s3_op_new(s, "", cb, arg, e);
	if (op == NULL)
		return -1;
	snprintf(mk, sizeof(mk), "%u", max_keys ? max_keys : 1000);
	q[n].name = "list-type";
	q[n++].value = "2";
	q[n].name = "encoding-type";
	q[n++].value = "url";
	q[n].name = "max-keys";
	q[n++].value = mk;
	if (prefix != NULL && *prefix != '\0') {
		q[n].name = "prefix";
		q[n++].value = prefix;
	}
	if (token != NULL && *token != '\0') {
		q[n].name = "continuation-token";
		q[n++].value = token;
	}
	s3_req_init(s, &req, "GET", hp, sizeof(hp));
	req.query = q;
	req.nquery = n;
	req.max_response = 32u * S3_MIB;
	if (s3_send(op, &req, s3_on_list, e) == -1) {
		s3_op_free(op);
		return -1;
	}
	return 0;
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
	if (s3_send(op, &req, s3_on_versioning, e) == -1) {
		s3_op_free(op);
		return -1;
	}
	return 0;
}

/* --- multipart upload -------------------------------------------------- */

static void s3_mp_pump(struct s3_op *op);

/* SHA-256 of len bytes of fd from off, read with pread. */
static int
s3_hash_range(int fd, uint64_t off, uint64_t len, char out[65], struct err *e)
{
	struct imagemeta_hash *h = imagemeta_hash_new();
	unsigned char chunk[65536];
	ssize_t got;
	int rc = -1;

	if (h == NULL) {
		err_set(e, ERR_SYS, "s3: SHA-256 unavailable");
		return -1;
	}
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);

		got = pread(fd, chunk, want, (off_t)off);
		if (got < 0) {
			err_sys(e, "s3: reading the part to upload");
			goto done;
		}
		if (got == 0) {
			err_set(e, ERR_SYS,
			        "s3: the file shrank during upload");
			goto done;
		}
		imagemeta_hash_update(h, chunk, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	rc = imagemeta_hash_final(h, out);
done:
	imagemeta_hash_free(h);
	return rc;
}

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
	struct sigv4_kv q[2];
	uint64_t off = (uint64_t)(part->number - 1) * op->s->part_size;
	uint64_t len = op->body.len - off;
	char hp[300], num[16], sha[65];

	if (len > op->s->part_size)
		len = op->s->part_size;
	/* Each part is signed with its own hash, computed as it is sent. */
	if (s3_hash_range(op->body.fd, off, len, sha, e) == -1)
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
	req.path = op->path.data;
	req.max_response = 64 * 1024;
	return aws_send(op->s->client, &req, s3_mp_on_part, part, e) != NULL
	           ? 0
	           : -1;
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
		buf_puts(&op->xml, "</ETag></Part>");
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
s3_multipart_upload(struct s3 *s, const char *key, const struct s3_body *body,
                    const char *content_type, const struct s3_meta *meta,
                    size_t nmeta, s3_done_cb cb, void *arg, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv q[1], *h;
	struct s3_op *op;
	struct buf names;
	uint64_t n;
	unsigned i;
	char hp[300];
	int rc;

	if (body->fd < 0) {
		err_set(e, ERR_INVALID, "s3: multipart needs a file body");
		return -1;
	}
	n = (body->len + s->part_size - 1) / s->part_size;
	if (n == 0)
		n = 1;
	if (n > S3_MAX_PARTS) {
		err_set(e, ERR_INVALID,
		        "s3: %" PRIu64
		        " bytes need more than %u parts of %" PRIu64
		        " bytes; raise the part size",
		        body->len, S3_MAX_PARTS, s->part_size);
		return -1;
	}
	op = s3_op_new(s, key, cb, arg, e);
	if (op == NULL)
		return -1;
	op->body = *body;
	op->nparts = (unsigned)n;
	op->parts = calloc(n, sizeof(*op->parts));
	h = calloc(nmeta + 1, sizeof(*h));
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
	req.max_response = 64 * 1024;
	rc = s3_send(op, &req, s3_mp_on_create, e);
	buf_cleanup(&names);
	free(h);
	if (rc == -1)
		s3_op_free(op);
	return rc;
}

int
s3_upload(struct s3 *s, const char *key, const struct s3_body *body,
          const char *content_type, const struct s3_meta *meta, size_t nmeta,
          s3_done_cb cb, void *arg, struct err *e)
{
	if (body->fd >= 0 && body->len >= s->threshold)
		return s3_multipart_upload(s, key, body, content_type, meta,
		                           nmeta, cb, arg, e);
	return s3_put_object(s, key, body, content_type, meta, nmeta, cb, arg,
	                     e);
}
