/*
 * libFuzzer target over agent/control_api.c: routes, query and body
 * parsing, FileName checks, the cursor, error bodies and names that may not
 * be UTF-8; and over agent/item.c's DynamoDB items to plain JSON, what the
 * socket answers with what DynamoDB sent. Built and run by tests/fuzz/run,
 * which links control_api.c; item.c is compiled in here (below), its
 * DynamoDB calls from the lib/ archive.
 *
 * Input layout (every byte string is a valid input):
 *   byte 0   URL: one of urls[] (index 15: the first field is the URL)
 *   byte 1   method: one of methods[]
 *   byte 2   low nibble: which of prefix, limit, cursor, local are present;
 *            0x40: s3.prefix is "img/" instead of ""
 *   byte 3   the route to parse with when (method, URL) is not one
 *   then     the present fields, each ended by '\n', then the body
 * A field with a NUL in it ends at the NUL, as it would in a C string.
 * A broken invariant abort()s: the stack trace gives its line.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_api.h"
#include "item.c" /* item_plain */
#include "text.h"

#define NROUTES 17

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const urls[16] = {
    "/getall", "/getitem", "/delete",  "/upload", "/status", "/metrics",
    "/rescan", "/pause",   "/resume",  "/failed", "/retry",  "/",
    "",        "/getall/", "/getall?", NULL, /* from the input */
};

static const char *const methods[8] = {
    "GET", "POST", "DELETE", "PUT", "HEAD", "get", "", "POST ",
};

/* What the route table says: (path, method) for each route. */
static const char *const route_method[NROUTES] = {
    "GET", "POST", "DELETE", "POST", "GET",  "GET", "POST", "POST", "POST",
    "GET", "POST", "GET",    "POST", "POST", "GET", "POST", "POST",
};
static const char *const route_path[NROUTES] = {
    "/getall",
    "/getitem",
    "/delete",
    "/upload",
    "/status",
    "/metrics",
    "/rescan",
    "/pause",
    "/resume",
    "/failed",
    "/retry",
    "/deletions",
    "/deletions/confirm",
    "/verify",
    "/verify/status",
    "/url",
    "/web/login",
};

struct input {
	const uint8_t *p;
	size_t n;
};

/* The next '\n'-ended field as a C string (malloc'd), or the rest. */
static char *
take_field(struct input *in)
{
	const uint8_t *nl = memchr(in->p, '\n', in->n);
	size_t len = nl != NULL ? (size_t)(nl - in->p) : in->n;
	char *s = strndup((const char *)in->p, len);

	if (s == NULL)
		abort();
	in->p += len;
	in->n -= len;
	if (nl != NULL) {
		in->p++;
		in->n--;
	}
	return s;
}

/* An independent reading of what a FileName under key_prefix may be. */
static int
name_ok(const char *name, const char *key_prefix)
{
	size_t plen = strlen(key_prefix);
	const char *c, *end;

	if (name[0] == '\0' || strlen(name) > CTL_NAME_MAX ||
	    strncmp(name, key_prefix, plen) != 0 || name[plen] == '\0')
		return 0;
	c = name + plen;
	for (;;) {
		size_t len;

		end = strchr(c, '/');
		len = end != NULL ? (size_t)(end - c) : strlen(c);
		if (len == 0 || strncmp(c, ".", len) == 0 ||
		    strncmp(c, "..", len) == 0)
			return 0;
		if (end == NULL)
			return 1;
		c = end + 1;
	}
}

static void
check_path(const char *name, const char *path, const char *key_prefix)
{
	const char *c, *end;

	if (path[0] == '/' || strlen(name) > CTL_NAME_MAX ||
	    strncmp(name, key_prefix, strlen(key_prefix)) != 0 ||
	    strcmp(path, name + strlen(key_prefix)) != 0)
		abort();
	for (c = path;; c = end + 1) {
		size_t len;

		end = strchr(c, '/');
		len = end != NULL ? (size_t)(end - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			abort();
		if (end == NULL)
			break;
	}
}

static void
fuzz_name_path(const char *name, const char *key_prefix)
{
	struct err e;
	char *path;

	err_clear(&e);
	path = control_api_name_path(name, key_prefix, &e);
	if ((path != NULL) != name_ok(name, key_prefix))
		abort();
	if (path == NULL) {
		if (e.message[0] == '\0')
			abort();
		return;
	}
	check_path(name, path, key_prefix);
	free(path);
}

/* The 400 answer for message: JSON, with message in it when it is
 * UTF-8. */
static void
fuzz_error_body(const char *message)
{
	char *body = control_api_error_body(message);
	json_t *doc;
	const char *got;

	if (body == NULL)
		abort();
	doc = json_loads(body, 0, NULL);
	if (doc == NULL)
		abort();
	got = json_string_value(json_object_get(doc, "error"));
	if (got == NULL)
		abort();
	if (text_utf8_valid(message, strlen(message))
	        ? strcmp(got, message) != 0
	        : strcmp(got, "invalid request") != 0)
		abort();
	json_decref(doc);
	free(body);
}

static void
fuzz_route(const char *method, const char *url, enum ctl_route *route)
{
	const char *allow = (const char *)1;
	enum ctl_route r = CTL_STATUS;
	unsigned status = control_api_route_find(method, url, &r, &allow);
	size_t i;

	for (i = 0; i < NROUTES; i++)
		if (strcmp(url, route_path[i]) == 0)
			break;
	if (i == NROUTES) {
		if (status != 404 || allow != NULL)
			abort();
		return;
	}
	if (strcmp(method, route_method[i]) != 0) {
		if (status != 405 || allow == NULL ||
		    strcmp(allow, route_method[i]) != 0)
			abort();
		return;
	}
	if (status != 200 || allow != NULL || (size_t)r != i ||
	    strcmp(control_api_route_name(r), url) != 0)
		abort();
	(void)control_api_route_mutates(r);
	*route = r;
}

static void
fuzz_parse(enum ctl_route route, const struct ctl_query *q, const char *body,
           size_t body_len, const char *key_prefix)
{
	struct ctl_request r;
	struct err e;

	err_clear(&e);
	if (control_api_parse(&r, route, q, body, body_len, key_prefix, &e) ==
	    -1) {
		if (e.message[0] == '\0')
			abort();
		fuzz_error_body(e.message);
		control_api_request_cleanup(&r);
		return;
	}
	if (r.route != route)
		abort();
	switch (route) {
	case CTL_GETITEM:
	case CTL_DELETE:
	case CTL_UPLOAD:
	case CTL_URL:
		if (r.name == NULL || r.path == NULL)
			abort();
		check_path(r.name, r.path, key_prefix);
		if (route == CTL_URL ? r.expires < 1 || r.expires > 604800
		                     : r.expires != 0)
			abort();
		break;
	case CTL_GETALL:
		if (r.limit < 1 || r.limit > CTL_LIMIT_MAX ||
		    (q->limit == NULL && r.limit != CTL_LIMIT_DEFAULT) ||
		    (q->limit != NULL && (unsigned)atoi(q->limit) != r.limit))
			abort();
		if (r.prefix == NULL ||
		    strcmp(r.prefix, q->prefix != NULL ? q->prefix : "") != 0)
			abort();
		if (r.start != NULL &&
		    (r.start_len == 0 || strlen(r.start) != r.start_len))
			abort();
		if (r.local !=
		    (q->local != NULL && (strcmp(q->local, "1") == 0 ||
		                          strcmp(q->local, "true") == 0)))
			abort();
		break;
	default:
		if (r.name != NULL || r.path != NULL || r.prefix != NULL ||
		    r.start != NULL)
			abort();
	}
	control_api_request_cleanup(&r);
}

static int
is_b64url(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

static void
fuzz_cursor(const char *bytes, size_t len, const char *raw)
{
	char *cur, *dec;
	size_t dlen;
	int rc;

	cur = control_api_cursor_encode(bytes, len);
	if (len > CTL_NAME_MAX * 4) {
		if (cur != NULL)
			abort();
	} else {
		if (cur == NULL || !is_b64url(cur) ||
		    strlen(cur) != (len * 4 + 2) / 3)
			abort();
		/* Every cursor made of a key that is a C string decodes to
		 * it; none other does. */
		rc = control_api_cursor_decode(cur, &dec, &dlen);
		if (len > 0 && memchr(bytes, '\0', len) == NULL) {
			if (rc != 0 || dlen != len ||
			    memcmp(dec, bytes, len) != 0 || dec[len] != '\0')
				abort();
		} else if (rc != -1 || dec != NULL) {
			abort();
		}
		if (rc == 0)
			free(dec);
		free(cur);
	}
	/* Anything at all as a cursor. */
	rc = control_api_cursor_decode(raw, &dec, &dlen);
	if (rc == 0) {
		if (dec == NULL || dlen == 0 || strlen(dec) != dlen)
			abort();
		free(dec);
	} else if (rc != -1 || dec != NULL) {
		abort();
	}
}

static void
fuzz_item(const json_t *item)
{
	json_t *plain = item_plain(item);
	char *s;

	if ((plain == NULL) != !json_is_object(item))
		abort();
	if (plain == NULL)
		return;
	s = json_dumps(plain, JSON_COMPACT);
	if (s == NULL)
		abort();
	free(s);
	json_decref(plain);
}

static void
fuzz_json(const char *body, size_t len)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	size_t i;

	if (doc == NULL)
		return;
	fuzz_item(doc);
	/* An array is a Scan's Items (json_array_get is NULL past the end
	 * and for anything else). */
	for (i = 0; i < json_array_size(doc); i++)
		fuzz_item(json_array_get(doc, i));
	json_decref(doc);
}

static void
fuzz_json_name(const char *s, size_t len)
{
	json_t *j = control_api_json_name(s, len);
	char *dump;

	if (j == NULL || !json_is_string(j) ||
	    !text_utf8_valid(json_string_value(j), json_string_length(j)))
		abort();
	if (text_utf8_valid(s, len) &&
	    (json_string_length(j) != len ||
	     memcmp(json_string_value(j), s, len) != 0))
		abort();
	dump = json_dumps(j, JSON_ENCODE_ANY);
	if (dump == NULL)
		abort();
	free(dump);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	struct ctl_query q;
	enum ctl_route route;
	const char *url, *method, *key_prefix;
	char *url_field = NULL, *fields[4] = {NULL, NULL, NULL, NULL};
	char *body_str;
	const char *body;
	unsigned flags;
	size_t i;

	if (size < 4)
		return 0;
	in.p = data + 4;
	in.n = size - 4;
	flags = data[2];
	key_prefix = (flags & 0x40) != 0 ? "img/" : "";
	url = urls[data[0] % 16];
	if (url == NULL)
		url = url_field = take_field(&in);
	method = methods[data[1] % 8];
	for (i = 0; i < 4; i++)
		if ((flags & (1u << i)) != 0)
			fields[i] = take_field(&in);
	body = in.n > 0 ? (const char *)in.p : NULL;
	body_str = strndup((const char *)in.p, in.n);
	if (body_str == NULL)
		abort();

	route = (enum ctl_route)((data[3] & 0x1f) % NROUTES);
	fuzz_route(method, url, &route);
	q.prefix = fields[0];
	q.limit = fields[1];
	q.cursor = fields[2];
	q.local = fields[3];
	fuzz_parse(route, &q, body, in.n, key_prefix);
	fuzz_name_path(body_str, key_prefix);
	if (fields[0] != NULL)
		fuzz_name_path(fields[0], key_prefix);
	fuzz_cursor(body, in.n, body_str);
	if (body != NULL)
		fuzz_json(body, in.n);
	fuzz_json_name((const char *)data, size);
	fuzz_error_body(body_str);

	free(body_str);
	for (i = 0; i < 4; i++)
		free(fields[i]);
	free(url_field);
	return 0;
}
