/*
 * control_web_list: GET /api/list, the gallery's grid. A page of one
 * folder's synced images, newest first, from the state database (no
 * request to AWS): ?dir= the folder ("" the root, else ending in '/'),
 * ?q= a search of the names below it, ?type= one MIME type, ?cursor= the
 * page after the one that gave it, ?limit= (default 60, at most 500).
 * The first page of a folder also lists its subfolders. Each image comes
 * with a presigned link to its thumbnail, when it has one.
 */
#include "control_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item.h"
#include "s3.h"
#include "text.h"
#include "web_query.h"

#define WEB_FOLDERS_MAX 1000
#define WEB_THUMB_LINK_SECS 3600

struct web_list {
	struct control *c;
	json_t *images;
	json_t *folders;
	size_t dir_len;
	unsigned n;
	int64_t last_mtime;
	char *last_path;
	size_t last_len;
	int creds_failed; /* no links: the credentials are not there */
};

static int
control_web_list_folder(const char *name, size_t len, void *arg)
{
	struct web_list *w = arg;

	return json_array_append_new(w->folders,
	                             control_api_json_name(name, len)) == 0
	           ? 0
	           : -1;
}

static int
control_web_list_row(const struct state_file *f, void *arg)
{
	struct web_list *w = arg;
	struct aws_presigned p;
	struct timespec ts;
	struct err e;
	char mtime[40];
	json_t *o, *name;
	char *url = NULL;

	name = control_items_name(w->c, f);
	o = item_plain_from_file(f, json_string_value(name), w->c->bucket);
	json_decref(name);
	if (o == NULL)
		return -1;
	ts.tv_sec = f->mtime_ns / 1000000000;
	ts.tv_nsec = f->mtime_ns % 1000000000;
	text_iso_time(&ts, 0, mtime, sizeof(mtime));
	json_object_set_new(o, "MTime", json_string(mtime));
	json_object_set_new(o, "path",
	                    control_api_json_name(f->path, f->path_len));
	json_object_set_new(o, "name",
	                    control_api_json_name(f->path + w->dir_len,
	                                          f->path_len - w->dir_len));
	if (f->thumb != NULL && !w->creds_failed) {
		err_clear(&e);
		url = s3_presign_get(w->c->d.s3, f->thumb, WEB_THUMB_LINK_SECS,
		                     &p, &e);
		w->creds_failed = url == NULL;
	}
	json_object_set_new(o, "thumb_url",
	                    url != NULL ? json_string(url) : json_null());
	free(url);
	if (f->thumb_error != NULL)
		json_object_set_new(o, "thumb_error",
		                    json_string(f->thumb_error));
	if (json_array_append_new(w->images, o) == -1)
		return -1;
	w->n++;
	w->last_mtime = f->mtime_ns;
	free(w->last_path);
	w->last_path = malloc(f->path_len);
	if (w->last_path == NULL)
		return -1;
	memcpy(w->last_path, f->path, f->path_len);
	w->last_len = f->path_len;
	return 0;
}

/* The cursor after the page's last row. */
static json_t *
control_web_list_cursor(const struct web_list *w)
{
	char *s = web_query_cursor(w->last_mtime, w->last_path, w->last_len);
	json_t *j = s != NULL ? json_string(s) : NULL;

	free(s);
	return j;
}

enum MHD_Result
control_web_list_answer(struct control_conn *k)
{
	struct control *c = k->c;
	struct state_gallery_query q;
	struct web_list_args a;
	struct web_list w;
	const char *why;
	char *after;
	struct err e;
	json_t *doc;
	int rc;

	a.dir = control_conn_query(k, "dir");
	a.q = control_conn_query(k, "q");
	a.type = control_conn_query(k, "type");
	a.cursor = control_conn_query(k, "cursor");
	a.limit = control_conn_query(k, "limit");
	if (web_query_list(&a, &q, &after, &why) == -1)
		return control_conn_error(k, 400, why);
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.dir_len = q.dir_len;
	w.images = json_array();
	w.folders = json_array();
	err_clear(&e);
	rc = state_gallery_page(c->d.state, &q, control_web_list_row, &w, &e);
	if (rc != -1 && q.after_path == NULL && q.search == NULL)
		rc = state_gallery_folders(c->d.state, q.dir, q.dir_len,
		                           WEB_FOLDERS_MAX,
		                           control_web_list_folder, &w, &e);
	free(after);
	if (rc == -1) {
		json_decref(w.images);
		json_decref(w.folders);
		free(w.last_path);
		return control_conn_error(k, 500, e.message);
	}
	doc = json_pack(
	    "{s:o,s:o,s:o,s:o}", "dir", control_api_json_name(q.dir, q.dir_len),
	    "folders", w.folders, "images", w.images, "cursor",
	    w.n == q.limit ? control_web_list_cursor(&w) : json_null());
	free(w.last_path);
	return control_conn_json(k, 200, doc);
}
