#include "checkremote.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "aws.h"
#include "buf.h"

#define CR_BODY "imgsyncd --check-remote probe: safe to delete\n"
/* No upload has this id: a permitted abort answers NoSuchUpload. */
#define CR_UPLOAD_ID "imgsync-check-remote-no-such-upload"
#define CR_TICK_MS 200

/* The probes, in order. The deletes also run after a failure in between
 * whenever there is something of ours to remove. */
enum cr_step {
	CR_S3_PUT,
	CR_S3_GET,
	CR_S3_COPY,
	CR_S3_DEL_COPY,
	CR_S3_DEL,
	CR_S3_ABORT,
	CR_S3_VERSIONING,
	CR_DDB_DESCRIBE,
	CR_DDB_PUT,
	CR_DDB_GET,
	CR_DDB_SCAN,
	CR_DDB_DEL,
	CR_CLOCK,
	CR_DONE,
};

struct cr {
	const struct config *cfg;
	struct s3 *s3;
	struct dynamo *ddb;
	const char *source;
	FILE *out;
	struct checkremote_target s3t, ddbt;
	const char *partition;
	struct buf key, copy_key, obj_arn, copy_arn, missing;
	char table_arn[512];
	enum cr_step step;
	int pending;   /* a call is in flight */
	int abandoned; /* timed out: the pending callback frees */
	int done;
	char s3_stop[256]; /* why the remaining S3 probes are pointless */
	char ddb_stop[256];
	int put_ok, get_denied, copy_ok, obj_left, copy_left;
	int item_made, item_left;
	unsigned checks, failed, skipped;
	int answered; /* some server answered: the clock could be judged */
	unsigned s3_calls, s3_denied, ddb_calls, ddb_denied;
	enum checkremote_problem worst;
	struct err first;
};

/* --- explaining an error ------------------------------------------------ */

static int
cr_in(const char *code, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(code, *list) == 0)
			return 1;
	return 0;
}

static int
cr_is_s3(const struct checkremote_target *t)
{
	return strcmp(t->service, "s3") == 0;
}

static const char *
cr_region_key(const struct checkremote_target *t)
{
	return cr_is_s3(t) ? "s3.region" : "dynamodb.region (else s3.region)";
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
		         cr_is_s3(t) ? "the bucket" : "the table", t->name,
		         want, t->region, cr_region_key(t), want, e->message);
	else if (cr_is_s3(t))
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

enum checkremote_problem
checkremote_explain(const struct checkremote_target *t, const struct err *e,
                    char *msg, size_t msglen)
{
	static const char *const denied[] = {
	    "AccessDenied", "AccessDeniedException", "Forbidden",
	    "UnauthorizedOperation", NULL};
	static const char *const creds[] = {
	    "SignatureDoesNotMatch",
	    "InvalidAccessKeyId",
	    "InvalidClientTokenId",
	    "UnrecognizedClientException",
	    "IncompleteSignature",
	    "IncompleteSignatureException",
	    "MissingAuthenticationToken",
	    "MissingAuthenticationTokenException",
	    "InvalidSignatureException",
	    "InvalidToken",
	    "ExpiredToken",
	    "ExpiredTokenException",
	    "TokenRefreshRequired",
	    "AuthFailure",
	    NULL};
	static const char *const clock[] = {"RequestTimeTooSkewed",
	                                    "RequestExpired",
	                                    "RequestInTheFuture", NULL};
	static const char *const region[] = {
	    "PermanentRedirect", "AuthorizationHeaderMalformed",
	    "IllegalLocationConstraintException", NULL};
	const char *code = e->code, *m = e->message;

	switch (e->kind) {
	case ERR_NONE:
		snprintf(msg, msglen, "ok");
		return CHECKREMOTE_OK;
	case ERR_NET:
		return cr_explain_net(t, e, msg, msglen);
	case ERR_PARSE:
		snprintf(msg, msglen,
		         "the endpoint %s answered something that is not %s "
		         "(%s): check %s.endpoint",
		         t->endpoint, cr_is_s3(t) ? "S3" : "DynamoDB", m,
		         t->service);
		return CHECKREMOTE_ENDPOINT;
	case ERR_CREDS:
		snprintf(msg, msglen,
		         "no usable credentials (%s): set credentials.* in the "
		         "configuration, the AWS_* variables, a profile or an "
		         "instance role",
		         m);
		return CHECKREMOTE_CREDS;
	case ERR_HTTP:
		break;
	default:
		snprintf(msg, msglen, "%s", m);
		return CHECKREMOTE_OTHER;
	}
	if (cr_in(code, clock) ||
	    (strstr(m, "Signature expired") != NULL ||
	     strstr(m, "Signature not yet current") != NULL)) {
		snprintf(msg, msglen,
		         "the local clock is too far from the server's (%s): "
		         "set the clock (NTP)",
		         m);
		return CHECKREMOTE_CLOCK;
	}
	if (cr_in(code, region) || e->http_status == 301 ||
	    strstr(m, "scoped to a valid region") != NULL ||
	    strstr(m, "scoped to correct region") != NULL)
		return cr_explain_region(t, e, msg, msglen);
	if (cr_in(code, creds)) {
		snprintf(msg, msglen,
		         "the server rejects the credentials (%s): check "
		         "credentials.access_key_id and secret_access_key (or "
		         "the profile, or the AWS_* variables)",
		         m);
		return CHECKREMOTE_CREDS;
	}
	if (cr_in(code, denied)) {
		snprintf(msg, msglen,
		         "access denied: no policy of these credentials allows "
		         "this action on this resource, or one denies it (%s)",
		         m);
		return CHECKREMOTE_DENIED;
	}
	if (strcmp(code, "NoSuchBucket") == 0 ||
	    strcmp(code, "InvalidBucketName") == 0) {
		snprintf(
		    msg, msglen,
		    "the bucket %s does not exist at %s (region %s): check "
		    "s3.bucket (%s)",
		    t->name, t->endpoint, t->region, m);
		return CHECKREMOTE_BUCKET;
	}
	if (strcmp(code, "ResourceNotFoundException") == 0 ||
	    strcmp(code, "TableNotFoundException") == 0) {
		snprintf(msg, msglen,
		         "the table %s does not exist in the region %s at %s: "
		         "check dynamodb.table and %s (%s)",
		         t->name, t->region, t->endpoint, cr_region_key(t), m);
		return CHECKREMOTE_TABLE;
	}
	if (strcmp(code, "ValidationException") == 0 &&
	    strstr(m, "key") != NULL &&
	    (strstr(m, "schema") != NULL || strstr(m, "element") != NULL)) {
		snprintf(msg, msglen,
		         "the table %s is not keyed by FileName (string) alone "
		         "(%s)",
		         t->name, m);
		return CHECKREMOTE_SCHEMA;
	}
	if (code[0] == '\0' || strcmp(code, "UnknownOperationException") == 0) {
		snprintf(
		    msg, msglen,
		    "the endpoint %s does not answer as %s does (%s): check "
		    "%s.endpoint",
		    t->endpoint, cr_is_s3(t) ? "S3" : "DynamoDB", m,
		    t->service);
		return CHECKREMOTE_ENDPOINT;
	}
	snprintf(msg, msglen, "%s", m);
	return CHECKREMOTE_OTHER;
}

int
checkremote_exit_code(int rc, const struct err *e)
{
	if (rc == 0)
		return 0;
	if (rc < 0)
		return EX_OSERR;
	switch (e->kind) {
	case ERR_NET:
		return EX_UNAVAILABLE;
	case ERR_CREDS:
		return EX_NOPERM;
	case ERR_CONFIG:
		return EX_CONFIG;
	case ERR_HTTP:
		return strcmp(e->code, "AccessDenied") == 0 ? EX_NOPERM : 1;
	default:
		return 1;
	}
}

/* --- recording the outcome of one check ---------------------------------- */

/* Lower is more fundamental: a wrong endpoint explains everything else. */
static int
cr_rank(enum checkremote_problem p)
{
	return p == CHECKREMOTE_OK ? 100 : (int)p;
}

static void
cr_line(struct cr *c, const char *status, const char *action,
        const char *resource, const char *detail)
{
	const char *sep = strcmp(status, "ok") == 0 ? "  " : " : ";

	fprintf(c->out, "%-4s %-26s %s%s%s\n", status, action, resource,
	        detail != NULL && detail[0] ? sep : "",
	        detail != NULL ? detail : "");
	fflush(c->out);
}

static void
cr_skip(struct cr *c, const char *action, const char *resource, const char *why)
{
	c->skipped++;
	cr_line(c, "skip", action, resource, why);
}

static void
cr_ok(struct cr *c, const char *action, const char *resource, const char *note)
{
	c->checks++;
	cr_line(c, "ok", action, resource, note);
}

/* A failed check: its line, the most fundamental problem so far, and
 * the error kind checkremote_exit_code() reads. */
static void
cr_problem(struct cr *c, enum checkremote_problem p, const char *action,
           const char *resource, const char *msg, const struct err *e)
{
	c->checks++;
	c->failed++;
	cr_line(c, "FAIL", action, resource, msg);
	if (cr_rank(p) >= cr_rank(c->worst))
		return;
	c->worst = p;
	err_clear(&c->first);
	if (e != NULL)
		c->first = *e;
	switch (p) {
	case CHECKREMOTE_ENDPOINT:
		c->first.kind = ERR_NET;
		break;
	case CHECKREMOTE_CREDS:
		c->first.kind = ERR_CREDS;
		break;
	case CHECKREMOTE_REGION:
	case CHECKREMOTE_BUCKET:
	case CHECKREMOTE_TABLE:
	case CHECKREMOTE_SCHEMA:
	case CHECKREMOTE_CLOCK:
		c->first.kind = ERR_CONFIG;
		break;
	case CHECKREMOTE_DENIED:
		c->first.kind = ERR_HTTP;
		snprintf(c->first.code, sizeof(c->first.code), "AccessDenied");
		break;
	default:
		if (c->first.kind == ERR_NONE)
			c->first.kind = ERR_HTTP;
		break;
	}
	/* Cut to fit, as err messages are. */
	if (snprintf(c->first.message, sizeof(c->first.message), "%s on %s: %s",
	             action, resource, msg) < 0)
		c->first.message[0] = '\0';
}

/* The outcome of a call: ok, or a failure explained. A problem that makes
 * the service's remaining probes pointless stops them. Returns the
 * problem. */
static enum checkremote_problem
cr_check(struct cr *c, const struct checkremote_target *t, const char *action,
         const char *resource, const char *note, const struct err *e)
{
	enum checkremote_problem p;
	char msg[768];
	char *stop = cr_is_s3(t) ? c->s3_stop : c->ddb_stop;

	if (cr_is_s3(t))
		c->s3_calls++;
	else
		c->ddb_calls++;
	if (e == NULL || e->kind == ERR_HTTP)
		c->answered = 1;
	if (e == NULL) {
		cr_ok(c, action, resource, note);
		return CHECKREMOTE_OK;
	}
	p = checkremote_explain(t, e, msg, sizeof(msg));
	cr_problem(c, p, action, resource, msg, e);
	if (p == CHECKREMOTE_DENIED) {
		if (cr_is_s3(t))
			c->s3_denied++;
		else
			c->ddb_denied++;
		if (c->missing.len > 0)
			buf_puts(&c->missing, ", ");
		buf_printf(&c->missing, "%s on %s", action, resource);
	}
	if (p != CHECKREMOTE_DENIED && p != CHECKREMOTE_OTHER &&
	    stop[0] == '\0')
		snprintf(
		    stop, 256, "not checked: %.200s",
		    p == CHECKREMOTE_ENDPOINT ? "the endpoint is unreachable"
		    : p == CHECKREMOTE_CREDS  ? "the credentials are rejected"
		    : p == CHECKREMOTE_REGION ? "wrong region"
		    : p == CHECKREMOTE_BUCKET ? "no such bucket"
		    : p == CHECKREMOTE_TABLE  ? "no such table"
		    : p == CHECKREMOTE_SCHEMA
		        ? "the table's key schema is wrong"
		        : "the clock is off");
	return p;
}

/* --- the probes ----------------------------------------------------------- */

static void cr_next(struct cr *c);

static void
cr_free(struct cr *c)
{
	if (c == NULL)
		return;
	buf_cleanup(&c->key);
	buf_cleanup(&c->copy_key);
	buf_cleanup(&c->obj_arn);
	buf_cleanup(&c->copy_arn);
	buf_cleanup(&c->missing);
	free(c);
}

/* After the callback of the step in flight: on to the next, or free what a
 * timed-out run left behind. */
static int
cr_resume(struct cr *c)
{
	c->pending = 0;
	if (!c->abandoned)
		return 1;
	cr_free(c);
	return 0;
}

/* Versioning is advice, not a permission the daemon needs: with it every
 * delete (ours or a mistaken one) can be undone. Never a failure. */
static void
cr_versioning(struct cr *c, const struct s3_result *r, const struct err *e)
{
	char arn[300], msg[800];

	snprintf(arn, sizeof(arn), "arn:%s:s3:::%s", c->partition,
	         c->cfg->s3.bucket);
	if (e != NULL)
		snprintf(
		    msg, sizeof(msg),
		    "cannot tell (%s; s3:GetBucketVersioning on the bucket "
		    "is not needed by the daemon, only to see this)",
		    e->code[0] != '\0' ? e->code : e->message);
	else if (strcmp(r->versioning, "Enabled") == 0)
		snprintf(msg, sizeof(msg),
		         "on: every delete and overwrite can be undone");
	else
		snprintf(
		    msg, sizeof(msg),
		    "%s: a delete cannot be undone; turn versioning on, "
		    "with a lifecycle rule that expires noncurrent versions "
		    "(see the README)",
		    r->versioning[0] != '\0' ? r->versioning : "off");
	cr_line(c,
	        e == NULL && strcmp(r->versioning, "Enabled") == 0 ? "info"
	                                                           : "note",
	        "s3 versioning", arn, msg);
}

static void
cr_on_s3(const struct s3_result *r, const struct err *e, void *arg)
{
	struct cr *c = arg;
	const char *obj = c->obj_arn.data, *copy = c->copy_arn.data;
	char note[600];

	(void)r;
	if (!cr_resume(c))
		return;
	switch (c->step) {
	case CR_S3_PUT:
		c->put_ok = e == NULL;
		c->obj_left = e == NULL;
		cr_check(c, &c->s3t, "s3:PutObject", obj, NULL, e);
		break;
	case CR_S3_GET:
		c->get_denied =
		    cr_check(c, &c->s3t, "s3:GetObject", obj, "(HeadObject)",
		             e) == CHECKREMOTE_DENIED;
		break;
	case CR_S3_COPY:
		c->copy_ok = e == NULL;
		c->copy_left = e == NULL;
		snprintf(note, sizeof(note),
		         "(CopyObject, as a rename does; it also needs "
		         "s3:GetObject on %s)",
		         obj);
		if (cr_check(c, &c->s3t, "s3:PutObject", copy, note, e) ==
		        CHECKREMOTE_DENIED &&
		    !c->get_denied) {
			/* Either half of the copy may be the one refused. */
			buf_printf(&c->missing, " (or s3:GetObject on %s)",
			           obj);
		}
		break;
	case CR_S3_DEL_COPY:
		c->copy_left = e != NULL;
		cr_check(c, &c->s3t, "s3:DeleteObject", copy, NULL, e);
		break;
	case CR_S3_DEL:
		c->obj_left = c->obj_left && e != NULL;
		cr_check(c, &c->s3t, "s3:DeleteObject", obj, NULL, e);
		break;
	case CR_S3_VERSIONING:
		cr_versioning(c, r, e);
		break;
	case CR_S3_ABORT:
		/* Past the permission check, the made-up upload is unknown. */
		if (e != NULL && strcmp(e->code, "NoSuchUpload") == 0)
			e = NULL;
		cr_check(c, &c->s3t, "s3:AbortMultipartUpload", obj,
		         "(of a multipart upload that failed)", e);
		break;
	default:
		break;
	}
	c->step++;
	cr_next(c);
}

/* "Id (N, HASH) + Ts (S, RANGE)" into why; 0 when the key is FileName (S)
 * alone, as imgsync writes it. */
static int
cr_schema(json_t *table, char *why, size_t len)
{
	json_t *ks = json_object_get(table, "KeySchema");
	json_t *defs = json_object_get(table, "AttributeDefinitions");
	json_t *k, *d;
	size_t i, j;
	const char *fn_type = NULL;

	why[0] = '\0';
	json_array_foreach(ks, i, k)
	{
		const char *name =
		    json_string_value(json_object_get(k, "AttributeName"));
		const char *kt =
		    json_string_value(json_object_get(k, "KeyType"));
		const char *at = "?";
		size_t used;

		json_array_foreach(defs, j, d)
		{
			if (name != NULL &&
			    json_equal(json_object_get(d, "AttributeName"),
			               json_object_get(k, "AttributeName")))
				at = json_string_value(
				    json_object_get(d, "AttributeType"));
		}
		if (at == NULL)
			at = "?";
		used = strlen(why);
		snprintf(why + used, len - used, "%s%s (%s, %s)",
		         i > 0 ? " + " : "", name ? name : "?", at,
		         kt ? kt : "?");
		if (name != NULL && strcmp(name, "FileName") == 0 &&
		    kt != NULL && strcmp(kt, "HASH") == 0)
			fn_type = at;
	}
	if (json_array_size(ks) == 1 && fn_type != NULL &&
	    strcmp(fn_type, "S") == 0)
		return 0;
	return -1;
}

static void
cr_on_describe(struct cr *c, json_t *resp, const struct err *e)
{
	json_t *table = json_object_get(resp, "Table");
	const char *arn = json_string_value(json_object_get(table, "TableArn"));
	const char *status =
	    json_string_value(json_object_get(table, "TableStatus"));
	char why[512], msg[768];

	if (arn != NULL && e == NULL)
		snprintf(c->table_arn, sizeof(c->table_arn), "%s", arn);
	if (cr_check(c, &c->ddbt, "dynamodb:DescribeTable", c->table_arn,
	             "(reads the key schema)", e) != CHECKREMOTE_OK) {
		cr_skip(c, "key schema", c->table_arn,
		        "not checked: needs dynamodb:DescribeTable");
		return;
	}
	if (cr_schema(table, why, sizeof(why)) == -1) {
		snprintf(msg, sizeof(msg),
		         "the table's key is %s; imgsync needs FileName "
		         "(string) as the only key (HASH): use a table keyed "
		         "that way",
		         why[0] ? why : "unknown");
		cr_problem(c, CHECKREMOTE_SCHEMA, "key schema", c->table_arn,
		           msg, NULL);
		snprintf(c->ddb_stop, sizeof(c->ddb_stop),
		         "not checked: the table's key schema is wrong");
		return;
	}
	if (status != NULL && strcmp(status, "ACTIVE") != 0 &&
	    strcmp(status, "UPDATING") != 0) {
		snprintf(msg, sizeof(msg),
		         "the table is %s, not ACTIVE: wait until it is, or "
		         "check dynamodb.table",
		         status);
		cr_problem(c, CHECKREMOTE_TABLE, "table status", c->table_arn,
		           msg, NULL);
		snprintf(c->ddb_stop, sizeof(c->ddb_stop),
		         "not checked: the table is %s", status);
		return;
	}
	cr_ok(c, "key schema", c->table_arn, "FileName (S, HASH) alone");
}

/* AWS names the resource it refused: "... on resource: arn:...". */
static void
cr_learn_arn(struct cr *c, const struct err *e)
{
	const char *p = strstr(e->message, "on resource: ");
	size_t n;

	if (p == NULL)
		return;
	p += strlen("on resource: ");
	n = strcspn(p, " \t\n\"");
	if (strncmp(p, "arn:", 4) == 0 && n < sizeof(c->table_arn)) {
		memcpy(c->table_arn, p, n);
		c->table_arn[n] = '\0';
	}
}

static void
cr_on_ddb(json_t *resp, const struct err *e, void *arg)
{
	struct cr *c = arg;
	const char *arn = c->table_arn;

	if (!cr_resume(c))
		return;
	if (e != NULL)
		cr_learn_arn(c, e);
	switch (c->step) {
	case CR_DDB_DESCRIBE:
		cr_on_describe(c, resp, e);
		break;
	case CR_DDB_PUT:
		/* The item was there already (a probe of ours that a
		 * crash left): the write was permitted. */
		if (e != NULL &&
		    strcmp(e->code, "ConditionalCheckFailedException") == 0)
			e = NULL;
		c->item_made = e == NULL;
		c->item_left = e == NULL;
		cr_check(c, &c->ddbt, "dynamodb:PutItem", arn,
		         "(conditional, as the daemon writes)", e);
		break;
	case CR_DDB_GET:
		cr_check(c, &c->ddbt, "dynamodb:GetItem", arn, "(/getitem)", e);
		break;
	case CR_DDB_SCAN:
		cr_check(c, &c->ddbt, "dynamodb:Scan", arn, "(/getall)", e);
		break;
	case CR_DDB_DEL:
		c->item_left = c->item_left && e != NULL;
		cr_check(c, &c->ddbt, "dynamodb:DeleteItem", arn, NULL, e);
		break;
	default:
		break;
	}
	c->step++;
	cr_next(c);
}

static void
cr_clock(struct cr *c)
{
	int64_t s3skew = aws_client_skew(s3_client(c->s3));
	int64_t dskew = aws_client_skew(dynamo_client(c->ddb));
	int64_t skew = s3skew != 0 ? s3skew : dskew;
	char msg[512];

	if (skew == 0 && !c->answered) {
		cr_skip(c, "clock", "local", "not checked: no server answered");
		return;
	}
	if (skew == 0) {
		cr_ok(c, "clock", "local", "no server refused the local time");
		return;
	}
	snprintf(msg, sizeof(msg),
	         "the local clock is %" PRId64 " s %s the %s server's (its "
	         "Date header); it refused the requests until imgsync "
	         "corrected for it: set the clock (NTP)",
	         skew < 0 ? -skew : skew, skew > 0 ? "behind" : "ahead of",
	         s3skew != 0 ? "S3" : "DynamoDB");
	cr_problem(c, CHECKREMOTE_CLOCK, "clock", "local", msg, NULL);
}

static json_t *
cr_item_key(struct cr *c)
{
	return json_pack("{s:{s:s}}", "FileName", "S", c->key.data);
}

/* The S3 half. Returns 1 when a call is in flight. */
static int
cr_start_s3(struct cr *c, struct err *e)
{
	const char *obj = c->obj_arn.data, *copy = c->copy_arn.data;
	struct s3_body body;
	int rc = -1;

	switch (c->step) {
	case CR_S3_PUT:
		if (c->s3_stop[0] != '\0') {
			cr_skip(c, "s3:PutObject", obj, c->s3_stop);
			return 0;
		}
		memset(&body, 0, sizeof(body));
		body.data = CR_BODY;
		body.fd = -1;
		body.len = strlen(CR_BODY);
		rc = s3_put_object(c->s3, c->key.data, &body, "text/plain",
		                   NULL, 0, cr_on_s3, c, e);
		break;
	case CR_S3_GET:
	case CR_S3_COPY:
		if (c->s3_stop[0] != '\0' || !c->put_ok) {
			cr_skip(c,
			        c->step == CR_S3_GET ? "s3:GetObject"
			                             : "s3:PutObject",
			        c->step == CR_S3_GET ? obj : copy,
			        c->s3_stop[0]
			            ? c->s3_stop
			            : "not checked: needs the probe "
			              "object, which s3:PutObject could "
			              "not write");
			return 0;
		}
		rc = c->step == CR_S3_GET
		         ? s3_head_object(c->s3, c->key.data, cr_on_s3, c, e)
		         : s3_copy_object(c->s3, c->key.data, c->copy_key.data,
		                          cr_on_s3, c, e);
		break;
	case CR_S3_DEL_COPY:
		if (!c->copy_ok)
			return 0;
		rc = s3_delete_object(c->s3, c->copy_key.data, NULL, cr_on_s3,
		                      c, e);
		break;
	case CR_S3_DEL:
		/* Deleting a missing key is permitted or not all the same. */
		if (c->s3_stop[0] != '\0' && !c->put_ok) {
			cr_skip(c, "s3:DeleteObject", obj, c->s3_stop);
			return 0;
		}
		rc = s3_delete_object(c->s3, c->key.data, NULL, cr_on_s3, c, e);
		break;
	case CR_S3_ABORT:
		if (c->s3_stop[0] != '\0') {
			cr_skip(c, "s3:AbortMultipartUpload", obj, c->s3_stop);
			return 0;
		}
		rc = s3_abort_multipart(c->s3, c->key.data, CR_UPLOAD_ID,
		                        cr_on_s3, c, e);
		break;
	case CR_S3_VERSIONING:
		if (c->s3_stop[0] != '\0')
			return 0;
		rc = s3_get_versioning(c->s3, cr_on_s3, c, e);
		break;
	default:
		return 0;
	}
	return rc == 0 ? 1 : -1;
}

static const char *
cr_ddb_action(enum cr_step step)
{
	switch (step) {
	case CR_DDB_DESCRIBE:
		return "dynamodb:DescribeTable";
	case CR_DDB_PUT:
		return "dynamodb:PutItem";
	case CR_DDB_GET:
		return "dynamodb:GetItem";
	case CR_DDB_SCAN:
		return "dynamodb:Scan";
	default:
		return "dynamodb:DeleteItem";
	}
}

/* The DynamoDB half. Returns 1 when a call is in flight. */
static int
cr_start_ddb(struct cr *c, struct err *e)
{
	const char *table = c->cfg->dynamodb.table;
	json_t *body = NULL, *item;
	int rc = -1;

	if (c->ddb_stop[0] != '\0' &&
	    !(c->step == CR_DDB_DEL && c->item_made)) {
		cr_skip(c, cr_ddb_action(c->step), c->table_arn, c->ddb_stop);
		return 0;
	}
	switch (c->step) {
	case CR_DDB_DESCRIBE:
		body = json_pack("{s:s}", "TableName", table);
		rc = body != NULL ? dynamo_call(c->ddb, "DescribeTable", body,
		                                cr_on_ddb, c, e)
		                  : -1;
		break;
	case CR_DDB_PUT:
		item = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "FileName", "S",
		                 c->key.data, "Bucket", "S", c->cfg->s3.bucket,
		                 "Source", "S", c->source);
		rc = item != NULL
		         ? dynamo_put_item(c->ddb, table, item,
		                           "attribute_not_exists(FileName)",
		                           NULL, NULL, cr_on_ddb, c, e)
		         : -1;
		json_decref(item);
		break;
	case CR_DDB_GET:
		body = cr_item_key(c);
		rc = body != NULL ? dynamo_get_item(c->ddb, table, body, 1,
		                                    cr_on_ddb, c, e)
		                  : -1;
		break;
	case CR_DDB_SCAN:
		rc = dynamo_scan(c->ddb, table, NULL, 1, cr_on_ddb, c, e);
		break;
	case CR_DDB_DEL:
		body = cr_item_key(c);
		rc = body != NULL
		         ? dynamo_delete_item(c->ddb, table, body, NULL, NULL,
		                              NULL, cr_on_ddb, c, e)
		         : -1;
		break;
	default:
		return 0;
	}
	json_decref(body);
	if (rc == -1 && e->kind == ERR_NONE)
		err_set(e, ERR_SYS, "out of memory");
	return rc == 0 ? 1 : -1;
}

/* Starts steps until one is in flight or all are done. */
static void
cr_next(struct cr *c)
{
	struct err e;
	int rc;

	while (c->step < CR_DONE) {
		err_clear(&e);
		if (c->step == CR_CLOCK) {
			cr_clock(c);
			rc = 0;
		} else if (c->step < CR_DDB_DESCRIBE) {
			rc = cr_start_s3(c, &e);
		} else {
			rc = cr_start_ddb(c, &e);
		}
		if (rc == 1) {
			c->pending = 1;
			return;
		}
		if (rc == -1)
			cr_problem(c, CHECKREMOTE_OTHER, "start", "local",
			           e.message, &e);
		c->step++;
	}
	c->done = 1;
}

/* --- running it all --------------------------------------------------------
 */

static const char *
cr_partition(const char *region)
{
	if (strncmp(region, "cn-", 3) == 0)
		return "aws-cn";
	if (strncmp(region, "us-gov-", 7) == 0)
		return "aws-us-gov";
	return "aws";
}

/* "<prefix>.imgsync-probe-<host>-<pid>": one per run, never an image. */
static void
cr_probe_key(struct cr *c)
{
	char host[256];
	char *p;

	if (gethostname(host, sizeof(host) - 1) == -1)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	host[64] = '\0';
	for (p = host; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			*p = '_';
	buf_printf(&c->key, "%s.imgsync-probe-%s-%ld", c->cfg->s3.prefix, host,
	           (long)getpid());
	buf_printf(&c->copy_key, "%s.copy", c->key.data);
}

static struct cr *
cr_new(const struct config *cfg, struct s3 *s3, struct dynamo *ddb,
       const char *source, FILE *out, struct err *e)
{
	struct aws_client *sc = s3_client(s3), *dc = dynamo_client(ddb);
	struct cr *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_sys(e, "check-remote: calloc");
		return NULL;
	}
	c->cfg = cfg;
	c->s3 = s3;
	c->ddb = ddb;
	c->source = source != NULL ? source : "imgsync";
	c->out = out;
	c->worst = CHECKREMOTE_OK;
	c->s3t.service = "s3";
	c->s3t.name = cfg->s3.bucket;
	c->s3t.endpoint = aws_client_endpoint(sc);
	c->s3t.region = aws_client_region(sc);
	c->ddbt.service = "dynamodb";
	c->ddbt.name = cfg->dynamodb.table;
	c->ddbt.endpoint = aws_client_endpoint(dc);
	c->ddbt.region = aws_client_region(dc);
	c->partition = cr_partition(c->s3t.region);
	buf_init(&c->key, 0);
	buf_init(&c->copy_key, 0);
	buf_init(&c->obj_arn, 0);
	buf_init(&c->copy_arn, 0);
	buf_init(&c->missing, 0);
	cr_probe_key(c);
	buf_printf(&c->obj_arn, "arn:%s:s3:::%s/%s", c->partition,
	           cfg->s3.bucket, c->key.data);
	buf_printf(&c->copy_arn, "arn:%s:s3:::%s/%s", c->partition,
	           cfg->s3.bucket, c->copy_key.data);
	/* The account is learnt from DescribeTable (or an AccessDenied). */
	snprintf(c->table_arn, sizeof(c->table_arn),
	         "arn:%s:dynamodb:%s:*:table/%s", cr_partition(c->ddbt.region),
	         c->ddbt.region, cfg->dynamodb.table);
	if (buf_cstr(&c->missing) == NULL || buf_cstr(&c->obj_arn) == NULL ||
	    buf_cstr(&c->copy_arn) == NULL) {
		err_sys(e, "check-remote: out of memory");
		cr_free(c);
		return NULL;
	}
	return c;
}

static void
cr_left(struct cr *c, int left, int maybe, const char *what)
{
	if (left || maybe)
		fprintf(c->out, "note: %s %s left: delete it by hand\n", what,
		        left ? "is" : "may be");
}

static void
cr_leftovers(struct cr *c)
{
	struct buf what;
	enum cr_step s = c->step;
	int p = c->pending;

	buf_init(&what, 0);
	buf_printf(&what, "the probe object s3://%s/%s", c->cfg->s3.bucket,
	           c->key.data);
	if (buf_cstr(&what) != NULL)
		cr_left(c, c->obj_left, p && (s == CR_S3_PUT || s == CR_S3_DEL),
		        what.data);
	buf_reset(&what);
	buf_printf(&what, "the probe object s3://%s/%s", c->cfg->s3.bucket,
	           c->copy_key.data);
	if (buf_cstr(&what) != NULL)
		cr_left(c, c->copy_left,
		        p && (s == CR_S3_COPY || s == CR_S3_DEL_COPY),
		        what.data);
	buf_reset(&what);
	buf_printf(&what, "the probe item FileName=%s in the table %s",
	           c->key.data, c->cfg->dynamodb.table);
	if (buf_cstr(&what) != NULL)
		cr_left(c, c->item_left,
		        p && s >= CR_DDB_PUT && s <= CR_DDB_DEL, what.data);
	buf_cleanup(&what);
}

/* The call in flight when time ran out, named as its line would be. */
static void
cr_timeout(struct cr *c)
{
	/* Indexed by the S3 steps, CR_S3_PUT to CR_S3_VERSIONING. */
	static const char *const s3_actions[] = {
	    "s3:PutObject",          "s3:GetObject",
	    "s3:PutObject",          "s3:DeleteObject",
	    "s3:DeleteObject",       "s3:AbortMultipartUpload",
	    "s3:GetBucketVersioning"};
	const struct checkremote_target *t =
	    c->step < CR_DDB_DESCRIBE ? &c->s3t : &c->ddbt;
	const char *action, *resource;
	char msg[512];

	if (c->step < CR_DDB_DESCRIBE) {
		action = s3_actions[c->step];
		resource = c->step == CR_S3_COPY || c->step == CR_S3_DEL_COPY
		               ? c->copy_arn.data
		               : c->obj_arn.data;
	} else {
		action = cr_ddb_action(c->step);
		resource = c->table_arn;
	}
	snprintf(msg, sizeof(msg),
	         "no answer from the endpoint %s within %d s: check "
	         "%s.endpoint and the network",
	         t->endpoint, CHECKREMOTE_TIMEOUT_MS / 1000, t->service);
	cr_problem(c, CHECKREMOTE_ENDPOINT, action, resource, msg, NULL);
}

/* AWS answers AccessDenied, not NoSuchBucket, for a bucket (or table) that
 * the policy does not cover: when every call was refused, the name may be
 * the mistake rather than the policy. */
static void
cr_all_denied(struct cr *c)
{
	if (c->s3_calls > 1 && c->s3_denied == c->s3_calls)
		fprintf(
		    c->out,
		    "note: every S3 call was denied: if the policy does "
		    "allow these actions on arn:%s:s3:::%s/*, check s3.bucket "
		    "(\"%s\"): for a bucket the policy does not cover AWS "
		    "answers AccessDenied, not NoSuchBucket\n",
		    c->partition, c->cfg->s3.bucket, c->cfg->s3.bucket);
	if (c->ddb_calls > 1 && c->ddb_denied == c->ddb_calls)
		fprintf(c->out,
		        "note: every DynamoDB call was denied: if the policy "
		        "does allow these actions on the table, check "
		        "dynamodb.table (\"%s\") and the region (%s)\n",
		        c->cfg->dynamodb.table, c->ddbt.region);
}

static void
cr_summary(struct cr *c)
{
	cr_leftovers(c);
	cr_all_denied(c);
	if (c->failed == 0) {
		fprintf(
		    c->out,
		    "result: all %u checks passed: these credentials can do "
		    "everything imgsyncd does\n",
		    c->checks);
	} else {
		fprintf(c->out,
		        "result: %u failed, %u passed, %u not checked\n",
		        c->failed, c->checks - c->failed, c->skipped);
		if (c->missing.len > 0)
			fprintf(c->out, "missing IAM actions: %s\n",
			        c->missing.data);
		fprintf(c->out, "main problem: %s\n", c->first.message);
	}
	fflush(c->out);
}

int
checkremote_run(const struct config *cfg, struct loop *loop, struct s3 *s3,
                struct dynamo *ddb, const char *source, FILE *out,
                struct err *e)
{
	struct cr *c;
	uint64_t deadline;
	int rc;

	c = cr_new(cfg, s3, ddb, source, out, e);
	if (c == NULL)
		return -1;
	fprintf(out,
	        "checking s3://%s/%s at %s (region %s) and the table %s at %s "
	        "(region %s)\n",
	        cfg->s3.bucket, cfg->s3.prefix, c->s3t.endpoint, c->s3t.region,
	        cfg->dynamodb.table, c->ddbt.endpoint, c->ddbt.region);
	deadline = loop_now_ms() + CHECKREMOTE_TIMEOUT_MS;
	cr_next(c);
	while (!c->done) {
		if (loop_now_ms() >= deadline) {
			cr_timeout(c);
			break;
		}
		if (loop_run_once(loop, CR_TICK_MS, e) == -1) {
			rc = -1;
			goto abandon;
		}
	}
	cr_summary(c);
	rc = c->failed > 0 ? 1 : 0;
	if (rc == 1)
		*e = c->first;
abandon:
	/* The call still in flight frees c when the client cancels it. */
	if (c->pending)
		c->abandoned = 1;
	else
		cr_free(c);
	return rc;
}
