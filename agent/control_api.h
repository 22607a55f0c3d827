/*
 * control_api: the control socket's requests and answers, apart from the
 * HTTP server and the daemon, so that they can be tested and fuzzed alone.
 * Routes and methods, query and body parsing, FileName checks, the cursor,
 * error bodies and names that may not be UTF-8. Nothing here does I/O. (An
 * item's plain JSON is item.h's item_plain.)
 */
#ifndef IMGSYNC_CONTROL_API_H
#define IMGSYNC_CONTROL_API_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define CTL_LIMIT_DEFAULT 100u
#define CTL_LIMIT_MAX 1000u
#define CTL_NAME_MAX 1024u       /* S3's key limit, in bytes */
#define CTL_EXPIRES_DEFAULT 3600 /* /url's link, in seconds */

enum ctl_route {
	CTL_GETALL,
	CTL_GETITEM,
	CTL_DELETE,
	CTL_UPLOAD,
	CTL_STATUS,
	CTL_METRICS,
	CTL_RESCAN,
	CTL_PAUSE,
	CTL_RESUME,
	CTL_FAILED,
	CTL_RETRY,
	CTL_DELETIONS,         /* the held deletions */
	CTL_DELETIONS_CONFIRM, /* ... sent */
	CTL_VERIFY,            /* starts a verification */
	CTL_VERIFY_STATUS,     /* its progress, or its report */
	CTL_URL,               /* a presigned GET of one synced file */
	CTL_WEB_LOGIN,         /* a one-time link into the gallery */
};

/* Query arguments as the HTTP server decoded them (borrowed; NULL when
 * absent). */
struct ctl_query {
	const char *prefix;
	const char *limit;
	const char *cursor;
	const char *local;
};

/* A parsed request. The strings are heap copies, freed by
 * control_api_request_cleanup. */
struct ctl_request {
	enum ctl_route route;
	char *name;   /* FileName: getitem, delete, upload */
	char *path;   /* name less s3.prefix: relative to the watch root */
	char *prefix; /* getall: keys starting with it ("" for all) */
	char *start;  /* getall: the cursor decoded (NULL: from the start) */
	size_t start_len;
	unsigned limit;
	int local;
	int expires; /* url: ExpiresIn, seconds (1..SIGV4_MAX_EXPIRES) */
};

/*
 * Finds the route of (method, url). Returns the HTTP status: 200 with
 * *route set; 404 for an unknown path; 405 with *allow the method the path
 * takes. A HEAD is not a GET here: nothing answers HEAD.
 */
unsigned control_api_route_find(const char *method, const char *url,
                                enum ctl_route *route, const char **allow);
/* Whether the route changes something (its caller's uid is logged). */
int control_api_route_mutates(enum ctl_route route);
const char *control_api_route_name(enum ctl_route route);

/*
 * Parses what route needs from the query and the body (body_len bytes, not
 * NUL-terminated; may be NULL when body_len is 0); q NULL: no query.
 * key_prefix is s3.prefix.
 * 0, or -1 with e->message the text of the 400 answer.
 */
int control_api_parse(struct ctl_request *r, enum ctl_route route,
                      const struct ctl_query *q, const char *body,
                      size_t body_len, const char *key_prefix, struct err *e);
void control_api_request_cleanup(struct ctl_request *r);

/*
 * Checks a FileName and returns its path under the watch root (malloc'd)
 * or NULL with e->message saying why: empty, too long, not under the
 * prefix, absolute, with "." or ".." components or empty ones.
 */
char *control_api_name_path(const char *name, const char *key_prefix,
                            struct err *e);

/* A cursor for the bytes key[0..len), and back. The cursor is base64url,
 * safe in a query string. decode: 0 with *out malloc'd (NUL-terminated,
 * *len bytes), -1 when it is not one we made. */
char *control_api_cursor_encode(const char *key, size_t len);
int control_api_cursor_decode(const char *cursor, char **out, size_t *len);

/* {"error": message}, as a malloc'd string. */
char *control_api_error_body(const char *message);

/* A JSON string for bytes that may not be UTF-8 (each invalid byte becomes
 * U+FFFD), for names from the state database. */
json_t *control_api_json_name(const char *s, size_t len);

#endif
