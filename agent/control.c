#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "control_api.h"
#include "log.h"
#include "text.h"
#include "verify.h"

#define CTL_IDLE_TIMEOUT_S 10 /* a silent or half-sent request is closed */
#define CTL_MAX_CONNS 1000
#define CTL_CONN_MEMORY 32768 /* MHD's buffer per connection */
#define CTL_MAX_SCANS 50      /* Scan calls per /getall page */
#define CTL_RATE_WINDOW 10    /* seconds /status's rate is taken over */
#define CTL_MAX_WAITING 256   /* connections waiting on DynamoDB at once */
#define CTL_MAX_FAILED 1000   /* rows /failed lists ("truncated" past it) */

struct ctl_conn;

struct control {
	struct loop *loop;
	struct sync *sync;
	struct state *state;
	struct dynamo *ddb;
	struct s3 *s3;
	const struct config *cfg;
	struct verify *verify; /* the running or last verification */
	const struct aws_client *s3c;
	const struct aws_client *ddbc;
	struct MHD_Daemon *mhd;
	struct loop_timer *timer; /* MHD's own timeouts */
	struct loop_timer *tick;  /* samples for the rate */
	int epfd;
	char *socket_path;
	char *trash;
	char *prefix;
	char *root;
	char *bucket;
	char *table;
	size_t max_body;
	unsigned timeout_ms; /* a DynamoDB wait is answered 504 after it */
	uint64_t started_ms;
	uint64_t done[CTL_RATE_WINDOW + 1]; /* files done, one per second */
	unsigned ndone;
	struct ctl_conn *conns;
	unsigned nwaiting; /* suspended connections */
};

/*
 * One request. It lives until MHD is done with the connection and no
 * callback holds it; a callback that outlives the server (shutdown) finds
 * c NULL and only frees it.
 */
struct ctl_conn {
	struct control *c;
	struct ctl_conn *prev, *next;
	struct MHD_Connection *mc;
	const char *method;
	unsigned status; /* of the route: 200, 404, 405, 413 */
	enum ctl_route route;
	const char *allow;
	struct buf body;
	int too_big;
	int suspended;
	int pending;   /* a callback will still come */
	int timed_out; /* answered 504 before the callback came */
	struct loop_timer *deadline;
	int done; /* MHD finished the connection */
	struct ctl_request req;
	unsigned reply_status;
	char *reply_body;
	json_t *images; /* /getall: the page being gathered */
	json_t *start_key;
	unsigned scans;
	long uid;
	long pid;
};

/* --- connections --------------------------------------------------------- */

static void
conn_free(struct ctl_conn *k)
{
	if (k->c != NULL) {
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			k->c->conns = k->next;
		if (k->next != NULL)
			k->next->prev = k->prev;
	}
	loop_timer_free(k->deadline);
	buf_cleanup(&k->body);
	ctl_request_cleanup(&k->req);
	free(k->reply_body);
	json_decref(k->images);
	json_decref(k->start_key);
	free(k);
}

static struct ctl_conn *
conn_new(struct control *c, struct MHD_Connection *mc, const char *method)
{
	struct ctl_conn *k = calloc(1, sizeof(*k));
	const union MHD_ConnectionInfo *ci;
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (k == NULL)
		return NULL;
	k->c = c;
	k->mc = mc;
	k->method = method;
	k->uid = -1;
	k->pid = -1;
	buf_init(&k->body, c->max_body);
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci != NULL && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED,
	                             &uc, &len) == 0) {
		k->uid = (long)uc.uid;
		k->pid = (long)uc.pid;
	}
	k->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = k;
	c->conns = k;
	return k;
}

static enum MHD_Result
conn_send(struct ctl_conn *k, unsigned status, char *body, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (body == NULL)
		return MHD_NO; /* out of memory: MHD closes the connection */
	resp = MHD_create_response_from_buffer(strlen(body), body,
	                                       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == 405 && k->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, k->allow);
	ret = MHD_queue_response(k->mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
conn_json(struct ctl_conn *k, unsigned status, json_t *doc)
{
	char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	return conn_send(k, status, s, "application/json");
}

static enum MHD_Result
conn_error(struct ctl_conn *k, unsigned status, const char *message)
{
	return conn_send(k, status, ctl_error_body(message),
	                 "application/json");
}

static enum MHD_Result
conn_busy(struct ctl_conn *k)
{
	return conn_error(k, 503,
	                  "too many requests are waiting on DynamoDB; try "
	                  "again later");
}

/* The answer for a suspended connection: kept for the handler, which MHD
 * calls again once the connection is resumed. Takes body. */
static void
conn_resume(struct ctl_conn *k, unsigned status, char *body)
{
	k->reply_status = status;
	free(k->reply_body);
	k->reply_body = body;
	if (k->reply_body == NULL) {
		k->reply_status = 500;
		k->reply_body = ctl_error_body("out of memory");
	}
	if (!k->suspended)
		return;
	k->suspended = 0;
	k->c->nwaiting--;
	loop_timer_set(k->deadline, -1);
	MHD_resume_connection(k->mc);
	loop_timer_set(k->c->timer, 0);
}

/* DynamoDB retries without end through an outage: the client is told after
 * a while, and the call goes on (its callback finds the request
 * answered). */
static void
conn_on_deadline(void *arg)
{
	struct ctl_conn *k = arg;

	if (k->c == NULL || !k->suspended)
		return;
	k->timed_out = 1;
	conn_resume(k, 504,
	            ctl_error_body("DynamoDB did not answer in time (it is "
	                           "retried in the background); see "
	                           "/status for the last error"));
}

/* The request's connection waits for a callback; 0, or -1 when too many
 * do already (the caller answers 503). */
static int
conn_suspend(struct ctl_conn *k)
{
	struct err e;

	if (k->c->nwaiting >= CTL_MAX_WAITING)
		return -1;
	if (k->deadline == NULL) {
		err_clear(&e);
		k->deadline =
		    loop_timer_new(k->c->loop, conn_on_deadline, k, &e);
		if (k->deadline == NULL)
			return -1;
	}
	k->pending = 1;
	k->suspended = 1;
	k->c->nwaiting++;
	loop_timer_set(k->deadline, (int64_t)k->c->timeout_ms);
	MHD_suspend_connection(k->mc);
	return 0;
}

/* A callback's answer. Takes body. */
static void
conn_answer(struct ctl_conn *k, unsigned status, char *body)
{
	k->pending = 0;
	if (k->c == NULL || k->done) {
		free(body);
		conn_free(k);
		return;
	}
	if (k->timed_out) { /* answered already; MHD frees k */
		free(body);
		return;
	}
	conn_resume(k, status, body);
}

static void
conn_answer_json(struct ctl_conn *k, unsigned status, json_t *doc)
{
	char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	conn_answer(k, status, s);
}

/* --- /status and /metrics ----------------------------------------------- */

static uint64_t
stats_done(const struct sync_stats *st)
{
	return st->uploaded + st->deleted + st->renamed;
}

static void
control_on_tick(void *arg)
{
	struct control *c = arg;
	struct sync_stats st;

	sync_get_stats(c->sync, &st);
	memmove(c->done + 1, c->done, CTL_RATE_WINDOW * sizeof(c->done[0]));
	c->done[0] = stats_done(&st);
	if (c->ndone <= CTL_RATE_WINDOW)
		c->ndone++;
	loop_timer_set(c->tick, 1000);
}

static const char *
control_state(const struct control *c)
{
	if (sync_stopping(c->sync))
		return "stopping";
	if (sync_root_lost_why(c->sync) != NULL)
		return "root-lost";
	if (sync_disk_full_why(c->sync) != NULL)
		return "disk-full";
	if (sync_paused(c->sync))
		return "paused";
	if (sync_rescanning(c->sync))
		return "scanning";
	return "running";
}

static json_t *
control_status(struct control *c)
{
	struct sync_stats st;
	uint64_t failed = 0, done;
	double rate = 0;
	const char *last, *lost;
	json_t *doc;
	struct err e;

	sync_get_stats(c->sync, &st);
	err_clear(&e);
	if (state_count_failed(c->state, &failed, &e) == -1)
		log_warnx("%s", e.message);
	done = stats_done(&st);
	if (c->ndone > 1)
		rate = (double)(done - c->done[c->ndone - 1]) /
		       (double)(c->ndone - 1);
	last = sync_last_error(c->sync);
	lost = sync_root_lost_why(c->sync);
	doc = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,"
	    "s:o}",
	    "state", control_state(c), "version", IMGSYNC_VERSION, "watch_root",
	    c->root, "bucket", c->bucket, "table", c->table, "uptime_s",
	    (json_int_t)((loop_now_ms() - c->started_ms) / 1000), "queued",
	    (json_int_t)st.queued, "in_flight", (json_int_t)st.running,
	    "uploaded", (json_int_t)st.uploaded, "deleted",
	    (json_int_t)st.deleted, "renamed", (json_int_t)st.renamed,
	    "unchanged", (json_int_t)st.unchanged, "done", (json_int_t)done,
	    "failed", (json_int_t)failed, "bytes", (json_int_t)st.bytes, "rate",
	    rate, "last_error",
	    last[0] != '\0' ? ctl_json_name(last, strlen(last)) : json_null());
	if (doc != NULL && lost != NULL)
		json_object_set_new(doc, "root_lost",
		                    ctl_json_name(lost, strlen(lost)));
	lost = sync_disk_full_why(c->sync);
	if (doc != NULL && lost != NULL)
		json_object_set_new(doc, "disk_full",
		                    ctl_json_name(lost, strlen(lost)));
	if (doc != NULL)
		json_object_set_new(
		    doc, "held_deletions",
		    json_integer((json_int_t)sync_held_count(c->sync)));
	return doc;
}

static void
metric_head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter with one value per service. */
static void
metric_services(struct buf *b, const char *name, const char *help, uint64_t s3,
                uint64_t ddb)
{
	metric_head(b, name, "counter", help);
	buf_printf(b,
	           "%s{service=\"s3\"} %" PRIu64 "\n"
	           "%s{service=\"dynamodb\"} %" PRIu64 "\n",
	           name, s3, name, ddb);
}

static void
metric_latency(struct buf *b, const char *service, const struct aws_stats *a)
{
	uint64_t cum = 0;
	unsigned i;

	for (i = 0; i < AWS_LATENCY_BUCKETS; i++) {
		cum += a->latency[i];
		buf_printf(
		    b,
		    "imgsync_request_duration_seconds_bucket{service=\"%s\","
		    "le=\"%g\"} %" PRIu64 "\n",
		    service, aws_latency_bounds_ms[i] / 1000.0, cum);
	}
	cum += a->latency[AWS_LATENCY_BUCKETS];
	buf_printf(b,
	           "imgsync_request_duration_seconds_bucket{service=\"%s\","
	           "le=\"+Inf\"} %" PRIu64 "\n"
	           "imgsync_request_duration_seconds_sum{service=\"%s\"} %.6f\n"
	           "imgsync_request_duration_seconds_count{service=\"%s\"} "
	           "%" PRIu64 "\n",
	           service, cum, service, (double)a->latency_sum_us / 1e6,
	           service, cum);
}

static char *
control_metrics(struct control *c)
{
	const struct aws_stats *a = aws_client_stats(c->s3c);
	const struct aws_stats *d = aws_client_stats(c->ddbc);
	struct sync_stats st;
	uint64_t failed = 0;
	struct buf b;
	struct err e;
	int i;

	sync_get_stats(c->sync, &st);
	err_clear(&e);
	(void)state_count_failed(c->state, &failed, &e);
	buf_init(&b, 0);
	metric_head(&b, "imgsync_files_synced_total", "counter",
	            "Files uploaded, deleted or renamed in the mirror.");
	buf_printf(&b,
	           "imgsync_files_synced_total{op=\"upload\"} %" PRIu64 "\n"
	           "imgsync_files_synced_total{op=\"delete\"} %" PRIu64 "\n"
	           "imgsync_files_synced_total{op=\"rename\"} %" PRIu64 "\n",
	           st.uploaded, st.deleted, st.renamed);
	metric_head(&b, "imgsync_files_unchanged_total", "counter",
	            "Files found already in sync.");
	buf_printf(&b, "imgsync_files_unchanged_total %" PRIu64 "\n",
	           st.unchanged);
	metric_head(&b, "imgsync_bytes_uploaded_total", "counter",
	            "Bytes of file content uploaded.");
	buf_printf(&b, "imgsync_bytes_uploaded_total %" PRIu64 "\n", st.bytes);
	metric_head(&b, "imgsync_failures_total", "counter",
	            "Files that failed for good, by reason.");
	for (i = 0; i < SYNC_FAIL_NCLASSES; i++)
		buf_printf(
		    &b, "imgsync_failures_total{reason=\"%s\"} %" PRIu64 "\n",
		    sync_fail_class_name((enum sync_fail_class)i),
		    st.fail_by[i]);
	metric_head(&b, "imgsync_failed_files", "gauge",
	            "Files failed now (see /failed).");
	buf_printf(&b, "imgsync_failed_files %" PRIu64 "\n", failed);
	metric_services(&b, "imgsync_requests_total",
	                "Requests sent to AWS, retries included.", a->requests,
	                d->requests);
	metric_services(
	    &b, "imgsync_retries_total",
	    "Requests retried after a transient error or throttling.",
	    a->retries, d->retries);
	metric_services(&b, "imgsync_throttled_total",
	                "Requests the server throttled.", a->throttled,
	                d->throttled);
	metric_head(&b, "imgsync_queue_depth", "gauge",
	            "Files waiting to be synced.");
	buf_printf(&b, "imgsync_queue_depth %" PRIu64 "\n", st.queued);
	metric_head(&b, "imgsync_in_flight", "gauge", "Operations running.");
	buf_printf(&b, "imgsync_in_flight %" PRIu64 "\n", st.running);
	metric_head(&b, "imgsync_rescans_total", "counter",
	            "Full walks of the watch root.");
	buf_printf(&b, "imgsync_rescans_total %" PRIu64 "\n", st.rescans);
	metric_head(&b, "imgsync_paused", "gauge", "1 while paused.");
	buf_printf(&b, "imgsync_paused %d\n", sync_paused(c->sync));
	metric_head(&b, "imgsync_deletions_held", "gauge",
	            "Local deletions held by sync.max_delete until confirmed.");
	buf_printf(&b, "imgsync_deletions_held %" PRIu64 "\n",
	           sync_held_count(c->sync));
	metric_head(&b, "imgsync_disk_full", "gauge",
	            "1 while the state database cannot be written (its file "
	            "system is full or read-only): work waits.");
	buf_printf(&b, "imgsync_disk_full %d\n",
	           sync_disk_full_why(c->sync) != NULL);
	metric_head(&b, "imgsync_root_lost", "gauge",
	            "1 while the folder at watch.root is not the mirrored one "
	            "(nothing is uploaded or deleted).");
	buf_printf(&b, "imgsync_root_lost %d\n",
	           sync_root_lost_why(c->sync) != NULL);
	metric_head(&b, "imgsync_uptime_seconds", "gauge",
	            "Seconds since imgsyncd started.");
	buf_printf(&b, "imgsync_uptime_seconds %" PRIu64 "\n",
	           (loop_now_ms() - c->started_ms) / 1000);
	metric_head(&b, "imgsync_request_duration_seconds", "histogram",
	            "Latency of requests to AWS, per attempt.");
	metric_latency(&b, "s3", a);
	metric_latency(&b, "dynamodb", d);
	return buf_steal(&b);
}

/* --- /failed, /getall?local=1 ------------------------------------------ */

static json_t *
name_of(const struct control *c, const struct state_file *f)
{
	struct buf b;
	json_t *j;

	if (f->key != NULL && f->key[0] != '\0')
		return ctl_json_name(f->key, strlen(f->key));
	buf_init(&b, 0);
	buf_puts(&b, c->prefix);
	buf_append(&b, f->path, f->path_len);
	j = ctl_json_name(b.data != NULL ? b.data : "", b.len);
	buf_cleanup(&b);
	return j;
}

struct walk {
	struct control *c;
	json_t *list;
	const struct ctl_request *r;
	unsigned n;
	char *last;
	size_t last_len;
	int more;
	const char *pp; /* local /getall: the prefix as a path prefix */
	size_t pplen;
};

static int
control_failed_row(const struct state_file *f, void *arg)
{
	struct walk *w = arg;

	if (json_array_size(w->list) == CTL_MAX_FAILED) {
		w->more = 1; /* a misconfiguration can fail every file */
		return 1;
	}
	json_array_append_new(
	    w->list,
	    json_pack("{s:o,s:s,s:s,s:i}", "FileName", name_of(w->c, f),
	              "error", f->error != NULL ? f->error : "", "failed_at",
	              f->failed_at, "attempts", (int)f->attempts));
	return 0;
}

/* One held deletion (meta name "held:PATH"), as its FileName. */
static int
control_held_row(const char *name, const void *value, size_t len, void *arg)
{
	struct walk *w = arg;
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
		                      ctl_json_name(key.data, key.len));
	buf_cleanup(&key);
	return 0;
}

static json_t *
local_item(const struct control *c, const struct state_file *f)
{
	struct timespec ts;
	char mtime[40];
	json_t *o;

	ts.tv_sec = (time_t)(f->mtime_ns / 1000000000);
	ts.tv_nsec = (long)(f->mtime_ns % 1000000000);
	if (ts.tv_nsec < 0) { /* before 1970: the second below */
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	text_iso_time(&ts, 9, mtime, sizeof(mtime));
	o = json_pack("{s:o,s:s,s:s,s:I,s:s,s:s,s:s,s:s}", "FileName",
	              name_of(c, f), "Bucket", c->bucket, "Timestamp",
	              f->synced_at, "Size", (json_int_t)f->size, "Type",
	              f->type, "SHA256", f->sha256, "ETag", f->etag, "MTime",
	              mtime);
	if (o != NULL && f->width > 0 && f->height > 0) {
		json_object_set_new(o, "Width", json_integer(f->width));
		json_object_set_new(o, "Height", json_integer(f->height));
	}
	return o;
}

static int
control_local_row(const struct state_file *f, void *arg)
{
	struct walk *w = arg;
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
	json_array_append_new(w->list, local_item(w->c, f));
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
control_getall_local(struct control *c, const struct ctl_request *r,
                     struct err *e)
{
	size_t plen = strlen(c->prefix), qlen = strlen(r->prefix);
	const char *start = r->start;
	size_t start_len = r->start_len;
	int inclusive = 0;
	struct walk w;
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
	if (state_files_after(c->state, start, start_len, inclusive,
	                      control_local_row, &w, e) == -1) {
		json_decref(w.list);
		free(w.last);
		return NULL;
	}
	out = json_pack("{s:o}", "images", w.list);
	if (w.more && w.last != NULL) {
		cur = ctl_cursor_encode(w.last, w.last_len);
		json_object_set_new(out, "cursor", json_string(cur));
		free(cur);
	}
	free(w.last);
	return out;
}

/* --- /getall, /getitem, /delete: DynamoDB -------------------------------- */

static void getall_scan(struct ctl_conn *k);

static char *
dynamo_error_body(const char *what, const struct err *e)
{
	char msg[700];

	snprintf(msg, sizeof(msg), "DynamoDB %s: %s", what, e->message);
	return ctl_error_body(msg);
}

/* A DynamoDB callback's common cases: the request is gone (shutdown) or
 * was answered 504 already (no more pages then), or the call failed. 1 when
 * k is answered (or freed). */
static int
dynamo_answered(struct ctl_conn *k, const struct err *e, const char *what)
{
	if (k->c == NULL || k->done || k->timed_out) {
		conn_answer(k, 0, NULL);
		return 1;
	}
	if (e == NULL)
		return 0;
	conn_answer(k, e->kind == ERR_CANCEL ? 503 : 500,
	            dynamo_error_body(what, e));
	return 1;
}

static void
on_scan(json_t *resp, const struct err *e, void *arg)
{
	struct ctl_conn *k = arg;
	json_t *items, *item, *lek, *name, *out;
	size_t i;
	char *cur;

	if (dynamo_answered(k, e, "Scan"))
		return;
	items = json_object_get(resp, "Items");
	json_array_foreach(items, i, item)
	{
		json_array_append_new(k->images, ctl_item_plain(item));
	}
	lek = json_object_get(resp, "LastEvaluatedKey");
	json_decref(k->start_key);
	k->start_key = json_is_object(lek) ? json_incref(lek) : NULL;
	if (k->start_key != NULL && json_array_size(k->images) < k->req.limit &&
	    ++k->scans < CTL_MAX_SCANS) {
		getall_scan(k);
		return;
	}
	out = json_pack("{s:O}", "images", k->images);
	name = json_object_get(json_object_get(k->start_key, "FileName"), "S");
	if (out != NULL && json_is_string(name)) {
		cur = ctl_cursor_encode(json_string_value(name),
		                        json_string_length(name));
		json_object_set_new(out, "cursor", json_string(cur));
		free(cur);
	}
	conn_answer_json(k, 200, out);
}

/* One Scan call for the page: Limit keeps the page within ?limit= even
 * with the prefix filter, which can make calls come back short. */
static void
getall_scan(struct ctl_conn *k)
{
	struct control *c = k->c;
	json_t *body;
	struct err e;
	int rc;

	body = json_pack("{s:s,s:i}", "TableName", c->table, "Limit",
	                 (int)(k->req.limit - json_array_size(k->images)));
	if (k->start_key != NULL)
		json_object_set(body, "ExclusiveStartKey", k->start_key);
	if (k->req.prefix[0] != '\0')
		json_object_update_new(
		    body,
		    json_pack("{s:s,s:{s:s},s:{s:{s:s}}}", "FilterExpression",
		              "begins_with(#f, :p)", "ExpressionAttributeNames",
		              "#f", "FileName", "ExpressionAttributeValues",
		              ":p", "S", k->req.prefix));
	err_clear(&e);
	rc = dynamo_call(c->ddb, "Scan", body, on_scan, k, &e);
	json_decref(body);
	if (rc == -1)
		conn_answer(k, 500, dynamo_error_body("Scan", &e));
}

static void
on_getitem(json_t *resp, const struct err *e, void *arg)
{
	struct ctl_conn *k = arg;
	json_t *item;

	if (dynamo_answered(k, e, "GetItem"))
		return;
	item = json_object_get(resp, "Item");
	if (!json_is_object(item)) {
		conn_answer(k, 404, ctl_error_body("Item not found"));
		return;
	}
	conn_answer_json(k, 200,
	                 json_pack("{s:o}", "data", ctl_item_plain(item)));
}

static void
on_deleted(int status, const char *message, void *arg)
{
	struct ctl_conn *k = arg;
	char p[256], m[1024];

	if (k->c == NULL || k->done) {
		conn_answer(k, 0, NULL);
		return;
	}
	if (status == 0) {
		log_info("control: deleted %s (%s)",
		         log_path(k->req.name, p, sizeof(p)),
		         log_path(message, m, sizeof(m)));
		conn_answer_json(k, 200,
		                 json_pack("{s:s,s:s,s:s}", "message",
		                           "File deleted", "deletedFile",
		                           k->req.name, "local", message));
		return;
	}
	conn_answer(k, status == -2 ? 503 : 500, ctl_error_body(message));
}

static void
on_delete_lookup(json_t *resp, const struct err *e, void *arg)
{
	struct ctl_conn *k = arg;
	struct err se;

	if (k->c == NULL || k->done || e != NULL ||
	    !json_is_object(json_object_get(resp, "Item"))) {
		on_getitem(resp, e, arg);
		return;
	}
	err_clear(&se);
	if (sync_delete(k->c->sync, k->req.path, k->c->trash, on_deleted, k,
	                &se) == -1)
		conn_answer(k,
		            se.http_status > 0 ? (unsigned)se.http_status : 500,
		            ctl_error_body(se.message));
}

static void
getitem_start(struct ctl_conn *k, dynamo_done_cb cb)
{
	json_t *key;
	struct err e;
	int rc;

	key = json_pack("{s:{s:s}}", "FileName", "S", k->req.name);
	err_clear(&e);
	rc = dynamo_get_item(k->c->ddb, k->c->table, key, 1, cb, k, &e);
	json_decref(key);
	if (rc == -1)
		conn_answer(k, 500, dynamo_error_body("GetItem", &e));
}

/* --- dispatch ------------------------------------------------------------ */

static enum MHD_Result
control_upload(struct ctl_conn *k)
{
	struct control *c = k->c;
	struct err e;

	if (sync_root_lost_why(c->sync) != NULL)
		return conn_error(k, 503, sync_root_lost_why(c->sync));
	switch (sync_path_kind(c->sync, k->req.path)) {
	case SYNC_PATH_OUTSIDE:
		return conn_error(k, 400, "FileName escapes the watch root");
	case SYNC_PATH_FILE:
		break;
	default:
		return conn_error(k, 404, "File not found in the watch root");
	}
	if (!sync_path_wanted(c->sync, k->req.path))
		return conn_error(k, 400,
		                  "FileName is excluded by "
		                  "watch.include/watch.exclude");
	err_clear(&e);
	if (sync_upload(c->sync, k->req.path, &e) == -1)
		return conn_error(k, 500, e.message);
	return conn_json(k, 202,
	                 json_pack("{s:s,s:s}", "message", "Upload queued",
	                           "FileName", k->req.name));
}

static enum MHD_Result
control_delete(struct ctl_conn *k)
{
	if (sync_root_lost_why(k->c->sync) != NULL)
		return conn_error(k, 503, sync_root_lost_why(k->c->sync));
	switch (sync_path_kind(k->c->sync, k->req.path)) {
	case SYNC_PATH_OUTSIDE:
		return conn_error(k, 400, "FileName escapes the watch root");
	case SYNC_PATH_OTHER:
		return conn_error(k, 400, "FileName is not a regular file");
	default:
		break;
	}
	if (conn_suspend(k) == -1)
		return conn_busy(k);
	getitem_start(k, on_delete_lookup);
	return MHD_YES;
}

static int
query_true(struct ctl_conn *k, const char *name)
{
	const char *v =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, name);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* POST /verify?prefix=&repair=1&delete_orphans=1: one at a time. */
static enum MHD_Result
control_verify(struct ctl_conn *k)
{
	struct control *c = k->c;
	struct verify_deps d;
	struct verify_opts o;
	struct err e;

	if (c->verify != NULL && !verify_finished(c->verify))
		return conn_error(k, 409, "a verification is running");
	if (sync_root_lost_why(c->sync) != NULL)
		return conn_error(k, 503, sync_root_lost_why(c->sync));
	memset(&o, 0, sizeof(o));
	o.prefix =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, "prefix");
	if (o.prefix == NULL)
		o.prefix = "";
	if (!text_utf8_valid(o.prefix, strlen(o.prefix)) ||
	    strlen(o.prefix) > CTL_NAME_MAX)
		return conn_error(k, 400,
		                  "prefix must be UTF-8, at most 1024 bytes");
	o.repair = query_true(k, "repair");
	o.delete_orphans = query_true(k, "delete_orphans");
	memset(&d, 0, sizeof(d));
	d.loop = c->loop;
	d.s3 = c->s3;
	d.ddb = c->ddb;
	d.state = c->state;
	d.sync = c->sync;
	d.cfg = c->cfg;
	verify_free(c->verify);
	err_clear(&e);
	c->verify = verify_start(&d, &o, NULL, NULL, &e);
	if (c->verify == NULL)
		return conn_error(k, 500, e.message);
	return conn_json(
	    k, 202,
	    json_pack("{s:s,s:s}", "message", "Verifying", "prefix", o.prefix));
}

static enum MHD_Result
control_simple(struct ctl_conn *k)
{
	struct control *c = k->c;
	struct walk w;
	json_t *doc;
	struct err e;
	char msg[64];
	long n;

	err_clear(&e);
	switch (k->req.route) {
	case CTL_STATUS:
		return conn_json(k, 200, control_status(c));
	case CTL_METRICS:
		return conn_send(k, 200, control_metrics(c),
		                 "text/plain; version=0.0.4; charset=utf-8");
	case CTL_RESCAN:
		sync_rescan(c->sync, "asked on the control socket");
		return conn_json(
		    k, 202, json_pack("{s:s}", "message", "Rescan started"));
	case CTL_PAUSE:
		sync_pause(c->sync);
		return conn_json(k, 200,
		                 json_pack("{s:s}", "message", "Paused"));
	case CTL_RESUME:
		sync_resume(c->sync);
		return conn_json(k, 200,
		                 json_pack("{s:s}", "message", "Resumed"));
	case CTL_RETRY:
		n = sync_retry_failed(c->sync, &e);
		if (n == -1)
			return conn_error(k, 500, e.message);
		snprintf(msg, sizeof(msg), "Retrying %ld failed file%s", n,
		         n == 1 ? "" : "s");
		return conn_json(k, 202,
		                 json_pack("{s:s,s:I}", "message", msg, "count",
		                           (json_int_t)n));
	case CTL_DELETIONS:
		memset(&w, 0, sizeof(w));
		w.c = c;
		w.list = json_array();
		if (sync_held_each(c->sync, control_held_row, &w, &e) == -1) {
			json_decref(w.list);
			return conn_error(k, 500, e.message);
		}
		doc = json_pack("{s:o,s:I}", "held", w.list, "count",
		                (json_int_t)sync_held_count(c->sync));
		if (doc != NULL && w.more)
			json_object_set_new(doc, "truncated", json_true());
		return conn_json(k, 200, doc);
	case CTL_DELETIONS_CONFIRM:
		n = sync_held_confirm(c->sync, &e);
		if (n == -1)
			return conn_error(k, 500, e.message);
		snprintf(msg, sizeof(msg), "Sending %ld held deletion%s", n,
		         n == 1 ? "" : "s");
		return conn_json(k, 202,
		                 json_pack("{s:s,s:I}", "message", msg, "count",
		                           (json_int_t)n));
	case CTL_VERIFY:
		return control_verify(k);
	case CTL_VERIFY_STATUS:
		doc = c->verify != NULL ? verify_report(c->verify)
		                        : json_pack("{s:s}", "state", "idle");
		return conn_json(k, 200, doc);
	case CTL_FAILED:
		memset(&w, 0, sizeof(w));
		w.c = c;
		w.list = json_array();
		if (state_failed_each(c->state, control_failed_row, &w, &e) ==
		    -1) {
			json_decref(w.list);
			return conn_error(k, 500, e.message);
		}
		doc = json_pack("{s:o}", "failed", w.list);
		if (doc != NULL && w.more)
			json_object_set_new(doc, "truncated", json_true());
		return conn_json(k, 200, doc);
	default:
		return conn_error(k, 500, "no handler");
	}
}

/* A refused request that asked for a change (any method but GET and
 * HEAD): logged with the caller's uid, as the accepted ones are. */
static void
conn_log_refused(const struct ctl_conn *k, const char *url, unsigned status,
                 const char *why)
{
	char u[256], w[256];

	if (strcmp(k->method, "GET") == 0 || strcmp(k->method, "HEAD") == 0)
		return;
	log_warnx("control: uid %ld (pid %ld): refused %s %s (%u): %s", k->uid,
	          k->pid, k->method, log_path(url, u, sizeof(u)), status,
	          log_path(why, w, sizeof(w)));
}

static void
conn_log(const struct ctl_conn *k)
{
	char p[256];

	if (!ctl_route_mutates(k->req.route))
		return;
	log_info(
	    "control: uid %ld (pid %ld): %s %s%s%s", k->uid, k->pid, k->method,
	    ctl_route_name(k->req.route), k->req.name != NULL ? " " : "",
	    k->req.name != NULL ? log_path(k->req.name, p, sizeof(p)) : "");
}

static enum MHD_Result
control_dispatch(struct ctl_conn *k)
{
	struct control *c = k->c;
	struct ctl_query q;
	struct err e;
	json_t *doc;

	q.prefix =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, "prefix");
	q.limit =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, "limit");
	q.cursor =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, "cursor");
	q.local =
	    MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, "local");
	err_clear(&e);
	if (ctl_request_parse(&k->req, k->route, &q, k->body.data, k->body.len,
	                      c->prefix, &e) == -1) {
		if (e.kind != ERR_SYS)
			conn_log_refused(k, ctl_route_name(k->route), 400,
			                 e.message);
		return conn_error(k, e.kind == ERR_SYS ? 500 : 400, e.message);
	}
	conn_log(k);
	if (sync_stopping(c->sync) && ctl_route_mutates(k->route))
		return conn_error(k, 503, "imgsyncd is stopping");
	switch (k->route) {
	case CTL_GETALL:
		if (k->req.local) {
			doc = control_getall_local(c, &k->req, &e);
			if (doc == NULL)
				return conn_error(k, 500, e.message);
			return conn_json(k, 200, doc);
		}
		if (k->req.start != NULL) {
			k->start_key =
			    json_pack("{s:{s:s%}}", "FileName", "S",
			              k->req.start, k->req.start_len);
			if (k->start_key == NULL) /* not UTF-8: not a key */
				return conn_error(k, 400,
				                  "cursor is not one "
				                  "this API gave");
		}
		k->images = json_array();
		if (conn_suspend(k) == -1)
			return conn_busy(k);
		getall_scan(k);
		return MHD_YES;
	case CTL_GETITEM:
		if (conn_suspend(k) == -1)
			return conn_busy(k);
		getitem_start(k, on_getitem);
		return MHD_YES;
	case CTL_DELETE:
		return control_delete(k);
	case CTL_UPLOAD:
		return control_upload(k);
	default:
		return control_simple(k);
	}
}

/* The first call: route and size checks before any body is read. */
static enum MHD_Result
control_begin(struct control *c, struct MHD_Connection *mc, const char *url,
              const char *method, void **con_cls)
{
	struct ctl_conn *k = conn_new(c, mc, method);
	const char *cl;
	char *end;
	unsigned long long n;

	if (k == NULL)
		return MHD_NO;
	*con_cls = k;
	k->status = ctl_route_find(method, url, &k->route, &k->allow);
	if (k->status == 404 || k->status == 405)
		conn_log_refused(k, url, k->status,
		                 k->status == 404 ? "Not found"
		                                  : "Method not allowed");
	cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || n > c->max_body) {
			/* Answered before the body is read; MHD then closes
			 * the connection instead of reading it. */
			log_warnx("control: uid %ld: refused a %s-byte body "
			          "(control.max_body_kb is %zu)",
			          k->uid, cl, c->max_body / 1024);
			return conn_error(k, 413, "Request body too large");
		}
	}
	return MHD_YES;
}

static enum MHD_Result
control_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                   const char *method, const char *version,
                   const char *upload_data, size_t *upload_data_size,
                   void **con_cls)
{
	struct control *c = cls;
	struct ctl_conn *k = *con_cls;
	char *body;

	(void)version;
	if (k == NULL)
		return control_begin(c, mc, url, method, con_cls);
	if (*upload_data_size > 0) {
		if (!k->too_big &&
		    buf_append(&k->body, upload_data, *upload_data_size) == -1)
			k->too_big = 1;
		*upload_data_size = 0;
		/* A body over the cap without a Content-Length (chunked):
		 * no answer can be sent before it is all read, so the
		 * connection is closed. */
		if (k->too_big)
			log_warnx("control: uid %ld: closed a connection whose "
			          "body went past control.max_body_kb",
			          k->uid);
		return k->too_big ? MHD_NO : MHD_YES;
	}
	if (k->reply_body != NULL) { /* resumed with a callback's answer */
		body = k->reply_body;
		k->reply_body = NULL;
		return conn_send(k, k->reply_status, body, "application/json");
	}
	if (k->pending)
		return MHD_YES;
	if (k->status == 404)
		return conn_error(k, 404, "Not found");
	if (k->status == 405)
		return conn_error(k, 405, "Method not allowed");
	return control_dispatch(k);
}

static void
control_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
	struct ctl_conn *k = *con_cls;

	(void)cls;
	(void)mc;
	(void)toe;
	if (k == NULL)
		return;
	*con_cls = NULL;
	k->done = 1;
	if (!k->pending)
		conn_free(k);
}

static void
control_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("control: %s", msg);
}

/* --- the loop's side ----------------------------------------------------- */

static void
control_run(struct control *c)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(c->mhd);
	if (MHD_get_timeout(c->mhd, &ms) == MHD_YES)
		loop_timer_set(c->timer, ms > 60000 ? 60000 : (int64_t)ms);
	else
		loop_timer_set(c->timer, -1);
}

static void
control_on_fd(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	control_run(arg);
}

static void
control_on_timer(void *arg)
{
	control_run(arg);
}

/* --- the socket ---------------------------------------------------------- */

/* Whether someone other than this daemon and root could rename or create
 * entries in the directory st: then the socket's path could be swapped
 * under us. A sticky bit (as on /tmp) protects others' entries, so it
 * excuses an ancestor, but not the socket's own directory. */
static const char *
control_dir_unsafe(const struct stat *st, int own)
{
	int sticky = !own && (st->st_mode & S_ISVTX);

	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user";
	if ((st->st_mode & S_IWOTH) && !sticky)
		return "is writable by anyone";
	if ((st->st_mode & S_IWGRP) && st->st_gid != getegid() && !sticky)
		return "is writable by another group";
	return NULL;
}

/* Creates the socket's directory when missing (0750) and opens it, after
 * checking that nobody else can write to it or to a directory above it:
 * a directory others can write stops the start. */
static int
control_dir_open(const char *dir, struct err *e)
{
	char *walk = strdup(dir), *p;
	const char *why;
	struct stat st;
	int fd = -1;

	if (walk == NULL) {
		err_sys(e, "strdup");
		return -1;
	}
	for (p = walk + 1;; p++) {
		p = strchr(p, '/');
		if (p != NULL)
			*p = '\0';
		if (mkdir(walk, 0750) == -1 && errno != EEXIST) {
			err_sys(e, "control.socket: cannot create %s", walk);
			goto fail;
		}
		if (p == NULL)
			break;
		*p = '/';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		err_sys(e, "control.socket: %s", dir);
		goto fail;
	}
	why = control_dir_unsafe(&st, 1);
	/* Each directory above, up to "/" (or the working directory). */
	while (why == NULL && (p = strrchr(walk, '/')) != NULL) {
		p[p == walk ? 1 : 0] = '\0';
		if (stat(walk, &st) == -1) {
			err_sys(e, "control.socket: %s", walk);
			goto fail;
		}
		why = control_dir_unsafe(&st, 0);
		if (p == walk)
			break;
	}
	if (why != NULL) {
		err_set(e, ERR_CONFIG,
		        "control.socket: %s %s; put the socket in a directory "
		        "only imgsyncd and root can write (the unit's "
		        "/run/imgsync)",
		        walk, why);
		goto fail;
	}
	free(walk);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	free(walk);
	return -1;
}

/* A socket file already there: another daemon's (refused) or a dead one's
 * (removed). */
static int
control_stale(const struct sockaddr_un *sa, struct err *e)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		err_set(e, ERR_CONFIG,
		        "control.socket: %s exists and is not a socket",
		        sa->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err_sys(e, "socket");
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		err_set(e, ERR_CONFIG,
		        "control.socket: another imgsyncd answers on %s",
		        sa->sun_path);
		return -1;
	}
	if (errno != ECONNREFUSED) {
		err_sys(e, "control.socket: %s", sa->sun_path);
		return -1;
	}
	log_info("control: removing the stale socket %s", sa->sun_path);
	if (unlink(sa->sun_path) == -1 && errno != ENOENT) {
		err_sys(e, "control.socket: cannot remove %s", sa->sun_path);
		return -1;
	}
	return 0;
}

/* The socket's group, set on the name in its (safe) directory without
 * following a link. */
static void
control_chgrp(int dirfd, const char *name, const char *group)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (group[0] == '\0')
		return;
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_warnx("control.group: no group %s; the socket keeps the "
		          "daemon's group",
		          group);
		return;
	}
	if (gr.gr_gid == getegid())
		return; /* already ours (systemd's Group=): chown is a
		         * privileged call the unit's system-call filter refuses
		         */
	if (fchownat(dirfd, name, (uid_t)-1, gr.gr_gid, AT_SYMLINK_NOFOLLOW) ==
	    -1)
		log_warn("control.group: chown %s to group %s", name, group);
}

static int
control_listen(const struct config *cfg, struct err *e)
{
	struct sockaddr_un sa;
	char *dir, *slash;
	mode_t old;
	int fd = -1, dirfd, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cfg->control.socket) >= sizeof(sa.sun_path)) {
		err_set(e, ERR_CONFIG,
		        "control.socket: the path is longer than %zu bytes",
		        sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, cfg->control.socket, strlen(cfg->control.socket));
	dir = strdup(sa.sun_path);
	if (dir == NULL) {
		err_sys(e, "strdup");
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, strlen(dir) + 1, ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	dirfd = control_dir_open(dir, e);
	free(dir);
	if (dirfd == -1 || control_stale(&sa, e) == -1)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		err_sys(e, "socket");
		goto out;
	}
	/* The mode is set on the socket before bind(), which gives it to the
	 * new file (and the umask too: single-threaded, it is ours): the
	 * socket is never reachable with wider rights than 0660, and no path
	 * is ever chmod'ed. */
	old = umask(0117);
	rc = fchmod(fd, 0660);
	if (rc == 0)
		rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == -1 || listen(fd, 128) == -1) {
		err_sys(e, "control.socket: %s", sa.sun_path);
		close(fd);
		fd = -1;
		goto out;
	}
	slash = strrchr(sa.sun_path, '/');
	control_chgrp(dirfd, slash != NULL ? slash + 1 : sa.sun_path,
	              cfg->control.group);
out:
	if (dirfd != -1)
		close(dirfd);
	return fd;
}

/* --- life cycle ------------------------------------------------------- */

void
control_reconfigure(struct control *c, const struct config *cfg)
{
	char *trash = strdup(cfg->control.trash);

	c->cfg = cfg;
	if (trash == NULL)
		return;
	free(c->trash);
	c->trash = trash;
	c->max_body = (size_t)cfg->control.max_body_kb * 1024;
	c->timeout_ms = (unsigned)cfg->control.timeout_ms;
	if (strcmp(cfg->control.socket, c->socket_path) != 0)
		log_warnx("control.socket changes take effect at the next "
		          "restart");
}

struct control *
control_new(const struct config *cfg, const struct control_deps *deps,
            struct err *e)
{
	const union MHD_DaemonInfo *di;
	struct control *c;
	int fd;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_sys(e, "control: calloc");
		return NULL;
	}
	c->epfd = -1;
	c->loop = deps->loop;
	c->sync = deps->sync;
	c->state = deps->state;
	c->ddb = deps->ddb;
	c->s3 = deps->s3;
	c->cfg = deps->cfg;
	c->s3c = deps->s3c;
	c->ddbc = deps->ddbc;
	c->started_ms = loop_now_ms();
	c->max_body = (size_t)cfg->control.max_body_kb * 1024;
	c->timeout_ms = (unsigned)cfg->control.timeout_ms;
	c->socket_path = strdup(cfg->control.socket);
	c->trash = strdup(cfg->control.trash);
	c->prefix = strdup(cfg->s3.prefix);
	c->root = strdup(cfg->watch.root);
	c->bucket = strdup(cfg->s3.bucket);
	c->table = strdup(cfg->dynamodb.table);
	if (c->socket_path == NULL || c->trash == NULL || c->prefix == NULL ||
	    c->root == NULL || c->bucket == NULL || c->table == NULL) {
		err_sys(e, "control: strdup");
		goto fail;
	}
	c->timer = loop_timer_new(c->loop, control_on_timer, c, e);
	c->tick = loop_timer_new(c->loop, control_on_tick, c, e);
	if (c->timer == NULL || c->tick == NULL)
		goto fail;
	fd = control_listen(cfg, e);
	if (fd == -1)
		goto fail;
	c->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, control_on_request, c, MHD_OPTION_EXTERNAL_LOGGER,
	    control_on_mhd_log, c, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, control_on_completed, c,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CTL_IDLE_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CTL_MAX_CONNS,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CTL_CONN_MEMORY,
	    MHD_OPTION_END);
	if (c->mhd == NULL) {
		err_set(e, ERR_SYS, "control: libmicrohttpd did not start");
		close(fd);
		unlink(c->socket_path);
		goto fail;
	}
	di = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		err_set(e, ERR_SYS, "control: no epoll fd from libmicrohttpd");
		goto fail;
	}
	c->epfd = di->epoll_fd;
	if (loop_add_fd(c->loop, c->epfd, EPOLLIN, control_on_fd, c, e) == -1) {
		c->epfd = -1;
		goto fail;
	}
	control_on_tick(c);
	control_run(c);
	log_info("control: listening on %s", c->socket_path);
	return c;
fail:
	control_free(c);
	return NULL;
}

void
control_free(struct control *c)
{
	struct ctl_conn *k, *next;

	if (c == NULL)
		return;
	if (c->mhd != NULL) {
		/* MHD must not be stopped with suspended connections. */
		for (k = c->conns; k != NULL; k = k->next)
			if (k->suspended) {
				k->timed_out = 1; /* the callback only frees */
				conn_resume(
				    k, 503,
				    ctl_error_body("imgsyncd is stopping"));
			}
		MHD_run(c->mhd);
		if (c->epfd != -1)
			loop_del_fd(c->loop, c->epfd);
		MHD_stop_daemon(c->mhd);
		unlink(c->socket_path);
	}
	verify_free(c->verify);
	/* Left: requests a callback still holds; it frees them. */
	for (k = c->conns; k != NULL; k = next) {
		next = k->next;
		k->c = NULL;
		k->prev = k->next = NULL;
		if (!k->pending)
			conn_free(k);
	}
	loop_timer_free(c->timer);
	loop_timer_free(c->tick);
	free(c->socket_path);
	free(c->trash);
	free(c->prefix);
	free(c->root);
	free(c->bucket);
	free(c->table);
	free(c);
}
