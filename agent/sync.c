#include "sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "imagemeta.h"
#include "log.h"
#include "rootguard.h"
#include "summary.h"
#include "text.h"
#include "trash.h"

#define SYNC_HASH_BUCKETS 4096u
#define SYNC_HASH_CHUNK (1u << 20)     /* bytes hashed per file per turn */
#define SYNC_HASH_TURN (4u << 20)      /* bytes hashed per loop turn */
#define SYNC_MAX_KEY 1024u             /* S3's limit, in bytes */
#define SYNC_DEGRADED_RESCAN_MS 30000u /* while directories go unwatched */
#define SYNC_DELETE_WINDOW_MS 1000 /* local deletions gathered as one batch */
#define SYNC_DELETE_MIN_BATCH 20   /* max_delete_percent: batches this big */
#define SYNC_HELD "held:"          /* state meta: a held deletion's path */
#define SYNC_DISK_CHECK_MS 5000    /* while the state database is full */
#define SYNC_DISK_REMIND_MS 300000 /* ... said again this often */
#define SYNC_ROOT_CHECK_MS 2000    /* while the root is not the mirrored one */
#define SYNC_TRASH_STEP (4u << 20) /* bytes copied to the trash a turn */

enum job_state {
	JOB_NEW,      /* in no queue yet */
	JOB_SETTLING, /* waiting for its due time */
	JOB_READY,    /* waiting for a free slot */
	JOB_RUNNING,
	JOB_HELD, /* the old path of a running rename */
};

enum run_phase {
	RUN_HASHING,
	RUN_UPLOADING,
	RUN_PUTTING_ITEM,
	RUN_DELETING_ITEM,
	RUN_DELETING_OBJECT,
	RUN_COPYING,
	RUN_DELETING_OLD_ITEM,
	RUN_DELETING_OLD_OBJECT,
};

/* What job_upload_send does with a job job_upload_prepare saw. */
enum upload_step {
	UPLOAD_AGAIN,     /* the file could not be probed: look again */
	UPLOAD_NO_INTENT, /* the intent could not be recorded */
	UPLOAD_ITEM,      /* same content, new mtime (touch): the item only */
	UPLOAD_OBJECT,    /* the object, then the item */
};

struct job;

/* A control-socket request waiting for a job's operation. */
struct sync_waiter {
	sync_done_cb cb;
	void *arg;
	char *trash;
};

/* What one running operation needs; freed when it ends. */
struct run {
	enum run_phase phase;
	int fd;
	struct stat st;
	char key[SYNC_MAX_KEY + 1];
	char old_key[SYNC_MAX_KEY + 1];
	char mtime[40];
	char sha256[65];
	char etag[80];
	struct imagemeta meta;
	struct imagemeta_hash *hash;
	uint64_t hashed;
	struct state_file old; /* the row before (rename: of the old path) */
	int have_old;
	int rechecked; /* a conditional delete's 412 was looked at */
	int64_t intent;
	enum upload_step step; /* between prepare and send */
	struct job *next_hashing;
	struct sync_waiter *api; /* a delete asked by the control socket */
	int trash_done;          /* its file went to the trash (or not) */
	int trash_rc;
	int trash_errno; /* why the move failed */
	char trash_msg[700];
	struct trash_move *move; /* copying to the trash, a step a turn */
	struct loop_timer *move_timer;
};

struct job {
	struct sync *sync;
	char *path;
	size_t path_len;
	uint32_t hash;
	struct job *hnext;
	struct job *qprev, *qnext; /* settling or ready queue */
	enum job_state st;
	uint64_t due;
	int again;        /* marked dirty while running */
	int force_delete; /* remote copies may exist that state does not know */
	int delete_ok;    /* the mass-deletion guard let its deletion go */
	char *rename_from;
	struct job *holder; /* JOB_HELD: the rename holding it */
	int64_t *replay;    /* intents from before a crash this job finishes */
	size_t nreplay;
	struct sync_waiter *del; /* a delete asked by the control socket */
	struct run *run;
};

struct queue {
	struct job *head, *tail;
	size_t n;
};

struct sync {
	struct loop *loop;
	struct s3 *s3;
	struct dynamo *ddb;
	struct state *state;
	struct summary *summary;
	struct watcher *watcher;
	int rootfd;
	char *root;
	char *prefix;
	char *bucket;
	char *table;
	char *source;
	char *summary_key;
	char **include;
	size_t ninclude;
	char **exclude;
	size_t nexclude;
	unsigned settle_ms;
	unsigned concurrency;
	struct job *table_[SYNC_HASH_BUCKETS];
	struct queue settling;
	struct queue ready;
	size_t running;
	struct job *hashing;
	struct loop_timer *settle_timer;
	uint64_t settle_armed; /* due time the timer is set for; 0: unarmed */
	struct loop_timer *work_timer;
	struct loop_timer *rescan_timer;
	int rescan_pending;
	int stopping;
	int paused;
	int pumping;    /* in sync_pump */
	int pump_again; /* sync_pump was called again meanwhile */
	/* The folder at the root is not the mirrored one (rootguard): nothing
	 * starts; checked again every SYNC_ROOT_CHECK_MS. */
	int root_lost;
	char root_why[600];
	struct loop_timer *root_timer;
	int started; /* the start-up's replay of intents is done */
	/* The state database's file system is full (or read-only): nothing
	 * starts, nothing is lost; a probe write every SYNC_DISK_CHECK_MS
	 * resumes the work when space is back. */
	int disk_full;
	char disk_why[700];
	uint64_t disk_since_ms, disk_told_ms;
	struct loop_timer *disk_timer;
	/* The mass-deletion guard (sync.max_delete): local deletions wait
	 * SYNC_DELETE_WINDOW_MS as one batch; a batch over the limits is held
	 * (persisted) until the operator confirms, and so is every deletion
	 * while some are held. */
	int keep; /* sync.delete = "keep": local deletions stay remote */
	unsigned max_delete;
	unsigned max_delete_pct;
	char **batch;
	size_t nbatch;
	struct loop_timer *delete_timer;
	uint64_t nheld;
	struct sync_stats stats;
	char last_error[1024];
};

static void sync_pump(struct sync *s);
static void sync_root_lost(struct sync *s, const char *why);
static int sync_state_error(struct sync *s, const struct err *e);
static void sync_space_blocked(struct sync *s, const char *why);

/* Errors that space, or a writable file system, cures. */
static int
space_errno(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EROFS;
}
static void sync_delete_wait(struct sync *s, const char *path);
static void sync_held_drop(struct sync *s, const char *path);
static int sync_count_row(const char *name, const void *value, size_t len,
                          void *arg);
static int sync_root_check(struct sync *s);
static void job_finish(struct job *j, int ok);
static void job_converge(struct job *j);
static void job_rename(struct job *j);
static void job_delete_remote(struct job *j);
static void job_gone(struct job *j);
static enum upload_step job_upload_prepare(struct job *j);
static void job_upload_send(struct job *j, enum upload_step step);

/* --- small helpers ------------------------------------------------------ */

static void
now_iso_ms(char *out, size_t outlen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	text_iso_time(&ts, 3, out, outlen);
}

static void
free_list(char **l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static char **
copy_list(const struct config_list *l)
{
	char **out = calloc(l->count + 1, sizeof(*out));
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < l->count; i++)
		if ((out[i] = strdup(l->items[i])) == NULL) {
			free_list(out, i);
			return NULL;
		}
	return out;
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Answers a waiting control request, once, and frees the waiter. */
static void
waiter_answer(struct sync_waiter **wp, int status, const char *message)
{
	struct sync_waiter *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	w->cb(status, message, w->arg);
	free(w->trash);
	free(w);
}

/* Whether a path is one the mirror should hold. */
static int
sync_wanted(const struct sync *s, const char *path)
{
	const char *name = base_name(path);
	size_t i, plen = strlen(s->prefix);
	int in = 0;

	if (rootguard_is_marker(path))
		return 0;
	if (s->summary_key != NULL &&
	    strncmp(s->summary_key, s->prefix, plen) == 0 &&
	    strcmp(s->summary_key + plen, path) == 0)
		return 0;
	for (i = 0; i < s->ninclude && !in; i++)
		in = fnmatch(s->include[i], name, FNM_CASEFOLD) == 0;
	if (!in)
		return 0;
	for (i = 0; i < s->nexclude; i++)
		if (fnmatch(s->exclude[i], name, 0) == 0)
			return 0;
	return 1;
}

/* Opens a path under the root without following any symlink, so nothing
 * outside the root is ever read (DESIGN.md invariant 6). */
static int
sync_open(const struct sync *s, const char *path)
{
	return beneath_open(s->rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY,
	                    0);
}

/* --- the job table and queues ------------------------------------------ */

static struct job *
job_find(const struct sync *s, const char *path, size_t len)
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

static struct job *
job_new(struct sync *s, const char *path, size_t len)
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

static void
job_free(struct job *j)
{
	struct sync *s = j->sync;
	struct job **pp = &s->table_[j->hash % SYNC_HASH_BUCKETS];

	while (*pp != j)
		pp = &(*pp)->hnext;
	*pp = j->hnext;
	waiter_answer(&j->del, -2, "imgsyncd is stopping");
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

static void
job_settle(struct job *j, uint64_t delay_ms)
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

/*
 * Marks a path dirty: it is converged after delay_ms, or again after the
 * operation running on it now.
 */
static struct job *
sync_mark(struct sync *s, const char *path, uint64_t delay_ms)
{
	size_t len = strlen(path);
	struct job *j = job_find(s, path, len);

	if (j == NULL) {
		j = job_new(s, path, len);
		if (j == NULL)
			return NULL;
		job_settle(j, delay_ms);
		return j;
	}
	if (j->st == JOB_RUNNING || j->st == JOB_HELD)
		j->again = 1;
	else if (j->st == JOB_SETTLING && j->rename_from == NULL)
		job_settle(j, delay_ms);
	return j;
}

static void
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

/* --- finishing --------------------------------------------------------- */

static void
run_free(struct run *r)
{
	if (r == NULL)
		return;
	waiter_answer(&r->api, -2, "imgsyncd is stopping");
	trash_move_free(r->move); /* the file stays; the next start moves it */
	loop_timer_free(r->move_timer);
	if (r->fd != -1)
		close(r->fd);
	imagemeta_hash_free(r->hash);
	state_file_cleanup(&r->old);
	free(r);
}

static void
sync_intent_done(struct sync *s, int64_t id)
{
	struct err e;

	err_clear(&e);
	if (id > 0 && state_intent_done(s->state, id, &e) == -1)
		log_warnx("%s", e.message);
}

/* The rename is over: its old path is free again. */
static void
sync_release_held(struct job *j)
{
	struct job *old;

	if (j->rename_from == NULL)
		return;
	old = job_find(j->sync, j->rename_from, strlen(j->rename_from));
	free(j->rename_from);
	j->rename_from = NULL;
	if (old == NULL || old->st != JOB_HELD || old->holder != j)
		return;
	old->holder = NULL;
	if (old->again) {
		old->again = 0;
		job_settle(old, 0);
	} else {
		job_free(old);
	}
}

/* Keeps an intent for the job's next run, which clears it once done. */
static void
job_keep_intent(struct job *j, int64_t id)
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

static int sync_trash(struct sync *s, const char *path, const char *trash,
                      char *msg, size_t msglen);

/*
 * A control-socket delete is noted in the state database ("trash:PATH" ->
 * the trash folder) before its first request, and forgotten once the file
 * was moved or the delete failed; a note left by a crash or a stop is
 * finished at the next start, before the file could be uploaded again.
 */
static void
trash_note(struct sync *s, const char *path, const char *trash, int put)
{
	struct buf name;
	struct err e;
	char p[256];
	int rc = 0;

	buf_init(&name, 0);
	err_clear(&e);
	if (buf_printf(&name, "trash:%s", path) == -1)
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

static int sync_open_parent(const struct sync *s, const char *path,
                            const char **base);

/* One step of a copy into the trash; the last one ends the job. */
static void
job_on_trash_step(void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;
	int rc;

	rc = trash_move_step(r->move, SYNC_TRASH_STEP, r->trash_msg,
	                     sizeof(r->trash_msg));
	if (rc == 0) {
		loop_timer_set(r->move_timer, 0);
		return;
	}
	r->trash_rc = rc == 1 ? 0 : -1;
	r->trash_errno = rc == 1 ? 0 : errno;
	job_finish(j, 1);
}

/*
 * The remote copies of a control-socket delete are gone: the local file
 * goes to the trash. 1 when that is over (r->trash_rc, r->trash_msg), 0
 * while a copy to another file system goes on, a step per loop turn; its
 * last step finishes the job.
 */
static int
job_trash(struct job *j)
{
	struct run *r = j->run;
	const char *base;
	struct err e;
	int dfd;

	r->trash_done = 1;
	r->trash_rc = 0;
	snprintf(r->trash_msg, sizeof(r->trash_msg), "no local file");
	dfd = sync_open_parent(j->sync, j->path, &base);
	if (dfd == -1)
		return 1;
	r->move =
	    trash_move_start(dfd, base, r->api->trash, j->path, r->trash_msg,
	                     sizeof(r->trash_msg), &r->trash_rc);
	if (r->move == NULL) {
		r->trash_errno = r->trash_rc == -1 ? errno : 0;
		return 1;
	}
	err_clear(&e);
	r->move_timer = loop_timer_new(j->sync->loop, job_on_trash_step, j, &e);
	if (r->move_timer == NULL) {
		snprintf(r->trash_msg, sizeof(r->trash_msg), "%s", e.message);
		r->trash_rc = -1;
		return 1;
	}
	loop_timer_set(r->move_timer, 0);
	return 0;
}

/* The caller of a control-socket delete is told how it ended. */
static void
job_answer_delete(struct job *j, int ok)
{
	if (!ok) { /* finished at the next start */
		waiter_answer(&j->run->api, -2, "imgsyncd is stopping");
		return;
	}
	if (j->run->trash_rc == -1 && space_errno(j->run->trash_errno)) {
		/* The note stays: the move is finished when there is space
		 * (or the file system is writable) again, and meanwhile
		 * nothing uploads the file again. */
		sync_space_blocked(j->sync, j->run->trash_msg);
		waiter_answer(&j->run->api, -1, j->run->trash_msg);
		return;
	}
	trash_note(j->sync, j->path, "", 0);
	waiter_answer(&j->run->api, j->run->trash_rc == -1 ? -1 : 0,
	              j->run->trash_msg);
}

/*
 * Ends the running operation. ok: the remote side is consistent with what
 * it did, and its intents are cleared. Else it was cancelled, or must run
 * again (j->again) before the remote side is right: its intents stay, in
 * the database and, for the next run, in the job, which may then have to
 * delete remote copies the state database does not know of.
 */
static void
job_finish(struct job *j, int ok)
{
	struct sync *s = j->sync;
	size_t i;

	if (ok && j->run != NULL && j->run->api != NULL &&
	    !j->run->trash_done && job_trash(j) == 0)
		return; /* the copy's last step finishes the job */
	if (j->run != NULL) {
		if (j->run->api != NULL)
			job_answer_delete(j, ok);
		if (ok)
			sync_intent_done(s, j->run->intent);
		else if (j->again)
			job_keep_intent(j, j->run->intent);
		run_free(j->run);
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
	if (j->again && !s->stopping) {
		j->again = 0;
		job_settle(j, s->settle_ms);
	} else {
		job_free(j);
	}
	sync_pump(s);
}

/* Sorts a failure's reason into a counter class by the error codes and
 * phrases the steps below put in it. */
static enum sync_fail_class
fail_class(const char *reason)
{
	static const struct {
		const char *needle;
		enum sync_fail_class c;
	} map[] = {
	    {"AccessDenied", SYNC_FAIL_ACCESS},
	    {"Forbidden", SYNC_FAIL_ACCESS},
	    {"SignatureDoesNotMatch", SYNC_FAIL_ACCESS},
	    {"InvalidAccessKeyId", SYNC_FAIL_ACCESS},
	    {"UnrecognizedClient", SYNC_FAIL_ACCESS},
	    {"NoSuchBucket", SYNC_FAIL_MISSING},
	    {"ResourceNotFound", SYNC_FAIL_MISSING},
	    {"cannot open", SYNC_FAIL_UNREADABLE},
	    {"read:", SYNC_FAIL_UNREADABLE},
	    {"fstat", SYNC_FAIL_UNREADABLE},
	    {"UTF-8", SYNC_FAIL_NAME},
	    {"key would be longer", SYNC_FAIL_NAME},
	    {"state", SYNC_FAIL_STATE},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strstr(reason, map[i].needle) != NULL)
			return map[i].c;
	return SYNC_FAIL_OTHER;
}

const char *
sync_fail_class_name(enum sync_fail_class c)
{
	static const char *const names[] = {"access_denied", "no_such_target",
	                                    "unreadable",    "bad_name",
	                                    "state_db",      "other"};

	return (unsigned)c < SYNC_FAIL_NCLASSES ? names[c] : "other";
}

/* A permanent failure: recorded with its reason, retried after a rescan. */
static void job_fail(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
job_fail(struct job *j, const char *fmt, ...)
{
	struct sync *s = j->sync;
	char reason[600], p[256];
	va_list ap;
	struct err e;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (s->disk_full && (j->run == NULL || j->run->api == NULL)) {
		/* Not the file's fault: it waits for space, with the rest. */
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	log_warnx("%s: %s", log_path(j->path, p, sizeof(p)), reason);
	snprintf(s->last_error, sizeof(s->last_error), "%s: %s", p, reason);
	if (j->run != NULL && j->run->api != NULL) {
		trash_note(s, j->path, "", 0); /* the file stays */
		waiter_answer(&j->run->api, -1, reason);
	}
	err_clear(&e);
	if (state_file_fail(s->state, j->path, j->path_len, reason, &e) == -1)
		log_warnx("%s", e.message);
	s->stats.failed++;
	s->stats.fail_by[fail_class(reason)]++;
	job_finish(j, 1);
}

/* A network step ended with e: cancelled (shutdown) or permanent. */
static void
job_net_error(struct job *j, const char *what, const struct err *e)
{
	if (e->kind == ERR_CANCEL) {
		job_finish(j, 0);
		return;
	}
	job_fail(j, "%s: %s", what, e->message);
}

/* --- starting operations ----------------------------------------------- */

static int
sync_key(const struct sync *s, const char *path, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s%s", s->prefix, path);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void
job_start(struct job *j)
{
	struct sync *s = j->sync;

	j->st = JOB_RUNNING;
	s->running++;
	j->run = calloc(1, sizeof(*j->run));
	if (j->run == NULL) {
		log_warn("sync: calloc");
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	j->run->fd = -1;
	if (j->rename_from != NULL) {
		if (j->del != NULL)
			j->again = 1; /* the delete runs after the rename */
		job_rename(j);
	} else if (j->del != NULL) {
		j->run->api = j->del;
		j->del = NULL;
		j->force_delete = 1; /* the item may be one state never had */
		trash_note(j->sync, j->path, j->run->api->trash, 1);
		job_gone(j);
	} else {
		job_converge(j);
	}
}

/*
 * Starts ready jobs while slots are free. While paused only control-socket
 * deletes start (the queue is walked from its head each time: job_start may
 * finish jobs and change it). Not reentrant: a job that finishes at once
 * (an unchanged file) calls back here through job_finish, and recursing
 * once per such file overflowed the stack at start-up with tens of
 * thousands of unchanged files; the nested call only asks the outer loop
 * to go on.
 */
static void
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
		       s->running < s->concurrency) {
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

static int64_t
sync_add_intent(struct sync *s, enum state_op op, const char *path, size_t len,
                const char *key, const struct run *r)
{
	struct state_intent in;
	struct err e;
	int64_t id;

	memset(&in, 0, sizeof(in));
	in.op = op;
	in.path = (char *)path;
	in.path_len = len;
	in.key = (char *)key;
	if (r != NULL) {
		in.size = (uint64_t)r->st.st_size;
		in.mtime_ns = text_timespec_ns(&r->st.st_mtim);
		memcpy(in.sha256, r->sha256, sizeof(in.sha256));
	}
	err_clear(&e);
	id = state_intent_add(s->state, &in, &e);
	if (id == -1 && !sync_state_error(s, &e))
		log_warnx("%s", e.message);
	return id;
}

static int64_t
st_mtime_ns(const struct stat *st)
{
	return text_timespec_ns(&st->st_mtim);
}

/* The same file, by size, mtime and inode: what a rename keeps (it
 * changes the ctime). */
static int
same_identity(const struct stat *st, const struct state_file *f)
{
	return (uint64_t)st->st_size == f->size &&
	       st_mtime_ns(st) == f->mtime_ns &&
	       (uint64_t)st->st_ino == f->inode;
}

static int
same_file(const struct stat *st, const struct state_file *f)
{
	/* ctime too: content changed with its size and mtime put back
	 * (cp -p, rsync -t, touch -r) changes it, and it cannot be set back.
	 * 0: a row from before it was kept. */
	return same_identity(st, f) &&
	       (f->ctime_ns == 0 ||
	        text_timespec_ns(&st->st_ctim) == f->ctime_ns);
}

/* Remote copies of a path that no longer exists locally: item, then
 * object. */
static void
job_gone(struct job *j)
{
	struct sync *s = j->sync;
	struct err e;
	int found;

	if (s->root_lost) { /* gone with the folder: not a deletion */
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	err_clear(&e);
	found =
	    state_file_get(s->state, j->path, j->path_len, &j->run->old, &e);
	if (found == -1) {
		job_fail(j, "state: %s", e.message);
		return;
	}
	j->run->have_old = found;
	if (!found && !j->force_delete) {
		job_finish(j, 1);
		return;
	}
	/* A local deletion (not one the control socket or an intent asks
	 * for) passes the guard first. */
	if (!j->force_delete && j->run->api == NULL && !j->delete_ok) {
		sync_delete_wait(s, j->path);
		job_finish(j, 1);
		return;
	}
	j->delete_ok = 0;
	job_delete_remote(j);
}

static void
job_converge(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct timespec now;
	int64_t age_ms;
	struct err e;
	int found;

	if (!sync_wanted(s, j->path)) {
		job_gone(j);
		return;
	}
	if (sync_key(s, j->path, r->key, sizeof(r->key)) == -1) {
		job_fail(j, "the S3 key would be longer than %u bytes",
		         SYNC_MAX_KEY);
		return;
	}
	if (!text_utf8_valid(r->key, strlen(r->key))) {
		job_fail(j, "the file name is not valid UTF-8, which S3 keys "
		            "and DynamoDB strings must be");
		return;
	}
	r->fd = sync_open(s, j->path);
	if (r->fd == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
		    errno == EXDEV || errno == ENXIO) {
			job_gone(j);
			return;
		}
		job_fail(j, "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(r->fd, &r->st) == -1) {
		job_fail(j, "fstat: %s", strerror(errno));
		return;
	}
	if (!S_ISREG(r->st.st_mode)) {
		job_gone(j);
		return;
	}
	if (s->nheld > 0) /* back: its held deletion goes */
		sync_held_drop(s, j->path);
	err_clear(&e);
	found = state_file_get(s->state, j->path, j->path_len, &r->old, &e);
	if (found == -1) {
		job_fail(j, "state: %s", e.message);
		return;
	}
	r->have_old = found;
	if (found && !r->old.failed && same_file(&r->st, &r->old)) {
		s->stats.unchanged++;
		job_finish(j, 1);
		return;
	}
	/* Still being written (a rescan found it before its close event):
	 * wait for it to settle. An mtime in the future says nothing. */
	clock_gettime(CLOCK_REALTIME, &now);
	age_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
	         st_mtime_ns(&r->st) / 1000000;
	if (age_ms >= 0 && age_ms < (int64_t)s->settle_ms) {
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	r->hash = imagemeta_hash_new();
	if (r->hash == NULL) {
		job_fail(j, "SHA-256: out of memory");
		return;
	}
	r->phase = RUN_HASHING;
	r->next_hashing = s->hashing;
	s->hashing = j;
	loop_timer_set(s->work_timer, 0);
}

/*
 * Group commit: the intents of every file whose hash completed in this
 * turn are written in one transaction with one fsync, and only then do
 * their network calls start (invariant 3 holds for each: its intent is on
 * disk before its first call). A lone file commits on its own, as
 * state_intent_add does outside a batch.
 */
static void
sync_start_uploads(struct sync *s, struct job *done)
{
	struct job *j, *next;
	struct err e;
	size_t n = 0;
	int batch = 0;

	for (j = done; j != NULL && n < 2; j = j->run->next_hashing)
		if (j->run->hashed != UINT64_MAX)
			n++;
	err_clear(&e);
	if (n > 1) {
		if (state_begin(s->state, &e) == 0)
			batch = 1;
		else if (!sync_state_error(s, &e))
			log_warnx("%s", e.message); /* one commit each, then */
	}
	for (j = done; j != NULL; j = j->run->next_hashing) {
		if (j->run->hashed == UINT64_MAX)
			continue;
		imagemeta_hash_final(j->run->hash, j->run->sha256);
		j->run->step = job_upload_prepare(j);
	}
	if (batch && state_commit(s->state, &e) == -1) {
		/* rolled back: no intent of this turn is on disk */
		if (!sync_state_error(s, &e))
			log_warnx("%s", e.message);
		for (j = done; j != NULL; j = j->run->next_hashing) {
			if (j->run->hashed == UINT64_MAX ||
			    j->run->step == UPLOAD_AGAIN)
				continue;
			j->run->intent = -1;
			j->run->step = UPLOAD_NO_INTENT;
		}
	}
	for (j = done; j != NULL; j = next) {
		next = j->run->next_hashing;
		if (j->run->hashed == UINT64_MAX) {
			/* shrank or unreadable while hashing: look again */
			j->again = 1;
			job_finish(j, 0);
			continue;
		}
		job_upload_send(j, j->run->step);
	}
}

/* Hashes a bounded amount per loop turn so a large file never stalls the
 * loop; files whose hash is complete go on to upload. */
static void
sync_on_work(void *arg)
{
	struct sync *s = arg;
	struct job *j, **pp, *done = NULL;
	unsigned char *chunk;
	size_t budget = SYNC_HASH_TURN;
	ssize_t got;

	chunk = malloc(SYNC_HASH_CHUNK);
	if (chunk == NULL) {
		loop_timer_set(s->work_timer, 100);
		return;
	}
	pp = &s->hashing;
	while ((j = *pp) != NULL && budget > 0) {
		struct run *r = j->run;
		size_t want = SYNC_HASH_CHUNK;

		if ((uint64_t)want > (uint64_t)r->st.st_size - r->hashed)
			want = (size_t)((uint64_t)r->st.st_size - r->hashed);
		got =
		    want > 0 ? pread(r->fd, chunk, want, (off_t)r->hashed) : 0;
		if (got > 0) {
			imagemeta_hash_update(r->hash, chunk, (size_t)got);
			r->hashed += (uint64_t)got;
			budget -= (size_t)got < budget ? (size_t)got : budget;
		}
		if (got < 0 || (got == 0 && want > 0) ||
		    r->hashed >= (uint64_t)r->st.st_size) {
			*pp = r->next_hashing;
			r->next_hashing = done;
			done = j;
			if (got < 0 || (got == 0 && want > 0))
				r->hashed = UINT64_MAX; /* marks the failure */
			continue;
		}
		pp = &r->next_hashing;
	}
	free(chunk);
	if (s->hashing != NULL)
		loop_timer_set(s->work_timer, 0);
	sync_start_uploads(s, done);
}

/* --- upload: object, then item ----------------------------------------- */

static json_t *
sync_item(const struct sync *s, const char *key, uint64_t size,
          const char *type, unsigned width, unsigned height, const char *sha256,
          const char *etag, const char *mtime)
{
	char ts[40];
	json_t *item;

	now_iso_ms(ts, sizeof(ts));
	item = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "FileName",
	    dynamo_s(key), "Bucket", dynamo_s(s->bucket), "Source",
	    dynamo_s(s->source), "Timestamp", dynamo_s(ts), "Size",
	    dynamo_n((long long)size), "Type", dynamo_s(type), "SHA256",
	    dynamo_s(sha256), "ETag", dynamo_s(etag), "MTime", dynamo_s(mtime));
	if (item != NULL && width > 0 && height > 0) {
		json_object_set_new(item, "Width", dynamo_n(width));
		json_object_set_new(item, "Height", dynamo_n(height));
	}
	return item;
}

static void job_on_item(json_t *resp, const struct err *e, void *arg);

/*
 * PutItem, unless the table holds an item written later than this one
 * (invariant 2). The order is the sync Timestamp, not the file's mtime: a
 * rename or a restored backup can bring older mtimes that are still the
 * newest content, while a request delayed past a crash and a restart
 * always carries an older Timestamp than what was written since.
 */
static void
job_put_item(struct job *j, json_t *item, dynamo_done_cb cb)
{
	struct sync *s = j->sync;
	const char *ts = dynamo_get_s(item, "Timestamp");
	json_t *names, *values;
	struct err e;
	int rc;

	err_clear(&e);
	names = json_pack("{s:s}", "#t", "Timestamp");
	values = ts != NULL ? json_pack("{s:o}", ":t", dynamo_s(ts)) : NULL;
	j->run->phase = RUN_PUTTING_ITEM;
	rc = item == NULL || names == NULL || values == NULL
	         ? (err_set(&e, ERR_INVALID, "cannot build the item"), -1)
	         : dynamo_put_item(s->ddb, s->table, item,
	                           "attribute_not_exists(FileName) OR #t <= :t",
	                           names, values, cb, j, &e);
	json_decref(item);
	json_decref(names);
	json_decref(values);
	if (rc == -1)
		job_fail(j, "PutItem: %s", e.message);
}

static void
job_record(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct state_file f;
	int64_t ids[8];
	size_t i, n;
	struct err e;

	memset(&f, 0, sizeof(f));
	f.path = j->path;
	f.path_len = j->path_len;
	f.key = r->key;
	f.size = (uint64_t)r->st.st_size;
	f.mtime_ns = st_mtime_ns(&r->st);
	f.ctime_ns = text_timespec_ns(&r->st.st_ctim);
	f.inode = (uint64_t)r->st.st_ino;
	memcpy(f.sha256, r->sha256, sizeof(f.sha256));
	snprintf(f.etag, sizeof(f.etag), "%s", r->etag);
	snprintf(f.type, sizeof(f.type), "%s", r->meta.type);
	f.width = r->meta.width;
	f.height = r->meta.height;
	/* The row and the end of the intents in one commit, when the
	 * intents fit here; else job_finish clears them one by one. */
	n = 0;
	ids[n++] = r->intent;
	for (i = 0; i < j->nreplay && n < sizeof(ids) / sizeof(ids[0]); i++)
		ids[n++] = j->replay[i];
	if (i < j->nreplay)
		n = 0;
	err_clear(&e);
	if (state_file_synced(s->state, &f, ids, n, &e) == -1) {
		/* Its intent stays: the next start (or the rescan when
		 * space is back) finds the file unsynced and converges it. */
		if (sync_state_error(s, &e))
			j->again = 1;
		else
			log_warnx("%s", e.message);
	} else if (n > 0) {
		r->intent = 0;
		free(j->replay);
		j->replay = NULL;
		j->nreplay = 0;
	}
	if (s->summary != NULL)
		summary_touch(s->summary);
}

static void
job_on_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	char p[256];

	(void)resp;
	if (e != NULL && strcmp(e->code, "ConditionalCheckFailedException")) {
		job_net_error(j, "PutItem", e);
		return;
	}
	if (e != NULL)
		log_info("%s: the table holds newer metadata; kept",
		         log_path(j->path, p, sizeof(p)));
	job_record(j);
	if (j->run->phase == RUN_PUTTING_ITEM && j->rename_from == NULL) {
		s->stats.uploaded++;
		s->stats.bytes += (uint64_t)j->run->st.st_size;
		log_debug("uploaded %s (%" PRIu64 " bytes, %s)",
		          log_path(j->path, p, sizeof(p)),
		          (uint64_t)j->run->st.st_size, j->run->meta.type);
	}
	job_finish(j, 1);
}

/* Whether the file changed since it was opened for this upload. */
static int
run_changed(const struct run *r)
{
	struct stat now;

	if (fstat(r->fd, &now) == -1 || now.st_nlink == 0)
		return 1;
	return now.st_size != r->st.st_size ||
	       st_mtime_ns(&now) != st_mtime_ns(&r->st);
}

static void
job_on_upload(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;

	if (e != NULL && e->kind != ERR_CANCEL && run_changed(r)) {
		/* The file changed under the upload: start again. */
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	if (e != NULL) {
		job_net_error(j, "PutObject", e);
		return;
	}
	if (run_changed(r)) {
		/* An object without its item: the next run finishes it. */
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	snprintf(r->etag, sizeof(r->etag), "%s", res->etag);
	job_put_item(j,
	             sync_item(j->sync, r->key, (uint64_t)r->st.st_size,
	                       r->meta.type, r->meta.width, r->meta.height,
	                       r->sha256, r->etag, r->mtime),
	             job_on_item);
}

/* A multipart upload was created: its id goes into the intent, so that
 * after a crash the next start aborts it (its parts would cost storage
 * and never become an object). */
static void
job_on_multipart(const char *upload_id, void *arg)
{
	struct job *j = arg;
	struct err e;

	err_clear(&e);
	if (j->run->intent > 0 &&
	    state_intent_set_upload_id(j->sync->state, j->run->intent,
	                               upload_id, &e) == -1)
		log_warnx("%s", e.message);
}

/*
 * Probes the file and records its intent, inside the caller's batch if one
 * is open. Makes no network call and never finishes the job (which could
 * start others, whose calls would run before the batch is committed):
 * that is job_upload_send's, after the commit.
 */
static enum upload_step
job_upload_prepare(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct err e;

	err_clear(&e);
	if (imagemeta_probe_fd(r->fd, (uint64_t)r->st.st_size, &r->meta, &e) ==
	    -1)
		return UPLOAD_AGAIN;
	text_iso_time(&r->st.st_mtim, 9, r->mtime, sizeof(r->mtime));
	r->intent = sync_add_intent(s, STATE_OP_UPLOAD, j->path, j->path_len,
	                            r->key, r);
	if (r->have_old && !r->old.failed && r->old.etag[0] != '\0' &&
	    strcmp(r->old.sha256, r->sha256) == 0 &&
	    r->old.size == (uint64_t)r->st.st_size)
		return r->intent == -1 ? UPLOAD_NO_INTENT : UPLOAD_ITEM;
	return r->intent == -1 ? UPLOAD_NO_INTENT : UPLOAD_OBJECT;
}

static void
job_upload_send(struct job *j, enum upload_step step)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct s3_meta meta[1];
	struct s3_body body;
	struct err e;

	switch (step) {
	case UPLOAD_AGAIN:
		j->again = 1;
		job_finish(j, 0);
		return;
	case UPLOAD_NO_INTENT:
		job_fail(j, "cannot record the intent in the state database");
		return;
	case UPLOAD_ITEM:
		snprintf(r->etag, sizeof(r->etag), "%s", r->old.etag);
		job_put_item(j,
		             sync_item(s, r->key, (uint64_t)r->st.st_size,
		                       r->meta.type, r->meta.width,
		                       r->meta.height, r->sha256, r->etag,
		                       r->mtime),
		             job_on_item);
		return;
	case UPLOAD_OBJECT:
		break;
	}
	err_clear(&e);
	meta[0].name = "sha256";
	meta[0].value = r->sha256;
	memset(&body, 0, sizeof(body));
	body.data = NULL;
	body.fd = r->fd;
	body.len = (uint64_t)r->st.st_size;
	body.sha256 = r->sha256;
	body.started = job_on_multipart;
	body.started_arg = j;
	r->phase = RUN_UPLOADING;
	if (s3_upload(s->s3, r->key, &body, r->meta.type, meta, 1,
	              job_on_upload, j, &e) == -1)
		job_fail(j, "PutObject: %s", e.message);
}

/* --- delete: item, then object ----------------------------------------- */

static void job_on_delete_head(const struct s3_result *res, const struct err *e,
                               void *arg);

static void
job_on_delete_object(const struct s3_result *res, const struct err *e,
                     void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	struct err se;
	char p[256];

	(void)res;
	if (e != NULL && e->http_status == 412 && !j->run->rechecked) {
		/* Not the recorded version: whose is it? */
		j->run->rechecked = 1;
		err_clear(&se);
		if (s3_head_object(s->s3, j->run->key, job_on_delete_head, j,
		                   &se) == -1)
			job_fail(j, "HeadObject: %s", se.message);
		return;
	}
	if (e != NULL && e->http_status == 412) {
		log_warnx("%s: not deleted from the bucket: another writer "
		          "replaced the object since imgsync uploaded it (its "
		          "ETag is no longer %s); it is left alone",
		          log_path(j->run->key, p, sizeof(p)),
		          j->run->old.etag);
		e = NULL;
	}
	if (e != NULL) {
		job_net_error(j, "DeleteObject", e);
		return;
	}
	err_clear(&se);
	if (state_file_delete(s->state, j->path, j->path_len, &se) == -1)
		log_warnx("%s", se.message);
	s->stats.deleted++;
	log_debug("deleted %s", log_path(j->path, p, sizeof(p)));
	if (s->summary != NULL)
		summary_touch(s->summary);
	job_finish(j, 1);
}

/*
 * After a 412, the object is not the version the state database recorded.
 * One that imgsync wrote (it carries x-amz-meta-sha256: a crash between an
 * upload and its row leaves the row's ETag behind) is deleted as the
 * version it is now; another writer's is left alone (logged).
 */
static void
job_on_delete_head(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct err se;
	char p[256];

	if (e != NULL && e->http_status == 404) { /* gone meanwhile */
		job_on_delete_object(NULL, NULL, j);
		return;
	}
	if (e != NULL) {
		job_net_error(j, "HeadObject", e);
		return;
	}
	if (res->sha256_meta[0] == '\0') {
		log_warnx("%s: not deleted from the bucket: another writer "
		          "replaced the object since imgsync uploaded it (its "
		          "ETag is no longer %s); it is left alone",
		          log_path(j->run->key, p, sizeof(p)),
		          j->run->old.etag);
		job_on_delete_object(NULL, NULL, j);
		return;
	}
	err_clear(&se);
	if (s3_delete_object(j->sync->s3, j->run->key, res->etag,
	                     job_on_delete_object, j, &se) == -1)
		job_fail(j, "DeleteObject: %s", se.message);
}

/* An item was deleted (e NULL): its object goes next (invariant 1), for a
 * delete and for the old half of a rename alike. */
static void
job_item_deleted(struct job *j, const struct err *e, const char *what,
                 enum run_phase phase, const char *key, const char *etag,
                 s3_done_cb next)
{
	struct err se;

	if (e != NULL) {
		job_net_error(j, what, e);
		return;
	}
	err_clear(&se);
	j->run->phase = phase;
	if (s3_delete_object(j->sync->s3, key, etag, next, j, &se) == -1)
		job_fail(j, "DeleteObject: %s", se.message);
}

static void
job_on_delete_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;

	(void)resp;
	/* Only what imgsync uploaded: another writer's newer object stays. */
	job_item_deleted(j, e, "DeleteItem", RUN_DELETING_OBJECT, j->run->key,
	                 j->run->have_old ? j->run->old.etag : NULL,
	                 job_on_delete_object);
}

static void
job_delete_remote(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	json_t *key;
	struct err e;
	int rc;

	if (r->have_old && r->old.key != NULL && r->old.key[0] != '\0')
		snprintf(r->key, sizeof(r->key), "%s", r->old.key);
	else if (sync_key(s, j->path, r->key, sizeof(r->key)) == -1 ||
	         !text_utf8_valid(r->key, strlen(r->key))) {
		/* Such a name was never uploaded: only the row goes. */
		err_clear(&e);
		(void)state_file_delete(s->state, j->path, j->path_len, &e);
		job_finish(j, 1);
		return;
	}
	r->intent = sync_add_intent(s, STATE_OP_DELETE, j->path, j->path_len,
	                            r->key, NULL);
	if (r->intent == -1) {
		job_fail(j, "cannot record the intent in the state database");
		return;
	}
	err_clear(&e);
	key = json_pack("{s:o}", "FileName", dynamo_s(r->key));
	r->phase = RUN_DELETING_ITEM;
	rc = dynamo_delete_item(s->ddb, s->table, key, NULL, NULL, NULL,
	                        job_on_delete_item, j, &e);
	json_decref(key);
	if (rc == -1)
		job_fail(j, "DeleteItem: %s", e.message);
}

/* --- rename: copy, new item, old item, old object ---------------------- */

/* The rename cannot be done as a copy: the old path is converged (its
 * remote copies deleted) and the new one uploaded. */
static void
job_rename_fallback(struct job *j)
{
	struct job *old;

	old = job_find(j->sync, j->rename_from, strlen(j->rename_from));
	if (old != NULL && old->st == JOB_HELD && old->holder == j)
		old->again = 1;
	sync_release_held(j);
	job_keep_intent(j, j->run->intent);
	run_free(j->run);
	j->run = calloc(1, sizeof(*j->run));
	if (j->run == NULL) {
		j->again = 1;
		job_finish(j, 0);
		return;
	}
	j->run->fd = -1;
	job_converge(j);
}

static void
job_on_delete_old_object(const struct s3_result *res, const struct err *e,
                         void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct err se;
	char p1[256], p2[256];

	(void)res;
	if (e != NULL) {
		job_net_error(j, "DeleteObject (rename)", e);
		return;
	}
	/* The row moves with the new key and ETag. */
	free(r->old.path);
	r->old.path = j->path;
	r->old.path_len = j->path_len;
	free(r->old.key);
	r->old.key = strdup(r->key);
	snprintf(r->old.etag, sizeof(r->old.etag), "%s", r->etag);
	err_clear(&se);
	if (r->old.key == NULL ||
	    state_file_put(s->state, &r->old, &se) == -1 ||
	    state_file_delete(s->state, j->rename_from, strlen(j->rename_from),
	                      &se) == -1)
		log_warnx("state: %s", se.message);
	r->old.path = NULL; /* borrowed from the job */
	s->stats.renamed++;
	log_debug("renamed %s -> %s", log_path(j->rename_from, p1, sizeof(p1)),
	          log_path(j->path, p2, sizeof(p2)));
	if (s->summary != NULL)
		summary_touch(s->summary);
	job_finish(j, 1);
}

static void
job_on_delete_old_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;

	(void)resp;
	job_item_deleted(j, e, "DeleteItem (rename)", RUN_DELETING_OLD_OBJECT,
	                 j->run->old_key, NULL, job_on_delete_old_object);
}

static void
job_on_new_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	json_t *key;
	struct err se;
	int rc;

	(void)resp;
	if (e != NULL && strcmp(e->code, "ConditionalCheckFailedException")) {
		job_net_error(j, "PutItem (rename)", e);
		return;
	}
	err_clear(&se);
	key = json_pack("{s:o}", "FileName", dynamo_s(j->run->old_key));
	j->run->phase = RUN_DELETING_OLD_ITEM;
	rc = dynamo_delete_item(s->ddb, s->table, key, NULL, NULL, NULL,
	                        job_on_delete_old_item, j, &se);
	json_decref(key);
	if (rc == -1)
		job_fail(j, "DeleteItem: %s", se.message);
}

static void
job_on_copy(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	struct run *r = j->run;

	if (e != NULL && e->kind != ERR_CANCEL &&
	    (e->http_status == 404 || strcmp(e->code, "NoSuchKey") == 0)) {
		/* The old object is gone: upload the new path instead. */
		job_rename_fallback(j);
		return;
	}
	if (e != NULL) {
		job_net_error(j, "CopyObject", e);
		return;
	}
	snprintf(r->etag, sizeof(r->etag), "%s", res->etag);
	job_put_item(j,
	             sync_item(s, r->key, r->old.size, r->old.type,
	                       r->old.width, r->old.height, r->old.sha256,
	                       r->etag, r->mtime),
	             job_on_new_item);
}

static void
job_rename(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct state_intent in;
	struct err e;
	int found;

	err_clear(&e);
	found = state_file_get(s->state, j->rename_from, strlen(j->rename_from),
	                       &r->old, &e);
	if (found != 1 || r->old.failed || r->old.key == NULL ||
	    r->old.key[0] == '\0' || !sync_wanted(s, j->path) ||
	    sync_key(s, j->path, r->key, sizeof(r->key)) == -1 ||
	    !text_utf8_valid(r->key, strlen(r->key))) {
		job_rename_fallback(j);
		return;
	}
	r->fd = sync_open(s, j->path);
	if (r->fd == -1 || fstat(r->fd, &r->st) == -1 ||
	    !S_ISREG(r->st.st_mode) || !same_identity(&r->st, &r->old)) {
		job_rename_fallback(j);
		return;
	}
	snprintf(r->old_key, sizeof(r->old_key), "%s", r->old.key);
	text_iso_time(&r->st.st_mtim, 9, r->mtime, sizeof(r->mtime));
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_RENAME;
	in.path = j->path;
	in.path_len = j->path_len;
	in.key = r->key;
	in.old_path = j->rename_from;
	in.old_len = strlen(j->rename_from);
	in.old_key = r->old_key;
	in.size = r->old.size;
	in.mtime_ns = r->old.mtime_ns;
	memcpy(in.sha256, r->old.sha256, sizeof(in.sha256));
	r->intent = state_intent_add(s->state, &in, &e);
	if (r->intent == -1) {
		job_fail(j, "cannot record the intent: %s", e.message);
		return;
	}
	r->phase = RUN_COPYING;
	if (s3_copy_object(s->s3, r->old_key, r->key, job_on_copy, j, &e) == -1)
		job_fail(j, "CopyObject: %s", e.message);
}

/* --- events ------------------------------------------------------------ */

struct sync_walk {
	struct sync *s;
	const char *from;
	const char *to;
	int depth;
};

/* Marks every wanted regular file under dir (relative path; "" = root). */
static void
sync_walk_dir(struct sync *s, int dirfd, const char *rel, int depth)
{
	struct dirent *d;
	struct buf path;
	struct stat st;
	DIR *dir;
	int fd;

	if (depth > 256)
		return;
	dir = fdopendir(dirfd);
	if (dir == NULL) {
		close(dirfd);
		return;
	}
	buf_init(&path, 0);
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		buf_reset(&path);
		if (*rel != '\0')
			buf_printf(&path, "%s/", rel);
		buf_puts(&path, d->d_name);
		if (buf_cstr(&path) == NULL)
			break;
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd, d->d_name,
			            O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                O_CLOEXEC);
			if (fd != -1)
				sync_walk_dir(s, fd, path.data, depth + 1);
		} else if (S_ISREG(st.st_mode) && sync_wanted(s, path.data)) {
			sync_mark(s, path.data, s->settle_ms);
		}
	}
	buf_cleanup(&path);
	closedir(dir);
}

static int
sync_mark_row(const struct state_file *f, void *arg)
{
	struct sync *s = arg;

	sync_mark(s, f->path, 0);
	return 0;
}

/* A file renamed within the root: copied remotely when it was synced and
 * nothing else is going on with either path; else both are converged. */
static void
sync_rename_file(struct sync *s, const char *from, const char *to)
{
	struct job *old, *j;

	if (job_find(s, from, strlen(from)) != NULL ||
	    job_find(s, to, strlen(to)) != NULL || s->stopping) {
		sync_mark(s, from, 0);
		sync_mark(s, to, s->settle_ms);
		return;
	}
	old = job_new(s, from, strlen(from));
	j = job_new(s, to, strlen(to));
	if (old == NULL || j == NULL ||
	    (j->rename_from = strdup(from)) == NULL) {
		if (old != NULL)
			job_free(old);
		if (j != NULL)
			job_free(j);
		sync_mark(s, from, 0);
		sync_mark(s, to, s->settle_ms);
		return;
	}
	old->st = JOB_HELD;
	old->holder = j;
	j->st = JOB_READY;
	queue_push(&s->ready, j);
	sync_pump(s);
}

static int
sync_rename_row(const struct state_file *f, void *arg)
{
	struct sync_walk *w = arg;
	size_t flen = strlen(w->from);
	struct buf to;

	buf_init(&to, 0);
	buf_printf(&to, "%s%s", w->to, f->path + flen);
	if (buf_cstr(&to) != NULL)
		sync_rename_file(w->s, f->path, to.data);
	buf_cleanup(&to);
	return 0;
}

static void
sync_rename_dir(struct sync *s, const char *from, const char *to)
{
	struct sync_walk w = {s, from, to, 0};
	struct err e;
	int fd;

	err_clear(&e);
	if (state_files_under(s->state, from, strlen(from), sync_rename_row, &w,
	                      &e) == -1)
		log_warnx("%s", e.message);
	/* Files not synced yet, or changed, under the new name. */
	fd = beneath_open(s->rootfd, to, O_RDONLY | O_DIRECTORY, 0);
	if (fd != -1)
		sync_walk_dir(s, fd, to, 0);
}

void
sync_on_event(const struct watcher_event *ev, void *arg)
{
	struct sync *s = arg;
	struct job *j;
	struct err e;
	char p[256], why[512];

	if (s->root_lost)
		return; /* the rescan when it is back sees everything */
	switch (ev->kind) {
	case WATCHER_FILE:
		if (sync_wanted(s, ev->path))
			sync_mark(s, ev->path,
			          s->rescan_pending ? 0 : s->settle_ms);
		break;
	case WATCHER_MODIFIED:
		j = job_find(s, ev->path, strlen(ev->path));
		if (j != NULL && j->st == JOB_SETTLING &&
		    j->rename_from == NULL)
			job_settle(j, s->settle_ms);
		else if (j != NULL && j->st == JOB_RUNNING)
			j->again = 1;
		break;
	case WATCHER_GONE:
		sync_mark(s, ev->path, 0);
		if (ev->is_dir) {
			err_clear(&e);
			if (state_files_under(s->state, ev->path,
			                      strlen(ev->path), sync_mark_row,
			                      s, &e) == -1)
				log_warnx("%s", e.message);
		}
		break;
	case WATCHER_RENAME:
		if (ev->is_dir)
			sync_rename_dir(s, ev->old_path, ev->path);
		else if (sync_wanted(s, ev->path))
			sync_rename_file(s, ev->old_path, ev->path);
		else
			sync_mark(s, ev->old_path, 0);
		break;
	case WATCHER_RESCAN:
		log_warnx("rescanning: %s", ev->reason ? ev->reason : "");
		sync_rescan(s, NULL);
		break;
	case WATCHER_ROOT_GONE:
		snprintf(why, sizeof(why),
		         "%s (%s): nothing is uploaded or deleted until the "
		         "mirrored folder is back",
		         ev->reason != NULL ? ev->reason
		                            : "the watch root is gone",
		         log_path(s->root, p, sizeof(p)));
		sync_root_lost(s, why);
		break;
	}
}

/* --- start-up, rescans ------------------------------------------------- */

static int
sync_check_row(const struct state_file *f, void *arg)
{
	struct sync *s = arg;
	struct stat st;

	/* Excluded since it was synced (a reload changed the patterns): it
	 * leaves the mirror like a deleted file. */
	if (f->failed || !sync_wanted(s, f->path) ||
	    fstatat(s->rootfd, f->path, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		sync_mark(s, f->path, 0);
	return 0;
}

static void
sync_do_rescan(struct sync *s)
{
	const char *degraded;
	struct err e;

	if (sync_root_check(s) != 0)
		return;
	err_clear(&e);
	s->stats.rescans++;
	if (s->watcher != NULL && watcher_scan(s->watcher, &e) == -1)
		log_warnx("rescan: %s", e.message);
	/* Vanished files, and failed ones (retried after a rescan). */
	err_clear(&e);
	if (state_files_each(s->state, sync_check_row, s, &e) == -1)
		log_warnx("%s", e.message);
	s->rescan_pending = 0;
	degraded = s->watcher != NULL ? watcher_degraded(s->watcher) : NULL;
	if (degraded != NULL) {
		log_warnx("%s; rescanning every %u s until then", degraded,
		          SYNC_DEGRADED_RESCAN_MS / 1000);
		loop_timer_set(s->rescan_timer, SYNC_DEGRADED_RESCAN_MS);
	}
	sync_pump(s);
}

static void
sync_on_rescan(void *arg)
{
	struct sync *s = arg;

	s->rescan_pending = 1;
	sync_do_rescan(s);
}

void
sync_rescan(struct sync *s, const char *why)
{
	if (why != NULL)
		log_info("rescanning: %s", why);
	s->rescan_pending = 1;
	loop_timer_set(s->rescan_timer, 0);
}

static void
sync_on_abort(const struct s3_result *res, const struct err *e, void *arg)
{
	char *key = arg, p[256];

	(void)res;
	if (e == NULL)
		log_info("aborted the interrupted multipart upload of %s",
		         log_path(key, p, sizeof(p)));
	else if (e->kind != ERR_CANCEL && strcmp(e->code, "NoSuchUpload") != 0)
		log_warnx("%s: cannot abort an interrupted multipart upload "
		          "(its parts stay until a lifecycle rule removes "
		          "them): %s",
		          log_path(key, p, sizeof(p)), e->message);
	free(key);
}

/* The upload the intent names is never completed: the file is uploaded
 * again from the start. */
static void
sync_abort_upload(struct sync *s, const char *key, const char *upload_id)
{
	char *k = strdup(key);
	struct err e;

	if (k == NULL)
		return;
	err_clear(&e);
	if (s3_abort_multipart(s->s3, k, upload_id, sync_on_abort, k, &e) ==
	    -1) {
		log_warnx("cannot abort a multipart upload: %s", e.message);
		free(k);
	}
}

static int
sync_replay(const struct state_intent *in, void *arg)
{
	struct sync *s = arg;
	const char *paths[2];
	struct job *j;
	int64_t *r;
	size_t i;
	char p[256];

	log_info("finishing an interrupted %s of %s", state_op_name(in->op),
	         log_path(in->path, p, sizeof(p)));
	if (in->upload_id != NULL && in->key != NULL)
		sync_abort_upload(s, in->key, in->upload_id);
	paths[0] = in->path;
	paths[1] = in->old_path;
	for (i = 0; i < 2 && paths[i] != NULL; i++) {
		j = sync_mark(s, paths[i], 0);
		if (j == NULL)
			continue;
		j->force_delete = 1;
		if (i > 0)
			continue;
		r = realloc(j->replay, (j->nreplay + 1) * sizeof(*r));
		if (r == NULL)
			continue;
		j->replay = r;
		j->replay[j->nreplay++] = in->id;
	}
	return 0;
}

struct trash_left {
	char **paths;
	char **dirs;
	size_t n;
	int nomem;
};

static int
trash_left_row(const char *name, const void *value, size_t len, void *arg)
{
	struct trash_left *t = arg;
	char **p, **d;

	p = realloc(t->paths, (t->n + 1) * sizeof(*p));
	if (p != NULL)
		t->paths = p;
	d = realloc(t->dirs, (t->n + 1) * sizeof(*d));
	if (d != NULL)
		t->dirs = d;
	if (p == NULL || d == NULL ||
	    (t->paths[t->n] = strdup(name + strlen("trash:"))) == NULL) {
		t->nomem = 1;
		return 1;
	}
	if ((t->dirs[t->n] = strndup(value, len)) == NULL) {
		free(t->paths[t->n]);
		t->nomem = 1;
		return 1;
	}
	t->n++;
	return 0;
}

/* Control-socket deletes a crash or a stop cut short: their files go to
 * the trash now, before the rescan could upload them again; the intents'
 * replay deletes what is left remotely. Also the moves that waited for
 * space. 0, 1 when some still wait for space, -1. */
static int
sync_finish_trash(struct sync *s, struct err *e)
{
	struct trash_left t;
	char msg[700], p[256], m[1024];
	size_t i;
	int rc;

	memset(&t, 0, sizeof(t));
	rc = state_meta_each(s->state, "trash:", trash_left_row, &t, e);
	if (rc != -1 && t.nomem) {
		err_set(e, ERR_SYS, "out of memory");
		rc = -1;
	}
	for (i = 0; i < t.n; i++) {
		/* Once started, a delete still running keeps its note. */
		if (rc != -1 && s->started &&
		    job_find(s, t.paths[i], strlen(t.paths[i])) != NULL) {
			free(t.paths[i]);
			free(t.dirs[i]);
			continue;
		}
		if (rc != -1 &&
		    sync_trash(s, t.paths[i], t.dirs[i], msg, sizeof(msg)) ==
		        -1 &&
		    space_errno(errno)) {
			/* Kept: tried again when there is space. */
			sync_space_blocked(s, msg);
			rc = 1;
		} else if (rc != -1) {
			log_info("finishing an interrupted delete of %s: %s",
			         log_path(t.paths[i], p, sizeof(p)),
			         log_path(msg, m, sizeof(m)));
			trash_note(s, t.paths[i], "", 0);
		}
		free(t.paths[i]);
		free(t.dirs[i]);
	}
	free(t.paths);
	free(t.dirs);
	return rc;
}

/* The start-up's work, once the root is the mirrored folder. */
static int
sync_begin(struct sync *s, struct err *e)
{
	if (sync_finish_trash(s, e) == -1 ||
	    state_intents_each(s->state, sync_replay, s, e) == -1)
		return -1;
	s->nheld = 0;
	if (state_meta_each(s->state, SYNC_HELD, sync_count_row, &s->nheld,
	                    e) == -1)
		return -1;
	if (s->nheld > 0)
		log_warnx(
		    "%" PRIu64 " deletions held: imgsyncctl deletions "
		    "lists them, imgsyncctl deletions --confirm sends them",
		    s->nheld);
	s->started = 1;
	return 0;
}

int
sync_start(struct sync *s, struct err *e)
{
	s->rescan_pending = 1;
	if (sync_root_check(s) == -1)
		return -1;
	if (s->root_lost)
		return 0;
	if (!s->started && sync_begin(s, e) == -1)
		return -1;
	sync_do_rescan(s);
	return 0;
}

/* --- the mass-deletion guard ------------------------------------------ */

static int
sync_held_key(const char *path, struct buf *key)
{
	buf_init(key, 0);
	buf_printf(key, "%s%s", SYNC_HELD, path);
	return buf_cstr(key) != NULL ? 0 : -1;
}

static int
sync_is_held(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;
	char *v = NULL;
	int rc;

	if (s->nheld == 0 || sync_held_key(path, &key) == -1)
		return 0;
	err_clear(&e);
	rc = state_meta_get(s->state, key.data, &v, NULL, &e);
	free(v);
	buf_cleanup(&key);
	return rc == 1;
}

static void
sync_hold(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;

	if (sync_is_held(s, path) || sync_held_key(path, &key) == -1)
		return;
	err_clear(&e);
	if (state_meta_put(s->state, key.data, "", 0, &e) == -1)
		log_warnx("state: %s", e.message);
	else
		s->nheld++;
	buf_cleanup(&key);
}

/* The file is back (or the deletion was sent): no longer held. */
static void
sync_held_drop(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;

	if (!sync_is_held(s, path) || sync_held_key(path, &key) == -1)
		return;
	err_clear(&e);
	if (state_meta_delete(s->state, key.data, &e) == -1)
		log_warnx("state: %s", e.message);
	else
		s->nheld--;
	buf_cleanup(&key);
}

/* A file the mirror has is gone locally: with sync.delete = "keep" the
 * remote copies stay (the state forgets it); else it waits for its batch,
 * or joins the held deletions. */
static void
sync_delete_wait(struct sync *s, const char *path)
{
	char **more, *copy;
	struct err e;

	if (s->keep) {
		err_clear(&e);
		if (state_file_delete(s->state, path, strlen(path), &e) == -1)
			log_warnx("state: %s", e.message);
		return;
	}
	if (sync_is_held(s, path))
		return;
	if (s->nheld > 0) {
		sync_hold(s, path);
		return;
	}
	copy = strdup(path);
	more = realloc(s->batch, (s->nbatch + 1) * sizeof(*more));
	if (copy == NULL || more == NULL) {
		free(copy);
		if (more != NULL)
			s->batch = more;
		return; /* the next rescan finds it again */
	}
	s->batch = more;
	s->batch[s->nbatch++] = copy;
	loop_timer_set(s->delete_timer, SYNC_DELETE_WINDOW_MS);
}

/* Whether n deletions at once are more than the operator allowed. */
static int
sync_too_many(const struct sync *s, uint64_t n)
{
	uint64_t files = 0;
	struct err e;

	if (s->max_delete > 0 && n > s->max_delete)
		return 1;
	/* A share of a small mirror is a few files: routine. */
	err_clear(&e);
	if (s->max_delete_pct == 0 || n <= SYNC_DELETE_MIN_BATCH ||
	    state_count(s->state, &files, NULL, NULL, &e) == -1)
		return 0;
	return n * 100 > (uint64_t)s->max_delete_pct * files;
}

/* The batch is complete: sent, or held. */
static void
sync_on_delete_timer(void *arg)
{
	struct sync *s = arg;
	struct job *j;
	size_t i;
	int hold = s->nheld > 0 || sync_too_many(s, s->nbatch);

	for (i = 0; i < s->nbatch; i++) {
		if (hold) {
			sync_hold(s, s->batch[i]);
		} else if ((j = sync_mark(s, s->batch[i], 0)) != NULL) {
			j->delete_ok = 1;
		}
		free(s->batch[i]);
	}
	if (hold && s->nbatch > 0)
		log_warnx("%" PRIu64 " deletions held (more than "
		          "sync.max_delete = %u files or %u%% of the mirror at "
		          "once): nothing is deleted remotely until the "
		          "operator confirms (imgsyncctl deletions lists them, "
		          "imgsyncctl deletions --confirm sends them)",
		          s->nheld, s->max_delete, s->max_delete_pct);
	free(s->batch);
	s->batch = NULL;
	s->nbatch = 0;
	sync_pump(s);
}

int
sync_reupload(struct sync *s, const char *path, struct err *e)
{
	if (state_file_delete(s->state, path, strlen(path), e) == -1)
		return -1;
	/* Before the start, the start-up's walk finds it unsynced. */
	if (s->started && sync_mark(s, path, 0) == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	return 0;
}

uint64_t
sync_held_count(const struct sync *s)
{
	return s->nheld;
}

int
sync_held_each(struct sync *s, state_meta_cb cb, void *arg, struct err *e)
{
	return state_meta_each(s->state, SYNC_HELD, cb, arg, e);
}

struct held_list {
	char **paths;
	size_t n;
	int nomem;
};

static int
held_row(const char *name, const void *value, size_t len, void *arg)
{
	struct held_list *h = arg;
	char **more;

	(void)value;
	(void)len;
	more = realloc(h->paths, (h->n + 1) * sizeof(*more));
	if (more == NULL ||
	    (more[h->n] = strdup(name + strlen(SYNC_HELD))) == NULL) {
		if (more != NULL)
			h->paths = more;
		h->nomem = 1;
		return 1;
	}
	h->paths = more;
	h->n++;
	return 0;
}

long
sync_held_confirm(struct sync *s, struct err *e)
{
	struct held_list h;
	struct job *j;
	size_t i;
	long n = 0;

	memset(&h, 0, sizeof(h));
	if (state_meta_each(s->state, SYNC_HELD, held_row, &h, e) == -1)
		n = -1;
	for (i = 0; i < h.n; i++) {
		if (n != -1) {
			sync_held_drop(s, h.paths[i]);
			if ((j = sync_mark(s, h.paths[i], 0)) != NULL) {
				j->delete_ok = 1;
				n++;
			}
		}
		free(h.paths[i]);
	}
	free(h.paths);
	if (n != -1 && h.nomem) {
		err_set(e, ERR_SYS, "out of memory");
		n = -1;
	}
	if (n > 0)
		log_info("the operator confirmed %ld held deletions: sending "
		         "them",
		         n);
	sync_pump(s);
	return n;
}

/* Held deletions survive restarts: counted at start. */
static int
sync_count_row(const char *name, const void *value, size_t len, void *arg)
{
	(void)name;
	(void)value;
	(void)len;
	(*(uint64_t *)arg)++;
	return 0;
}

/* --- a full state database --------------------------------------------- */

/* Whether e says the state database's file system is full or read-only:
 * then it is the disk-full state (said once), and 1. */
static int
sync_state_error(struct sync *s, const struct err *e)
{
	char why[700];

	if (strcmp(e->code, "SQLITE_FULL") != 0 &&
	    strcmp(e->code, "SQLITE_READONLY") != 0 && e->sys_errno != ENOSPC &&
	    e->sys_errno != EDQUOT && e->sys_errno != EROFS)
		return 0;
	snprintf(why, sizeof(why), "the state database cannot be written (%s)",
	         e->message);
	sync_space_blocked(s, why);
	return 1;
}

/* The disk-full state: said once; work waits until the probe succeeds. */
static void
sync_space_blocked(struct sync *s, const char *why)
{
	uint64_t queued = s->settling.n + s->ready.n;

	if (s->disk_full)
		return;
	s->disk_full = 1;
	s->disk_since_ms = s->disk_told_ms = loop_now_ms();
	snprintf(s->disk_why, sizeof(s->disk_why),
	         "%s: work waits, nothing is lost, and it resumes by itself "
	         "when there is space (or the file system is writable) again",
	         why);
	log_error("%s (%" PRIu64 " files waiting)", s->disk_why, queued);
	loop_timer_set(s->disk_timer, SYNC_DISK_CHECK_MS);
}

/* A probe write: space again? */
static void
sync_on_disk_timer(void *arg)
{
	struct sync *s = arg;
	struct err e;
	char now[32];

	if (!s->disk_full)
		return;
	snprintf(now, sizeof(now), "%" PRIu64, loop_now_ms());
	err_clear(&e);
	if (state_meta_put(s->state, "space_probe", now, strlen(now), &e) ==
	        -1 ||
	    state_meta_delete(s->state, "space_probe", &e) == -1 ||
	    sync_finish_trash(s, &e) != 0) {
		if (loop_now_ms() - s->disk_told_ms >= SYNC_DISK_REMIND_MS) {
			s->disk_told_ms = loop_now_ms();
			log_error("still waiting for space: %s (%" PRIu64
			          " files waiting)",
			          s->disk_why,
			          (uint64_t)(s->settling.n + s->ready.n));
		}
		loop_timer_set(s->disk_timer, SYNC_DISK_CHECK_MS);
		return;
	}
	s->disk_full = 0;
	s->disk_why[0] = '\0';
	log_info("the state database can be written again: resuming "
	         "(rescanning)");
	sync_rescan(s, NULL);
	sync_pump(s);
}

const char *
sync_disk_full_why(const struct sync *s)
{
	return s->disk_full ? s->disk_why : NULL;
}

/* --- the watch root: the mirrored folder, or not --------------------- */

/* The root is not the mirrored folder: nothing starts until it is back.
 * Said once; the watcher goes (from a timer: this may be its callback). */
static void
sync_root_lost(struct sync *s, const char *why)
{
	if (!s->root_lost)
		log_error("%s", why);
	s->root_lost = 1;
	snprintf(s->root_why, sizeof(s->root_why), "%s", why);
	loop_timer_set(s->root_timer, 0);
}

/* Watches the folder rootfd (taken) is, from now on. */
static int
sync_root_use(struct sync *s, int rootfd, struct err *e)
{
	struct stat a, b;

	if (s->rootfd != -1 && s->watcher != NULL &&
	    fstat(s->rootfd, &a) == 0 && fstat(rootfd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		close(rootfd);
		return 0;
	}
	if (s->rootfd != -1)
		close(s->rootfd);
	s->rootfd = rootfd;
	watcher_free(s->watcher);
	s->watcher = watcher_new(s->loop, s->root, sync_on_event, s, e);
	return s->watcher == NULL ? -1 : 0;
}

/*
 * Whether the folder at the root is the mirrored one (rootguard). 0 yes
 * (watched, and the start-up's work done), 1 no (the lost state), -1 the
 * state database failed.
 */
static int
sync_root_check(struct sync *s)
{
	enum rootguard_verdict v;
	char why[sizeof(s->root_why)];
	struct err e;
	int fd, was_lost = s->root_lost;

	err_clear(&e);
	v = rootguard_check(s->state, s->root, &fd, why, sizeof(why), &e);
	if (v == ROOTGUARD_ERROR) {
		log_error("state: %s", e.message);
		return -1;
	}
	if (v == ROOTGUARD_LOST) {
		sync_root_lost(s, why);
		return 1;
	}
	if (v == ROOTGUARD_ADOPTED)
		log_info("%s", why);
	if (sync_root_use(s, fd, &e) == -1) {
		sync_root_lost(s, e.message);
		return 1;
	}
	s->root_lost = 0;
	s->root_why[0] = '\0';
	loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
	if (was_lost) {
		log_info("the watch root %s is the mirrored folder again: "
		         "rescanning",
		         s->root);
		s->rescan_pending = 1;
		loop_timer_set(s->rescan_timer, 0);
	}
	if (!s->started && sync_begin(s, &e) == -1) {
		log_error("%s", e.message);
		return -1;
	}
	return 0;
}

/* Whether the path of the root leads elsewhere than the folder watched:
 * an unmount (a lazy one leaves the old tree readable through our fds, and
 * inotify says nothing), a folder moved away and replaced, a remount. */
static int
sync_root_moved(const struct sync *s)
{
	struct stat a, b;

	return stat(s->root, &a) == -1 || fstat(s->rootfd, &b) == -1 ||
	       a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

static void
sync_on_root_timer(void *arg)
{
	struct sync *s = arg;

	if (!s->root_lost) {
		if (!sync_root_moved(s) || sync_root_check(s) == 0)
			loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
		return;
	}
	/* Gone with the folder; a new one is made when it is back. */
	watcher_free(s->watcher);
	s->watcher = NULL;
	if (sync_root_check(s) != -1)
		loop_timer_set(s->root_timer, SYNC_ROOT_CHECK_MS);
}

const char *
sync_root_lost_why(const struct sync *s)
{
	return s->root_lost ? s->root_why : NULL;
}

/* --- life cycle -------------------------------------------------------- */

static int
sync_apply(struct sync *s, const struct config *cfg)
{
	char **inc, **exc;

	inc = copy_list(&cfg->watch.include);
	exc = copy_list(&cfg->watch.exclude);
	if (inc == NULL || exc == NULL) {
		free_list(inc, cfg->watch.include.count);
		free_list(exc, cfg->watch.exclude.count);
		return -1;
	}
	free_list(s->include, s->ninclude);
	free_list(s->exclude, s->nexclude);
	s->include = inc;
	s->ninclude = cfg->watch.include.count;
	s->exclude = exc;
	s->nexclude = cfg->watch.exclude.count;
	s->settle_ms = (unsigned)cfg->watch.settle_ms;
	s->concurrency = (unsigned)cfg->sync.concurrency;
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
	s->settle_timer = loop_timer_new(s->loop, sync_on_settle, s, e);
	s->work_timer = loop_timer_new(s->loop, sync_on_work, s, e);
	s->rescan_timer = loop_timer_new(s->loop, sync_on_rescan, s, e);
	s->root_timer = loop_timer_new(s->loop, sync_on_root_timer, s, e);
	s->delete_timer = loop_timer_new(s->loop, sync_on_delete_timer, s, e);
	s->disk_timer = loop_timer_new(s->loop, sync_on_disk_timer, s, e);
	if (s->settle_timer == NULL || s->work_timer == NULL ||
	    s->rescan_timer == NULL || s->root_timer == NULL ||
	    s->delete_timer == NULL || s->disk_timer == NULL)
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
	for (i = 0; i < SYNC_HASH_BUCKETS; i++)
		while (s->table_[i] != NULL) {
			run_free(s->table_[i]->run);
			s->table_[i]->run = NULL;
			job_free(s->table_[i]);
		}
	loop_timer_free(s->settle_timer);
	loop_timer_free(s->work_timer);
	loop_timer_free(s->rescan_timer);
	loop_timer_free(s->root_timer);
	loop_timer_free(s->delete_timer);
	loop_timer_free(s->disk_timer);
	while (s->nbatch > 0)
		free(s->batch[--s->nbatch]);
	free(s->batch);
	watcher_free(s->watcher);
	if (s->rootfd != -1)
		close(s->rootfd);
	free_list(s->include, s->ninclude);
	free_list(s->exclude, s->nexclude);
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

void
sync_stop(struct sync *s)
{
	s->stopping = 1;
}

int
sync_idle(const struct sync *s)
{
	return s->settling.n == 0 && s->ready.n == 0 && s->running == 0 &&
	       !s->rescan_pending && s->nbatch == 0;
}

void
sync_get_stats(const struct sync *s, struct sync_stats *st)
{
	*st = s->stats;
	st->queued = s->settling.n + s->ready.n;
	st->running = s->running;
}

/* --- requests from the control socket ---------------------------------- */

void
sync_pause(struct sync *s)
{
	s->paused = 1;
}

void
sync_resume(struct sync *s)
{
	s->paused = 0;
	sync_pump(s);
}

int
sync_paused(const struct sync *s)
{
	return s->paused;
}

int
sync_stopping(const struct sync *s)
{
	return s->stopping;
}

int
sync_rescanning(const struct sync *s)
{
	return s->rescan_pending;
}

const char *
sync_last_error(const struct sync *s)
{
	return s->last_error;
}

void
sync_note_error(struct sync *s, const char *message)
{
	snprintf(s->last_error, sizeof(s->last_error), "%s", message);
}

int
sync_path_wanted(const struct sync *s, const char *path)
{
	return sync_wanted(s, path);
}

/* Opens path's directory under the root, following no symlink; *base
 * points at the last component. -1 with errno (ELOOP, ENOTDIR, EXDEV: a
 * symlink or out of the root). */
static int
sync_open_parent(const struct sync *s, const char *path, const char **base)
{
	return beneath_open_parent(s->rootfd, path, 0, 0, base);
}

enum sync_path_kind
sync_path_kind(const struct sync *s, const char *path)
{
	const char *base;
	struct stat st;
	int dfd, rc;

	dfd = sync_open_parent(s, path, &base);
	if (dfd == -1)
		return errno == ENOENT || errno == ENOTDIR ? SYNC_PATH_MISSING
		                                           : SYNC_PATH_OUTSIDE;
	rc = fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (rc == -1)
		return SYNC_PATH_MISSING;
	if (S_ISLNK(st.st_mode))
		return SYNC_PATH_OUTSIDE;
	return S_ISREG(st.st_mode) ? SYNC_PATH_FILE : SYNC_PATH_OTHER;
}

int
sync_upload(struct sync *s, const char *path, struct err *e)
{
	if (s->stopping) {
		err_set(e, ERR_INVALID, "imgsyncd is stopping");
		return -1;
	}
	if (sync_mark(s, path, 0) == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	return 0;
}

struct sync_retry {
	struct sync *s;
	long n;
};

static int
sync_mark_failed(const struct state_file *f, void *arg)
{
	struct sync_retry *r = arg;

	if (sync_mark(r->s, f->path, 0) != NULL)
		r->n++;
	return 0;
}

long
sync_retry_failed(struct sync *s, struct err *e)
{
	struct sync_retry r = {s, 0};

	if (state_failed_each(s->state, sync_mark_failed, &r, e) == -1)
		return -1;
	return r.n;
}

int
sync_delete(struct sync *s, const char *path, const char *trash,
            sync_done_cb cb, void *arg, struct err *e)
{
	struct sync_waiter *w;
	struct job *j;

	if (s->stopping) {
		err_set(e, ERR_INVALID, "imgsyncd is stopping");
		e->http_status = 503;
		return -1;
	}
	j = sync_mark(s, path, 0);
	if (j == NULL || j->del != NULL) {
		err_set(e, ERR_INVALID,
		        j == NULL ? "out of memory"
		                  : "a delete of this file is already running");
		e->http_status = j == NULL ? 500 : 409;
		return -1;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->trash = strdup(trash)) == NULL) {
		free(w);
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	j->del = w;
	/* Due now; one already queued (its change waits while paused) is
	 * pumped again, now that it may start. */
	if (j->st == JOB_SETTLING || j->st == JOB_READY)
		job_settle(j, 0);
	return 0;
}

/* Moves the local file (if it is still there) to the trash now, copying
 * in one go when it must: for the start-up, before anything else runs. */
static int
sync_trash(struct sync *s, const char *path, const char *trash, char *msg,
           size_t msglen)
{
	struct trash_move *m;
	const char *base;
	int dfd, rc, saved;

	snprintf(msg, msglen, "no local file");
	dfd = sync_open_parent(s, path, &base);
	if (dfd == -1)
		return 0;
	m = trash_move_start(dfd, base, trash, path, msg, msglen, &rc);
	if (m == NULL)
		return rc;
	rc = trash_move_step(m, 0, msg, msglen);
	saved = errno;
	trash_move_free(m);
	errno = saved;
	return rc == 1 ? 0 : -1;
}
