/*
 * checkremote_ddb: the DynamoDB half of --check-remote. DescribeTable (the
 * key schema must be the item's, agent/item.h, and the table ACTIVE), then
 * on a probe item keyed like the probe object: a conditional PutItem as the
 * daemon writes, GetItem, Scan, UpdateItem (with thumbnails: it names an
 * item's thumbnail) and DeleteItem. Starts each call with the
 * run's callback and judges the answer it is handed back.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "checkremote_impl.h"
#include "dynamo.h"
#include "errclass.h"
#include "item.h"

/* "Id (N, HASH) + Ts (S, RANGE)" into why; 0 when the key is ITEM_FILENAME
 * (S) alone, as imgsync writes it. */
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
		if (name != NULL && strcmp(name, ITEM_FILENAME) == 0 &&
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
	if (checkremote_report_check(c, &c->ddbt, "dynamodb:DescribeTable",
	                             c->table_arn, "(reads the key schema)",
	                             e) != CHECKREMOTE_OK) {
		checkremote_report_skip(
		    c, "key schema", c->table_arn,
		    "not checked: needs dynamodb:DescribeTable");
		return;
	}
	if (cr_schema(table, why, sizeof(why)) == -1) {
		snprintf(msg, sizeof(msg),
		         "the table's key is %s; imgsync needs " ITEM_FILENAME
		         " (string) as the only key (HASH): use a table "
		         "keyed that way",
		         why[0] ? why : "unknown");
		checkremote_report_problem(c, CHECKREMOTE_SCHEMA, "key schema",
		                           c->table_arn, msg, NULL);
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
		checkremote_report_problem(c, CHECKREMOTE_TABLE, "table status",
		                           c->table_arn, msg, NULL);
		snprintf(c->ddb_stop, sizeof(c->ddb_stop),
		         "not checked: the table is %s", status);
		return;
	}
	checkremote_report_ok(c, "key schema", c->table_arn,
	                      ITEM_FILENAME " (S, HASH) alone");
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

void
checkremote_ddb_answer(struct cr *c, json_t *resp, const struct err *e)
{
	const char *arn = c->table_arn;

	if (e != NULL)
		cr_learn_arn(c, e);
	switch (c->step) {
	case CR_DDB_DESCRIBE:
		cr_on_describe(c, resp, e);
		break;
	case CR_DDB_PUT:
		/* The item was there already (a probe of ours that a
		 * crash left): the write was permitted. */
		if (err_classify(e) == ERRC_CONFLICT)
			e = NULL;
		c->item_made = e == NULL;
		c->item_left = e == NULL;
		checkremote_report_check(c, &c->ddbt, "dynamodb:PutItem", arn,
		                         "(conditional, as the daemon writes)",
		                         e);
		break;
	case CR_DDB_GET:
		checkremote_report_check(c, &c->ddbt, "dynamodb:GetItem", arn,
		                         "(/getitem)", e);
		break;
	case CR_DDB_SCAN:
		checkremote_report_check(c, &c->ddbt, "dynamodb:Scan", arn,
		                         "(/getall)", e);
		break;
	case CR_DDB_UPDATE:
		/* The condition failed (no probe item): permitted. */
		if (err_classify(e) == ERRC_CONFLICT)
			e = NULL;
		checkremote_report_check(c, &c->ddbt, "dynamodb:UpdateItem",
		                         arn, "(thumbnails: Thumbnail)", e);
		break;
	case CR_DDB_DEL:
		c->item_left = c->item_left && e != NULL;
		checkremote_report_check(c, &c->ddbt, "dynamodb:DeleteItem",
		                         arn, NULL, e);
		break;
	default:
		break;
	}
}

const char *
checkremote_ddb_action(enum cr_step step)
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
	case CR_DDB_UPDATE:
		return "dynamodb:UpdateItem";
	default:
		return "dynamodb:DeleteItem";
	}
}

int
checkremote_ddb_start(struct cr *c, dynamo_done_cb done, struct err *e)
{
	const char *table = c->cfg->dynamodb.table;
	json_t *body = NULL, *item;
	int rc = -1;

	if (c->step == CR_DDB_UPDATE && !c->cfg->thumbnails.enabled)
		return 0;
	if (c->ddb_stop[0] != '\0' &&
	    !(c->step == CR_DDB_DEL && c->item_made)) {
		checkremote_report_skip(c, checkremote_ddb_action(c->step),
		                        c->table_arn, c->ddb_stop);
		return 0;
	}
	switch (c->step) {
	case CR_DDB_DESCRIBE:
		body = json_pack("{s:s}", "TableName", table);
		rc = body != NULL ? dynamo_call(c->ddb, "DescribeTable", body,
		                                done, c, e)
		                  : -1;
		break;
	case CR_DDB_PUT:
		item =
		    json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", ITEM_FILENAME, "S",
		              c->key.data, ITEM_BUCKET, "S", c->cfg->s3.bucket,
		              ITEM_SOURCE, "S", c->source);
		rc = item != NULL
		         ? dynamo_put_item(c->ddb, table, item,
		                           "attribute_not_exists(" ITEM_FILENAME
		                           ")",
		                           NULL, NULL, done, c, e)
		         : -1;
		json_decref(item);
		break;
	case CR_DDB_GET:
		body = item_key(c->key.data);
		rc = body != NULL
		         ? dynamo_get_item(c->ddb, table, body, 1, done, c, e)
		         : -1;
		break;
	case CR_DDB_SCAN:
		rc = dynamo_scan(c->ddb, table, NULL, 1, done, c, e);
		break;
	case CR_DDB_UPDATE:
		body = json_pack(
		    "{s:s,s:o,s:s,s:s,s:{s:s,s:s},s:{s:{s:s}}}", "TableName",
		    table, "Key", item_key(c->key.data), "UpdateExpression",
		    "SET #th = :th", "ConditionExpression",
		    "attribute_exists(#fn)", "ExpressionAttributeNames", "#th",
		    ITEM_THUMBNAIL, "#fn", ITEM_FILENAME,
		    "ExpressionAttributeValues", ":th", "S", "probe");
		rc = body != NULL
		         ? dynamo_call(c->ddb, "UpdateItem", body, done, c, e)
		         : -1;
		break;
	case CR_DDB_DEL:
		body = item_key(c->key.data);
		rc = body != NULL
		         ? dynamo_delete_item(c->ddb, table, body, NULL, NULL,
		                              NULL, done, c, e)
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
