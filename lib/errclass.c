/*
 * errclass: sorts an error into the class that says what it means, from
 * its kind and then the field that kind fills in:
 *
 *   ERR_HTTP    the AWS error code, then the HTTP status (a HEAD answer
 *               has no body, so no code but the one the parser derives
 *               from the status)
 *   ERR_NET     connect's errno when the caller has it (imgsyncctl's
 *               Unix socket), else curl's code
 *   ERR_SYS     errno, or the SQLite code the state database puts in code
 *   the others  the kind alone
 *
 * Messages, and where this file reads one anyway: AWS answers a few
 * generic codes for different troubles and tells them apart only in the
 * message of its error document. That is AWS's protocol, not a quirk of
 * an emulator (the test bed's fault proxy copies what AWS sends):
 *
 *   InvalidSignatureException, AuthFailure (and the other codes that
 *   reject a signature) "Signature expired: ..." and "Signature not yet
 *   current: ..." for a request dated more than 15 minutes from the
 *   server's clock; "Credential should be scoped to a valid region" for
 *   a signature made for another region; otherwise a wrong secret.
 *   ValidationException about the "key" and its "schema" or "element":
 *   the table is keyed by another attribute.
 *
 * So errclass_server_says() matches those fixed phrases, each only
 * together with its code, and nothing else ever looks at a message to
 * decide what an error means. (The AWS SDKs tell a skewed clock from the
 * Date header of the answer instead; that would need the Date in struct
 * err, and it does not tell a wrong region.) Callers may still take a
 * detail out of a message to show it, such as the region S3 expects.
 */
#include "errclass.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const skew_codes[] = {
    "RequestTimeTooSkewed",
    "RequestExpired",
    "RequestInTheFuture",
};

static const char *const expired_codes[] = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "TokenRefreshRequired",
};

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

static const char *const region_codes[] = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
};

/* The server does not accept the credentials or the signature made with
 * them. */
static const char *const auth_codes[] = {
    "SignatureDoesNotMatch",      "InvalidAccessKeyId",
    "InvalidClientTokenId",       "UnrecognizedClientException",
    "IncompleteSignature",        "IncompleteSignatureException",
    "MissingAuthenticationToken", "MissingAuthenticationTokenException",
    "InvalidSignatureException",  "AuthFailure",
};

/* The credentials are accepted; no policy allows the action. */
static const char *const access_codes[] = {
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "UnauthorizedOperation",
};

/* InvalidBucketName: no bucket can have that name. */
static const char *const missing_codes[] = {
    "NoSuchBucket",
    "InvalidBucketName",
    "ResourceNotFoundException",
    "TableNotFoundException",
};

static const char *const gone_codes[] = {
    "NoSuchKey",
    "NoSuchUpload",
    "NoSuchVersion",
    "NotFound",
};

static const char *const conflict_codes[] = {
    "ConditionalCheckFailedException",
    "PreconditionFailed",
};

static const char *const protocol_codes[] = {
    "UnknownOperationException",
};

static int
errclass_in(const char *code, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(code, list[i]) == 0)
			return 1;
	return 0;
}

#define IN(code, list) errclass_in(code, list, NELEM(list))

/* What AWS puts in the message alone (see the top of this file):
 * ERRC_SKEW, ERRC_REGION, ERRC_SCHEMA, or ERRC_NONE. */
static enum err_class
errclass_server_says(const struct err *e)
{
	static const struct {
		const char *phrase;
		enum err_class c;
	} signature[] = {
	    {"Signature expired", ERRC_SKEW},
	    {"Signature not yet current", ERRC_SKEW},
	    {"scoped to a valid region", ERRC_REGION},
	    {"scoped to correct region", ERRC_REGION},
	};
	const char *m = e->message;
	size_t i;

	if (IN(e->code, auth_codes)) {
		for (i = 0; i < NELEM(signature); i++)
			if (strstr(m, signature[i].phrase) != NULL)
				return signature[i].c;
		return ERRC_NONE;
	}
	if (strcmp(e->code, "ValidationException") == 0 &&
	    strstr(m, "key") != NULL &&
	    (strstr(m, "schema") != NULL || strstr(m, "element") != NULL))
		return ERRC_SCHEMA;
	return ERRC_NONE;
}

/* The retryable classes first, in the order of the AWS SDKs' standard
 * policy; a 5xx status retries whatever its code. */
static enum err_class
errclass_http(const struct err *e)
{
	enum err_class said = errclass_server_says(e);
	const char *code = e->code;

	if (IN(code, skew_codes) || said == ERRC_SKEW)
		return ERRC_SKEW;
	if (IN(code, expired_codes))
		return ERRC_EXPIRED;
	if (IN(code, throttle_codes) || e->http_status == 429)
		return ERRC_THROTTLE;
	if (IN(code, transient_codes))
		return ERRC_TRANSIENT;
	switch (e->http_status) {
	case 500:
	case 502:
	case 503:
	case 504:
		return ERRC_TRANSIENT;
	default:
		break;
	}
	if (IN(code, region_codes) || e->http_status == 301 ||
	    said == ERRC_REGION)
		return ERRC_REGION;
	if (IN(code, auth_codes))
		return ERRC_AUTH;
	if (IN(code, access_codes))
		return ERRC_ACCESS;
	if (IN(code, missing_codes))
		return ERRC_MISSING;
	if (IN(code, gone_codes))
		return ERRC_GONE;
	if (IN(code, conflict_codes) || e->http_status == 412)
		return ERRC_CONFLICT;
	if (said == ERRC_SCHEMA)
		return ERRC_SCHEMA;
	if (code[0] == '\0' || IN(code, protocol_codes))
		return ERRC_PROTOCOL;
	return ERRC_OTHER;
}

/* A transport failure. Connect's errno, when the caller recorded it, says
 * more than curl's "couldn't connect" (a Unix socket's file is missing or
 * not ours); then curl's code. Most transport trouble passes. */
static enum err_class
errclass_net(const struct err *e)
{
	switch (e->sys_errno) {
	case ENOENT:
	case ENOTDIR:
		return ERRC_MISSING;
	case EACCES:
	case EPERM:
		return ERRC_ACCESS;
	case ENOTSOCK:
		return ERRC_CONFIG;
	default:
		break;
	}
	switch ((CURLcode)e->curl_code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
		return ERRC_CONFIG;
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK: /* lib/http.c: the body's file */
		return ERRC_UNREADABLE;
	default:
		return ERRC_TRANSIENT;
	}
}

static int
errclass_no_space(const struct err *e)
{
	return e->sys_errno == ENOSPC || e->sys_errno == EDQUOT ||
	       e->sys_errno == EROFS || strcmp(e->code, "SQLITE_FULL") == 0 ||
	       strcmp(e->code, "SQLITE_READONLY") == 0;
}

/* A system call failed: on a file the daemon reads, unless errno (or the
 * SQLite code the state database records) says otherwise. */
static enum err_class
errclass_sys(const struct err *e)
{
	if (errclass_no_space(e))
		return ERRC_NO_SPACE;
	if (strncmp(e->code, "SQLITE_", 7) == 0)
		return ERRC_STATE;
	if (e->sys_errno == 0 || e->sys_errno == ENOMEM)
		return ERRC_OTHER;
	return ERRC_UNREADABLE;
}

enum err_class
err_classify(const struct err *e)
{
	if (e == NULL)
		return ERRC_NONE;
	switch (e->kind) {
	case ERR_NONE:
		return ERRC_NONE;
	case ERR_HTTP:
		return errclass_http(e);
	case ERR_NET:
		return errclass_net(e);
	case ERR_SYS:
		return errclass_sys(e);
	case ERR_DB:
		return errclass_no_space(e) ? ERRC_NO_SPACE : ERRC_STATE;
	case ERR_PARSE:
		return ERRC_PROTOCOL;
	case ERR_CONFIG:
		return ERRC_CONFIG;
	case ERR_CREDS:
		return ERRC_CREDS;
	case ERR_CANCEL:
		return ERRC_CANCEL;
	case ERR_NAME:
		return ERRC_NAME;
	case ERR_INVALID:
		return ERRC_OTHER;
	}
	return ERRC_OTHER;
}

/* Indexed by enum err_class. */
static const struct {
	const char *name;
	const char *advice;
} errclass_info[ERRC_N] = {
    [ERRC_NONE] = {"none", ""},
    [ERRC_TRANSIENT] = {"transient",
                        "server or network trouble: it is tried again"},
    [ERRC_THROTTLE] = {"throttled", "the server asks for fewer requests: "
                                    "it is tried again, more slowly"},
    [ERRC_SKEW] = {"clock_skew", "the local clock is too far from the "
                                 "server's: set the clock (NTP)"},
    [ERRC_EXPIRED] = {"credentials_expired",
                      "the temporary credentials expired: new ones are "
                      "fetched"},
    [ERRC_CANCEL] = {"cancelled", "cancelled: imgsyncd is stopping"},
    [ERRC_ACCESS] = {"access_denied",
                     "access denied: no policy of these credentials "
                     "allows this action on this resource, or one denies "
                     "it"},
    [ERRC_AUTH] = {"credentials_rejected",
                   "the server rejects the credentials: check "
                   "credentials.access_key_id and secret_access_key (or "
                   "the profile, or the AWS_* variables)"},
    [ERRC_REGION] = {"wrong_region", "the bucket or the table is in "
                                     "another region: check s3.region and "
                                     "dynamodb.region"},
    [ERRC_MISSING] = {"no_such_target",
                      "no such bucket or table: check s3.bucket, "
                      "dynamodb.table and their regions"},
    [ERRC_GONE] = {"not_found", "no such object or item"},
    [ERRC_CONFLICT] = {"conflict", "the server holds a newer version: "
                                   "the write is not made"},
    [ERRC_SCHEMA] = {"key_schema",
                     "the table is not keyed as imgsync writes its items: "
                     "use a table keyed that way"},
    [ERRC_NO_SPACE] = {"no_space",
                       "the disk is full or read-only: work waits, and "
                       "resumes by itself once it can be written"},
    [ERRC_UNREADABLE] = {"unreadable", "the local file cannot be read: "
                                       "check its permissions"},
    [ERRC_NAME] = {"bad_name", "the file name cannot be an S3 key (not "
                               "UTF-8, or too long): rename the file"},
    [ERRC_STATE] = {"state_db", "the state database failed: check its "
                                "file and its disk"},
    [ERRC_CREDS] = {"no_credentials",
                    "no usable credentials: set credentials.* in the "
                    "configuration, the AWS_* variables, a profile or an "
                    "instance role"},
    [ERRC_CONFIG] = {"config", "the configuration is wrong"},
    [ERRC_PROTOCOL] = {"protocol",
                       "the endpoint does not answer as S3 or DynamoDB "
                       "does: check s3.endpoint and dynamodb.endpoint"},
    [ERRC_OTHER] = {"other", ""},
};

const char *
err_class_name(enum err_class c)
{
	return (unsigned)c < ERRC_N ? errclass_info[c].name : "other";
}

const char *
err_class_advice(enum err_class c)
{
	return (unsigned)c < ERRC_N ? errclass_info[c].advice : "";
}

int
err_class_retryable(enum err_class c)
{
	return c == ERRC_TRANSIENT || c == ERRC_THROTTLE || c == ERRC_SKEW ||
	       c == ERRC_EXPIRED;
}

enum err_reason
err_class_reason(enum err_class c)
{
	switch (c) {
	case ERRC_ACCESS:
	case ERRC_AUTH:
		return ERR_REASON_ACCESS;
	case ERRC_MISSING:
		return ERR_REASON_MISSING;
	case ERRC_UNREADABLE:
		return ERR_REASON_UNREADABLE;
	case ERRC_NAME:
		return ERR_REASON_NAME;
	case ERRC_STATE:
		return ERR_REASON_STATE;
	default:
		return ERR_REASON_OTHER;
	}
}

const char *
err_reason_name(enum err_reason r)
{
	static const char *const names[ERR_REASON_N] = {
	    [ERR_REASON_ACCESS] = "access_denied",
	    [ERR_REASON_MISSING] = "no_such_target",
	    [ERR_REASON_UNREADABLE] = "unreadable",
	    [ERR_REASON_NAME] = "bad_name",
	    [ERR_REASON_STATE] = "state_db",
	    [ERR_REASON_OTHER] = "other",
	};

	return (unsigned)r < ERR_REASON_N ? names[r] : "other";
}
