/*
 * dynamo: the DynamoDB calls imgsync makes (JSON 1.0 protocol, jansson),
 * asynchronous, on an aws_client.
 */
#ifndef IMGSYNC_DYNAMO_H
#define IMGSYNC_DYNAMO_H

#include <jansson.h>

#include "aws.h"
#include "err.h"
#include "loop.h"

struct dynamo;

/* resp is the parsed answer, borrowed: valid only during the call (take a
 * reference with json_incref to keep it). When e is set, resp is the
 * server's error document if it sent one (else NULL). Fires exactly once. */
typedef void (*dynamo_done_cb)(json_t *resp, const struct err *e, void *arg);

/* l and client (an aws_client for the "dynamodb" service) are borrowed;
 * dynamo_new sets the client's protocol: generic path signing and
 * dynamo_parse_error. */
struct dynamo *dynamo_new(struct loop *l, struct aws_client *client,
                          struct err *e);
void dynamo_free(struct dynamo *d);

/* Any operation: target is "PutItem", "Scan", ...; body is borrowed. */
int dynamo_call(struct dynamo *d, const char *target, json_t *body,
                dynamo_done_cb cb, void *arg, struct err *e);

/* cond may be NULL; names/values are ExpressionAttributeNames/Values
 * (borrowed, may be NULL). A failed condition ends with code
 * "ConditionalCheckFailedException". */
int dynamo_put_item(struct dynamo *d, const char *table, json_t *item,
                    const char *cond, json_t *names, json_t *values,
                    dynamo_done_cb cb, void *arg, struct err *e);
int dynamo_get_item(struct dynamo *d, const char *table, json_t *key,
                    int consistent, dynamo_done_cb cb, void *arg,
                    struct err *e);
int dynamo_delete_item(struct dynamo *d, const char *table, json_t *key,
                       const char *cond, json_t *names, json_t *values,
                       dynamo_done_cb cb, void *arg, struct err *e);
/* One page: pass resp's LastEvaluatedKey as start_key for the next (NULL
 * for the first). limit 0: the server's page size. */
int dynamo_scan(struct dynamo *d, const char *table, json_t *start_key,
                unsigned limit, dynamo_done_cb cb, void *arg, struct err *e);
/* TransactWriteItems of actions (borrowed: up to 100 {"Put": {...}} and the
 * like, each with its own condition): all are written or none. A cancelled
 * one ends with code "TransactionCanceledException", and resp's
 * "CancellationReasons" says item by item why ("ConditionalCheckFailed",
 * "None" for those that were fine, ...). */
int dynamo_transact_write(struct dynamo *d, json_t *actions, dynamo_done_cb cb,
                          void *arg, struct err *e);
/* Writes up to 25 requests ({"PutRequest":..} / {"DeleteRequest":..});
 * UnprocessedItems are sent again with backoff until none are left. */
int dynamo_batch_write(struct dynamo *d, const char *table, json_t *requests,
                       dynamo_done_cb cb, void *arg, struct err *e);

/* The client the calls go through (borrowed): for its skew and endpoint. */
struct aws_client *dynamo_client(const struct dynamo *d);

/* The aws_error_parser for DynamoDB: {"__type": "...#Code", "message"}. */
int dynamo_parse_error(const struct http_response *resp, struct err *e);

/* {"S": s} and {"N": "n"}: new references. */
json_t *dynamo_s(const char *s);
json_t *dynamo_n(long long n);
/* The string inside attr["S"] of item[name], or NULL. */
const char *dynamo_get_s(json_t *item, const char *name);

#endif
