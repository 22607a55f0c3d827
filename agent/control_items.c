/*
 * control_items: the endpoints about items. GET /getall pages through the
 * table (a Scan by key prefix) or, with ?local=1, through the state
 * database's synced rows; POST /getitem reads one item; DELETE /delete
 * deletes a file whose item exists (through the engine: item, then object,
 * then the local file into the trash, invariant 1); POST /upload queues a
 * file. The items are item.h's; what DynamoDB answers is shown as plain
 * JSON. A request waiting on DynamoDB is suspended (control_conn.c) and
 * answered from its callback.
 */
#include "control_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item.h"
#include "log.h"

#define CTL_MAX_SCANS 50 /* Scan calls per /getall page */

json_t *
control_items_name(const struct control *c, const struct state_file *f)
{
	struct buf b;
	json_t *j;

	if (f->key != NULL && f->key[0] != '\0')
		return control_api_json_name(f->key, strlen(f->key));
	buf_init(&b, 0);
	buf_puts(&b, c->prefix);
	buf_append(&b, f->path, f->path_len);
	j = control_api_json_name(b.data != NULL ? b.data : "", b.len);
	buf_cleanup(&b);
	return j;
}

/* --- /getall?local=1: the state database -------------------------------- */

/* A page of rows being gathered. */
struct control_items_page {
	const struct control *c;
	const struct ctl_request *r;
	json_t *list;
	unsigned n;
	char *last; /* the last row's path: the cursor */
	size_t last_len;
	int more;
	const char *pp; /* the prefix as a path prefix */
	size_t pplen;
};

/* A synced row as /getall shows an item. */
static json_t *
control_items_local(const struct control *c, const struct state_file *f)
{
	json_t *name = control_items_name(c, f), *o;

	o = item_plain_from_file(f, json_string_value(name), c->bucket);
	json_decref(name);
	return o;
}

static int
control_items_local_row(const struct state_file *f, void *arg)
{
	struct control_items_page *w = arg;
	const char *key = f->key;

	/* Rows come by path, from the prefix on: the first one past it ends
	 * the page, however many rows the table has. */
	if (w->pp != NULL &&
	    (f->path_len < w->pplen || memcmp(f->path, w->pp, w->pplen) != 0))
		return 1;
	if (f->failed || key == NULL || key[0] == '\0' ||
	    strncmp(key, w->r->prefix, strlen(w->r->prefix)) != 0)
		return 0;
	if (w->n == w->r->limit) {
		w->more = 1;
		return 1;
	}
	json_array_append_new(w->list, control_items_local(w->c, f));
	w->n++;
	free(w->last);
	w->last = malloc(f->path_len + 1);
	if (w->last == NULL)
		return 1;
	memcpy(w->last, f->path, f->path_len);
	w->last_len = f->path_len;
	return 0;
}

static json_t *
control_items_getall_local(const struct control *c, const struct ctl_request *r,
                           struct err *e)
{
	size_t plen = strlen(c->prefix), qlen = strlen(r->prefix);
	const char *start = r->start;
	size_t start_len = r->start_len;
	int inclusive = 0;
	struct control_items_page w;
	json_t *out;
	char *cur;

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.r = r;
	w.list = json_array();
	/* Keys are s3.prefix + path: a key prefix is a path prefix, or takes
	 * every row, or none. */
	if (strncmp(r->prefix, c->prefix, qlen < plen ? qlen : plen) != 0)
		return json_pack("{s:o}", "images", w.list);
	if (qlen > plen) {
		w.pp = r->prefix + plen;
		w.pplen = qlen - plen;
		if (start == NULL ||
		    memcmp(start, w.pp,
		           start_len < w.pplen ? start_len : w.pplen) < 0 ||
		    (memcmp(start, w.pp,
		            start_len < w.pplen ? start_len : w.pplen) == 0 &&
		     start_len < w.pplen)) {
			start = w.pp;
			start_len = w.pplen;
			inclusive = 1;
		}
	}
	if (state_files_after(c->d.state, start, start_len, inclusive,
	                      control_items_local_row, &w, e) == -1) {
		json_decref(w.list);
		free(w.last);
		return NULL;
	}
	out = json_pack("{s:o}", "images", w.list);
	if (w.more && w.last != NULL) {
		cur = control_api_cursor_encode(w.last, w.last_len);
		json_object_set_new(out, "cursor", json_string(cur));
		free(cur);
	}
	free(w.last);
	return out;
}

/* --- DynamoDB's answers -------------------------------------------------- */

static char *
control_items_error_body(const char *what, const struct err *e)
{
	char msg[700];

	snprintf(msg, sizeof(msg), "DynamoDB %s: %s", what, e->message);
	return control_api_error_body(msg);
}

/* A DynamoDB callback's common cases: the request is gone (shutdown) or
 * was answered 504 already (no more pages then), or the call failed. 1 when
 * k is answered (or freed). */
static int
control_items_answered(struct control_conn *k, const struct err *e,
                       const char *what)
{
	if (k->c == NULL || k->done || k->timed_out) {
		control_conn_answer(k, 0, NULL);
		return 1;
	}
	if (e == NULL)
		return 0;
	control_conn_answer(k, e->kind == ERR_CANCEL ? 503 : 500,
	                    control_items_error_body(what, e));
	return 1;
}

/* --- /getall: Scan ------------------------------------------------------- */

static void control_items_scan(struct control_conn *k);

static void
control_items_on_scan(json_t *resp, const struct err *e, void *arg)
{
	struct control_conn *k = arg;
	json_t *items, *item, *lek, *out;
	const char *name;
	size_t i;
	char *cur;

	if (control_items_answered(k, e, "Scan"))
		return;
	items = json_object_get(resp, "Items");
	json_array_foreach(items, i, item)
	{
		json_array_append_new(k->images, item_plain(item));
	}
	lek = json_object_get(resp, "LastEvaluatedKey");
	json_decref(k->start_key);
	k->start_key = json_is_object(lek) ? json_incref(lek) : NULL;
	if (k->start_key != NULL && json_array_size(k->images) < k->req.limit &&
	    ++k->scans < CTL_MAX_SCANS) {
		control_items_scan(k);
		return;
	}
	out = json_pack("{s:O}", "images", k->images);
	name = item_key_of(k->start_key);
	if (out != NULL && name != NULL) {
		cur = control_api_cursor_encode(name, strlen(name));
		json_object_set_new(out, "cursor", json_string(cur));
		free(cur);
	}
	control_conn_answer_json(k, 200, out);
}

/* One Scan call for the page: Limit keeps the page within ?limit= even
 * with the prefix filter, which can make calls come back short. */
static void
control_items_scan(struct control_conn *k)
{
	struct control *c = k->c;
	struct err e;

	err_clear(&e);
	if (item_scan(c->d.ddb, c->table, k->req.prefix, k->start_key,
	              k->req.limit - (unsigned)json_array_size(k->images),
	              control_items_on_scan, k, &e) == -1)
		control_conn_answer(k, 500,
		                    control_items_error_body("Scan", &e));
}

static enum MHD_Result
control_items_getall(struct control_conn *k)
{
	struct control *c = k->c;
	struct err e;
	json_t *doc;

	if (k->req.local) {
		err_clear(&e);
		doc = control_items_getall_local(c, &k->req, &e);
		if (doc == NULL)
			return control_conn_error(k, 500, e.message);
		return control_conn_json(k, 200, doc);
	}
	if (k->req.start != NULL) {
		k->start_key = item_key(k->req.start);
		if (k->start_key == NULL) /* not UTF-8: not a key */
			return control_conn_error(k, 400,
			                          "cursor is not one "
			                          "this API gave");
	}
	k->images = json_array();
	if (control_conn_suspend(k) == -1)
		return control_conn_busy(k);
	control_items_scan(k);
	return MHD_YES;
}

/* --- /getitem, /delete: GetItem first ------------------------------------ */

static void
control_items_on_getitem(json_t *resp, const struct err *e, void *arg)
{
	struct control_conn *k = arg;
	json_t *item;

	if (control_items_answered(k, e, "GetItem"))
		return;
	item = json_object_get(resp, "Item");
	if (!json_is_object(item)) {
		control_conn_answer(k, 404,
		                    control_api_error_body("Item not found"));
		return;
	}
	control_conn_answer_json(k, 200,
	                         json_pack("{s:o}", "data", item_plain(item)));
}

static void
control_items_get(struct control_conn *k, dynamo_done_cb cb)
{
	json_t *key;
	struct err e;
	int rc;

	key = item_key(k->req.name);
	err_clear(&e);
	rc = dynamo_get_item(k->c->d.ddb, k->c->table, key, 1, cb, k, &e);
	json_decref(key);
	if (rc == -1)
		control_conn_answer(k, 500,
		                    control_items_error_body("GetItem", &e));
}

static void
control_items_on_deleted(int status, const char *message, void *arg)
{
	struct control_conn *k = arg;
	char p[256], m[1024];

	if (k->c == NULL || k->done) {
		control_conn_answer(k, 0, NULL);
		return;
	}
	if (status == 0) {
		log_info("control: deleted %s (%s)",
		         log_path(k->req.name, p, sizeof(p)),
		         log_path(message, m, sizeof(m)));
		control_conn_answer_json(
		    k, 200,
		    json_pack("{s:s,s:s,s:s}", "message", "File deleted",
		              "deletedFile", k->req.name, "local", message));
		return;
	}
	control_conn_answer(k, status == -2 ? 503 : 500,
	                    control_api_error_body(message));
}

/* The item exists (else the answer is /getitem's): the engine deletes. */
static void
control_items_on_delete_lookup(json_t *resp, const struct err *e, void *arg)
{
	struct control_conn *k = arg;
	struct err se;

	if (k->c == NULL || k->done || e != NULL ||
	    !json_is_object(json_object_get(resp, "Item"))) {
		control_items_on_getitem(resp, e, arg);
		return;
	}
	err_clear(&se);
	if (sync_delete(k->c->d.sync, k->req.path, k->c->trash,
	                control_items_on_deleted, k, &se) == -1)
		control_conn_answer(
		    k, se.http_status > 0 ? (unsigned)se.http_status : 500,
		    control_api_error_body(se.message));
}

/* Where the request's path leads (*kind); -1 when it must be refused: the
 * root is lost, or the path leads out of it. */
static int
control_items_path(struct control_conn *k, enum sync_path_kind *kind)
{
	struct sync *s = k->c->d.sync;

	*kind = SYNC_PATH_OUTSIDE;
	if (sync_root_lost_why(s) != NULL)
		return -1;
	*kind = sync_path_kind(s, k->req.path);
	return *kind == SYNC_PATH_OUTSIDE ? -1 : 0;
}

static enum MHD_Result
control_items_refuse(struct control_conn *k)
{
	struct sync *s = k->c->d.sync;

	if (sync_root_lost_why(s) != NULL)
		return control_conn_error(k, 503, sync_root_lost_why(s));
	return control_conn_error(k, 400, "FileName escapes the watch root");
}

static enum MHD_Result
control_items_delete(struct control_conn *k)
{
	enum sync_path_kind kind;

	if (control_items_path(k, &kind) == -1)
		return control_items_refuse(k);
	if (kind == SYNC_PATH_OTHER)
		return control_conn_error(k, 400,
		                          "FileName is not a regular file");
	if (control_conn_suspend(k) == -1)
		return control_conn_busy(k);
	control_items_get(k, control_items_on_delete_lookup);
	return MHD_YES;
}

/* --- /upload ------------------------------------------------------------- */

static enum MHD_Result
control_items_upload(struct control_conn *k)
{
	struct sync *s = k->c->d.sync;
	enum sync_path_kind kind;
	struct err e;

	if (control_items_path(k, &kind) == -1)
		return control_items_refuse(k);
	if (kind != SYNC_PATH_FILE)
		return control_conn_error(k, 404,
		                          "File not found in the watch root");
	if (!sync_path_wanted(s, k->req.path))
		return control_conn_error(k, 400,
		                          "FileName is excluded by "
		                          "watch.include/watch.exclude");
	err_clear(&e);
	if (sync_upload(s, k->req.path, &e) == -1)
		return control_conn_error(k, 500, e.message);
	return control_conn_json(k, 202,
	                         json_pack("{s:s,s:s}", "message",
	                                   "Upload queued", ITEM_FILENAME,
	                                   k->req.name));
}

enum MHD_Result
control_items_answer(struct control_conn *k)
{
	switch (k->req.route) {
	case CTL_GETALL:
		return control_items_getall(k);
	case CTL_GETITEM:
		if (control_conn_suspend(k) == -1)
			return control_conn_busy(k);
		control_items_get(k, control_items_on_getitem);
		return MHD_YES;
	case CTL_DELETE:
		return control_items_delete(k);
	case CTL_UPLOAD:
		return control_items_upload(k);
	default:
		return control_conn_error(k, 500, "no handler");
	}
}
