/*
 * checkremote_explain: what a failed call says about the set-up, for the
 * operator: which setting (endpoint, credentials, region, bucket, table,
 * key schema, clock) to look at, or which IAM action is missing. What the
 * error means comes from lib/errclass (err_classify), as everywhere; this
 * file only adds the names a sentence needs: the endpoint, the bucket or
 * table, its configuration keys, and details taken out of the server's
 * message to show them (the region S3 expects).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "checkremote_impl.h"
#include "errclass.h"
#include "item.h"

int
checkremote_is_s3(const struct checkremote_target *t)
{
	return strcmp(t->service, "s3") == 0;
}

static const char *
cr_region_key(const struct checkremote_target *t)
{
	return checkremote_is_s3(t) ? "s3.region"
	                            : "dynamodb.region (else s3.region)";
}

static enum checkremote_problem
cr_explain_net(const struct checkremote_target *t, const struct err *e,
               char *msg, size_t len)
{
	const char *ep = t->endpoint, *svc = t->service;

	switch ((CURLcode)e->curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(msg, len,
		         "cannot resolve the host of the endpoint %s (%s): "
		         "check %s.endpoint and the DNS",
		         ep, e->message, svc);
		break;
	case CURLE_COULDNT_CONNECT:
		snprintf(msg, len,
		         "nothing accepts connections at the endpoint %s (%s): "
		         "check %s.endpoint",
		         ep, e->message, svc);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(msg, len,
		         "the endpoint %s did not answer in time (%s): check "
		         "%s.endpoint and the network",
		         ep, e->message, svc);
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		snprintf(msg, len,
		         "TLS with the endpoint %s failed (%s): check "
		         "%s.endpoint and the CA bundle (AWS_CA_BUNDLE)",
		         ep, e->message, svc);
		break;
	default:
		snprintf(
		    msg, len,
		    "cannot talk to the endpoint %s (%s): check %s.endpoint",
		    ep, e->message, svc);
		break;
	}
	return CHECKREMOTE_ENDPOINT;
}

/* The region S3 names in "... the region 'x' is wrong; expecting 'y'". */
static int
cr_expected_region(const char *message, char *out, size_t len)
{
	const char *p = strstr(message, "expecting '"), *q;

	if (p == NULL)
		return -1;
	p += strlen("expecting '");
	q = strchr(p, '\'');
	if (q == NULL || q == p || (size_t)(q - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

static enum checkremote_problem
cr_explain_region(const struct checkremote_target *t, const struct err *e,
                  char *msg, size_t len)
{
	char want[64];

	if (cr_expected_region(e->message, want, sizeof(want)) == 0)
		snprintf(msg, len,
		         "%s %s is in the region %s, not %s: set %s = \"%s\" "
		         "(%s)",
		         checkremote_is_s3(t) ? "the bucket" : "the table",
		         t->name, want, t->region, cr_region_key(t), want,
		         e->message);
	else if (checkremote_is_s3(t))
		snprintf(msg, len,
		         "the bucket %s is not in the region %s: set s3.region "
		         "to the bucket's region (%s)",
		         t->name, t->region, e->message);
	else
		snprintf(
		    msg, len,
		    "the endpoint %s does not take requests for the region "
		    "%s: check %s and dynamodb.endpoint (%s)",
		    t->endpoint, t->region, cr_region_key(t), e->message);
	return CHECKREMOTE_REGION;
}

/* An answer S3 or DynamoDB would not give: something else is at the
 * endpoint. */
static enum checkremote_problem
cr_explain_protocol(const struct checkremote_target *t, const struct err *e,
                    char *msg, size_t len)
{
	const char *what = checkremote_is_s3(t) ? "S3" : "DynamoDB";

	if (e->kind == ERR_PARSE)
		snprintf(msg, len,
		         "the endpoint %s answered something that is not %s "
		         "(%s): check %s.endpoint",
		         t->endpoint, what, e->message, t->service);
	else
		snprintf(msg, len,
		         "the endpoint %s does not answer as %s does (%s): "
		         "check %s.endpoint",
		         t->endpoint, what, e->message, t->service);
	return CHECKREMOTE_ENDPOINT;
}

static enum checkremote_problem
cr_explain_missing(const struct checkremote_target *t, const struct err *e,
                   char *msg, size_t len)
{
	if (checkremote_is_s3(t)) {
		snprintf(msg, len,
		         "the bucket %s does not exist at %s (region %s): "
		         "check s3.bucket (%s)",
		         t->name, t->endpoint, t->region, e->message);
		return CHECKREMOTE_BUCKET;
	}
	snprintf(msg, len,
	         "the table %s does not exist in the region %s at %s: check "
	         "dynamodb.table and %s (%s)",
	         t->name, t->region, t->endpoint, cr_region_key(t), e->message);
	return CHECKREMOTE_TABLE;
}

enum checkremote_problem
checkremote_explain(const struct checkremote_target *t, const struct err *e,
                    char *msg, size_t msglen)
{
	enum err_class c = err_classify(e);
	enum checkremote_problem p;

	/* The transport failed: whatever curl's code, the endpoint (or the
	 * TLS trust in it) is what to look at. */
	if (e->kind == ERR_NET)
		return cr_explain_net(t, e, msg, msglen);
	switch (c) {
	case ERRC_NONE:
		snprintf(msg, msglen, "ok");
		return CHECKREMOTE_OK;
	case ERRC_SKEW:
		p = CHECKREMOTE_CLOCK;
		break;
	case ERRC_ACCESS:
		p = CHECKREMOTE_DENIED;
		break;
	case ERRC_EXPIRED:
		/* Still, after new credentials were fetched. */
		c = ERRC_AUTH;
		p = CHECKREMOTE_CREDS;
		break;
	case ERRC_AUTH:
	case ERRC_CREDS:
		p = CHECKREMOTE_CREDS;
		break;
	case ERRC_REGION:
		return cr_explain_region(t, e, msg, msglen);
	case ERRC_MISSING:
		return cr_explain_missing(t, e, msg, msglen);
	case ERRC_SCHEMA:
		snprintf(msg, msglen,
		         "the table %s is not keyed by " ITEM_FILENAME
		         " (string) alone (%s)",
		         t->name, e->message);
		return CHECKREMOTE_SCHEMA;
	case ERRC_PROTOCOL:
		return cr_explain_protocol(t, e, msg, msglen);
	case ERRC_TRANSIENT:
	case ERRC_THROTTLE:
		/* A 5xx without an AWS error code in it: not S3's. */
		if (e->code[0] == '\0')
			return cr_explain_protocol(t, e, msg, msglen);
		/* FALLTHROUGH */
	default:
		snprintf(msg, msglen, "%s", e->message);
		return CHECKREMOTE_OTHER;
	}
	snprintf(msg, msglen, "%s (%s)", err_class_advice(c), e->message);
	return p;
}
