/*
 * errclass: what an error means, decided once, from its structure (kind,
 * AWS error code, HTTP status, errno, curl code): whether it is retried
 * (lib/retry.c), the reason a file failed (the sync engine's /failed and
 * /metrics), what --check-remote tells the operator, and what imgsyncctl
 * says when the control socket does not answer. Nobody else sorts errors.
 *
 * The one place a server's message is read is here, and only for the few
 * generic AWS codes whose meaning AWS gives in the message alone (see
 * errclass.c); the text we format ourselves is never read.
 */
#ifndef IMGSYNC_ERRCLASS_H
#define IMGSYNC_ERRCLASS_H

#include "err.h"

enum err_class {
	ERRC_NONE = 0,   /* no error */
	ERRC_TRANSIENT,  /* server or network trouble: retry with backoff */
	ERRC_THROTTLE,   /* the server asks for fewer requests: retry slower */
	ERRC_SKEW,       /* our clock is off: correct it, then retry */
	ERRC_EXPIRED,    /* temporary credentials expired: refresh, retry */
	ERRC_CANCEL,     /* cancelled (shutdown) */
	ERRC_ACCESS,     /* denied: no policy allows it (AccessDenied) */
	ERRC_AUTH,       /* the credentials are rejected: unknown key id,
	                    bad signature, unrecognized client */
	ERRC_REGION,     /* the bucket or table is in another region */
	ERRC_MISSING,    /* no such bucket or table (or socket) */
	ERRC_GONE,       /* no such object, item or upload (404, NoSuchKey) */
	ERRC_CONFLICT,   /* a condition failed: ConditionalCheckFailed, 412 */
	ERRC_SCHEMA,     /* the table's key is not the one written */
	ERRC_NO_SPACE,   /* the disk cannot be written: ENOSPC, EDQUOT, EROFS,
	                    SQLITE_FULL, SQLITE_READONLY (invariant 7) */
	ERRC_UNREADABLE, /* a local file cannot be read (ERR_SYS) */
	ERRC_NAME,       /* a file name that cannot be a key (ERR_NAME) */
	ERRC_STATE,      /* the state database failed (ERR_DB) */
	ERRC_CREDS,      /* no usable credentials at all (ERR_CREDS) */
	ERRC_CONFIG,     /* the configuration is wrong (ERR_CONFIG, a bad
	                    endpoint URL, a TLS certificate not trusted) */
	ERRC_PROTOCOL,   /* an answer S3 or DynamoDB would not give: a wrong
	                    endpoint */
	ERRC_OTHER,
	ERRC_N
};

/* Why a file failed for good: the label of /metrics' failure counters.
 * The order is the sync engine's counter array's. */
enum err_reason {
	ERR_REASON_ACCESS,     /* "access_denied": ERRC_ACCESS, ERRC_AUTH */
	ERR_REASON_MISSING,    /* "no_such_target": ERRC_MISSING */
	ERR_REASON_UNREADABLE, /* "unreadable": ERRC_UNREADABLE */
	ERR_REASON_NAME,       /* "bad_name": ERRC_NAME */
	ERR_REASON_STATE,      /* "state_db": ERRC_STATE */
	ERR_REASON_OTHER,      /* "other": every other class */
	ERR_REASON_N
};

/* The class of e; ERRC_NONE for NULL or ERR_NONE. */
enum err_class err_classify(const struct err *e);
/* A stable label ("clock_skew", "access_denied", ...) for logs and JSON. */
const char *err_class_name(enum err_class c);
/* 1 for the classes a call is tried again for: transient, throttled,
 * clock skew, expired credentials. */
int err_class_retryable(enum err_class c);
/* What the class means for the operator and what to look at, in one
 * sentence without the final period ("" for ERRC_NONE and ERRC_OTHER). */
const char *err_class_advice(enum err_class c);

enum err_reason err_class_reason(enum err_class c);
const char *err_reason_name(enum err_reason r);

#endif
