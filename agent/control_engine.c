/*
 * control_engine: what the control socket asks of the engine besides
 * items. POST /rescan, /pause, /resume; GET /failed and POST /retry (the
 * files that failed for good); GET /deletions and POST /deletions/confirm
 * (local deletions the mass-deletion guard holds, invariant 5); POST
 * /verify and GET /verify/status (one verification at a time, verify.h).
 * Each answers at once: nothing here waits on the network.
 */
#include "control_impl.h"

#include <stdio.h>
#include <string.h>

#include "item.h"
#include "text.h"
#include "verify.h"

#define CTL_MAX_FAILED 1000 /* rows /failed lists ("truncated" past it) */

/* A list being gathered for /failed or /deletions. */
struct control_engine_list {
	const struct control *c;
	json_t *list;
	int more; /* cut at CTL_MAX_FAILED */
};

static int
control_engine_failed_row(const struct state_file *f, void *arg)
{
	struct control_engine_list *w = arg;

	if (json_array_size(w->list) == CTL_MAX_FAILED) {
		w->more = 1; /* a misconfiguration can fail every file */
		return 1;
	}
	json_array_append_new(
	    w->list, json_pack("{s:o,s:s,s:s,s:i}", ITEM_FILENAME,
	                       control_items_name(w->c, f), "error",
	                       f->error != NULL ? f->error : "", "failed_at",
	                       f->failed_at, "attempts", (int)f->attempts));
	return 0;
}

/* One held deletion (meta name "held:PATH"), as its FileName. */
static int
control_engine_held_row(const char *name, const void *value, size_t len,
                        void *arg)
{
	struct control_engine_list *w = arg;
	const char *path = strchr(name, ':') + 1;
	struct buf key;

	(void)value;
	(void)len;
	if (json_array_size(w->list) == CTL_MAX_FAILED) {
		w->more = 1;
		return 1;
	}
	buf_init(&key, 0);
	buf_printf(&key, "%s%s", w->c->prefix, path);
	if (buf_cstr(&key) != NULL)
		json_array_append_new(w->list,
		                      control_api_json_name(key.data, key.len));
	buf_cleanup(&key);
	return 0;
}

/* {name: list} (with "truncated" when cut), and count when >= 0. */
static enum MHD_Result
control_engine_list(struct control_conn *k, const char *name,
                    struct control_engine_list *w, long long count)
{
	json_t *doc = json_pack("{s:o}", name, w->list);

	if (doc != NULL && count >= 0)
		json_object_set_new(doc, "count", json_integer(count));
	if (doc != NULL && w->more)
		json_object_set_new(doc, "truncated", json_true());
	return control_conn_json(k, 200, doc);
}

/* A message and the count of files it concerns: "Retrying 2 failed
 * files". */
static enum MHD_Result
control_engine_counted(struct control_conn *k, const char *verb,
                       const char *noun, long n)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "%s %ld %s%s", verb, n, noun,
	         n == 1 ? "" : "s");
	return control_conn_json(
	    k, 202,
	    json_pack("{s:s,s:I}", "message", msg, "count", (json_int_t)n));
}

/* POST /verify?prefix=&repair=1&delete_orphans=1&checksums=1: one at a
 * time. */
static enum MHD_Result
control_engine_verify(struct control_conn *k)
{
	struct control *c = k->c;
	struct verify_deps d;
	struct verify_opts o;
	struct err e;

	if (c->verify != NULL && !verify_finished(c->verify))
		return control_conn_error(k, 409, "a verification is running");
	if (sync_root_lost_why(c->d.sync) != NULL)
		return control_conn_error(k, 503,
		                          sync_root_lost_why(c->d.sync));
	memset(&o, 0, sizeof(o));
	o.prefix = control_conn_query(k, "prefix");
	if (o.prefix == NULL)
		o.prefix = "";
	if (!text_utf8_valid(o.prefix, strlen(o.prefix)) ||
	    strlen(o.prefix) > CTL_NAME_MAX)
		return control_conn_error(
		    k, 400, "prefix must be UTF-8, at most 1024 bytes");
	o.repair = control_conn_query_true(k, "repair");
	o.delete_orphans = control_conn_query_true(k, "delete_orphans");
	o.checksums = control_conn_query_true(k, "checksums");
	memset(&d, 0, sizeof(d));
	d.loop = c->d.loop;
	d.s3 = c->d.s3;
	d.ddb = c->d.ddb;
	d.state = c->d.state;
	d.sync = c->d.sync;
	d.cfg = c->d.cfg;
	verify_free(c->verify);
	err_clear(&e);
	c->verify = verify_start(&d, &o, NULL, NULL, &e);
	if (c->verify == NULL)
		return control_conn_error(k, 500, e.message);
	return control_conn_json(
	    k, 202,
	    json_pack("{s:s,s:s}", "message", "Verifying", "prefix", o.prefix));
}

enum MHD_Result
control_engine_answer(struct control_conn *k)
{
	struct control *c = k->c;
	struct sync *s = c->d.sync;
	struct control_engine_list w;
	struct err e;
	long n;

	err_clear(&e);
	memset(&w, 0, sizeof(w));
	w.c = c;
	switch (k->req.route) {
	case CTL_RESCAN:
		sync_rescan(s, "asked on the control socket");
		return control_conn_json(
		    k, 202, json_pack("{s:s}", "message", "Rescan started"));
	case CTL_PAUSE:
		sync_pause(s);
		return control_conn_json(
		    k, 200, json_pack("{s:s}", "message", "Paused"));
	case CTL_RESUME:
		sync_resume(s);
		return control_conn_json(
		    k, 200, json_pack("{s:s}", "message", "Resumed"));
	case CTL_RETRY:
		n = sync_retry_failed(s, &e);
		if (n == -1)
			return control_conn_error(k, 500, e.message);
		return control_engine_counted(k, "Retrying", "failed file", n);
	case CTL_FAILED:
		w.list = json_array();
		if (state_failed_each(c->d.state, control_engine_failed_row, &w,
		                      &e) == -1) {
			json_decref(w.list);
			return control_conn_error(k, 500, e.message);
		}
		return control_engine_list(k, "failed", &w, -1);
	case CTL_DELETIONS:
		w.list = json_array();
		if (sync_held_each(s, control_engine_held_row, &w, &e) == -1) {
			json_decref(w.list);
			return control_conn_error(k, 500, e.message);
		}
		return control_engine_list(k, "held", &w,
		                           (long long)sync_held_count(s));
	case CTL_DELETIONS_CONFIRM:
		n = sync_held_confirm(s, &e);
		if (n == -1)
			return control_conn_error(k, 500, e.message);
		return control_engine_counted(k, "Sending", "held deletion", n);
	case CTL_VERIFY:
		return control_engine_verify(k);
	case CTL_VERIFY_STATUS:
		return control_conn_json(
		    k, 200,
		    c->verify != NULL ? verify_report(c->verify)
		                      : json_pack("{s:s}", "state", "idle"));
	default:
		return control_conn_error(k, 500, "no handler");
	}
}
