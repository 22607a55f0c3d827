/*
 * control_status: GET /status (JSON: the engine's state, counters, rate,
 * last error) and GET /metrics (Prometheus text: the same counters, the
 * AWS clients' requests, retries, throttling and latency histograms). The
 * rate is files done per second over the last CTL_RATE_WINDOW seconds,
 * from a sample taken every second.
 */
#include "control_impl.h"

#include <inttypes.h>
#include <string.h>

#include "log.h"

static uint64_t
control_status_done(const struct sync_stats *st)
{
	return st->uploaded + st->deleted + st->renamed;
}

static void
control_status_on_tick(void *arg)
{
	struct control *c = arg;
	struct sync_stats st;

	sync_get_stats(c->d.sync, &st);
	memmove(c->rate.done + 1, c->rate.done,
	        CTL_RATE_WINDOW * sizeof(c->rate.done[0]));
	memmove(c->rate.bytes + 1, c->rate.bytes,
	        CTL_RATE_WINDOW * sizeof(c->rate.bytes[0]));
	c->rate.done[0] = control_status_done(&st);
	c->rate.bytes[0] = st.bytes;
	if (c->rate.ndone <= CTL_RATE_WINDOW)
		c->rate.ndone++;
	loop_timer_set(c->rate.tick, 1000);
}

static const char *
control_status_state(const struct control *c)
{
	if (sync_stopping(c->d.sync))
		return "stopping";
	if (sync_root_lost_why(c->d.sync) != NULL)
		return "root-lost";
	if (sync_disk_full_why(c->d.sync) != NULL)
		return "disk-full";
	if (sync_paused(c->d.sync))
		return "paused";
	if (sync_rescanning(c->d.sync))
		return "scanning";
	return "running";
}

static json_t *
control_status_json(struct control *c)
{
	struct sync_stats st;
	uint64_t failed = 0, done;
	double rate = 0, byte_rate = 0;
	const char *last, *lost;
	json_t *doc;
	struct err e;

	sync_get_stats(c->d.sync, &st);
	err_clear(&e);
	if (state_count_failed(c->d.state, &failed, &e) == -1)
		log_warnx("%s", e.message);
	done = control_status_done(&st);
	if (c->rate.ndone > 1) {
		rate = (double)(done - c->rate.done[c->rate.ndone - 1]) /
		       (double)(c->rate.ndone - 1);
		byte_rate =
		    (double)(st.bytes - c->rate.bytes[c->rate.ndone - 1]) /
		    (double)(c->rate.ndone - 1);
	}
	last = sync_last_error(c->d.sync);
	lost = sync_root_lost_why(c->d.sync);
	doc = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	    "s:f,"
	    "s:o}",
	    "state", control_status_state(c), "version", IMGSYNC_VERSION,
	    "watch_root", c->root, "bucket", c->bucket, "table", c->table,
	    "uptime_s", (json_int_t)((loop_now_ms() - c->started_ms) / 1000),
	    "queued", (json_int_t)st.queued, "in_flight",
	    (json_int_t)st.running, "in_flight_limit", (json_int_t)st.limit,
	    "uploaded", (json_int_t)st.uploaded, "deleted",
	    (json_int_t)st.deleted, "renamed", (json_int_t)st.renamed,
	    "unchanged", (json_int_t)st.unchanged, "done", (json_int_t)done,
	    "failed", (json_int_t)failed, "bytes", (json_int_t)st.bytes, "rate",
	    rate, "last_error",
	    last[0] != '\0' ? control_api_json_name(last, strlen(last))
	                    : json_null());
	if (doc != NULL && (st.thumbnails > 0 || st.thumbnails_failed > 0)) {
		json_object_set_new(doc, "thumbnails",
		                    json_integer((json_int_t)st.thumbnails));
		json_object_set_new(
		    doc, "thumbnails_failed",
		    json_integer((json_int_t)st.thumbnails_failed));
	}
	if (doc != NULL && lost != NULL)
		json_object_set_new(doc, "root_lost",
		                    control_api_json_name(lost, strlen(lost)));
	lost = sync_disk_full_why(c->d.sync);
	if (doc != NULL && lost != NULL)
		json_object_set_new(doc, "disk_full",
		                    control_api_json_name(lost, strlen(lost)));
	if (doc != NULL) {
		json_object_set_new(doc, "byte_rate", json_real(byte_rate));
		json_object_set_new(doc, "scanning", json_boolean(st.scanning));
		json_object_set_new(doc, "scanned",
		                    json_integer((json_int_t)st.scanned));
	}
	if (doc != NULL)
		json_object_set_new(
		    doc, "held_deletions",
		    json_integer((json_int_t)sync_held_count(c->d.sync)));
	return doc;
}

static void
control_status_head(struct buf *b, const char *name, const char *type,
                    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter with one value per service. */
static void
control_status_services(struct buf *b, const char *name, const char *help,
                        uint64_t s3, uint64_t ddb)
{
	control_status_head(b, name, "counter", help);
	buf_printf(b,
	           "%s{service=\"s3\"} %" PRIu64 "\n"
	           "%s{service=\"dynamodb\"} %" PRIu64 "\n",
	           name, s3, name, ddb);
}

static void
control_status_latency(struct buf *b, const char *service,
                       const struct aws_stats *a)
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
control_status_metrics(struct control *c)
{
	const struct aws_stats *a = aws_client_stats(c->d.s3c);
	const struct aws_stats *d = aws_client_stats(c->d.ddbc);
	struct sync_stats st;
	uint64_t failed = 0;
	struct buf b;
	struct err e;
	int i;

	sync_get_stats(c->d.sync, &st);
	err_clear(&e);
	(void)state_count_failed(c->d.state, &failed, &e);
	buf_init(&b, 0);
	control_status_head(
	    &b, "imgsync_files_synced_total", "counter",
	    "Files uploaded, deleted or renamed in the mirror.");
	buf_printf(&b,
	           "imgsync_files_synced_total{op=\"upload\"} %" PRIu64 "\n"
	           "imgsync_files_synced_total{op=\"delete\"} %" PRIu64 "\n"
	           "imgsync_files_synced_total{op=\"rename\"} %" PRIu64 "\n",
	           st.uploaded, st.deleted, st.renamed);
	control_status_head(&b, "imgsync_files_unchanged_total", "counter",
	                    "Files found already in sync.");
	buf_printf(&b, "imgsync_files_unchanged_total %" PRIu64 "\n",
	           st.unchanged);
	control_status_head(&b, "imgsync_thumbnails_total", "counter",
	                    "Thumbnails made and stored, or that could not "
	                    "be made (the reason is logged).");
	buf_printf(&b,
	           "imgsync_thumbnails_total{result=\"made\"} %" PRIu64 "\n"
	           "imgsync_thumbnails_total{result=\"failed\"} %" PRIu64 "\n",
	           st.thumbnails, st.thumbnails_failed);
	control_status_head(&b, "imgsync_bytes_uploaded_total", "counter",
	                    "Bytes of file content uploaded.");
	buf_printf(&b, "imgsync_bytes_uploaded_total %" PRIu64 "\n", st.bytes);
	control_status_head(&b, "imgsync_failures_total", "counter",
	                    "Files that failed for good, by reason.");
	for (i = 0; i < ERR_REASON_N; i++)
		buf_printf(
		    &b, "imgsync_failures_total{reason=\"%s\"} %" PRIu64 "\n",
		    err_reason_name((enum err_reason)i), st.fail_by[i]);
	control_status_head(&b, "imgsync_failed_files", "gauge",
	                    "Files failed now (see /failed).");
	buf_printf(&b, "imgsync_failed_files %" PRIu64 "\n", failed);
	control_status_services(&b, "imgsync_requests_total",
	                        "Requests sent to AWS, retries included.",
	                        a->requests, d->requests);
	control_status_services(
	    &b, "imgsync_retries_total",
	    "Requests retried after a transient error or throttling.",
	    a->retries, d->retries);
	control_status_services(&b, "imgsync_throttled_total",
	                        "Requests the server throttled.", a->throttled,
	                        d->throttled);
	control_status_head(&b, "imgsync_queue_depth", "gauge",
	                    "Files waiting to be synced.");
	buf_printf(&b, "imgsync_queue_depth %" PRIu64 "\n", st.queued);
	control_status_head(&b, "imgsync_in_flight", "gauge",
	                    "Operations running.");
	buf_printf(&b, "imgsync_in_flight %" PRIu64 "\n", st.running);
	control_status_head(&b, "imgsync_in_flight_limit", "gauge",
	                    "Operations allowed at once now (adaptive).");
	buf_printf(&b, "imgsync_in_flight_limit %" PRIu64 "\n", st.limit);
	control_status_head(&b, "imgsync_rescans_total", "counter",
	                    "Full walks of the watch root.");
	buf_printf(&b, "imgsync_rescans_total %" PRIu64 "\n", st.rescans);
	control_status_head(&b, "imgsync_paused", "gauge", "1 while paused.");
	buf_printf(&b, "imgsync_paused %d\n", sync_paused(c->d.sync));
	control_status_head(
	    &b, "imgsync_deletions_held", "gauge",
	    "Local deletions held by sync.max_delete until confirmed.");
	buf_printf(&b, "imgsync_deletions_held %" PRIu64 "\n",
	           sync_held_count(c->d.sync));
	control_status_head(
	    &b, "imgsync_disk_full", "gauge",
	    "1 while the state database cannot be written (its file "
	    "system is full or read-only): work waits.");
	buf_printf(&b, "imgsync_disk_full %d\n",
	           sync_disk_full_why(c->d.sync) != NULL);
	control_status_head(
	    &b, "imgsync_root_lost", "gauge",
	    "1 while the folder at watch.root is not the mirrored one "
	    "(nothing is uploaded or deleted).");
	buf_printf(&b, "imgsync_root_lost %d\n",
	           sync_root_lost_why(c->d.sync) != NULL);
	control_status_head(&b, "imgsync_uptime_seconds", "gauge",
	                    "Seconds since imgsyncd started.");
	buf_printf(&b, "imgsync_uptime_seconds %" PRIu64 "\n",
	           (loop_now_ms() - c->started_ms) / 1000);
	control_status_head(&b, "imgsync_request_duration_seconds", "histogram",
	                    "Latency of requests to AWS, per attempt.");
	control_status_latency(&b, "s3", a);
	control_status_latency(&b, "dynamodb", d);
	return buf_steal(&b);
}

/* --- /failed, /getall?local=1 ------------------------------------------ */

int
control_status_init(struct control *c, struct err *e)
{
	c->rate.tick = loop_timer_new(c->d.loop, control_status_on_tick, c, e);
	if (c->rate.tick == NULL)
		return -1;
	control_status_on_tick(c);
	return 0;
}

void
control_status_cleanup(struct control *c)
{
	loop_timer_free(c->rate.tick);
	c->rate.tick = NULL;
}

enum MHD_Result
control_status_answer(struct control_conn *k)
{
	if (k->req.route == CTL_METRICS)
		return control_conn_send(
		    k, 200, control_status_metrics(k->c),
		    "text/plain; version=0.0.4; charset=utf-8");
	return control_conn_json(k, 200, control_status_json(k->c));
}
