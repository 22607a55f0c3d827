/*
 * retry: the AWS "standard" retry policy's arithmetic: which classes of
 * error (lib/errclass.c) are tried again, full-jitter backoff, and the
 * clock skew read from a server's Date header.
 */
#include "retry.h"

#include <curl/curl.h>

#include "errclass.h"

/* What the error means is errclass's to say; this is what it leads to. */
enum retry_class
retry_classify(const struct err *e)
{
	switch (err_classify(e)) {
	case ERRC_TRANSIENT:
		return RETRY_TRANSIENT;
	case ERRC_THROTTLE:
		return RETRY_THROTTLE;
	case ERRC_SKEW:
		return RETRY_SKEW;
	case ERRC_EXPIRED:
		return RETRY_CREDS;
	default:
		return RETRY_NO;
	}
}

const char *
retry_class_name(enum retry_class c)
{
	switch (c) {
	case RETRY_NO:
		return "permanent";
	case RETRY_TRANSIENT:
		return "transient";
	case RETRY_THROTTLE:
		return "throttled";
	case RETRY_SKEW:
		return "clock-skew";
	case RETRY_CREDS:
		return "credentials-expired";
	}
	return "unknown";
}

/* xorshift64*: small, fast, good enough for jitter. */
static uint64_t
retry_rand(uint64_t *s)
{
	uint64_t x = *s != 0 ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t
retry_backoff_ms(const struct retry_policy *p, enum retry_class c,
                 unsigned attempt, uint64_t *rng)
{
	uint64_t base, cap, ceiling;

	base = c == RETRY_THROTTLE
	           ? (p && p->throttle_base_ms ? p->throttle_base_ms : 500)
	           : (p && p->base_ms ? p->base_ms : 100);
	cap = p && p->max_ms ? p->max_ms : 20000;
	if (c == RETRY_SKEW || c == RETRY_CREDS)
		return 0;
	ceiling = base;
	while (attempt-- > 0 && ceiling < cap)
		ceiling *= 2;
	if (ceiling > cap)
		ceiling = cap;
	return retry_rand(rng) % (ceiling + 1);
}

int
retry_skew_from_date(const char *date, time_t local_now, int64_t *skew)
{
	time_t server;

	if (date == NULL || *date == '\0')
		return -1;
	server = curl_getdate(date, NULL);
	if (server == (time_t)-1)
		return -1;
	*skew = (int64_t)server - (int64_t)local_now;
	return 0;
}
