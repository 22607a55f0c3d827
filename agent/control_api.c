/*
 * control_api: what the control socket's clients send, checked before
 * anything acts on it: the route table, the query and the body, FileName
 * checks, the /getall cursor, and the bodies of error answers. Pure: no
 * I/O, no daemon state, so tests/unit and tests/fuzz take it alone.
 */
#include "control_api.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "item.h"
#include "sigv4.h"
#include "text.h"

static const struct {
	const char *path;
	const char *method;
	enum ctl_route route;
	int mutates;
} routes[] = {
    {"/getall", "GET", CTL_GETALL, 0},
    {"/getitem", "POST", CTL_GETITEM, 0},
    {"/delete", "DELETE", CTL_DELETE, 1},
    {"/upload", "POST", CTL_UPLOAD, 1},
    {"/status", "GET", CTL_STATUS, 0},
    {"/metrics", "GET", CTL_METRICS, 0},
    {"/rescan", "POST", CTL_RESCAN, 1},
    {"/pause", "POST", CTL_PAUSE, 1},
    {"/resume", "POST", CTL_RESUME, 1},
    {"/failed", "GET", CTL_FAILED, 0},
    {"/retry", "POST", CTL_RETRY, 1},
    {"/deletions", "GET", CTL_DELETIONS, 0},
    {"/deletions/confirm", "POST", CTL_DELETIONS_CONFIRM, 1},
    {"/verify", "POST", CTL_VERIFY, 1},
    {"/verify/status", "GET", CTL_VERIFY_STATUS, 0},
    {"/url", "POST", CTL_URL, 0},
    {"/web/login", "POST", CTL_WEB_LOGIN, 1},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

unsigned
control_api_route_find(const char *method, const char *url,
                       enum ctl_route *route, const char **allow)
{
	size_t i;

	*allow = NULL;
	for (i = 0; i < NROUTES; i++) {
		if (strcmp(url, routes[i].path) != 0)
			continue;
		if (strcmp(method, routes[i].method) != 0) {
			*allow = routes[i].method;
			return 405;
		}
		*route = routes[i].route;
		return 200;
	}
	return 404;
}

int
control_api_route_mutates(enum ctl_route route)
{
	size_t i;

	for (i = 0; i < NROUTES; i++)
		if (routes[i].route == route)
			return routes[i].mutates;
	return 1;
}

const char *
control_api_route_name(enum ctl_route route)
{
	size_t i;

	for (i = 0; i < NROUTES; i++)
		if (routes[i].route == route)
			return routes[i].path;
	return "?";
}

char *
control_api_name_path(const char *name, const char *key_prefix, struct err *e)
{
	size_t plen = strlen(key_prefix), len = strlen(name);
	const char *p, *c, *end;

	if (len == 0) {
		err_set(e, ERR_INVALID, "FileName missing");
		return NULL;
	}
	if (len > CTL_NAME_MAX) {
		err_set(e, ERR_INVALID, "FileName is longer than %u bytes",
		        CTL_NAME_MAX);
		return NULL;
	}
	if (strncmp(name, key_prefix, plen) != 0) {
		err_set(e, ERR_INVALID, "FileName is not under the prefix %s",
		        key_prefix);
		return NULL;
	}
	p = name + plen;
	if (*p == '\0' || *p == '/') {
		err_set(e, ERR_INVALID, "FileName escapes the watch root");
		return NULL;
	}
	/* Every component must be a name: no "", ".", "..". */
	for (c = p; c != NULL; c = end != NULL ? end + 1 : NULL) {
		end = strchr(c, '/');
		len = end != NULL ? (size_t)(end - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.')) {
			err_set(e, ERR_INVALID,
			        "FileName escapes the watch root");
			return NULL;
		}
	}
	p = strdup(p);
	if (p == NULL)
		err_set(e, ERR_SYS, "out of memory");
	return (char *)p;
}

/* --- the body and the query -------------------------------------------- */

/* /url's ExpiresIn: absent is the default; else whole seconds in range. */
static int
control_api_parse_expires(const json_t *v, int *out, struct err *e)
{
	json_int_t n;

	*out = CTL_EXPIRES_DEFAULT;
	if (v == NULL || json_is_null(v))
		return 0;
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	if (n < 1 || n > SIGV4_MAX_EXPIRES) {
		err_set(e, ERR_INVALID,
		        "ExpiresIn must be a number of seconds from 1 to %d "
		        "(seven days)",
		        SIGV4_MAX_EXPIRES);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int
control_api_parse_name(struct ctl_request *r, const char *body, size_t len,
                       const char *key_prefix, struct err *e)
{
	json_error_t je;
	json_t *doc, *v;
	int rc = -1;

	if (body == NULL || len == 0) {
		err_set(e, ERR_INVALID, "FileName missing");
		return -1;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		err_set(e, ERR_PARSE, "Malformed JSON: %s", je.text);
		return -1;
	}
	if (!json_is_object(doc)) {
		err_set(e, ERR_INVALID, "the body must be a JSON object");
		goto out;
	}
	v = json_object_get(doc, ITEM_FILENAME);
	if (v == NULL || json_is_null(v)) {
		err_set(e, ERR_INVALID, "FileName missing");
		goto out;
	}
	if (!json_is_string(v)) {
		err_set(e, ERR_INVALID, "FileName must be a string");
		goto out;
	}
	/* jansson refuses "\u0000" unless asked, so the name is a C string. */
	r->name = strdup(json_string_value(v));
	if (r->name == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		goto out;
	}
	r->path = control_api_name_path(r->name, key_prefix, e);
	if (r->path == NULL)
		goto out;
	if (r->route == CTL_URL &&
	    control_api_parse_expires(json_object_get(doc, "ExpiresIn"),
	                              &r->expires, e) == -1)
		goto out;
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

static int
control_api_parse_limit(const char *s, unsigned *out, struct err *e)
{
	char *end;
	unsigned long v;

	if (s == NULL) {
		*out = CTL_LIMIT_DEFAULT;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < 1 ||
	    v > CTL_LIMIT_MAX) {
		err_set(e, ERR_INVALID, "limit must be a number from 1 to %u",
		        CTL_LIMIT_MAX);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int
control_api_parse_getall(struct ctl_request *r, const struct ctl_query *q,
                         struct err *e)
{
	if (control_api_parse_limit(q->limit, &r->limit, e) == -1)
		return -1;
	r->prefix = strdup(q->prefix != NULL ? q->prefix : "");
	if (r->prefix == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	if (q->cursor != NULL && q->cursor[0] != '\0' &&
	    control_api_cursor_decode(q->cursor, &r->start, &r->start_len) ==
	        -1) {
		err_set(e, ERR_INVALID, "cursor is not one this API gave");
		return -1;
	}
	if (q->local != NULL && strcmp(q->local, "0") != 0 &&
	    strcmp(q->local, "1") != 0 && strcmp(q->local, "true") != 0 &&
	    strcmp(q->local, "false") != 0) {
		err_set(e, ERR_INVALID, "local must be 0 or 1");
		return -1;
	}
	r->local = q->local != NULL && (strcmp(q->local, "1") == 0 ||
	                                strcmp(q->local, "true") == 0);
	return 0;
}

int
control_api_parse(struct ctl_request *r, enum ctl_route route,
                  const struct ctl_query *q, const char *body, size_t body_len,
                  const char *key_prefix, struct err *e)
{
	static const struct ctl_query none;

	if (q == NULL)
		q = &none;
	memset(r, 0, sizeof(*r));
	r->route = route;
	switch (route) {
	case CTL_GETITEM:
	case CTL_DELETE:
	case CTL_UPLOAD:
	case CTL_URL:
		return control_api_parse_name(r, body, body_len, key_prefix, e);
	case CTL_GETALL:
		return control_api_parse_getall(r, q, e);
	default:
		return 0;
	}
}

void
control_api_request_cleanup(struct ctl_request *r)
{
	free(r->name);
	free(r->path);
	free(r->prefix);
	free(r->start);
	memset(r, 0, sizeof(*r));
}

/* --- the cursor: base64url of the last key ----------------------------- */

/* The longest cursor control_api_cursor_encode makes (4 * CTL_NAME_MAX bytes,
 * unpadded): decode takes every cursor encode gives. */
#define CURSOR_MAX ((CTL_NAME_MAX * 4 * 4 + 2) / 3)

char *
control_api_cursor_encode(const char *key, size_t len)
{
	char *out;
	int n, i;

	if (len > CTL_NAME_MAX * 4)
		return NULL;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if (out == NULL)
		return NULL;
	n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)key,
	                    (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (i = 0; i < n; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	return out;
}

int
control_api_cursor_decode(const char *cursor, char **out, size_t *len)
{
	size_t n = strlen(cursor), i, pad;
	char *in;
	unsigned char *dec;
	int got;

	*out = NULL;
	if (n == 0 || n % 4 == 1 || n > CURSOR_MAX)
		return -1;
	pad = (4 - n % 4) % 4;
	in = malloc(n + pad + 1);
	dec = malloc((n + pad) / 4 * 3 + 1);
	if (in == NULL || dec == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		char c = cursor[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9')))
			goto fail; /* not ours: base64url, unpadded, no spaces
			            * (OpenSSL's decoder would skip them) */
		in[i] = c;
	}
	memset(in + n, '=', pad);
	in[n + pad] = '\0';
	got = EVP_DecodeBlock(dec, (unsigned char *)in, (int)(n + pad));
	if (got < 0 || (size_t)got < pad)
		goto fail;
	*len = (size_t)got - pad;
	dec[*len] = '\0';
	if (memchr(dec, '\0', *len) != NULL)
		goto fail;
	free(in);
	*out = (char *)dec;
	return 0;
fail:
	free(in);
	free(dec);
	return -1;
}

/* --- answers ----------------------------------------------------------- */

char *
control_api_error_body(const char *message)
{
	json_t *o = json_pack("{s:s}", "error", message);
	char *s;

	if (o == NULL) /* message not UTF-8 */
		o = json_pack("{s:s}", "error", "invalid request");
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

json_t *
control_api_json_name(const char *s, size_t len)
{
	struct buf b;
	json_t *j;
	size_t i = 0, n;

	if (text_utf8_valid(s, len))
		return json_stringn(s, len);
	buf_init(&b, 0);
	while (i < len) {
		n = text_utf8_len(s + i, len - i);
		if (n > 0) {
			buf_append(&b, s + i, n);
			i += n;
		} else {
			buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	j = json_stringn(b.data != NULL ? b.data : "", b.len);
	buf_cleanup(&b);
	return j;
}
