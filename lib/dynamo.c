#include "dynamo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retry.h"
#include "xml.h"

#define DYNAMO_MAX_RESPONSE (16u * 1024u * 1024u)

struct dynamo {
	struct loop *loop;
	struct aws_client *client;
	uint64_t rng;
};

struct dynamo_op {
	struct dynamo *d;
	dynamo_done_cb cb;
	void *arg;
	char *body; /* serialized request, borrowed by the aws call */
	/* batch write */
	char *table;
	json_t *pending;
	unsigned attempt;
	struct loop_timer *timer;
};

struct dynamo *
dynamo_new(struct loop *l, struct aws_client *client, struct err *e)
{
	struct dynamo *d;

	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		err_sys(e, "dynamo: calloc");
		return NULL;
	}
	d->loop = l;
	d->client = client;
	aws_client_set_protocol(client, SIGV4_GENERIC, dynamo_parse_error);
	d->rng = (uint64_t)(uintptr_t)d ^ 0x5851f42d4c957f2dull;
	return d;
}

void
dynamo_free(struct dynamo *d)
{
	free(d);
}

struct aws_client *
dynamo_client(const struct dynamo *d)
{
	return d->client;
}

static void
dynamo_op_free(struct dynamo_op *op)
{
	loop_timer_free(op->timer);
	json_decref(op->pending);
	free(op->table);
	free(op->body);
	free(op);
}

int
dynamo_parse_error(const struct http_response *resp, struct err *e)
{
	json_t *doc, *t, *m;
	const char *type, *hash;
	json_error_t je;
	char msg[sizeof(e->message)];

	if (resp->status >= 200 && resp->status < 300)
		return 0;
	e->kind = ERR_HTTP;
	e->http_status = resp->status;
	(void)http_response_header(resp, "x-amzn-RequestId", e->request_id,
	                           sizeof(e->request_id));
	doc = resp->body.data != NULL
	          ? json_loadb(resp->body.data, resp->body.len, 0, &je)
	          : NULL;
	t = json_object_get(doc, "__type");
	m = json_object_get(doc, "message");
	if (m == NULL)
		m = json_object_get(doc, "Message");
	type = json_string_value(t);
	if (type != NULL) {
		hash = strrchr(type, '#');
		snprintf(e->code, sizeof(e->code), "%s",
		         hash != NULL ? hash + 1 : type);
	}
	snprintf(msg, sizeof(msg), "%s",
	         json_string_value(m) ? json_string_value(m) : "");
	/* Some emulators (moto's signature checker) answer in XML. */
	if (doc == NULL && xml_aws_error(resp->body.data, resp->body.len, e))
		snprintf(msg, sizeof(msg), "%s", e->message);
	snprintf(e->message, sizeof(e->message), "HTTP %ld %.64s%s%.400s",
	         resp->status, e->code[0] ? e->code : "error",
	         msg[0] ? ": " : "", msg);
	json_decref(doc);
	return 1;
}

static void
dynamo_on_resp(struct http_response *resp, const struct err *e, void *arg)
{
	struct dynamo_op *op = arg;
	json_error_t je;
	json_t *doc;
	struct err perr;

	if (e != NULL) {
		/* The error's document goes along: a cancelled transaction
		 * says there why, item by item. */
		doc = resp != NULL && resp->body.data != NULL
		          ? json_loadb(resp->body.data, resp->body.len, 0, &je)
		          : NULL;
		op->cb(json_is_object(doc) ? doc : NULL, e, op->arg);
		json_decref(doc);
		dynamo_op_free(op);
		return;
	}
	doc = json_loadb(resp->body.data ? resp->body.data : "{}",
	                 resp->body.data ? resp->body.len : 2, 0, &je);
	if (doc == NULL) {
		err_clear(&perr);
		err_set(&perr, ERR_PARSE, "dynamo: bad JSON answer: %s",
		        je.text);
		op->cb(NULL, &perr, op->arg);
	} else {
		op->cb(doc, NULL, op->arg);
	}
	json_decref(doc);
	dynamo_op_free(op);
}

static int
dynamo_send(struct dynamo_op *op, const char *target, json_t *body,
            aws_done_cb done, struct err *e)
{
	struct aws_request req;
	struct sigv4_kv h[2];
	char tgt[96];

	free(op->body);
	op->body = json_dumps(body, JSON_COMPACT);
	if (op->body == NULL) {
		err_set(e, ERR_INVALID, "dynamo: cannot serialize the request");
		return -1;
	}
	snprintf(tgt, sizeof(tgt), "DynamoDB_20120810.%s", target);
	h[0].name = "content-type";
	h[0].value = "application/x-amz-json-1.0";
	h[1].name = "x-amz-target";
	h[1].value = tgt;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/";
	req.headers = h;
	req.nheaders = 2;
	req.body = op->body;
	req.body_len = strlen(op->body);
	req.body_fd = -1;
	req.max_response = DYNAMO_MAX_RESPONSE;
	return aws_send(op->d->client, &req, done, op, e) != NULL ? 0 : -1;
}

static struct dynamo_op *
dynamo_op_new(struct dynamo *d, dynamo_done_cb cb, void *arg, struct err *e)
{
	struct dynamo_op *op;

	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		err_sys(e, "dynamo: calloc");
		return NULL;
	}
	op->d = d;
	op->cb = cb;
	op->arg = arg;
	return op;
}

int
dynamo_call(struct dynamo *d, const char *target, json_t *body,
            dynamo_done_cb cb, void *arg, struct err *e)
{
	struct dynamo_op *op;

	op = dynamo_op_new(d, cb, arg, e);
	if (op == NULL)
		return -1;
	if (dynamo_send(op, target, body, dynamo_on_resp, e) == -1) {
		dynamo_op_free(op);
		return -1;
	}
	return 0;
}

/* Adds the condition and its names and values to a request body. */
static int
dynamo_add_cond(json_t *body, const char *cond, json_t *names, json_t *values)
{
	int rc = 0;

	if (cond != NULL)
		rc |= json_object_set_new(body, "ConditionExpression",
		                          json_string(cond));
	if (names != NULL)
		rc |= json_object_set(body, "ExpressionAttributeNames", names);
	if (values != NULL)
		rc |=
		    json_object_set(body, "ExpressionAttributeValues", values);
	return rc == 0 ? 0 : -1;
}

static int
dynamo_call_owned(struct dynamo *d, const char *target, json_t *body,
                  dynamo_done_cb cb, void *arg, struct err *e)
{
	int rc;

	if (body == NULL) {
		err_set(e, ERR_INVALID, "dynamo: cannot build the request");
		return -1;
	}
	rc = dynamo_call(d, target, body, cb, arg, e);
	json_decref(body);
	return rc;
}

int
dynamo_put_item(struct dynamo *d, const char *table, json_t *item,
                const char *cond, json_t *names, json_t *values,
                dynamo_done_cb cb, void *arg, struct err *e)
{
	json_t *body =
	    json_pack("{s:s, s:O}", "TableName", table, "Item", item);

	if (body != NULL && dynamo_add_cond(body, cond, names, values) == -1) {
		json_decref(body);
		body = NULL;
	}
	return dynamo_call_owned(d, "PutItem", body, cb, arg, e);
}

int
dynamo_get_item(struct dynamo *d, const char *table, json_t *key,
                int consistent, dynamo_done_cb cb, void *arg, struct err *e)
{
	return dynamo_call_owned(d, "GetItem",
	                         json_pack("{s:s, s:O, s:b}", "TableName",
	                                   table, "Key", key, "ConsistentRead",
	                                   consistent),
	                         cb, arg, e);
}

int
dynamo_delete_item(struct dynamo *d, const char *table, json_t *key,
                   const char *cond, json_t *names, json_t *values,
                   dynamo_done_cb cb, void *arg, struct err *e)
{
	json_t *body = json_pack("{s:s, s:O}", "TableName", table, "Key", key);

	if (body != NULL && dynamo_add_cond(body, cond, names, values) == -1) {
		json_decref(body);
		body = NULL;
	}
	return dynamo_call_owned(d, "DeleteItem", body, cb, arg, e);
}

int
dynamo_scan(struct dynamo *d, const char *table, json_t *start_key,
            unsigned limit, dynamo_done_cb cb, void *arg, struct err *e)
{
	json_t *body = json_pack("{s:s}", "TableName", table);

	if (body != NULL && start_key != NULL &&
	    json_object_set(body, "ExclusiveStartKey", start_key) == -1) {
		json_decref(body);
		body = NULL;
	}
	if (body != NULL && limit > 0 &&
	    json_object_set_new(body, "Limit", json_integer(limit)) == -1) {
		json_decref(body);
		body = NULL;
	}
	return dynamo_call_owned(d, "Scan", body, cb, arg, e);
}

int
dynamo_transact_write(struct dynamo *d, json_t *actions, dynamo_done_cb cb,
                      void *arg, struct err *e)
{
	return dynamo_call_owned(d, "TransactWriteItems",
	                         json_pack("{s:O}", "TransactItems", actions),
	                         cb, arg, e);
}

/* --- BatchWriteItem ---------------------------------------------------- */

static int dynamo_batch_send(struct dynamo_op *op, struct err *e);

static void
dynamo_batch_fail(struct dynamo_op *op, const struct err *e)
{
	op->cb(NULL, e, op->arg);
	dynamo_op_free(op);
}

static void
dynamo_batch_on_timer(void *arg)
{
	struct dynamo_op *op = arg;
	struct err e;

	err_clear(&e);
	if (dynamo_batch_send(op, &e) == -1)
		dynamo_batch_fail(op, &e);
}

static void
dynamo_batch_on_resp(struct http_response *resp, const struct err *e, void *arg)
{
	struct dynamo_op *op = arg;
	struct retry_policy policy;
	json_t *doc, *left;
	json_error_t je;
	struct err perr;
	uint64_t delay;

	if (e != NULL) {
		dynamo_batch_fail(op, e);
		return;
	}
	err_clear(&perr);
	doc = json_loadb(resp->body.data ? resp->body.data : "{}",
	                 resp->body.data ? resp->body.len : 2, 0, &je);
	if (doc == NULL) {
		err_set(&perr, ERR_PARSE, "dynamo: bad JSON answer: %s",
		        je.text);
		dynamo_batch_fail(op, &perr);
		return;
	}
	left = json_object_get(json_object_get(doc, "UnprocessedItems"),
	                       op->table);
	if (json_array_size(left) == 0) {
		op->cb(doc, NULL, op->arg);
		json_decref(doc);
		dynamo_op_free(op);
		return;
	}
	/* DynamoDB accepted part of the batch: the rest is throttled. */
	json_decref(op->pending);
	op->pending = json_incref(left);
	json_decref(doc);
	memset(&policy, 0, sizeof(policy));
	delay = retry_backoff_ms(&policy, RETRY_THROTTLE, op->attempt++,
	                         &op->d->rng);
	if (op->timer == NULL) {
		op->timer = loop_timer_new(op->d->loop, dynamo_batch_on_timer,
		                           op, &perr);
		if (op->timer == NULL) {
			dynamo_batch_fail(op, &perr);
			return;
		}
	}
	loop_timer_set(op->timer, (int64_t)delay);
}

static int
dynamo_batch_send(struct dynamo_op *op, struct err *e)
{
	json_t *body;
	int rc;

	body = json_pack("{s:{s:O}}", "RequestItems", op->table, op->pending);
	if (body == NULL) {
		err_set(e, ERR_INVALID, "dynamo: cannot build the batch");
		return -1;
	}
	rc = dynamo_send(op, "BatchWriteItem", body, dynamo_batch_on_resp, e);
	json_decref(body);
	return rc;
}

int
dynamo_batch_write(struct dynamo *d, const char *table, json_t *requests,
                   dynamo_done_cb cb, void *arg, struct err *e)
{
	struct dynamo_op *op;

	if (json_array_size(requests) == 0 || json_array_size(requests) > 25) {
		err_set(e, ERR_INVALID,
		        "dynamo: a batch holds 1 to 25 requests, not %zu",
		        json_array_size(requests));
		return -1;
	}
	op = dynamo_op_new(d, cb, arg, e);
	if (op == NULL)
		return -1;
	op->table = strdup(table);
	op->pending = json_incref(requests);
	if (op->table == NULL) {
		err_sys(e, "dynamo: strdup");
		dynamo_op_free(op);
		return -1;
	}
	if (dynamo_batch_send(op, e) == -1) {
		dynamo_op_free(op);
		return -1;
	}
	return 0;
}

json_t *
dynamo_s(const char *s)
{
	return json_pack("{s:s}", "S", s);
}

json_t *
dynamo_n(long long n)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%lld", n);
	return json_pack("{s:s}", "N", tmp);
}

const char *
dynamo_get_s(json_t *item, const char *name)
{
	return json_string_value(
	    json_object_get(json_object_get(item, name), "S"));
}
