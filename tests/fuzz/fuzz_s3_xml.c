/*
 * libFuzzer target over S3's XML answers: lib/xml.c (xml_parse,
 * xml_aws_error, xml_escape) and what lib/s3.c does with a response body:
 * s3_parse_error (public, the aws_error_parser), and the parsers of the
 * ListObjectsV2, CopyObject / CompleteMultipartUpload and
 * CreateMultipartUpload answers. Two are static and only reached through a
 * signed request, so lib/s3.c, s3_list.c and s3_upload.c are included here
 * and their response callbacks (s3_on_list, s3_upload_id_elem) are called
 * as aws.c calls them; the ETag answer's parser (s3_xml_etag_answer, of
 * s3_impl.h) is called alone, since an answer without an ETag goes on to a
 * HeadObject. Built and run by tests/fuzz/run.
 *
 * Input: a response body, or a whole response (see fuzz_resp.h). Every
 * input goes through every parser. A broken invariant abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* For their static response parsers. */
#include "../../lib/s3.c"
#include "../../lib/s3_list.c"
#include "../../lib/s3_upload.c"
#include "fuzz_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- xml_parse ----------------------------------------------------------- */

struct walk {
	size_t calls;
	size_t stop_at; /* return -1 at this call (1-based); 0: never */
	int after_stop; /* a call came after the stop */
};

static int
walk_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct walk *w = arg;
	size_t plen;

	if (path == NULL || text == NULL)
		abort();
	plen = strlen(path);
	if (plen == 0 || plen > XML_MAX_PATH || path[0] == '/' ||
	    path[plen - 1] == '/' || strstr(path, "//") != NULL)
		abort();
	/* expat refuses NUL (even as &#0;), so the text is a C string. */
	if (len > XML_MAX_TEXT || text[len] != '\0' || strlen(text) != len)
		abort();
	if (w->stop_at != 0 && w->calls >= w->stop_at)
		w->after_stop = 1;
	w->calls++;
	return w->stop_at != 0 && w->calls == w->stop_at ? -1 : 0;
}

static void
check_err(const struct err *e)
{
	FUZZ_TERMINATED(e->code);
	FUZZ_TERMINATED(e->request_id);
	FUZZ_TERMINATED(e->message);
}

static void
fuzz_xml_parse(const char *doc, size_t len)
{
	struct walk w, w2;
	struct err e;
	int rc;

	memset(&w, 0, sizeof(w));
	err_clear(&e);
	rc = xml_parse(doc, len, walk_elem, &w, &e);
	check_err(&e);
	if (rc == -1 ? e.kind == ERR_NONE || e.message[0] == '\0'
	             : rc != 0 || e.kind != ERR_NONE)
		abort();
	if (w.calls == 0)
		return;
	/* Stopped by its callback half-way: the same calls up to there, no
	 * call after, and not an error. */
	memset(&w2, 0, sizeof(w2));
	w2.stop_at = (w.calls + 1) / 2;
	err_clear(&e);
	if (xml_parse(doc, len, walk_elem, &w2, &e) != 0 ||
	    e.kind != ERR_NONE || w2.after_stop || w2.calls != w2.stop_at)
		abort();
}

/* --- xml_escape, read back ------------------------------------------------ */

/* The next UTF-8 sequence of p (n > 0) as a code point, and its length in
 * *k; -1 for anything that is not shortest-form UTF-8 of a scalar value. */
static long
utf8_next(const unsigned char *p, size_t n, size_t *k)
{
	long c;
	size_t i, len;

	if (p[0] < 0x80) {
		*k = 1;
		return p[0];
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		return -1;
	}
	if (n < len)
		return -1;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*k = len;
	return c;
}

/* Characters XML 1.0 allows in text, less CR (read back as LF). */
static int
xml_text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), k;
	long c;

	while (n > 0) {
		c = utf8_next(p, n, &k);
		if (c == -1 || (c < 0x20 && c != '\t' && c != '\n') ||
		    c == 0xfffe || c == 0xffff)
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

struct echo {
	const char *want;
	int seen;
};

static int
echo_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct echo *x = arg;

	if (strcmp(path, "a") != 0 || strlen(x->want) != len ||
	    memcmp(text, x->want, len) != 0)
		abort();
	x->seen++;
	return 0;
}

/* What xml_escape writes parses back to what it was given: the ETags of
 * CompleteMultipartUpload go out this way. */
static void
fuzz_escape(const char *s)
{
	struct buf b;
	struct echo x;
	struct err e;

	buf_init(&b, 0);
	buf_puts(&b, "<a>");
	if (xml_escape(&b, s) == -1)
		abort();
	buf_puts(&b, "</a>");
	if (buf_cstr(&b) == NULL)
		abort();
	if (xml_text_ok(s)) {
		x.want = s;
		x.seen = 0;
		err_clear(&e);
		if (xml_parse(b.data, b.len, echo_elem, &x, &e) != 0 ||
		    x.seen != 1)
			abort();
	}
	buf_cleanup(&b);
}

/* --- S3 errors ------------------------------------------------------------ */

static void
fuzz_s3_error(struct http_response *resp)
{
	struct err e;
	int rc;

	err_clear(&e);
	rc = xml_aws_error(resp->body.data, resp->body.len, &e);
	check_err(&e);
	if (rc != 0 && rc != 1)
		abort();

	err_clear(&e);
	rc = s3_parse_error(resp, &e);
	check_err(&e);
	if (rc == 1 ? e.kind != ERR_HTTP || e.http_status != resp->status ||
	                  e.message[0] == '\0'
	            : rc != 0 || e.kind != ERR_NONE)
		abort();
	if (resp->status < 200 || resp->status > 299) {
		if (rc != 1)
			abort();
		return;
	}
	/* The same body on a refusal is always an error. */
	resp->status = 503;
	err_clear(&e);
	if (s3_parse_error(resp, &e) != 1 || e.kind != ERR_HTTP ||
	    e.http_status != 503 || e.code[0] == '\0')
		abort();
	check_err(&e);
	resp->status = 200;
}

/* --- the static answer parsers of s3.c ------------------------------------ */

struct done {
	int calls;
	int ok;
};

static void
on_done(const struct s3_result *r, const struct err *e, void *arg)
{
	struct done *d = arg;
	size_t i;

	d->calls++;
	if ((r == NULL) == (e == NULL))
		abort();
	if (e != NULL) {
		if (e->kind == ERR_NONE || e->message[0] == '\0')
			abort();
		check_err(e);
		return;
	}
	d->ok = 1;
	FUZZ_TERMINATED(r->etag);
	if ((r->nobjects > 0) != (r->objects != NULL))
		abort();
	for (i = 0; i < r->nobjects; i++) {
		if (r->objects[i].key == NULL)
			abort();
		(void)strlen(r->objects[i].key);
		FUZZ_TERMINATED(r->objects[i].etag);
	}
	if (r->next_token != NULL)
		(void)strlen(r->next_token);
}

static struct s3_op *
new_op(struct s3 *s, struct done *d)
{
	struct s3_op *op;
	struct err e;

	memset(d, 0, sizeof(*d));
	err_clear(&e);
	op = s3_op_new(s, "k", on_done, d, &e);
	if (op == NULL)
		abort();
	return op;
}

static void
fuzz_s3_answers(struct http_response *resp)
{
	struct s3 s;
	struct s3_op *op;
	struct done d;
	struct err e;

	memset(&s, 0, sizeof(s));
	s.bucket = "b";

	/* ListObjectsV2 */
	op = new_op(&s, &d);
	s3_on_list(resp, NULL, op);
	if (d.calls != 1)
		abort();

	/* CopyObject, CompleteMultipartUpload: the ETag and the checksum */
	op = new_op(&s, &d);
	if (s3_xml_etag_answer(op, resp, NULL) == 0) {
		FUZZ_TERMINATED(op->r.etag);
		FUZZ_TERMINATED(op->r.checksum_sha256);
		if (d.calls != 0)
			abort();
		s3_op_free(op);
	} else if (d.calls != 1) {
		abort();
	}

	/* CreateMultipartUpload: the UploadId, parsed as s3_mp_on_create
	 * does before it starts sending parts. */
	op = new_op(&s, &d);
	err_clear(&e);
	if (xml_parse(resp->body.data ? resp->body.data : "", resp->body.len,
	              s3_upload_id_elem, op, &e) == 0 &&
	    op->upload_id != NULL)
		(void)strlen(op->upload_id);
	s3_op_free(op);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response resp;
	char *str;

	fuzz_resp_init(&resp, data, size);
	fuzz_xml_parse(resp.body.data ? resp.body.data : "", resp.body.len);
	fuzz_s3_error(&resp);
	fuzz_s3_answers(&resp);
	fuzz_resp_cleanup(&resp);

	str = strndup((const char *)data, size);
	if (str == NULL)
		abort();
	fuzz_escape(str);
	free(str);
	return 0;
}
