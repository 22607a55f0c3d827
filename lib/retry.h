/*
 * retry: the one place that decides whether a failed AWS call is tried again
 * and how long to wait first (the AWS SDKs' "standard" policy: transient and
 * throttling errors retry with full-jitter exponential backoff up to a cap;
 * a skewed clock is corrected from the server's Date header). What an error
 * is, it takes from lib/errclass.h.
 */
#ifndef IMGSYNC_RETRY_H
#define IMGSYNC_RETRY_H

#include <stdint.h>
#include <time.h>

#include "err.h"

enum retry_class {
	RETRY_NO = 0,    /* permanent: report it */
	RETRY_TRANSIENT, /* server or network trouble */
	RETRY_THROTTLE,  /* slow down */
	RETRY_SKEW,      /* our clock is off: correct it, then retry at once */
	RETRY_CREDS,     /* credentials expired: fetch new ones, then retry */
};

struct retry_policy {
	uint64_t base_ms;          /* first backoff ceiling; 0: 100 */
	uint64_t throttle_base_ms; /* first ceiling after throttling; 0: 500 */
	uint64_t max_ms;           /* cap; 0: 20000 */
};

/* err_classify(e) as what the AWS client does next. */
enum retry_class retry_classify(const struct err *e);
const char *retry_class_name(enum retry_class c);

/* Full jitter: uniform in [0, min(max, base * 2^attempt)], attempt from 0.
 * rng is the caller's state (any non-zero seed). */
uint64_t retry_backoff_ms(const struct retry_policy *p, enum retry_class c,
                          unsigned attempt, uint64_t *rng);

/* Seconds to add to the local clock to match the server, from an HTTP Date
 * header; -1 when the header cannot be parsed. */
int retry_skew_from_date(const char *date, time_t local_now, int64_t *skew);

#endif
