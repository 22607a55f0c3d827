/*
 * checkremote_report: what --check-remote prints: one line per check
 * ("ok", "FAIL ... : why", "skip ... : why"), the most fundamental problem
 * so far (the one the exit status says), and the summary naming every
 * missing IAM action and anything of ours left behind.
 */
#include <stdio.h>
#include <string.h>

#include "checkremote_impl.h"
#include "item.h"

/* Lower is more fundamental: a wrong endpoint explains everything else. */
static int
cr_rank(enum checkremote_problem p)
{
	return p == CHECKREMOTE_OK ? 100 : (int)p;
}

void
checkremote_report_line(struct cr *c, const char *status, const char *action,
                        const char *resource, const char *detail)
{
	const char *sep = strcmp(status, "ok") == 0 ? "  " : " : ";

	fprintf(c->out, "%-4s %-26s %s%s%s\n", status, action, resource,
	        detail != NULL && detail[0] ? sep : "",
	        detail != NULL ? detail : "");
	fflush(c->out);
}

void
checkremote_report_skip(struct cr *c, const char *action, const char *resource,
                        const char *why)
{
	c->skipped++;
	checkremote_report_line(c, "skip", action, resource, why);
}

void
checkremote_report_ok(struct cr *c, const char *action, const char *resource,
                      const char *note)
{
	c->checks++;
	checkremote_report_line(c, "ok", action, resource, note);
}

/* A failed check: its line, the most fundamental problem so far, and
 * the error kind checkremote_exit_code() reads. */
void
checkremote_report_problem(struct cr *c, enum checkremote_problem p,
                           const char *action, const char *resource,
                           const char *msg, const struct err *e)
{
	c->checks++;
	c->failed++;
	checkremote_report_line(c, "FAIL", action, resource, msg);
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

enum checkremote_problem
checkremote_report_check(struct cr *c, const struct checkremote_target *t,
                         const char *action, const char *resource,
                         const char *note, const struct err *e)
{
	enum checkremote_problem p;
	char msg[768];
	char *stop = checkremote_is_s3(t) ? c->s3_stop : c->ddb_stop;

	if (checkremote_is_s3(t))
		c->s3_calls++;
	else
		c->ddb_calls++;
	if (e == NULL || e->kind == ERR_HTTP)
		c->answered = 1;
	if (e == NULL) {
		checkremote_report_ok(c, action, resource, note);
		return CHECKREMOTE_OK;
	}
	p = checkremote_explain(t, e, msg, sizeof(msg));
	checkremote_report_problem(c, p, action, resource, msg, e);
	if (p == CHECKREMOTE_DENIED) {
		if (checkremote_is_s3(t))
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
		    stop, sizeof(c->s3_stop), "not checked: %.200s",
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
	buf_printf(&what, "the probe item " ITEM_FILENAME "=%s in the table %s",
	           c->key.data, c->cfg->dynamodb.table);
	if (buf_cstr(&what) != NULL)
		cr_left(c, c->item_left,
		        p && s >= CR_DDB_PUT && s <= CR_DDB_DEL, what.data);
	buf_cleanup(&what);
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

void
checkremote_report_summary(struct cr *c)
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
