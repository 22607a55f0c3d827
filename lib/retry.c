#include "retry.h"

#include <curl/curl.h>
#include <string.h>

static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",          "RequestTimeoutException",
    "PriorRequestNotComplete", "InternalError",
    "InternalFailure",         "InternalServerError",
    "ServiceUnavailable",      "InternalServerErrorException",
};

static const char *const skew_codes[] = {
    "RequestTimeTooSkewed",
    "RequestExpired",
    "RequestInTheFuture",
};

static const char *const creds_codes[] = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "TokenRefreshRequired",
};

static int
retry_in(const char *code, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(code, list[i]) == 0)
			return 1;
	return 0;
}

#define IN(code, list) retry_in(code, list, sizeof(list) / sizeof(list[0]))

static enum retry_class
retry_classify_net(int curl_code)
{
	switch ((CURLcode)curl_code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		return RETRY_NO;
	default:
		return RETRY_TRANSIENT;
	}
}

enum retry_class
retry_classify(const struct err *e)
{
	if (e == NULL)
		return RETRY_NO;
	switch (e->kind) {
	case ERR_NET:
		return retry_classify_net(e->curl_code);
	case ERR_HTTP:
		break;
	default:
		return RETRY_NO;
	}
	if (IN(e->code, skew_codes))
		return RETRY_SKEW;
	/* DynamoDB and others say it this way. */
	if ((strcmp(e->code, "InvalidSignatureException") == 0 ||
	     strcmp(e->code, "AuthFailure") == 0) &&
	    strstr(e->message, "Signature expired") != NULL)
		return RETRY_SKEW;
	if (IN(e->code, creds_codes))
		return RETRY_CREDS;
	if (IN(e->code, throttle_codes) || e->http_status == 429)
		return RETRY_THROTTLE;
	if (IN(e->code, transient_codes))
		return RETRY_TRANSIENT;
	switch (e->http_status) {
	case 500:
	case 502:
	case 503:
	case 504:
		return RETRY_TRANSIENT;
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
