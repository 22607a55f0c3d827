/*
 * err: the error record every lib/ call fills in on failure.
 *
 * Functions return 0/-1 or pointer/NULL; the details go here, supplied by
 * the caller. Nothing in lib/ logs: the caller decides what to say.
 */
#ifndef IMGSYNC_ERR_H
#define IMGSYNC_ERR_H

#include <stdarg.h>

enum err_kind {
	ERR_NONE = 0,
	ERR_SYS,     /* a system call failed: sys_errno is set */
	ERR_NET,     /* transport: connect, reset, timeout (curl_code set) */
	ERR_HTTP,    /* the server answered with an error status */
	ERR_PARSE,   /* a response or file could not be parsed */
	ERR_CONFIG,  /* invalid configuration */
	ERR_CREDS,   /* no usable credentials */
	ERR_CANCEL,  /* cancelled (shutdown) */
	ERR_INVALID, /* a caller's argument is invalid */
	ERR_DB,      /* the state database failed (code: SQLITE_*) */
	ERR_NAME,    /* a file name that cannot be mirrored (a key) */
};

struct err {
	enum err_kind kind;
	int sys_errno;
	int curl_code;
	long http_status;
	char code[64];       /* AWS error code, e.g. "SlowDown" */
	char request_id[96]; /* x-amz-request-id / x-amzn-RequestId */
	char message[512];
};

void err_clear(struct err *e);
/* Sets kind and a printf-style message; keeps the other fields. */
void err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As err_set, with errno captured and strerror appended. */
void err_sys(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *err_kind_name(enum err_kind kind);

#endif
