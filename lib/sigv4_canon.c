/*
 * sigv4_canon: a request in SigV4's canonical form: the URI (each byte
 * URI-encoded; in generic mode after the path is normalised), the query
 * (pairs encoded, then sorted) and the headers (names lowercased, values
 * trimmed and folded, sorted, repeats joined), with the signed-header list.
 *
 * The one place this departs from "encode what the caller gives" is the
 * generic-mode path, normalised the way botocore's remove_dot_segments()
 * does it (empty and "." segments dropped, ".." pops, a trailing slash kept
 * only when something is left), which is what the AWS test suite expects.
 */
#include "sigv4_impl.h"

#include <stdlib.h>
#include <string.h>

/* An encoded query pair or a canonicalised header, pointing into a buf. */
struct sigv4_item {
	size_t name_off;
	size_t value_off;
	size_t order;
	const char *name;
	const char *value;
};

int
sigv4_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* ASCII white space, as aws-c-auth and the C locale's isspace() see it. */
static int
sigv4_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* RFC 9110 tchar: what header names, methods and scope parts may hold. */
static int
sigv4_is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
sigv4_is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!sigv4_is_tchar((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

int
sigv4_uri_encode(struct buf *b, const char *s, size_t n, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, run;
	unsigned char c;
	char pct[3];

	for (i = 0; i < n;) {
		for (run = i; run < n; run++) {
			c = (unsigned char)s[run];
			if (!sigv4_is_unreserved(c) &&
			    !(keep_slash && c == '/'))
				break;
		}
		if (run > i && buf_append(b, s + i, run - i) == -1)
			return -1;
		if (run == n)
			break;
		c = (unsigned char)s[run];
		pct[0] = '%';
		pct[1] = digits[c >> 4];
		pct[2] = digits[c & 0x0f];
		if (buf_append(b, pct, sizeof(pct)) == -1)
			return -1;
		i = run + 1;
	}
	return b->failed ? -1 : 0;
}

/* botocore's remove_dot_segments() on an absolute path, into b. */
static int
sigv4_path_normalize(struct buf *b, const char *path)
{
	size_t n, i, j, nseg = 0;

	n = strlen(path);
	for (i = 0; i < n; i = j + 1) {
		for (j = i; j < n && path[j] != '/'; j++)
			;
		if (j == i || (j - i == 1 && path[i] == '.'))
			continue;
		if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nseg > 0) {
				while (b->data[--b->len] != '/')
					;
				b->data[b->len] = '\0';
				nseg--;
			}
			continue;
		}
		if (buf_putc(b, '/') == -1 ||
		    buf_append(b, path + i, j - i) == -1)
			return -1;
		nseg++;
	}
	if (nseg == 0 || (n > 0 && path[n - 1] == '/'))
		return buf_putc(b, '/');
	return 0;
}

int
sigv4_canonical_uri(const struct sigv4_input *in, struct sigv4_output *out,
                    struct err *e)
{
	struct buf norm, uri;
	const char *p = in->path;
	size_t n = strlen(in->path);
	int rc = -1;

	buf_init(&norm, 0);
	buf_init(&uri, 0);
	if (in->mode == SIGV4_GENERIC) {
		if (sigv4_path_normalize(&norm, in->path) == -1)
			goto fail;
		p = norm.data;
		n = norm.len;
	} else if (n == 0) {
		p = "/";
		n = 1;
	}
	if (sigv4_uri_encode(&uri, p, n, 1) == -1)
		goto fail;
	out->canonical_uri = buf_steal(&uri);
	if (out->canonical_uri == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		sigv4_oom(e);
	buf_cleanup(&norm);
	buf_cleanup(&uri);
	return rc;
}

static int
sigv4_item_cmp_query(const void *a, const void *b)
{
	const struct sigv4_item *x = a, *y = b;
	int c;

	c = strcmp(x->name, y->name);
	if (c == 0)
		c = strcmp(x->value, y->value);
	return c;
}

static int
sigv4_item_cmp_header(const void *a, const void *b)
{
	const struct sigv4_item *x = a, *y = b;
	int c;

	c = strcmp(x->name, y->name);
	if (c == 0)
		c = x->order < y->order ? -1 : x->order > y->order;
	return c;
}

static void
sigv4_items_resolve(struct sigv4_item *items, size_t n, const struct buf *b)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i].name = b->data + items[i].name_off;
		items[i].value = b->data + items[i].value_off;
	}
}

/* Encoded "name=value" pairs sorted by encoded name, then value. */
int
sigv4_canonical_query(const struct sigv4_kv *q, size_t nq, char **out,
                      struct err *e)
{
	struct sigv4_item *items = NULL;
	struct buf enc, res;
	const char *v;
	size_t i;
	int rc = -1;

	buf_init(&enc, 0);
	buf_init(&res, 0);
	if (nq > 0) {
		items = calloc(nq, sizeof(*items));
		if (items == NULL)
			goto fail;
	}
	for (i = 0; i < nq; i++) {
		v = q[i].value != NULL ? q[i].value : "";
		items[i].order = i;
		items[i].name_off = enc.len;
		sigv4_uri_encode(&enc, q[i].name, strlen(q[i].name), 0);
		buf_putc(&enc, '\0');
		items[i].value_off = enc.len;
		sigv4_uri_encode(&enc, v, strlen(v), 0);
		if (buf_putc(&enc, '\0') == -1)
			goto fail;
	}
	if (nq > 0) {
		sigv4_items_resolve(items, nq, &enc);
		qsort(items, nq, sizeof(*items), sigv4_item_cmp_query);
	}
	for (i = 0; i < nq; i++) {
		if (i > 0)
			buf_putc(&res, '&');
		buf_puts(&res, items[i].name);
		buf_putc(&res, '=');
		buf_puts(&res, items[i].value);
	}
	*out = buf_steal(&res);
	if (*out == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		sigv4_oom(e);
	free(items);
	buf_cleanup(&enc);
	buf_cleanup(&res);
	return rc;
}

/* Trims v and collapses inner runs of white space to one space. */
static int
sigv4_header_value(struct buf *b, const char *v)
{
	const char *p, *start;
	int gap = 0;

	for (p = v; *p != '\0';) {
		if (sigv4_is_space((unsigned char)*p)) {
			p++;
			continue;
		}
		if (gap)
			buf_putc(b, ' ');
		for (start = p;
		     *p != '\0' && !sigv4_is_space((unsigned char)*p); p++)
			;
		buf_append(b, start, (size_t)(p - start));
		gap = 1;
	}
	return buf_putc(b, '\0');
}

static int
sigv4_header_name(struct buf *b, const char *name, size_t idx, struct err *e)
{
	size_t n, i;

	while (sigv4_is_space((unsigned char)*name))
		name++;
	n = strlen(name);
	while (n > 0 && sigv4_is_space((unsigned char)name[n - 1]))
		n--;
	if (!sigv4_is_token(name, n)) {
		err_set(e, ERR_INVALID,
		        "sigv4: header %zu: name is not an HTTP token", idx);
		return -1;
	}
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_putc(b, c);
	}
	return buf_putc(b, '\0') == -1 ? sigv4_oom(e) : 0;
}

/*
 * The canonical header block ("name:value\n" per distinct name, sorted,
 * repeats joined with ',' in their original order) and the signed-header
 * list.
 */
int
sigv4_canonical_headers(const struct sigv4_input *in, char **block,
                        char **names, struct err *e)
{
	struct sigv4_item *items = NULL;
	struct buf enc, blk, sig;
	size_t i, n = in->nheaders;
	int rc = -1;

	buf_init(&enc, 0);
	buf_init(&blk, 0);
	buf_init(&sig, 0);
	if (n > 0) {
		items = calloc(n, sizeof(*items));
		if (items == NULL) {
			sigv4_oom(e);
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		items[i].order = i;
		items[i].name_off = enc.len;
		if (sigv4_header_name(&enc, in->headers[i].name, i, e) == -1)
			goto fail;
		items[i].value_off = enc.len;
		if (sigv4_header_value(&enc, in->headers[i].value != NULL
		                                 ? in->headers[i].value
		                                 : "") == -1) {
			sigv4_oom(e);
			goto fail;
		}
	}
	if (n > 0) {
		sigv4_items_resolve(items, n, &enc);
		qsort(items, n, sizeof(*items), sigv4_item_cmp_header);
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(items[i].name, items[i - 1].name) == 0) {
			buf_putc(&blk, ',');
		} else {
			if (i > 0) {
				buf_putc(&blk, '\n');
				buf_putc(&sig, ';');
			}
			buf_puts(&blk, items[i].name);
			buf_putc(&blk, ':');
			buf_puts(&sig, items[i].name);
		}
		buf_puts(&blk, items[i].value);
	}
	if (n > 0)
		buf_putc(&blk, '\n');
	*block = buf_steal(&blk);
	*names = buf_steal(&sig);
	if (*block == NULL || *names == NULL) {
		free(*block);
		free(*names);
		*block = *names = NULL;
		sigv4_oom(e);
		goto fail;
	}
	rc = 0;
fail:
	free(items);
	buf_cleanup(&enc);
	buf_cleanup(&blk);
	buf_cleanup(&sig);
	return rc;
}
