/*
 * item: the DynamoDB item of one mirrored file. The only file that spells
 * its attribute names (through item.h's ITEM_*), builds it, writes it under
 * the Timestamp condition (invariant 2), scans it by key prefix, reads it
 * back and turns it into plain JSON.
 */
#include "item.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

const char *const item_attributes[] = {
    ITEM_FILENAME, ITEM_BUCKET, ITEM_SOURCE,    ITEM_TIMESTAMP,   ITEM_SIZE,
    ITEM_TYPE,     ITEM_WIDTH,  ITEM_HEIGHT,    ITEM_ORIENTATION, ITEM_SHA256,
    ITEM_ETAG,     ITEM_MTIME,  ITEM_THUMBNAIL,
};
const size_t item_nattributes =
    sizeof(item_attributes) / sizeof(item_attributes[0]);

/* --- building ------------------------------------------------------------ */

/* f's mtime as ISO-8601 with nanoseconds. */
static void
item_mtime(const struct state_file *f, char *out, size_t outlen)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(f->mtime_ns / 1000000000);
	ts.tv_nsec = (long)(f->mtime_ns % 1000000000);
	if (ts.tv_nsec < 0) { /* before 1970: the second below */
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	text_iso_time(&ts, 9, out, outlen);
}

json_t *
item_from_file(const struct state_file *f, const char *bucket,
               const char *source, const char *timestamp)
{
	return item_from_file_mtime(f, NULL, bucket, source, timestamp);
}

json_t *
item_from_file_mtime(const struct state_file *f, const struct timespec *ts,
                     const char *bucket, const char *source,
                     const char *timestamp)
{
	char mtime[40];
	json_t *item;

	if (ts != NULL)
		text_iso_time(ts, 9, mtime, sizeof(mtime));
	else
		item_mtime(f, mtime, sizeof(mtime));
	item = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", ITEM_FILENAME,
	    dynamo_s(f->key), ITEM_BUCKET, dynamo_s(bucket), ITEM_SOURCE,
	    dynamo_s(source), ITEM_TIMESTAMP, dynamo_s(timestamp), ITEM_SIZE,
	    dynamo_n((long long)f->size), ITEM_TYPE, dynamo_s(f->type),
	    ITEM_SHA256, dynamo_s(f->sha256), ITEM_ETAG, dynamo_s(f->etag),
	    ITEM_MTIME, dynamo_s(mtime));
	if (item != NULL && f->width > 0 && f->height > 0) {
		json_object_set_new(item, ITEM_WIDTH, dynamo_n(f->width));
		json_object_set_new(item, ITEM_HEIGHT, dynamo_n(f->height));
	}
	if (item != NULL && f->orientation >= 1 && f->orientation <= 8)
		json_object_set_new(item, ITEM_ORIENTATION,
		                    dynamo_n(f->orientation));
	return item;
}

json_t *
item_plain_from_file(const struct state_file *f, const char *name,
                     const char *bucket)
{
	char mtime[40];
	json_t *o;

	item_mtime(f, mtime, sizeof(mtime));
	o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", ITEM_FILENAME, name,
	              ITEM_BUCKET, bucket, ITEM_TIMESTAMP, f->synced_at,
	              ITEM_SIZE, (json_int_t)f->size, ITEM_TYPE, f->type,
	              ITEM_SHA256, f->sha256, ITEM_ETAG, f->etag, ITEM_MTIME,
	              mtime);
	if (o != NULL && f->width > 0 && f->height > 0) {
		json_object_set_new(o, ITEM_WIDTH, json_integer(f->width));
		json_object_set_new(o, ITEM_HEIGHT, json_integer(f->height));
	}
	if (o != NULL && f->orientation >= 1 && f->orientation <= 8)
		json_object_set_new(o, ITEM_ORIENTATION,
		                    json_integer(f->orientation));
	if (o != NULL && f->thumb != NULL)
		json_object_set_new(o, ITEM_THUMBNAIL, json_string(f->thumb));
	return o;
}

json_t *
item_key(const char *key)
{
	return json_pack("{s:{s:s}}", ITEM_FILENAME, "S", key);
}

/* --- writing and scanning ------------------------------------------------ */

/*
 * The order is the sync Timestamp, not the file's mtime: a rename or a
 * restored backup can bring older mtimes that are still the newest
 * content, while a request delayed past a crash and a restart always
 * carries an older Timestamp than what was written since.
 */
#define ITEM_PUT_COND "attribute_not_exists(" ITEM_FILENAME ") OR #t <= :t"

/* The condition's names and values for item (new references), or -1. */
static int
item_cond(json_t *item, json_t **names, json_t **values)
{
	const char *ts =
	    item != NULL ? dynamo_get_s(item, ITEM_TIMESTAMP) : NULL;

	*names = json_pack("{s:s}", "#t", ITEM_TIMESTAMP);
	*values = ts != NULL ? json_pack("{s:o}", ":t", dynamo_s(ts)) : NULL;
	if (*names == NULL || *values == NULL) {
		json_decref(*names);
		json_decref(*values);
		return -1;
	}
	return 0;
}

int
item_put(struct dynamo *d, const char *table, json_t *item, dynamo_done_cb cb,
         void *arg, struct err *e)
{
	json_t *names, *values;
	int rc;

	if (item_cond(item, &names, &values) == -1) {
		err_set(e, ERR_INVALID, "cannot build the item");
		return -1;
	}
	rc = dynamo_put_item(d, table, item, ITEM_PUT_COND, names, values, cb,
	                     arg, e);
	json_decref(names);
	json_decref(values);
	return rc;
}

int
item_set_thumbnail(struct dynamo *d, const char *table, const char *key,
                   const char *sha256, const char *thumb, dynamo_done_cb cb,
                   void *arg, struct err *e)
{
	json_t *body;
	int rc;

	body = json_pack("{s:s,s:o,s:s,s:s,s:{s:s,s:s},s:{s:{s:s},s:{s:s}}}",
	                 "TableName", table, "Key", item_key(key),
	                 "UpdateExpression", "SET #th = :th",
	                 "ConditionExpression", "#sha = :sha",
	                 "ExpressionAttributeNames", "#th", ITEM_THUMBNAIL,
	                 "#sha", ITEM_SHA256, "ExpressionAttributeValues",
	                 ":th", "S", thumb, ":sha", "S", sha256);
	if (body == NULL) {
		err_set(e, ERR_INVALID, "cannot build the UpdateItem");
		return -1;
	}
	rc = dynamo_call(d, "UpdateItem", body, cb, arg, e);
	json_decref(body);
	return rc;
}

json_t *
item_put_action(const char *table, json_t *item)
{
	json_t *names, *values;

	if (item_cond(item, &names, &values) == -1)
		return NULL;
	return json_pack("{s:{s:s,s:O,s:s,s:o,s:o}}", "Put", "TableName", table,
	                 "Item", item, "ConditionExpression", ITEM_PUT_COND,
	                 "ExpressionAttributeNames", names,
	                 "ExpressionAttributeValues", values);
}

int
item_scan(struct dynamo *d, const char *table, const char *prefix,
          json_t *start_key, unsigned limit, dynamo_done_cb cb, void *arg,
          struct err *e)
{
	json_t *body;
	int rc;

	body = json_pack("{s:s,s:i}", "TableName", table, "Limit", (int)limit);
	if (body == NULL) {
		err_set(e, ERR_INVALID, "cannot build the Scan");
		return -1;
	}
	if (start_key != NULL)
		json_object_set(body, "ExclusiveStartKey", start_key);
	if (prefix[0] != '\0')
		json_object_update_new(
		    body,
		    json_pack("{s:s,s:{s:s},s:{s:{s:s}}}", "FilterExpression",
		              "begins_with(#f, :p)", "ExpressionAttributeNames",
		              "#f", ITEM_FILENAME, "ExpressionAttributeValues",
		              ":p", "S", prefix));
	rc = dynamo_call(d, "Scan", body, cb, arg, e);
	json_decref(body);
	return rc;
}

/* --- reading back -------------------------------------------------------- */

/* The text inside item[name][type], or NULL. */
static const char *
item_get(const json_t *item, const char *name, const char *type)
{
	return json_string_value(
	    json_object_get(json_object_get(item, name), type));
}

const char *
item_key_of(const json_t *item)
{
	return item_get(item, ITEM_FILENAME, "S");
}

int
item_read(const json_t *item, struct item_view *v)
{
	const char *n;

	memset(v, 0, sizeof(*v));
	v->key = item_key_of(item);
	if (v->key == NULL)
		return -1;
	v->bucket = item_get(item, ITEM_BUCKET, "S");
	v->source = item_get(item, ITEM_SOURCE, "S");
	v->timestamp = item_get(item, ITEM_TIMESTAMP, "S");
	v->type = item_get(item, ITEM_TYPE, "S");
	v->sha256 = item_get(item, ITEM_SHA256, "S");
	v->etag = item_get(item, ITEM_ETAG, "S");
	v->mtime = item_get(item, ITEM_MTIME, "S");
	n = item_get(item, ITEM_SIZE, "N");
	if (n != NULL) {
		v->size = (uint64_t)strtoll(n, NULL, 10);
		v->has_size = 1;
	}
	n = item_get(item, ITEM_WIDTH, "N");
	if (n != NULL)
		v->width = (unsigned)strtoll(n, NULL, 10);
	n = item_get(item, ITEM_HEIGHT, "N");
	if (n != NULL)
		v->height = (unsigned)strtoll(n, NULL, 10);
	v->thumbnail = item_get(item, ITEM_THUMBNAIL, "S");
	n = item_get(item, ITEM_ORIENTATION, "N");
	if (n != NULL)
		v->orientation = (unsigned)strtoll(n, NULL, 10);
	return 0;
}

/* --- plain JSON ---------------------------------------------------------- */

static json_t *
item_plain_value(const json_t *v)
{
	const char *type;
	json_t *inner, *out, *x;
	size_t i;

	if (!json_is_object(v) || json_object_size(v) != 1)
		return json_null();
	json_object_foreach((json_t *)v, type, inner)
	{
		if (strcmp(type, "S") == 0 && json_is_string(inner))
			return json_incref(inner);
		if (strcmp(type, "N") == 0 && json_is_string(inner)) {
			const char *s = json_string_value(inner);
			char *end;
			long long n;

			errno = 0;
			n = strtoll(s, &end, 10);
			if (*s != '\0' && *end == '\0' && errno == 0)
				return json_integer(n);
			out = json_real(strtod(s, NULL));
			/* NaN, infinities: kept as the text they were */
			return out != NULL ? out : json_incref(inner);
		}
		if (strcmp(type, "BOOL") == 0)
			return json_boolean(json_is_true(inner));
		if (strcmp(type, "M") == 0) {
			out = item_plain(inner);
			return out != NULL ? out : json_null();
		}
		if (json_is_array(inner)) { /* L, SS, NS, BS */
			out = json_array();
			json_array_foreach(inner, i, x)
			{
				json_array_append_new(out,
				                      strcmp(type, "L") == 0
				                          ? item_plain_value(x)
				                          : json_incref(x));
			}
			return out;
		}
		if (strcmp(type, "B") == 0 && json_is_string(inner))
			return json_incref(inner);
	}
	return json_null();
}

json_t *
item_plain(const json_t *item)
{
	const char *k;
	json_t *v, *out;

	if (!json_is_object(item))
		return NULL;
	out = json_object();
	if (out == NULL)
		return NULL;
	json_object_foreach((json_t *)item, k, v)
	{
		json_object_set_new(out, k, item_plain_value(v));
	}
	return out;
}
