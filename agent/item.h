/*
 * item: the DynamoDB item that describes one mirrored file, in one place.
 *
 * Its attribute names, building it from a file's state row, the conditional
 * write (the newest sync Timestamp wins), its key, a Scan by key prefix,
 * reading it back, and its plain-JSON form (the REST API's and
 * imgsyncctl's). A new attribute is added here and nowhere else but the
 * state row it comes from.
 *
 * Every json_t argument is borrowed; every json_t returned is a new
 * reference the caller drops.
 */
#ifndef IMGSYNC_ITEM_H
#define IMGSYNC_ITEM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
#define ITEM_THUMBNAIL "Thumbnail" /* its S3 key, once made */
#define ITEM_ORIENTATION                                                       \
	"Orientation" /* EXIF, 1-8; only when the file has one */
#define ITEM_SHA256 "SHA256"
#define ITEM_ETAG "ETag"
#define ITEM_MTIME "MTime" /* the file's mtime, ISO-8601 ns UTC */

/* The attributes in the order the CLI shows them. */
extern const char *const item_attributes[];
extern const size_t item_nattributes;

/* The item of a synced file: f's key, size, type, digest, ETag and mtime,
 * the bucket, the source (the host that synced it) and timestamp (the sync
 * Timestamp); Width and Height only when both are known. DynamoDB-typed;
 * NULL when out of memory or a string is not UTF-8. */
json_t *item_from_file(const struct state_file *f, const char *bucket,
                       const char *source, const char *timestamp);
/* The same with MTime from mtime, the file's as stat gave it (NULL:
 * f->mtime_ns): f->mtime_ns saturates at the years 1677 and 2262, the
 * item's MTime does not. */
json_t *item_from_file_mtime(const struct state_file *f,
                             const struct timespec *mtime, const char *bucket,
                             const char *source, const char *timestamp);
/* The same, as plain JSON ({"FileName": "a.jpg", "Size": 12, ...}), with
 * name in place of f->key (the control socket's names are relative to the
 * prefix), f->synced_at as the Timestamp, and no Source. */
json_t *item_plain_from_file(const struct state_file *f, const char *name,
                             const char *bucket);
/* A DynamoDB-typed item as plain JSON: {"S": s} as s, {"N": n} as a number,
 * maps and lists likewise; an attribute of no known type is null. NULL when
 * item is not an object. */
json_t *item_plain(const json_t *item);
/* {"FileName": {"S": key}}; NULL when key is not UTF-8. */
json_t *item_key(const char *key);
/* The key in a typed item (or in a Scan's LastEvaluatedKey), or NULL. */
const char *item_key_of(const json_t *item);

/* PutItem of item, unless the table holds an item of the same key with a
 * later Timestamp (invariant 2, docs/ARCHITECTURE.md). A refused write ends
 * with e->code "ConditionalCheckFailedException". -1 (cb not called) when
 * item is NULL, has no Timestamp, or the call cannot start. */
int item_put(struct dynamo *d, const char *table, json_t *item,
             dynamo_done_cb cb, void *arg, struct err *e);
/* The same conditional write as one action of a TransactWriteItems:
 * {"Put": {...}}, a new reference; NULL as item_put's -1. */
json_t *item_put_action(const char *table, json_t *item);
/* Names the thumbnail of key's item (UpdateItem), on the condition that
 * the item still describes the content with that SHA-256 (else
 * ConditionalCheckFailedException: newer content wants its own). */
int item_set_thumbnail(struct dynamo *d, const char *table, const char *key,
                       const char *sha256, const char *thumb, dynamo_done_cb cb,
                       void *arg, struct err *e);

/* One Scan page of the items whose key starts with prefix ("" for all),
 * from start_key (a LastEvaluatedKey; NULL: the first page). DynamoDB
 * applies limit before the prefix filter, so a page can come back short
 * of limit with more to come. */
int item_scan(struct dynamo *d, const char *table, const char *prefix,
              json_t *start_key, unsigned limit, dynamo_done_cb cb, void *arg,
              struct err *e);

/* What an item read back says (pointers into the item, which must
 * outlive it); a missing attribute is NULL or 0. Numbers are read as
 * strtoll reads them. */
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
	int has_size; /* a Size was there (a 0 may be a missing one) */
	unsigned width, height;
	unsigned orientation;  /* 0: none */
	const char *thumbnail; /* its Thumbnail, or NULL */
};

/* 0, or -1 when item is not an object with a FileName. */
int item_read(const json_t *item, struct item_view *v);

#endif
