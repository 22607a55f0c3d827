/*
 * verify: the steps of a verification (verify.h says what it proves and
 * repairs) and its report. A timer runs one step a loop turn: list the
 * bucket, scan the table, read the folder (verify_collect.c), compare,
 * rebuild rows, delete orphans (verify_repair.c), then the report.
 */
#include "verify.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "verify_impl.h"

static const char *const phase_names[] = {
    "listing objects",   "scanning items",  "reading the folder", "comparing",
    "reading checksums", "rebuilding rows", "deleting orphans",   "done"};

static void verify_next(struct verify *v);

/* A request's answer came back: 0 when v was freed meanwhile (and is
 * now gone). */
static int
verify_resume(struct verify *v)
{
	v->pending = 0;
	if (!v->abandoned)
		return 1;
	verify_free(v);
	return 0;
}

/* The comparing is done: with repair, the rows are rebuilt next. */
static void
verify_after_checksums(struct verify *v)
{
	if (!v->repair)
		v->phase = PHASE_DONE;
	else
		v->phase = verify_repair_rebuild_begin(v) == -1 ? PHASE_DONE
		                                                : PHASE_REBUILD;
}

static void
verify_on_timer(void *arg)
{
	struct verify *v = arg;

	switch (v->phase) {
	case PHASE_OBJECTS:
	case PHASE_ITEMS:
		if (verify_collect_request(v) == -1)
			v->phase = PHASE_DONE;
		break;
	case PHASE_LOCAL:
		v->phase =
		    verify_collect_local(v) == -1 ? PHASE_DONE : PHASE_COMPARE;
		break;
	case PHASE_COMPARE:
		if (verify_repair_compare(v) == -1)
			v->phase = PHASE_DONE;
		else if (v->checksums)
			v->phase = verify_checksum_begin(v) == -1
			               ? PHASE_DONE
			               : PHASE_CHECKSUMS;
		else
			verify_after_checksums(v);
		break;
	case PHASE_CHECKSUMS:
		if (verify_checksum_step(v))
			return; /* its callback goes on */
		sqlite3_finalize(v->walk);
		v->walk = NULL;
		verify_after_checksums(v);
		break;
	case PHASE_REBUILD:
		if (verify_repair_rebuild_step(v))
			break;
		sqlite3_finalize(v->walk);
		v->walk = NULL;
		v->phase = verify_repair_delete_begin(v) == -1 ? PHASE_DONE
		                                               : PHASE_DELETE;
		break;
	case PHASE_DELETE:
		if (verify_repair_delete_step(v))
			return; /* its callback goes on */
		sqlite3_finalize(v->walk);
		v->walk = NULL;
		v->phase = PHASE_DONE;
		break;
	case PHASE_DONE:
		break;
	}
	if (v->pending)
		return;
	verify_next(v);
}

static void
verify_next(struct verify *v)
{
	verify_done_cb cb = v->cb;

	if (v->phase != PHASE_DONE) {
		loop_timer_set(v->timer, 0);
		return;
	}
	if (v->finished)
		return;
	sqlite3_finalize(v->walk);
	v->walk = NULL;
	v->finished = 1;
	if (v->error[0] != '\0')
		log_warnx("verify: %s", v->error);
	else
		log_info("verify: %ld differences under \"%s\" (%" PRIu64
		         " objects, %" PRIu64 " items, %" PRIu64 " files)%s",
		         verify_differences(v), v->prefix, v->nobjects,
		         v->nitems, v->nfiles, v->repair ? "; repairing" : "");
	v->cb = NULL;
	if (cb != NULL)
		cb(v->arg);
}

struct verify *
verify_start(const struct verify_deps *deps, const struct verify_opts *opts,
             verify_done_cb cb, void *arg, struct err *e)
{
	const char *sp = deps->cfg->s3.prefix;
	struct verify *v;
	struct buf p;
	int k;

	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		err_sys(e, "verify: calloc");
		return NULL;
	}
	v->d = *deps;
	v->d.cfg = NULL;
	v->rootfd = -1;
	v->max_delete = deps->cfg->sync.max_delete;
	v->s3prefix = strdup(sp);
	v->table = strdup(deps->cfg->dynamodb.table);
	if (deps->cfg->thumbnails.enabled) {
		buf_init(&p, 0);
		buf_printf(&p, "%s%s", sp, deps->cfg->thumbnails.prefix);
		v->thumb_prefix = buf_steal(&p);
	}
	if (deps->cfg->summary.enabled) {
		buf_init(&p, 0);
		buf_printf(&p, "%s%s", sp, deps->cfg->summary.key);
		v->summary_key = buf_steal(&p);
	}
	v->cb = cb;
	v->arg = arg;
	v->resume = verify_resume;
	v->next = verify_next;
	v->repair = opts->repair;
	v->delete_orphans = opts->repair && opts->delete_orphans;
	v->checksums = opts->checksums;
	for (k = 0; k < K_NKINDS; k++)
		v->names[k] = json_array();
	buf_init(&p, 0);
	buf_printf(&p, "%s%s", sp, opts->prefix != NULL ? opts->prefix : "");
	v->prefix = buf_steal(&p);
	/* A prefix outside s3.prefix has no files: a path prefix that matches
	 * none. */
	v->thumbs_listed =
	    v->thumb_prefix != NULL && v->prefix != NULL &&
	    strncmp(v->thumb_prefix, v->prefix, strlen(v->prefix)) == 0;
	if (v->prefix != NULL)
		v->fileprefix = strdup(strncmp(v->prefix, sp, strlen(sp)) == 0
		                           ? v->prefix + strlen(sp)
		                           : "\x01");
	v->timer = loop_timer_new(deps->loop, verify_on_timer, v, e);
	if (v->prefix == NULL || v->fileprefix == NULL || v->timer == NULL ||
	    v->s3prefix == NULL || v->table == NULL) {
		if (e->kind == ERR_NONE)
			err_sys(e, "verify: out of memory");
		verify_free(v);
		return NULL;
	}
	v->rootfd =
	    open(deps->cfg->watch.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->rootfd == -1) {
		err_sys(e, "verify: %s", deps->cfg->watch.root);
		verify_free(v);
		return NULL;
	}
	if (verify_collect_open(v, deps->cfg->state.path) == -1) {
		err_set(e, ERR_SYS, "%s",
		        v->error[0] ? v->error : "verify: out of memory");
		verify_free(v);
		return NULL;
	}
	verify_next(v);
	return v;
}

int
verify_finished(const struct verify *v)
{
	return v->finished;
}

long
verify_differences(const struct verify *v)
{
	long n = 0;
	int k;

	for (k = 0; k < K_NKINDS; k++)
		n += v->counts[k];
	return n;
}

json_t *
verify_report(const struct verify *v)
{
	json_t *r, *kinds_o;
	int k;

	r = json_pack("{s:s,s:s,s:I,s:I,s:I}", "state", phase_names[v->phase],
	              "prefix", v->prefix, "objects", (json_int_t)v->nobjects,
	              "items", (json_int_t)v->nitems, "files",
	              (json_int_t)v->nfiles);
	if (r == NULL || !verify_finished(v))
		return r;
	kinds_o = json_object();
	for (k = 0; k < K_NKINDS; k++)
		json_object_set_new(
		    kinds_o, verify_repair_kind_name((enum verify_kind)k),
		    json_pack("{s:I,s:O}", "count", (json_int_t)v->counts[k],
		              "names", v->names[k]));
	json_object_set_new(r, "differences", kinds_o);
	json_object_set_new(r, "total",
	                    json_integer((json_int_t)verify_differences(v)));
	json_object_set_new(r, "repair", json_boolean(v->repair));
	if (v->repair) {
		json_object_set_new(r, "uploads_queued",
		                    json_integer((json_int_t)v->repaired));
		json_object_set_new(r, "rows_rebuilt",
		                    json_integer((json_int_t)v->rebuilt));
		json_object_set_new(r, "orphans_deleted",
		                    json_integer((json_int_t)v->deleted));
	}
	if (v->checksums)
		json_object_set_new(
		    r, "checksums",
		    json_pack("{s:I,s:I,s:I}", "matched",
		              (json_int_t)v->sums_checked, "absent",
		              (json_int_t)v->sums_absent, "not_compared",
		              (json_int_t)v->sums_other));
	if (v->note[0] != '\0')
		json_object_set_new(r, "note", json_string(v->note));
	if (v->error[0] != '\0')
		json_object_set_new(r, "error", json_string(v->error));
	return r;
}

void
verify_free(struct verify *v)
{
	int k;

	if (v == NULL)
		return;
	if (v->pending) { /* its callback frees it */
		v->abandoned = 1;
		v->cb = NULL;
		return;
	}
	loop_timer_free(v->timer);
	sqlite3_finalize(v->walk);
	if (v->db != NULL)
		sqlite3_close(v->db);
	if (v->dbpath != NULL)
		(void)unlink(v->dbpath);
	if (v->rootfd != -1)
		close(v->rootfd);
	for (k = 0; k < K_NKINDS; k++)
		json_decref(v->names[k]);
	json_decref(v->start_key);
	free(v->token);
	free(v->dbpath);
	free(v->prefix);
	free(v->fileprefix);
	free(v->s3prefix);
	free(v->table);
	free(v->summary_key);
	free(v->thumb_prefix);
	free(v);
}
