/*
 * s3_list: ListObjectsV2, one page per call. Keys are asked for with
 * encoding-type=url (a key may hold characters XML 1.0 cannot carry) and
 * decoded here as botocore decodes them; the continuation token is passed
 * back as given.
 */
#include "s3_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

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
		s3_copy_etag(x->cur.etag, sizeof(x->cur.etag), text, len);
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
	return s3_start(op, &req, s3_on_list, e);
}
