/*
 * item: the DynamoDB item that describes one mirrored file, in one place.
 *
 * Its attribute names, building it from a file's state row, the conditional
 * write (the newest sync Timestamp wins), its key, reading it back, and its
 * plain-JSON form (the REST API's and imgsyncctl's). A new attribute is
 * added here and nowhere else but the state row it comes from.
 */
#ifndef IMGSYNC_ITEM_H
#define IMGSYNC_ITEM_H

#include <jansson.h>
#include <stdint.h>

#include "dynamo.h"
#include "err.h"
#include "state.h"

/* The attribute names. */
#define ITEM_FILENAME "FileName" /* the S3 key: the table's hash key */
#define ITEM_BUCKET "Bucket"
#define ITEM_SOURCE "Source"
#define ITEM_TIMESTAMP "Timestamp" /* when it was synced, ISO-8601 ms UTC */
#define ITEM_SIZE "Size"
#define ITEM_TYPE "Type" /* MIME type, from the content */
#define ITEM_WIDTH "Width"
#define ITEM_HEIGHT "Height"
#define ITEM_SHA256 "SHA256"
#define ITEM_ETAG "ETag"
#define ITEM_MTIME "MTime" /* the file's mtime, ISO-8601 ns UTC */

/* The attributes in the order the CLI shows them. */
extern const char *const item_attributes[];
extern const size_t item_nattributes;

/* The item of a synced file: f's key, size, type, size, digest, ETag and
 * mtime; Width and Height only when both are known. DynamoDB-typed; a new
 * reference, NULL when out of memory. */
json_t *item_from_file(const struct state_file *f, const char *bucket,
                       const char *source, const char *timestamp);
/* The same, as plain JSON ({"FileName": "a.jpg", "Size": 12, ...}), with
 * name in place of f->key (the control socket's names are relative to the
 * prefix) and no Source. */
json_t *item_plain_from_file(const struct state_file *f, const char *name,
                             const char *bucket);
/* A DynamoDB-typed item as plain JSON: {"S": s} as s, {"N": n} as a number.
 * A new reference, NULL when out of memory. */
json_t *item_plain(json_t *item);
/* {"FileName": {"S": key}}: a new reference. */
json_t *item_key(const char *key);
/* The key in a typed item, or NULL. */
const char *item_key_of(json_t *item);

/* PutItem of item (borrowed), unless the table holds an item of the same key
 * with a later Timestamp (invariant 2, docs/ARCHITECTURE.md). A refused
 * write ends with e->code "ConditionalCheckFailedException". */
int item_put(struct dynamo *d, const char *table, json_t *item,
             dynamo_done_cb cb, void *arg, struct err *e);

/* What an item read back says (pointers into the item, which must
 * outlive it); a missing attribute is NULL or 0. */
struct item_view {
	const char *key;
	const char *bucket;
	const char *source;
	const char *timestamp;
	const char *type;
	const char *sha256;
	const char *etag;
	const char *mtime;
	uint64_t size;
	unsigned width, height;
};

/* 0, or -1 when item is not an object with a FileName. */
int item_read(json_t *item, struct item_view *v);

#endif
