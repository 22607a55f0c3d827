#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "errclass.h"

/* Every class from the structured fields of an error; messages only
 * where AWS leaves the meaning to them (errclass.c says which). */
TestSuite(errclass);

static struct err
http(long status, const char *code, const char *message)
{
	struct err e;

	err_clear(&e);
	e.kind = ERR_HTTP;
	e.http_status = status;
	snprintf(e.code, sizeof(e.code), "%s", code);
	snprintf(e.message, sizeof(e.message), "%s", message);
	return e;
}

static struct err
net(int curl_code, int sys_errno)
{
	struct err e;

	err_clear(&e);
	e.kind = ERR_NET;
	e.curl_code = curl_code;
	e.sys_errno = sys_errno;
	return e;
}

static struct err
sys(enum err_kind kind, int sys_errno, const char *code, const char *msg)
{
	struct err e;

	err_clear(&e);
	e.kind = kind;
	e.sys_errno = sys_errno;
	snprintf(e.code, sizeof(e.code), "%s", code);
	snprintf(e.message, sizeof(e.message), "%s", msg);
	return e;
}

#define CLASS(e, want)                                                         \
	do {                                                                   \
		struct err e_ = (e);                                           \
		cr_assert_eq(err_classify(&e_), (want), "%s: %s, want %s", #e, \
		             err_class_name(err_classify(&e_)),                \
		             err_class_name(want));                            \
	} while (0)

Test(errclass, none)
{
	struct err e;

	err_clear(&e);
	cr_assert_eq(err_classify(NULL), ERRC_NONE);
	cr_assert_eq(err_classify(&e), ERRC_NONE);
}

Test(errclass, retryable_http)
{
	CLASS(http(503, "SlowDown", ""), ERRC_THROTTLE);
	CLASS(http(400, "ThrottlingException", ""), ERRC_THROTTLE);
	CLASS(http(400, "ProvisionedThroughputExceededException", ""),
	      ERRC_THROTTLE);
	CLASS(http(429, "", ""), ERRC_THROTTLE);
	CLASS(http(500, "InternalError", ""), ERRC_TRANSIENT);
	CLASS(http(200, "InternalError", ""), ERRC_TRANSIENT);
	CLASS(http(400, "RequestTimeout", ""), ERRC_TRANSIENT);
	CLASS(http(502, "", ""), ERRC_TRANSIENT);
	CLASS(http(504, "", ""), ERRC_TRANSIENT);
	/* A 5xx retries whatever its code. */
	CLASS(http(503, "SomethingNew", ""), ERRC_TRANSIENT);
	CLASS(http(403, "RequestTimeTooSkewed", ""), ERRC_SKEW);
	CLASS(http(400, "RequestExpired", ""), ERRC_SKEW);
	CLASS(http(400, "RequestInTheFuture", ""), ERRC_SKEW);
	CLASS(http(400, "ExpiredToken", ""), ERRC_EXPIRED);
	CLASS(http(400, "ExpiredTokenException", ""), ERRC_EXPIRED);
	CLASS(http(400, "TokenRefreshRequired", ""), ERRC_EXPIRED);
}

Test(errclass, permanent_http)
{
	CLASS(http(403, "AccessDenied", ""), ERRC_ACCESS);
	CLASS(http(400, "AccessDeniedException", ""), ERRC_ACCESS);
	CLASS(http(403, "Forbidden", ""), ERRC_ACCESS); /* HEAD: no body */
	CLASS(http(403, "SignatureDoesNotMatch", ""), ERRC_AUTH);
	CLASS(http(403, "InvalidAccessKeyId", ""), ERRC_AUTH);
	CLASS(http(403, "InvalidClientTokenId", ""), ERRC_AUTH);
	CLASS(http(400, "UnrecognizedClientException", ""), ERRC_AUTH);
	CLASS(http(400, "InvalidSignatureException", "does not match"),
	      ERRC_AUTH);
	CLASS(http(301, "PermanentRedirect", ""), ERRC_REGION);
	CLASS(http(301, "", ""), ERRC_REGION);
	CLASS(http(400, "AuthorizationHeaderMalformed", ""), ERRC_REGION);
	CLASS(http(404, "NoSuchBucket", ""), ERRC_MISSING);
	CLASS(http(400, "ResourceNotFoundException", ""), ERRC_MISSING);
	CLASS(http(404, "NoSuchKey", ""), ERRC_GONE);
	CLASS(http(404, "NoSuchUpload", ""), ERRC_GONE);
	CLASS(http(404, "NotFound", ""), ERRC_GONE);
	CLASS(http(400, "ConditionalCheckFailedException", ""), ERRC_CONFLICT);
	CLASS(http(412, "PreconditionFailed", ""), ERRC_CONFLICT);
	CLASS(http(412, "", ""), ERRC_CONFLICT);
	CLASS(http(400, "UnknownOperationException", ""), ERRC_PROTOCOL);
	CLASS(http(400, "", "<html>"), ERRC_PROTOCOL);
	CLASS(http(400, "EntityTooSmall", ""), ERRC_OTHER);
	CLASS(http(400, "ValidationException", "bad size"), ERRC_OTHER);
}

/* The one place a message counts: the generic codes AWS qualifies in
 * words, and only together with those codes. */
Test(errclass, what_aws_says_only_in_words)
{
	CLASS(http(400, "InvalidSignatureException",
	           "HTTP 400 InvalidSignatureException: Signature expired: "
	           "20261122T101000Z is now earlier than 20261122T101500Z"),
	      ERRC_SKEW);
	CLASS(http(400, "InvalidSignatureException",
	           "Signature not yet current: 20261122T104000Z is still "
	           "later than 20261122T103500Z"),
	      ERRC_SKEW);
	CLASS(http(400, "AuthFailure", "Signature expired"), ERRC_SKEW);
	CLASS(http(400, "InvalidSignatureException",
	           "Credential should be scoped to a valid region, not "
	           "'xx-east-1'."),
	      ERRC_REGION);
	CLASS(http(400, "ValidationException",
	           "The provided key element does not match the schema"),
	      ERRC_SCHEMA);
	/* The same words under another code change nothing. */
	CLASS(http(403, "AccessDenied", "Signature expired"), ERRC_ACCESS);
	CLASS(http(404, "NoSuchKey", "scoped to a valid region"), ERRC_GONE);
	CLASS(http(400, "", "Signature expired"), ERRC_PROTOCOL);
	/* Nor does the text we format ourselves. */
	CLASS(sys(ERR_SYS, EACCES, "", "state: cannot open: denied"),
	      ERRC_UNREADABLE);
	CLASS(sys(ERR_INVALID, 0, "", "AccessDenied NoSuchBucket state"),
	      ERRC_OTHER);
}

Test(errclass, network)
{
	CLASS(net(CURLE_COULDNT_CONNECT, 0), ERRC_TRANSIENT);
	CLASS(net(CURLE_RECV_ERROR, 0), ERRC_TRANSIENT);
	CLASS(net(CURLE_OPERATION_TIMEDOUT, 0), ERRC_TRANSIENT);
	CLASS(net(CURLE_COULDNT_RESOLVE_HOST, 0), ERRC_TRANSIENT);
	CLASS(net(CURLE_URL_MALFORMAT, 0), ERRC_CONFIG);
	CLASS(net(CURLE_UNSUPPORTED_PROTOCOL, 0), ERRC_CONFIG);
	CLASS(net(CURLE_PEER_FAILED_VERIFICATION, 0), ERRC_CONFIG);
	CLASS(net(CURLE_READ_ERROR, 0), ERRC_UNREADABLE);
	CLASS(net(CURLE_ABORTED_BY_CALLBACK, 0), ERRC_UNREADABLE);
	/* A Unix socket: connect's errno says more than curl. */
	CLASS(net(CURLE_COULDNT_CONNECT, ENOENT), ERRC_MISSING);
	CLASS(net(CURLE_COULDNT_CONNECT, ENOTDIR), ERRC_MISSING);
	CLASS(net(CURLE_COULDNT_CONNECT, EACCES), ERRC_ACCESS);
	CLASS(net(CURLE_COULDNT_CONNECT, ENOTSOCK), ERRC_CONFIG);
	CLASS(net(CURLE_COULDNT_CONNECT, ECONNREFUSED), ERRC_TRANSIENT);
}

Test(errclass, local)
{
	/* The disk (invariant 7), from errno or the state database's
	 * SQLite code, whichever kind carries it. */
	CLASS(sys(ERR_SYS, ENOSPC, "", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_SYS, EDQUOT, "", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_SYS, EROFS, "", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_SYS, 0, "SQLITE_FULL", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_SYS, 0, "SQLITE_READONLY", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_SYS, ENOSPC, "SQLITE_IOERR", ""), ERRC_NO_SPACE);
	CLASS(sys(ERR_DB, 0, "SQLITE_FULL", ""), ERRC_NO_SPACE);
	/* The state database, whether its file or itself failed. */
	CLASS(sys(ERR_DB, 0, "SQLITE_BUSY", ""), ERRC_STATE);
	CLASS(sys(ERR_DB, 0, "", ""), ERRC_STATE);
	CLASS(sys(ERR_SYS, EACCES, "SQLITE_CANTOPEN", ""), ERRC_STATE);
	CLASS(sys(ERR_SYS, 0, "SQLITE_NOTADB", ""), ERRC_STATE);
	/* A file the daemon reads. */
	CLASS(sys(ERR_SYS, EACCES, "", ""), ERRC_UNREADABLE);
	CLASS(sys(ERR_SYS, EIO, "", ""), ERRC_UNREADABLE);
	CLASS(sys(ERR_SYS, ENOMEM, "", ""), ERRC_OTHER);
	CLASS(sys(ERR_SYS, 0, "", "OpenSSL failed"), ERRC_OTHER);
	CLASS(sys(ERR_NAME, 0, "", ""), ERRC_NAME);
	CLASS(sys(ERR_CREDS, 0, "", ""), ERRC_CREDS);
	CLASS(sys(ERR_CONFIG, 0, "", ""), ERRC_CONFIG);
	CLASS(sys(ERR_CANCEL, 0, "", ""), ERRC_CANCEL);
	CLASS(sys(ERR_PARSE, 0, "", ""), ERRC_PROTOCOL);
	CLASS(sys(ERR_INVALID, 0, "", ""), ERRC_OTHER);
}

Test(errclass, retryable)
{
	int c;

	for (c = 0; c < ERRC_N; c++)
		cr_assert_eq(err_class_retryable((enum err_class)c),
		             c == ERRC_TRANSIENT || c == ERRC_THROTTLE ||
		                 c == ERRC_SKEW || c == ERRC_EXPIRED,
		             "%s", err_class_name((enum err_class)c));
}

/* The failure counters' labels, which /metrics shows and tests read. */
Test(errclass, reasons)
{
	static const struct {
		enum err_class c;
		const char *reason;
	} want[] = {
	    {ERRC_ACCESS, "access_denied"},
	    {ERRC_AUTH, "access_denied"},
	    {ERRC_MISSING, "no_such_target"},
	    {ERRC_UNREADABLE, "unreadable"},
	    {ERRC_NAME, "bad_name"},
	    {ERRC_STATE, "state_db"},
	    {ERRC_GONE, "other"},
	    {ERRC_NO_SPACE, "other"},
	    {ERRC_TRANSIENT, "other"},
	    {ERRC_OTHER, "other"},
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_str_eq(err_reason_name(err_class_reason(want[i].c)),
		                 want[i].reason, "%s",
		                 err_class_name(want[i].c));
	cr_assert_eq(ERR_REASON_ACCESS, 0);
	cr_assert_eq(ERR_REASON_OTHER, 5);
	cr_assert_str_eq(err_reason_name(ERR_REASON_N), "other");
}

Test(errclass, names_and_advice)
{
	int c, d;

	for (c = 0; c < ERRC_N; c++) {
		const char *n = err_class_name((enum err_class)c);

		cr_assert(n != NULL && n[0] != '\0', "class %d", c);
		for (d = 0; d < c; d++)
			cr_assert_str_neq(n, err_class_name((enum err_class)d));
		cr_assert_not_null(err_class_advice((enum err_class)c));
		if (c != ERRC_NONE && c != ERRC_OTHER)
			cr_assert(err_class_advice((enum err_class)c)[0] !=
			              '\0',
			          "%s", n);
	}
	cr_assert_str_eq(err_class_name(ERRC_N), "other");
	cr_assert_str_eq(err_class_name(ERRC_SKEW), "clock_skew");
	cr_assert(strstr(err_class_advice(ERRC_SKEW), "NTP") != NULL);
}
