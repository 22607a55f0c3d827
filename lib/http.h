/*
 * http: libcurl's multi-socket interface driven by a struct loop (epoll +
 * timerfd). Keep-alive connections are reused through the multi handle's
 * connection cache; TLS peer verification is always on.
 */
#ifndef IMGSYNC_HTTP_H
#define IMGSYNC_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "loop.h"

struct http;
struct http_xfer;

struct http_opts {
	long connect_timeout_ms; /* 0: 10 s */
	long timeout_ms;         /* whole transfer; 0: none */
	long low_speed_secs;     /* abort below 1 byte/s for this long; 0: 60 */
	long max_host_connections; /* 0: libcurl's default */
	const char *ca_bundle;     /* NULL: $AWS_CA_BUNDLE, else system store */
	const char *user_agent;    /* NULL: imgsync/VERSION */
	const char
	    *unix_socket; /* talk HTTP over this Unix socket; NULL: TCP */
};

struct http_header {
	const char *name;
	const char *value;
};

/* Everything is copied by http_send except the body, which is borrowed until
 * the completion callback: body (memory) or body_fd (read with pread from
 * body_offset, body_len bytes, so a retry can send it again). */
struct http_request {
	const char *method;
	const char *url;
	const struct http_header *headers;
	size_t nheaders;
	const void *body;
	int body_fd; /* -1 unless the body comes from a file */
	uint64_t body_offset;
	uint64_t body_len;
	size_t max_response; /* cap on the response body; 0: 16 MiB */
};

struct http_response {
	long status;
	struct buf body;
	struct buf headers; /* raw header lines of the final response */
	double total_secs;
};

/* Called exactly once per http_send that returned non-NULL: with e == NULL
 * when a response arrived (any status), or with e set on a transport error
 * or cancellation (resp is then NULL). resp is valid only during the call. */
typedef void (*http_done_cb)(struct http_response *resp, const struct err *e,
                             void *arg);

struct http *http_new(struct loop *l, const struct http_opts *opts,
                      struct err *e);
/* Cancels every transfer still running (their callbacks fire) and frees. */
void http_free(struct http *h);

struct http_xfer *http_send(struct http *h, const struct http_request *req,
                            http_done_cb cb, void *arg, struct err *e);
/* Stops a transfer; its callback fires with ERR_CANCEL before this returns. */
void http_cancel(struct http_xfer *x);
/* Transfers in flight. */
size_t http_active(const struct http *h);

/* A response header's value, trimmed, into out; -1 if absent. */
int http_response_header(const struct http_response *resp, const char *name,
                         char *out, size_t outlen);

#endif
