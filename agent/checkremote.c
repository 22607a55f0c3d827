/*
 * checkremote: imgsyncd --check-remote, the run. Makes every call the
 * daemon makes, one step at a time on the otherwise idle loop (the S3
 * probes in checkremote_s3.c, the DynamoDB ones in checkremote_ddb.c),
 * then judges the clock from the skew the clients corrected; prints a line
 * per check and the summary (checkremote_report.c), each failure explained
 * by checkremote_explain.c. Every probe call completes into a callback
 * here: the service's file judges the answer, this file moves on, so the
 * probe files never call back into the run. Gives up after
 * CHECKREMOTE_TIMEOUT_MS, naming the call that did not come back and
 * anything of ours it may have left.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "aws.h"
#include "checkremote_impl.h"
#include "errclass.h"

#define CR_TICK_MS 200

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
	if (c->mp_fd != -1)
		close(c->mp_fd);
	free(c);
}

/* In a call's callback, first: 0 when the run was abandoned (timed out)
 * and c is freed now; else 1, the call no longer pending. */
static int
cr_resume(struct cr *c)
{
	c->pending = 0;
	if (!c->abandoned)
		return 1;
	cr_free(c);
	return 0;
}

static void
cr_clock(struct cr *c)
{
	int64_t s3skew = aws_client_skew(s3_client(c->s3));
	int64_t dskew = aws_client_skew(dynamo_client(c->ddb));
	int64_t skew = s3skew != 0 ? s3skew : dskew;
	char msg[512];

	if (skew == 0 && !c->answered) {
		checkremote_report_skip(c, "clock", "local",
		                        "not checked: no server answered");
		return;
	}
	if (skew == 0) {
		checkremote_report_ok(c, "clock", "local",
		                      "no server refused the local time");
		return;
	}
	snprintf(msg, sizeof(msg),
	         "the local clock is %" PRId64 " s %s the %s server's (its "
	         "Date header); it refused the requests until imgsync "
	         "corrected for it: set the clock (NTP)",
	         skew < 0 ? -skew : skew, skew > 0 ? "behind" : "ahead of",
	         s3skew != 0 ? "S3" : "DynamoDB");
	checkremote_report_problem(c, CHECKREMOTE_CLOCK, "clock", "local", msg,
	                           NULL);
}

static void cr_on_s3(const struct s3_result *r, const struct err *e, void *arg);
static void cr_on_ddb(json_t *resp, const struct err *e, void *arg);

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
		} else if (c->step == CR_THUMB_HELPER) {
			checkremote_thumb_check(c);
			rc = 0;
		} else if (c->step < CR_DDB_DESCRIBE) {
			rc = checkremote_s3_start(c, cr_on_s3, &e);
		} else {
			rc = checkremote_ddb_start(c, cr_on_ddb, &e);
		}
		if (rc == 1) {
			c->pending = 1;
			return;
		}
		if (rc == -1)
			checkremote_report_problem(c, CHECKREMOTE_OTHER,
			                           "start", "local", e.message,
			                           &e);
		c->step++;
	}
	c->done = 1;
}

/* The callbacks of every probe call: the service's file judges the
 * answer, the run moves on. */
static void
cr_on_s3(const struct s3_result *r, const struct err *e, void *arg)
{
	struct cr *c = arg;

	if (!cr_resume(c))
		return;
	checkremote_s3_answer(c, r, e);
	c->step++;
	cr_next(c);
}

static void
cr_on_ddb(json_t *resp, const struct err *e, void *arg)
{
	struct cr *c = arg;

	if (!cr_resume(c))
		return;
	checkremote_ddb_answer(c, resp, e);
	c->step++;
	cr_next(c);
}

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
       struct aws_client *kms, const char *source, FILE *out, struct err *e)
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
	c->kms = kms;
	c->s3_done = cr_on_s3;
	c->mp_fd = -1;
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

/* The call in flight when time ran out, named as its line would be. */
static void
cr_timeout(struct cr *c)
{
	const struct checkremote_target *t =
	    c->step < CR_DDB_DESCRIBE ? &c->s3t : &c->ddbt;
	const char *action, *resource;
	char msg[512];

	if (c->step < CR_DDB_DESCRIBE) {
		action = checkremote_s3_action(c->step);
		resource = c->step == CR_S3_COPY || c->step == CR_S3_DEL_COPY
		               ? c->copy_arn.data
		               : c->obj_arn.data;
	} else {
		action = checkremote_ddb_action(c->step);
		resource = c->table_arn;
	}
	snprintf(msg, sizeof(msg),
	         "no answer from the endpoint %s within %d s: check "
	         "%s.endpoint and the network",
	         t->endpoint, CHECKREMOTE_TIMEOUT_MS / 1000, t->service);
	checkremote_report_problem(c, CHECKREMOTE_ENDPOINT, action, resource,
	                           msg, NULL);
}

int
checkremote_run(const struct config *cfg, struct loop *loop, struct s3 *s3,
                struct dynamo *ddb, struct aws_client *kms, const char *source,
                FILE *out, struct err *e)
{
	struct cr *c;
	uint64_t deadline;
	int rc;

	c = cr_new(cfg, s3, ddb, kms, source, out, e);
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
	checkremote_report_summary(c);
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
		return err_classify(e) == ERRC_ACCESS ? EX_NOPERM : 1;
	default:
		return 1;
	}
}
