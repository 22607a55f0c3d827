/*
 * sync_core: the engine's base, which every role file stands on and which
 * calls none of them. The job table (one job per dirty path), the settling
 * and ready queues, the scheduler that starts jobs through the table of
 * operations (struct sync_ops), the end of a run (finish, fail), intents,
 * and the two states that stop all work: a full disk (invariant 7) and a
 * root that is not the mirrored folder (invariant 5).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "errclass.h"
#include "log.h"
#include "sync_impl.h"
#include "text.h"
#include "trash.h"

/* --- the job table and queues ------------------------------------------ */

struct job *
sync_job_find(const struct sync *s, const char *path, size_t len)
{
	uint32_t h = text_hash(path, len);
	struct job *j;

	for (j = s->table_[h % SYNC_HASH_BUCKETS]; j != NULL; j = j->hnext)
		if (j->hash == h && j->path_len == len &&
		    memcmp(j->path, path, len) == 0)
			return j;
	return NULL;
}

static void
queue_push(struct queue *q, struct job *j)
{
	j->qnext = NULL;
	j->qprev = q->tail;
	if (q->tail != NULL)
		q->tail->qnext = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static void
queue_remove(struct queue *q, struct job *j)
{
	if (j->qprev != NULL)
		j->qprev->qnext = j->qnext;
	else
		q->head = j->qnext;
	if (j->qnext != NULL)
		j->qnext->qprev = j->qprev;
	else
		q->tail = j->qprev;
	j->qprev = j->qnext = NULL;
	q->n--;
}

struct job *
sync_job_new(struct sync *s, const char *path, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));
	uint32_t b;

	if (j == NULL || (j->path = malloc(len + 1)) == NULL) {
		free(j);
		log_warn("sync: out of memory");
		return NULL;
	}
	memcpy(j->path, path, len);
	j->path[len] = '\0';
	j->path_len = len;
	j->sync = s;
	j->hash = text_hash(path, len);
	b = j->hash % SYNC_HASH_BUCKETS;
	j->hnext = s->table_[b];
	s->table_[b] = j;
	return j;
}

void
sync_job_free(struct job *j)
{
	struct sync *s = j->sync;
	struct job **pp = &s->table_[j->hash % SYNC_HASH_BUCKETS];

	while (*pp != j)
		pp = &(*pp)->hnext;
	*pp = j->hnext;
	sync_waiter_answer(&j->del, -2, "imgsyncd is stopping");
	free(j->rename_from);
	free(j->replay);
	free(j->path);
	free(j);
}

static void
sync_arm(struct sync *s, uint64_t due)
{
	uint64_t now = loop_now_ms();

	if (s->settle_armed != 0 && s->settle_armed <= due)
		return;
	s->settle_armed = due;
	loop_timer_set(s->settle_timer, due > now ? (int64_t)(due - now) : 0);
}

void
sync_job_settle(struct job *j, uint64_t delay_ms)
{
	struct sync *s = j->sync;

	if (j->st == JOB_SETTLING)
		queue_remove(&s->settling, j);
	else if (j->st == JOB_READY)
		queue_remove(&s->ready, j);
	j->st = JOB_SETTLING;
	j->due = loop_now_ms() + delay_ms;
	queue_push(&s->settling, j);
	sync_arm(s, j->due);
}

/* A new job (in no queue) is ready at once. */
void
sync_job_ready(struct job *j)
{
	j->st = JOB_READY;
	queue_push(&j->sync->ready, j);
}

/*
 * Marks a path dirty: it is converged after delay_ms, or again after the
 * operation running on it now.
 */
struct job *
sync_mark(struct sync *s, const char *path, uint64_t delay_ms)
{
	size_t len = strlen(path);
	struct job *j = sync_job_find(s, path, len);

	if (j == NULL) {
		j = sync_job_new(s, path, len);
		if (j == NULL)
			return NULL;
		sync_job_settle(j, delay_ms);
		return j;
	}
	if (j->st == JOB_RUNNING || j->st == JOB_HELD)
		j->again = 1;
	else if (j->st == JOB_SETTLING && j->rename_from == NULL)
		sync_job_settle(j, delay_ms);
	return j;
}

void
sync_on_settle(void *arg)
{
	struct sync *s = arg;
	uint64_t now = loop_now_ms(), next = 0;
	struct job *j, *nj;

	s->settle_armed = 0;
	for (j = s->settling.head; j != NULL; j = nj) {
		nj = j->qnext;
		if (j->due <= now) {
			queue_remove(&s->settling, j);
			j->st = JOB_READY;
			queue_push(&s->ready, j);
		} else if (next == 0 || j->due < next) {
			next = j->due;
		}
	}
	if (next != 0)
		sync_arm(s, next);
	sync_pump(s);
}

/* --- runs -------------------------------------------------------------- */

/* Frees the state of the operation r->op, if any. */
static void
run_op_clear(struct run *r)
{
	if (r->op == RUN_UPLOAD) {
		if (r->u.up.fd != -1)
			close(r->u.up.fd);
		imagemeta_hash_free(r->u.up.hash);
		s3_parts_free(r->u.up.parts);
	}
	memset(&r->u, 0, sizeof(r->u));
	r->op = RUN_NONE;
}

/* The run goes on as operation op, with that operation's state fresh. */
void
sync_run_use(struct run *r, enum run_op op)
{
	run_op_clear(r);
	r->op = op;
	if (op == RUN_UPLOAD)
		r->u.up.fd = -1;
}

struct run *
sync_run_new(void)
{
	return calloc(1, sizeof(struct run));
}

void
sync_run_free(struct run *r)
{
	if (r == NULL)
		return;
	sync_waiter_answer(&r->api, -2, "imgsyncd is stopping");
	trash_move_free(r->trash.move); /* the file stays; the next start
	                                   moves it */
	loop_timer_free(r->trash.timer);
	run_op_clear(r);
	state_file_cleanup(&r->old);
	free(r);
}

/* --- starting ---------------------------------------------------------- */

static void
job_start(struct job *j)
{
	struct sync *s = j->sync;

	j->st = JOB_RUNNING;
	s->running++;
	j->run = sync_run_new();
	if (j->run == NULL) {
		log_warn("sync: calloc");
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	if (j->rename_from != NULL) {
		if (j->del != NULL)
			j->again = 1; /* the delete runs after the rename */
		s->ops->rename(j);
	} else if (j->del != NULL) {
		j->run->api = j->del;
		j->del = NULL;
		j->force_delete = 1; /* the item may be one state never had */
		sync_trash_note(j->sync, j->path, j->run->api->trash, 1);
		s->ops->gone(j);
	} else {
		s->ops->converge(j);
	}
}

/*
 * Starts ready jobs while slots are free. While paused only control-socket
 * deletes start (the queue is walked from its head each time: job_start may
 * finish jobs and change it). Not reentrant: a job that finishes at once
 * (an unchanged file) calls back here through sync_job_finish, and
 * recursing once per such file overflowed the stack at start-up with tens
 * of thousands of unchanged files; the nested call only asks the outer loop
 * to go on.
 */
void
sync_pump(struct sync *s)
{
	struct job *j;

	if (s->pumping) {
		s->pump_again = 1;
		return;
	}
	s->pumping = 1;
	do {
		s->pump_again = 0;
		while (!s->stopping && !s->root_lost && !s->disk_full &&
		       s->running < s->limit) {
			j = s->ready.head;
			while (s->paused && j != NULL && j->del == NULL)
				j = j->qnext;
			if (j == NULL)
				break;
			queue_remove(&s->ready, j);
			job_start(j);
		}
	} while (s->pump_again);
	s->pumping = 0;
}

/* Walks everything again, from the rescan timer (sync_scan.c). */
void
sync_rescan(struct sync *s, const char *why)
{
	if (why != NULL)
		log_info("rescanning: %s", why);
	s->rescan_pending = 1;
	loop_timer_set(s->rescan_timer, 0);
}

/* --- finishing --------------------------------------------------------- */

static void
sync_intent_done(struct sync *s, int64_t id)
{
	struct err e;

	err_clear(&e);
	if (id > 0 && state_intent_done(s->state, id, &e) == -1)
		log_warnx("%s", e.message);
}

/* The rename is over: its old path is free again. */
void
sync_release_held(struct job *j)
{
	struct job *old;

	if (j->rename_from == NULL)
		return;
	old = sync_job_find(j->sync, j->rename_from, strlen(j->rename_from));
	free(j->rename_from);
	j->rename_from = NULL;
	if (old == NULL || old->st != JOB_HELD || old->holder != j)
		return;
	old->holder = NULL;
	if (old->again) {
		old->again = 0;
		sync_job_settle(old, 0);
	} else {
		sync_job_free(old);
	}
}

/* Keeps an intent for the job's next run, which clears it once done. */
void
sync_job_keep_intent(struct job *j, int64_t id)
{
	int64_t *r;

	if (id <= 0)
		return;
	r = realloc(j->replay, (j->nreplay + 1) * sizeof(*r));
	if (r == NULL)
		return; /* it stays in the database: replayed at the next start
		         */
	j->replay = r;
	j->replay[j->nreplay++] = id;
	j->force_delete = 1;
}

/*
 * Adaptive concurrency, as the AWS SDKs' adaptive retry mode adapts its
 * send rate: the jobs at once grow by one per job finished (doubling each
 * round) up to sync.concurrency, and halve (at most once a second, never
 * below SYNC_LIMIT_MIN) when a server throttled a request since the last
 * look; after the first throttle they grow by one per round. On a far-away
 * link this is what fills it: each file waits a round trip or two, so the
 * throughput is the files in flight over the round trip.
 */
static void
sync_adapt(struct sync *s)
{
	uint64_t t, now;

	t = aws_client_stats(s3_client(s->s3))->throttled +
	    aws_client_stats(dynamo_client(s->ddb))->throttled;
	if (t > s->throttled_seen) {
		s->throttled_seen = t;
		now = loop_now_ms();
		if (now - s->limit_cut_ms < SYNC_LIMIT_CUT_MS)
			return;
		s->limit_cut_ms = now;
		s->limit_steady = 1;
		s->limit_acc = 0;
		s->limit = s->limit / 2 > SYNC_LIMIT_MIN ? s->limit / 2
		                                         : SYNC_LIMIT_MIN;
		if (s->limit > s->concurrency)
			s->limit = s->concurrency;
		log_info("throttled: up to %u files in flight now", s->limit);
		return;
	}
	if (s->limit >= s->concurrency)
		return;
	if (s->limit_steady && ++s->limit_acc < s->limit)
		return;
	s->limit_acc = 0;
	if (++s->limit == s->concurrency)
		log_debug("up to %u files in flight (sync.concurrency)",
		          s->limit);
}

/*
 * Ends the running operation. ok: the remote side is consistent with what
 * it did, and its intents are cleared. Else it was cancelled, or must run
 * again (j->again) before the remote side is right: its intents stay, in
 * the database and, for the next run, in the job, which may then have to
 * delete remote copies the state database does not know of.
 */
void
sync_job_finish(struct job *j, int ok)
{
	struct sync *s = j->sync;
	size_t i;

	if (j->run != NULL && j->run->api != NULL &&
	    s->ops->api_done(j, ok) == 1)
		return; /* the copy's last step finishes the job */
	if (j->run != NULL) {
		if (ok)
			sync_intent_done(s, j->run->intent);
		else if (j->again)
			sync_job_keep_intent(j, j->run->intent);
		sync_run_free(j->run);
		j->run = NULL;
	}
	if (ok) {
		for (i = 0; i < j->nreplay; i++)
			sync_intent_done(s, j->replay[i]);
		free(j->replay);
		j->replay = NULL;
		j->nreplay = 0;
		j->force_delete = 0;
	}
	sync_release_held(j);
	s->running--;
	sync_adapt(s);
	if (s->scan_waiting &&
	    s->ready.n + s->settling.n < SYNC_SCAN_QUEUE / 2) {
		s->scan_waiting = 0;
		loop_timer_set(s->scan_timer, 0); /* the scan walks on */
	}
	if (j->again && !s->stopping) {
		j->again = 0;
		sync_job_settle(j, s->settle_ms);
	} else {
		sync_job_free(j);
	}
	sync_pump(s);
}

/* A permanent failure: recorded with its reason (counted by the class of
 * e), retried after a rescan. */
void
sync_job_fail(struct job *j, const struct err *e, const char *fmt, ...)
{
	struct sync *s = j->sync;
	char reason[600], p[256];
	va_list ap;
	struct err se;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (s->disk_full && (j->run == NULL || j->run->api == NULL)) {
		/* Not the file's fault: it waits for space, with the rest. */
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	log_warnx("%s: %s", log_path(j->path, p, sizeof(p)), reason);
	snprintf(s->last_error, sizeof(s->last_error), "%s: %s", p, reason);
	if (j->run != NULL && j->run->api != NULL) {
		sync_trash_note(s, j->path, "", 0); /* the file stays */
		sync_waiter_answer(&j->run->api, -1, reason);
	}
	err_clear(&se);
	if (state_file_fail(s->state, j->path, j->path_len, reason, &se) == -1)
		log_warnx("%s", se.message);
	s->stats.failed++;
	s->stats.fail_by[err_class_reason(err_classify(e))]++;
	sync_job_finish(j, 1);
}

/* A network step ended with e: cancelled (shutdown) or permanent. */
void
sync_job_net_error(struct job *j, const char *what, const struct err *e)
{
	if (e->kind == ERR_CANCEL) {
		sync_job_finish(j, 0);
		return;
	}
	sync_job_fail(j, e, "%s: %s", what, e->message);
}

/* --- intents and the state database's troubles ------------------------- */

/* Records an intent before its first network call (invariant 3): its id,
 * or -1 (a full disk enters that state; e says why). */
int64_t
sync_add_intent(struct sync *s, const struct state_intent *in, struct err *e)
{
	int64_t id;

	err_clear(e);
	id = state_intent_add(s->state, in, e);
	if (id == -1 && !sync_state_error(s, e))
		log_warnx("%s", e->message);
	return id;
}

/*
 * A control-socket delete is noted in the state database ("trash:PATH" ->
 * the trash folder) before its first request, and forgotten once the file
 * was moved or the delete failed; a note left by a crash or a stop is
 * finished at the next start, before the file could be uploaded again.
 */
void
sync_trash_note(struct sync *s, const char *path, const char *trash, int put)
{
	struct buf name;
	struct err e;
	char p[256];
	int rc = 0;

	buf_init(&name, 0);
	err_clear(&e);
	if (buf_printf(&name, "%s%s", SYNC_TRASH, path) == -1)
		rc = -1;
	else if (put)
		rc = state_meta_put(s->state, name.data, trash, strlen(trash),
		                    &e);
	else
		rc = state_meta_delete(s->state, name.data, &e);
	if (rc == -1)
		log_warnx("state: cannot %s the delete of %s: %s",
		          put ? "note" : "forget", log_path(path, p, sizeof(p)),
		          e.message[0] ? e.message : "out of memory");
	buf_cleanup(&name);
}

/* Errors that space, or a writable file system, cures. */
int
sync_space_errno(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EROFS;
}

/* Whether e says the state database's file system is full or read-only:
 * then it is the disk-full state (said once), and 1. */
int
sync_state_error(struct sync *s, const struct err *e)
{
	char why[700];

	if (err_classify(e) != ERRC_NO_SPACE)
		return 0;
	snprintf(why, sizeof(why), "the state database cannot be written (%s)",
	         e->message);
	sync_space_blocked(s, why);
	return 1;
}

/* The disk-full state: said once; work waits until the probe
 * (sync_recover.c) succeeds. */
void
sync_space_blocked(struct sync *s, const char *why)
{
	uint64_t queued = s->settling.n + s->ready.n;

	if (s->disk_full)
		return;
	s->disk_full = 1;
	s->disk_since_ms = s->disk_told_ms = loop_now_ms();
	/* why is cut, never the end of the sentence. */
	snprintf(
	    s->disk_why, sizeof(s->disk_why),
	    "%.560s: work waits, nothing is lost, and it resumes by itself "
	    "when there is space (or the file system is writable) again",
	    why);
	log_error("%s (%" PRIu64 " files waiting)", s->disk_why, queued);
	loop_timer_set(s->disk_timer, SYNC_DISK_CHECK_MS);
}

const char *
sync_disk_full_why(const struct sync *s)
{
	return s->disk_full ? s->disk_why : NULL;
}

/* The root is not the mirrored folder: nothing starts until it is back.
 * Said once; the watcher goes (from a timer, sync_root.c: this may be its
 * callback). */
void
sync_root_lost(struct sync *s, const char *why)
{
	if (!s->root_lost)
		log_error("%s", why);
	s->root_lost = 1;
	snprintf(s->root_why, sizeof(s->root_why), "%s", why);
	loop_timer_set(s->root_timer, 0);
}
