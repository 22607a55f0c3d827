/*
 * sync: the engine's life cycle, and the wiring of its rooms. sync_new
 * fills the table of operations the core starts jobs through and makes the
 * timers, each with its role's callback, so that the role files depend on
 * the core and never the reverse (see sync_impl.h for the rooms and
 * docs/ARCHITECTURE.md for the path of an upload through them).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "sync_impl.h"

static const struct sync_ops sync_ops = {
    .converge = sync_upload_converge,
    .gone = sync_remove_gone,
    .rename = sync_rename_start,
    .api_done = sync_trash_api_done,
    .on_event = sync_on_event,
};

static void
sync_free_list(char **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static char **
sync_copy_list(const struct config_list *l)
{
	char **out = calloc(l->count + 1, sizeof(*out));
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < l->count; i++)
		if ((out[i] = strdup(l->items[i])) == NULL) {
			sync_free_list(out, i);
			return NULL;
		}
	return out;
}

static int
sync_apply(struct sync *s, const struct config *cfg)
{
	char **inc, **exc;

	inc = sync_copy_list(&cfg->watch.include);
	exc = sync_copy_list(&cfg->watch.exclude);
	if (inc == NULL || exc == NULL) {
		sync_free_list(inc, cfg->watch.include.count);
		sync_free_list(exc, cfg->watch.exclude.count);
		return -1;
	}
	sync_free_list(s->include, s->ninclude);
	sync_free_list(s->exclude, s->nexclude);
	s->include = inc;
	s->ninclude = cfg->watch.include.count;
	s->exclude = exc;
	s->nexclude = cfg->watch.exclude.count;
	s->settle_ms = (unsigned)cfg->watch.settle_ms;
	s->concurrency = (unsigned)cfg->sync.concurrency;
	if (s->limit == 0 || s->limit > s->concurrency)
		s->limit = s->concurrency < SYNC_LIMIT_START ? s->concurrency
		                                             : SYNC_LIMIT_START;
	s->keep = strcmp(cfg->sync.delete, "keep") == 0;
	s->max_delete = (unsigned)cfg->sync.max_delete;
	s->max_delete_pct = (unsigned)cfg->sync.max_delete_percent;
	return 0;
}

static char *
sync_source(const struct config *cfg, const char *hostname)
{
	struct buf b;

	if (cfg->sync.source[0] != '\0')
		return strdup(cfg->sync.source);
	buf_init(&b, 0);
	buf_printf(&b, "imgsync@%s", hostname);
	return buf_steal(&b);
}

static char *
sync_summary_key(const struct config *cfg)
{
	struct buf b;

	if (!cfg->summary.enabled)
		return NULL;
	buf_init(&b, 0);
	buf_printf(&b, "%s%s", cfg->s3.prefix, cfg->summary.key);
	return buf_steal(&b);
}

struct sync *
sync_new(const struct config *cfg, const struct sync_deps *deps, struct err *e)
{
	struct sync *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		err_sys(e, "sync: calloc");
		return NULL;
	}
	s->rootfd = -1;
	s->ops = &sync_ops;
	s->loop = deps->loop;
	s->s3 = deps->s3;
	s->ddb = deps->ddb;
	s->state = deps->state;
	s->summary = deps->summary;
	s->root = strdup(cfg->watch.root);
	s->prefix = strdup(cfg->s3.prefix);
	s->bucket = strdup(cfg->s3.bucket);
	s->table = strdup(cfg->dynamodb.table);
	s->source = sync_source(cfg, deps->hostname);
	s->summary_key = sync_summary_key(cfg);
	if (s->root == NULL || s->prefix == NULL || s->bucket == NULL ||
	    s->table == NULL || s->source == NULL || sync_apply(s, cfg) == -1) {
		err_sys(e, "sync: out of memory");
		goto fail;
	}
	if (sync_thumbs_new(s, cfg, e) == -1)
		goto fail;
	s->settle_timer = loop_timer_new(s->loop, sync_on_settle, s, e);
	s->work_timer = loop_timer_new(s->loop, sync_upload_on_work, s, e);
	s->rescan_timer = loop_timer_new(s->loop, sync_scan_on_timer, s, e);
	s->root_timer = loop_timer_new(s->loop, sync_root_on_timer, s, e);
	s->delete_timer = loop_timer_new(s->loop, sync_on_delete_timer, s, e);
	s->items_timer = loop_timer_new(s->loop, sync_items_on_timer, s, e);
	s->scan_timer = loop_timer_new(s->loop, sync_scan_on_step, s, e);
	s->disk_timer =
	    loop_timer_new(s->loop, sync_recover_on_disk_timer, s, e);
	if (s->settle_timer == NULL || s->work_timer == NULL ||
	    s->rescan_timer == NULL || s->root_timer == NULL ||
	    s->delete_timer == NULL || s->disk_timer == NULL ||
	    s->items_timer == NULL || s->scan_timer == NULL)
		goto fail;
	return s;
fail:
	sync_free(s);
	return NULL;
}

void
sync_free(struct sync *s)
{
	size_t i;

	if (s == NULL)
		return;
	s->stopping = 1;      /* nothing starts any more */
	sync_items_cancel(s); /* their jobs end, cancelled */
	sync_thumbs_free(s);
	for (i = 0; i < SYNC_HASH_BUCKETS; i++)
		while (s->table_[i] != NULL) {
			sync_run_free(s->table_[i]->run);
			s->table_[i]->run = NULL;
			sync_job_free(s->table_[i]);
		}
	loop_timer_free(s->settle_timer);
	loop_timer_free(s->work_timer);
	loop_timer_free(s->rescan_timer);
	loop_timer_free(s->root_timer);
	loop_timer_free(s->delete_timer);
	loop_timer_free(s->items_timer);
	loop_timer_free(s->scan_timer);
	free(s->hash_buf);
	loop_timer_free(s->disk_timer);
	while (s->nbatch > 0)
		free(s->batch[--s->nbatch]);
	free(s->batch);
	watcher_free(s->watcher);
	if (s->rootfd != -1)
		close(s->rootfd);
	sync_free_list(s->include, s->ninclude);
	sync_free_list(s->exclude, s->nexclude);
	free(s->root);
	free(s->prefix);
	free(s->bucket);
	free(s->table);
	free(s->source);
	free(s->summary_key);
	free(s);
}

void
sync_reconfigure(struct sync *s, const struct config *cfg)
{
	char *src;

	if (strcmp(cfg->watch.root, s->root) != 0 ||
	    strcmp(cfg->s3.prefix, s->prefix) != 0 ||
	    strcmp(cfg->s3.bucket, s->bucket) != 0 ||
	    strcmp(cfg->dynamodb.table, s->table) != 0)
		log_warnx("watch.root, s3.prefix, s3.bucket and dynamodb.table "
		          "changes take effect at the next restart");
	if (cfg->thumbnails.enabled != (s->thumbs != NULL))
		log_warnx("thumbnails.* changes take effect at the next "
		          "restart");
	if (sync_apply(s, cfg) == -1) {
		log_warnx("reload: out of memory; keeping the old patterns");
		return;
	}
	src = sync_source(
	    cfg, strchr(s->source, '@') ? strchr(s->source, '@') + 1 : "");
	if (src != NULL) {
		free(s->source);
		s->source = src;
	}
	sync_rescan(s, "configuration reloaded");
}

int
sync_start(struct sync *s, struct err *e)
{
	s->rescan_pending = 1;
	if (sync_root_check(s) == -1)
		return -1;
	if (s->root_lost)
		return 0;
	if (!s->started && sync_recover_begin(s, e) == -1)
		return -1;
	if (sync_thumbs_start(s, e) == -1)
		return -1;
	sync_thumbs_touch(s);
	sync_scan_now(s);
	return 0;
}

void
sync_stop(struct sync *s)
{
	s->stopping = 1;
}

int
sync_idle(const struct sync *s)
{
	return s->settling.n == 0 && s->ready.n == 0 && s->running == 0 &&
	       !s->rescan_pending && s->nbatch == 0 && sync_thumbs_idle(s);
}

void
sync_get_stats(const struct sync *s, struct sync_stats *st)
{
	*st = s->stats;
	st->queued = s->settling.n + s->ready.n;
	st->running = s->running;
	st->limit = s->limit;
	st->scanning = s->rescan_pending;
}
