#include <criterion/criterion.h>
#include <string.h>

#include "dynamo.h"
#include "retry.h"
#include "s3.h"

TestSuite(retry);

/* A response as the http module hands it over. */
static void
fake_response(struct http_response *r, long status, const char *headers,
              const char *body)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
	buf_init(&r->body, 0);
	buf_init(&r->headers, 0);
	buf_puts(&r->body, body);
	buf_puts(&r->headers, headers);
}

static void
fake_free(struct http_response *r)
{
	buf_cleanup(&r->body);
	buf_cleanup(&r->headers);
}

struct s3_case {
	long status;
	const char *body;
	const char *code;
	enum retry_class want;
};

#define S3ERR(code, msg)                                                       \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" code       \
	"</Code><Message>" msg "</Message><RequestId>4442587FB7D0A2F9"         \
	"</RequestId><HostId>abc</HostId></Error>"

static const struct s3_case s3_cases[] = {
    {503, S3ERR("SlowDown", "Please reduce your request rate."), "SlowDown",
     RETRY_THROTTLE},
    {500, S3ERR("InternalError", "We encountered an internal error."),
     "InternalError", RETRY_TRANSIENT},
    {503, S3ERR("ServiceUnavailable", "Reduce your request rate."),
     "ServiceUnavailable", RETRY_TRANSIENT},
    {400, S3ERR("RequestTimeout", "Your socket connection to the server"),
     "RequestTimeout", RETRY_TRANSIENT},
    {403,
     S3ERR("RequestTimeTooSkewed", "The difference between the request "
                                   "time and the current time is too "
                                   "large."),
     "RequestTimeTooSkewed", RETRY_SKEW},
    {403, S3ERR("AccessDenied", "Access Denied"), "AccessDenied", RETRY_NO},
    {403,
     S3ERR("SignatureDoesNotMatch", "The request signature we calculated "
                                    "does not match the signature you "
                                    "provided."),
     "SignatureDoesNotMatch", RETRY_NO},
    {403, S3ERR("InvalidAccessKeyId", "The AWS Access Key Id you provided"),
     "InvalidAccessKeyId", RETRY_NO},
    {404, S3ERR("NoSuchBucket", "The specified bucket does not exist"),
     "NoSuchBucket", RETRY_NO},
    {400, S3ERR("ExpiredToken", "The provided token has expired."),
     "ExpiredToken", RETRY_CREDS},
    {400, S3ERR("EntityTooSmall", "Your proposed upload is smaller"),
     "EntityTooSmall", RETRY_NO},
    /* CompleteMultipartUpload and CopyObject can fail inside a 200. */
    {200, S3ERR("InternalError", "We encountered an internal error."),
     "InternalError", RETRY_TRANSIENT},
    /* HEAD has no body: the status decides. */
    {404, "", "NotFound", RETRY_NO},
    {503, "", "ServiceUnavailable", RETRY_TRANSIENT},
    {502, "<html>Bad Gateway</html>", "", RETRY_TRANSIENT},
    {504, "", "", RETRY_TRANSIENT},
};

Test(retry, s3_error_bodies)
{
	struct http_response r;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(s3_cases) / sizeof(s3_cases[0]); i++) {
		const struct s3_case *c = &s3_cases[i];

		fake_response(&r, c->status, "x-amz-request-id: REQ123\r\n",
		              c->body);
		err_clear(&e);
		cr_assert_eq(s3_parse_error(&r, &e), 1, "case %zu", i);
		cr_assert_eq(e.kind, ERR_HTTP);
		cr_assert_eq(e.http_status, c->status);
		cr_assert_str_eq(e.code, c->code, "case %zu", i);
		cr_assert_eq(retry_classify(&e), c->want, "case %zu (%s): %s",
		             i, c->code, retry_class_name(retry_classify(&e)));
		if (c->body[0] == '<' && strstr(c->body, "<Error>"))
			cr_assert_str_eq(e.request_id, "4442587FB7D0A2F9");
		else
			cr_assert_str_eq(e.request_id, "REQ123");
		fake_free(&r);
	}
}

Test(retry, s3_success_is_not_an_error)
{
	struct http_response r;
	struct err e;

	fake_response(
	    &r, 200, "",
	    "<CopyObjectResult><ETag>\"x\"</ETag></CopyObjectResult>");
	err_clear(&e);
	cr_assert_eq(s3_parse_error(&r, &e), 0);
	cr_assert_eq(e.kind, ERR_NONE);
	fake_free(&r);
}

struct ddb_case {
	long status;
	const char *type;
	const char *code;
	enum retry_class want;
};

static const struct ddb_case ddb_cases[] = {
    {400,
     "com.amazonaws.dynamodb.v20120810#"
     "ProvisionedThroughputExceededException",
     "ProvisionedThroughputExceededException", RETRY_THROTTLE},
    {400, "com.amazonaws.dynamodb.v20120810#ThrottlingException",
     "ThrottlingException", RETRY_THROTTLE},
    {400, "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
     "RequestLimitExceeded", RETRY_THROTTLE},
    {500, "com.amazonaws.dynamodb.v20120810#InternalServerError",
     "InternalServerError", RETRY_TRANSIENT},
    {503, "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
     "ServiceUnavailable", RETRY_TRANSIENT},
    {400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
     "ConditionalCheckFailedException", RETRY_NO},
    {400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
     "ResourceNotFoundException", RETRY_NO},
    {400, "com.amazon.coral.validate#ValidationException",
     "ValidationException", RETRY_NO},
    {400, "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
     "AccessDeniedException", RETRY_NO},
    {400, "com.amazon.coral.service#UnrecognizedClientException",
     "UnrecognizedClientException", RETRY_NO},
    {400, "com.amazon.coral.service#ExpiredTokenException",
     "ExpiredTokenException", RETRY_CREDS},
    {400, "com.amazonaws.dynamodb.v20120810#TransactionInProgressException",
     "TransactionInProgressException", RETRY_THROTTLE},
};

Test(retry, dynamodb_error_bodies)
{
	struct http_response r;
	struct err e;
	char body[512];
	size_t i;

	for (i = 0; i < sizeof(ddb_cases) / sizeof(ddb_cases[0]); i++) {
		const struct ddb_case *c = &ddb_cases[i];

		snprintf(body, sizeof(body),
		         "{\"__type\":\"%s\",\"message\":\"details %zu\"}",
		         c->type, i);
		fake_response(&r, c->status, "x-amzn-RequestId: RID9\r\n",
		              body);
		err_clear(&e);
		cr_assert_eq(dynamo_parse_error(&r, &e), 1);
		cr_assert_str_eq(e.code, c->code, "case %zu", i);
		cr_assert_eq(retry_classify(&e), c->want, "case %zu (%s)", i,
		             c->code);
		cr_assert_str_eq(e.request_id, "RID9");
		cr_assert(strstr(e.message, "details") != NULL, "%s",
		          e.message);
		fake_free(&r);
	}
}

Test(retry, dynamodb_signature_expired_is_skew)
{
	struct http_response r;
	struct err e;

	fake_response(
	    &r, 400, "Date: Sun, 22 Nov 2026 10:30:00 GMT\r\n",
	    "{\"__type\":\"com.amazon.coral.service#"
	    "InvalidSignatureException\","
	    "\"message\":\"Signature expired: 20261122T101000Z is now earlier "
	    "than 20261122T101500Z (20261122T103000Z - 15 min.)\"}");
	err_clear(&e);
	cr_assert_eq(dynamo_parse_error(&r, &e), 1);
	cr_assert_eq(retry_classify(&e), RETRY_SKEW);
	fake_free(&r);

	/* The same code for a wrong secret is permanent. */
	fake_response(
	    &r, 400, "",
	    "{\"__type\":\"com.amazon.coral.service#"
	    "InvalidSignatureException\","
	    "\"message\":\"The request signature we calculated does not "
	    "match\"}");
	err_clear(&e);
	cr_assert_eq(dynamo_parse_error(&r, &e), 1);
	cr_assert_eq(retry_classify(&e), RETRY_NO);
	fake_free(&r);
}

Test(retry, dynamodb_garbage_body_uses_status)
{
	struct http_response r;
	struct err e;

	fake_response(&r, 503, "", "<html>oops</html>");
	err_clear(&e);
	cr_assert_eq(dynamo_parse_error(&r, &e), 1);
	cr_assert_eq(retry_classify(&e), RETRY_TRANSIENT);
	fake_free(&r);
}

Test(retry, network_errors)
{
	struct err e;

	err_clear(&e);
	e.kind = ERR_NET;
	e.curl_code = 7; /* CURLE_COULDNT_CONNECT */
	cr_assert_eq(retry_classify(&e), RETRY_TRANSIENT);
	e.curl_code = 56; /* CURLE_RECV_ERROR: connection reset */
	cr_assert_eq(retry_classify(&e), RETRY_TRANSIENT);
	e.curl_code = 28; /* CURLE_OPERATION_TIMEDOUT */
	cr_assert_eq(retry_classify(&e), RETRY_TRANSIENT);
	e.curl_code = 60; /* CURLE_PEER_FAILED_VERIFICATION */
	cr_assert_eq(retry_classify(&e), RETRY_NO);
	e.curl_code = 3; /* CURLE_URL_MALFORMAT */
	cr_assert_eq(retry_classify(&e), RETRY_NO);
	e.kind = ERR_CANCEL;
	cr_assert_eq(retry_classify(&e), RETRY_NO);
	cr_assert_eq(retry_classify(NULL), RETRY_NO);
}

Test(retry, backoff_stays_within_bounds)
{
	struct retry_policy p = {
	    .base_ms = 100, .throttle_base_ms = 500, .max_ms = 20000};
	uint64_t rng = 42, d, max_seen = 0, sum = 0;
	unsigned attempt, i;

	for (attempt = 0; attempt < 40; attempt++) {
		uint64_t ceiling = 100ull << (attempt < 20 ? attempt : 20);

		if (ceiling > 20000)
			ceiling = 20000;
		for (i = 0; i < 500; i++) {
			d = retry_backoff_ms(&p, RETRY_TRANSIENT, attempt,
			                     &rng);
			cr_assert_leq(d, ceiling, "attempt %u: %llu > %llu",
			              attempt, (unsigned long long)d,
			              (unsigned long long)ceiling);
			if (attempt == 10) {
				sum += d;
				if (d > max_seen)
					max_seen = d;
			}
		}
	}
	/* Full jitter: spread over the whole range, mean near half the cap. */
	cr_assert_gt(max_seen, 18000);
	cr_assert(sum / 500 > 7000 && sum / 500 < 13000, "mean %llu",
	          (unsigned long long)(sum / 500));
	for (i = 0; i < 200; i++)
		cr_assert_leq(retry_backoff_ms(&p, RETRY_THROTTLE, 0, &rng),
		              500);
	cr_assert_eq(retry_backoff_ms(&p, RETRY_SKEW, 5, &rng), 0);
	/* Defaults when no policy is given. */
	for (i = 0; i < 200; i++)
		cr_assert_leq(
		    retry_backoff_ms(NULL, RETRY_TRANSIENT, 100, &rng), 20000);
}

Test(retry, skew_from_date_header)
{
	int64_t skew = 0;

	/* Sun, 22 Nov 2026 10:30:00 GMT = 1795343400 */
	cr_assert_eq(retry_skew_from_date("Sun, 22 Nov 2026 10:30:00 GMT",
	                                  1795343400 - 1200, &skew),
	             0);
	cr_assert_eq(skew, 1200);
	cr_assert_eq(retry_skew_from_date("Sun, 22 Nov 2026 10:30:00 GMT",
	                                  1795343400 + 1200, &skew),
	             0);
	cr_assert_eq(skew, -1200);
	cr_assert_eq(retry_skew_from_date("not a date", 0, &skew), -1);
	cr_assert_eq(retry_skew_from_date("", 0, &skew), -1);
	cr_assert_eq(retry_skew_from_date(NULL, 0, &skew), -1);
}
