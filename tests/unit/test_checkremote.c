#include <criterion/criterion.h>
#include <curl/curl.h>
#include <string.h>
#include <sysexits.h>

#include "checkremote.h"
#include "dynamo.h"
#include "s3.h"

/* The AWS answers moto cannot give (regions, clock, real AccessDenied
 * shapes), parsed by the real parsers, then explained. */
TestSuite(checkremote);

static const struct checkremote_target s3t = {
    "s3", "images", "https://s3.us-east-1.amazonaws.com", "us-east-1"};
static const struct checkremote_target ddbt = {
    "dynamodb", "ImageMetadata", "https://dynamodb.us-east-1.amazonaws.com",
    "us-east-1"};

static void
parsed(struct err *e, long status, const char *body, int s3)
{
	struct http_response r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	buf_init(&r.body, 0);
	buf_init(&r.headers, 0);
	if (body != NULL)
		buf_puts(&r.body, body);
	err_clear(e);
	cr_assert_eq(s3 ? s3_parse_error(&r, e) : dynamo_parse_error(&r, e), 1);
	buf_cleanup(&r.body);
	buf_cleanup(&r.headers);
}

static enum checkremote_problem
explain_s3(long status, const char *body, char *msg, size_t len)
{
	struct err e;

	parsed(&e, status, body, 1);
	return checkremote_explain(&s3t, &e, msg, len);
}

static enum checkremote_problem
explain_ddb(long status, const char *body, char *msg, size_t len)
{
	struct err e;

	parsed(&e, status, body, 0);
	return checkremote_explain(&ddbt, &e, msg, len);
}

#define S3ERR(code, msg)                                                       \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" code       \
	"</Code><Message>" msg "</Message><RequestId>4442587FB7D0A2F9"         \
	"</RequestId></Error>"
#define DDBERR(type, msg)                                                      \
	"{\"__type\":\"com.amazonaws.dynamodb.v20120810#" type                 \
	"\",\"message\":\"" msg "\"}"

Test(checkremote, s3_wrong_region_names_the_right_one)
{
	char msg[1024];

	cr_assert_eq(explain_s3(400,
	                        S3ERR("AuthorizationHeaderMalformed",
	                              "The authorization header is malformed; "
	                              "the region 'us-east-1' is wrong; "
	                              "expecting 'eu-west-1'"),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_REGION);
	cr_assert(strstr(msg, "the bucket images is in the region eu-west-1, "
	                      "not us-east-1: set s3.region = \"eu-west-1\"") !=
	              NULL,
	          "%s", msg);
}

Test(checkremote, s3_permanent_redirect_is_a_region_problem)
{
	char msg[1024];

	cr_assert_eq(explain_s3(301,
	                        S3ERR("PermanentRedirect",
	                              "The bucket you are attempting to access "
	                              "must be addressed using the specified "
	                              "endpoint."),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_REGION);
	cr_assert(strstr(msg, "not in the region us-east-1: set s3.region") !=
	          NULL);
	/* HEAD has no body: the status alone says it */
	cr_assert_eq(explain_s3(301, NULL, msg, sizeof(msg)),
	             CHECKREMOTE_REGION);
}

Test(checkremote, s3_denied_with_and_without_a_body)
{
	char msg[1024];

	cr_assert_eq(explain_s3(403, S3ERR("AccessDenied", "Access Denied"),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_DENIED);
	cr_assert(strncmp(msg, "access denied", 13) == 0);
	cr_assert_eq(explain_s3(403, NULL, msg, sizeof(msg)),
	             CHECKREMOTE_DENIED);
}

Test(checkremote, s3_bucket_credentials_clock)
{
	char msg[1024];

	cr_assert_eq(explain_s3(404,
	                        S3ERR("NoSuchBucket",
	                              "The specified bucket does not exist"),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_BUCKET);
	cr_assert(strstr(msg, "check s3.bucket") != NULL);
	cr_assert_eq(explain_s3(403,
	                        S3ERR("SignatureDoesNotMatch",
	                              "The request signature we calculated "
	                              "does not match"),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_CREDS);
	cr_assert_eq(explain_s3(403,
	                        S3ERR("InvalidAccessKeyId",
	                              "The AWS Access Key Id you provided does "
	                              "not exist in our records."),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_CREDS);
	cr_assert_eq(explain_s3(403,
	                        S3ERR("RequestTimeTooSkewed",
	                              "The difference between the request time "
	                              "and the current time is too large."),
	                        msg, sizeof(msg)),
	             CHECKREMOTE_CLOCK);
	cr_assert(strstr(msg, "NTP") != NULL);
}

Test(checkremote, dynamodb_answers)
{
	char msg[1024];

	cr_assert_eq(
	    explain_ddb(400,
	                DDBERR("AccessDeniedException",
	                       "User: arn:aws:iam::1:user/u is not authorized "
	                       "to perform: dynamodb:Scan on resource: "
	                       "arn:aws:dynamodb:us-east-1:1:table/T"),
	                msg, sizeof(msg)),
	    CHECKREMOTE_DENIED);
	cr_assert_eq(explain_ddb(400,
	                         DDBERR("ResourceNotFoundException",
	                                "Requested resource not found"),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_TABLE);
	cr_assert(strstr(msg, "the table ImageMetadata does not exist in the "
	                      "region us-east-1") != NULL);
	cr_assert(strstr(msg, "dynamodb.region") != NULL);
	cr_assert_eq(
	    explain_ddb(400,
	                DDBERR("InvalidSignatureException",
	                       "Signature expired: 20260101T000000Z is now "
	                       "earlier than 20260101T001000Z"),
	                msg, sizeof(msg)),
	    CHECKREMOTE_CLOCK);
	cr_assert_eq(explain_ddb(400,
	                         DDBERR("InvalidSignatureException",
	                                "Credential should be scoped to a "
	                                "valid region, not 'xx-east-1'. "),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_REGION);
	cr_assert_eq(explain_ddb(400,
	                         DDBERR("InvalidSignatureException",
	                                "The request signature we calculated "
	                                "does not match"),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_CREDS);
	cr_assert_eq(explain_ddb(400,
	                         DDBERR("UnrecognizedClientException",
	                                "The security token included in the "
	                                "request is invalid."),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_CREDS);
	cr_assert_eq(explain_ddb(400,
	                         DDBERR("ValidationException",
	                                "The provided key element does not "
	                                "match the schema"),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_SCHEMA);
	cr_assert_eq(explain_ddb(400, DDBERR("UnknownOperationException", ""),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_ENDPOINT);
	cr_assert_eq(explain_ddb(500, DDBERR("InternalServerError", "oops"),
	                         msg, sizeof(msg)),
	             CHECKREMOTE_OTHER);
}

Test(checkremote, transport_and_local)
{
	struct err e;
	char msg[1024];

	err_clear(&e);
	e.curl_code = CURLE_COULDNT_CONNECT;
	err_set(&e, ERR_NET, "Failed to connect");
	cr_assert_eq(checkremote_explain(&s3t, &e, msg, sizeof(msg)),
	             CHECKREMOTE_ENDPOINT);
	cr_assert(strstr(msg, "nothing accepts connections at the endpoint "
	                      "https://s3.us-east-1.amazonaws.com") != NULL);
	cr_assert(strstr(msg, "check s3.endpoint") != NULL);
	e.curl_code = CURLE_COULDNT_RESOLVE_HOST;
	cr_assert_eq(checkremote_explain(&ddbt, &e, msg, sizeof(msg)),
	             CHECKREMOTE_ENDPOINT);
	cr_assert(strstr(msg, "cannot resolve") != NULL);
	cr_assert(strstr(msg, "check dynamodb.endpoint") != NULL);
	err_clear(&e);
	err_set(&e, ERR_CREDS, "no credentials found");
	cr_assert_eq(checkremote_explain(&s3t, &e, msg, sizeof(msg)),
	             CHECKREMOTE_CREDS);
	err_clear(&e);
	err_set(&e, ERR_PARSE, "bad XML");
	cr_assert_eq(checkremote_explain(&s3t, &e, msg, sizeof(msg)),
	             CHECKREMOTE_ENDPOINT);
	/* an HTML 404 from something that is not S3 */
	cr_assert_eq(
	    explain_s3(404, "<html>Not Found</html>", msg, sizeof(msg)),
	    CHECKREMOTE_OTHER);
}

Test(checkremote, exit_codes)
{
	struct err e;

	err_clear(&e);
	cr_assert_eq(checkremote_exit_code(0, &e), 0);
	cr_assert_eq(checkremote_exit_code(-1, &e), EX_OSERR);
	e.kind = ERR_NET;
	cr_assert_eq(checkremote_exit_code(1, &e), EX_UNAVAILABLE);
	e.kind = ERR_CREDS;
	cr_assert_eq(checkremote_exit_code(1, &e), EX_NOPERM);
	e.kind = ERR_CONFIG;
	cr_assert_eq(checkremote_exit_code(1, &e), EX_CONFIG);
	e.kind = ERR_HTTP;
	strcpy(e.code, "AccessDenied");
	cr_assert_eq(checkremote_exit_code(1, &e), EX_NOPERM);
	strcpy(e.code, "InternalError");
	cr_assert_eq(checkremote_exit_code(1, &e), 1);
}
