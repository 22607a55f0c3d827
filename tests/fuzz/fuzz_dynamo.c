/*
 * libFuzzer target over DynamoDB's JSON answers in lib/dynamo.c:
 * dynamo_parse_error (public, the aws_error_parser: JSON, or XML from some
 * emulators), and the answer callbacks of every call (dynamo_on_resp) and
 * of BatchWriteItem (dynamo_batch_on_resp, UnprocessedItems), which are
 * static and only reached through a signed request: lib/dynamo.c is
 * included here and they are called as aws.c calls them. What a caller
 * then reads of GetItem's Item and Scan's Items and LastEvaluatedKey goes
 * through dynamo_get_s. Built and run by tests/fuzz/run.
 *
 * Input: a response body, or a whole response (see fuzz_resp.h). Every
 * input goes through every parser. A broken invariant abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/dynamo.c" /* for its static response callbacks */
#include "fuzz_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_err(const struct err *e)
{
	FUZZ_TERMINATED(e->code);
	FUZZ_TERMINATED(e->request_id);
	FUZZ_TERMINATED(e->message);
}

static void
fuzz_parse_error(struct http_response *resp)
{
	long status = resp->status;
	struct err e;
	int rc;

	err_clear(&e);
	rc = dynamo_parse_error(resp, &e);
	check_err(&e);
	if (status >= 200 && status <= 299) {
		if (rc != 0 || e.kind != ERR_NONE)
			abort();
		/* The same body on a refusal. */
		resp->status = 400;
		err_clear(&e);
		rc = dynamo_parse_error(resp, &e);
		check_err(&e);
	}
	if (rc != 1 || e.kind != ERR_HTTP || e.http_status != resp->status ||
	    e.message[0] == '\0')
		abort();
	resp->status = status;
}

/* What callers read of an item: every attribute as S. */
static void
read_item(json_t *item)
{
	const char *name, *v;
	json_t *value;

	json_object_foreach(item, name, value)
	{
		v = dynamo_get_s(item, name);
		if (v != NULL)
			(void)strlen(v);
	}
	(void)dynamo_get_s(item, "FileName");
}

struct done {
	int calls;
};

static void
on_done(json_t *resp, const struct err *e, void *arg)
{
	struct done *d = arg;
	size_t i;

	d->calls++;
	if ((resp == NULL) == (e == NULL))
		abort();
	if (e != NULL) {
		if (e->kind == ERR_NONE || e->message[0] == '\0')
			abort();
		check_err(e);
		return;
	}
	read_item(json_object_get(resp, "Item"));
	for (i = 0; i < json_array_size(json_object_get(resp, "Items")); i++)
		read_item(json_array_get(json_object_get(resp, "Items"), i));
	read_item(json_object_get(resp, "LastEvaluatedKey"));
	(void)json_integer_value(json_object_get(resp, "Count"));
}

static struct dynamo_op *
new_op(struct dynamo *d, struct done *done)
{
	struct dynamo_op *op;
	struct err e;

	memset(done, 0, sizeof(*done));
	err_clear(&e);
	op = dynamo_op_new(d, on_done, done, &e);
	if (op == NULL)
		abort();
	return op;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct loop *l;
	struct http_response resp;
	struct dynamo d;
	struct dynamo_op *op;
	struct done done;
	struct err e;

	if (l == NULL) {
		err_clear(&e);
		l = loop_new(&e);
		if (l == NULL)
			abort();
	}
	memset(&d, 0, sizeof(d));
	d.loop = l;
	fuzz_resp_init(&resp, data, size);

	fuzz_parse_error(&resp);

	op = new_op(&d, &done);
	dynamo_on_resp(&resp, NULL, op);
	if (done.calls != 1)
		abort();

	/* BatchWriteItem of table "t": done, or the unprocessed requests
	 * kept for a retry on a timer (the op lives on: freed here). */
	op = new_op(&d, &done);
	op->table = strdup("t");
	op->pending = json_array();
	if (op->table == NULL || op->pending == NULL)
		abort();
	dynamo_batch_on_resp(&resp, NULL, op);
	if (done.calls == 0) {
		if (op->timer == NULL || json_array_size(op->pending) == 0)
			abort();
		dynamo_op_free(op);
	} else if (done.calls != 1) {
		abort();
	}

	fuzz_resp_cleanup(&resp);
	return 0;
}
