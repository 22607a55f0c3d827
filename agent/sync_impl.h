/*
 * sync_impl: what the sync engine's files share, and nothing else includes.
 *
 * The engine is split by role; each file depends only on those below it:
 *
 *   sync.c, sync_api.c   life cycle and wiring; what the control socket asks
 *   sync_scan.c          events, rescans, walks
 *   sync_root.c          the watch root: the mirrored folder, or not
 *   sync_rename.c        rename: copy, new item, old item, old object
 *   sync_upload.c        converge a path: hash, object, then item
 *   sync_recover.c       start-up: intents a crash left, unfinished trash
 *                        moves, resuming after a full disk
 *   sync_remove.c        remote deletes: item, then object
 *   sync_guard.c         the mass-deletion guard (held deletions)
 *   sync_items.c         item writes, batched (TransactWriteItems)
 *   sync_trash.c         a control-socket delete's local half: the trash
 *   sync_core.c          jobs, queues, the scheduler, finishing, intents
 *   sync_path.c          paths, keys, opening files beneath the root
 *
 * The core starts a job through the table of operations (struct sync_ops)
 * that sync.c fills, and arms timers whose callbacks sync.c took from the
 * role files: so no arrow points up. The invariants cited as "invariant N"
 * are listed in docs/ARCHITECTURE.md.
 */
#ifndef IMGSYNC_SYNC_IMPL_H
#define IMGSYNC_SYNC_IMPL_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>

#include "imagemeta.h"
#include "sync.h"
#include "thumb_client.h"

#define SYNC_HASH_BUCKETS 4096u
#define SYNC_MAX_KEY 1024u             /* S3's limit, in bytes */
#define SYNC_DEGRADED_RESCAN_MS 30000u /* while directories go unwatched */
#define SYNC_DELETE_WINDOW_MS 1000 /* local deletions gathered as one batch */
#define SYNC_DISK_CHECK_MS 5000    /* while the state database is full */
#define SYNC_ROOT_CHECK_MS 2000    /* while the root is not the mirrored one */
#define SYNC_SCAN_STEP 512u        /* files a step of a scan reports */
#define SYNC_SCAN_QUEUE 4096u      /* queued paths that make a scan wait */
#define SYNC_LIMIT_START 16u       /* adaptive concurrency: the start ... */
#define SYNC_LIMIT_MIN 4u          /* ... and the floor */
#define SYNC_LIMIT_CUT_MS 1000u    /* at most one halving per second */
#define SYNC_HELD "held:"          /* state meta: a held deletion's path */
#define SYNC_TRASH "trash:"        /* state meta: a control delete's trash */

enum job_state {
	JOB_NEW,      /* in no queue yet */
	JOB_SETTLING, /* waiting for its due time */
	JOB_READY,    /* waiting for a free slot */
	JOB_RUNNING,
	JOB_HELD, /* the old path of a running rename */
};

enum run_phase {
	RUN_STARTING,
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

/* An upload's own state (sync_upload.c). */
struct run_upload {
	int fd;
	struct stat st;
	char sha256[65];
	char etag[80];
	struct imagemeta meta;
	struct imagemeta_hash *hash;
	struct s3_parts *parts; /* its parts' digests, when it goes in parts */
	uint64_t hashed;
	enum upload_step step; /* between prepare and send */
	struct job *next_hashing;
};

/* A remote delete's (sync_remove.c). */
struct run_delete {
	int rechecked; /* a conditional delete's 412 was looked at */
};

/* A rename's (sync_rename.c). */
struct run_rename {
	char old_key[SYNC_MAX_KEY + 1];
	struct timespec mtime; /* the file's, exact (past 2262 too) */
	char etag[80];
};

/* A control-socket delete's local file on its way to the trash
 * (sync_trash.c). */
struct run_trash {
	int done; /* its file went to the trash (or not) */
	int rc;
	int err; /* errno: why the move failed */
	char msg[700];
	struct trash_move *move; /* copying to the trash, a step a turn */
	struct loop_timer *timer;
};

enum run_op { RUN_NONE, RUN_UPLOAD, RUN_DELETE, RUN_RENAME };

/* What one running operation needs; freed when it ends. */
struct run {
	enum run_op op; /* which of u is in use */
	enum run_phase phase;
	int64_t intent;
	char key[SYNC_MAX_KEY + 1];
	struct state_file old; /* the row before (rename: of the old path) */
	int have_old;
	struct sync_waiter *api; /* a delete asked by the control socket */
	struct run_trash trash;  /* ... its local half */
	union {
		struct run_upload up;
		struct run_delete rm;
		struct run_rename rn;
	} u;
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

/* The operations the core hands jobs to, and the hooks it calls: filled by
 * sync_new from the role files. */
struct sync_ops {
	void (*converge)(struct job *j); /* make the remote side match */
	void (*gone)(struct job *j);     /* the path is gone: delete remotely */
	void (*rename)(struct job *j);   /* j->rename_from -> j->path */
	/* A control-socket delete's remote side is done (ok) or not: its
	 * local half. 1 while a copy into the trash goes on (its last step
	 * finishes the job again), else 0 once the caller was answered. */
	int (*api_done)(struct job *j, int ok);
	watcher_cb on_event; /* the watcher's callback */
};

struct sync {
	const struct sync_ops *ops;
	struct loop *loop;
	struct s3 *s3;
	struct dynamo *ddb;
	struct state *state;
	struct summary *summary;
	struct sync_thumbs *thumbs; /* NULL: thumbnails off */
	char *thumbs_path_prefix;   /* thumbnails.prefix; NULL: off */
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
	unsigned concurrency; /* sync.concurrency: the most jobs at once */
	/* Adaptive concurrency (sync_core.c): jobs at once now, grown per
	 * finished job, halved when a server throttled. */
	unsigned limit;
	unsigned limit_acc;      /* jobs finished toward the next +1 */
	int limit_steady;        /* after the first throttle: +1 per round */
	uint64_t throttled_seen; /* the clients' throttle count last seen */
	uint64_t limit_cut_ms;
	struct job *table_[SYNC_HASH_BUCKETS];
	struct queue settling;
	struct queue ready;
	size_t running;
	struct job *hashing;
	unsigned char *hash_buf; /* SYNC_HASH_CHUNK bytes, for the work timer */
	struct loop_timer *settle_timer;
	uint64_t settle_armed; /* due time the timer is set for; 0: unarmed */
	struct loop_timer *work_timer;
	struct loop_timer *rescan_timer;
	int rescan_pending;            /* until the scan under way is over */
	struct loop_timer *scan_timer; /* its next step (sync_scan.c) */
	int scan_waiting;              /* ... once the queue is shorter */
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
	 * resumes the work when space is back (invariant 7). */
	int disk_full;
	char disk_why[700];
	uint64_t disk_since_ms, disk_told_ms;
	struct loop_timer *disk_timer;
	/* The mass-deletion guard (sync.max_delete, invariant 5): local
	 * deletions wait SYNC_DELETE_WINDOW_MS as one batch; a batch over the
	 * limits is held (persisted) until the operator confirms, and so is
	 * every deletion while some are held. */
	int keep; /* sync.delete = "keep": local deletions stay remote */
	unsigned max_delete;
	unsigned max_delete_pct;
	char **batch;
	size_t nbatch;
	struct loop_timer *delete_timer;
	uint64_t nheld;
	char skipped_told[1024]; /* the watcher's last skipped directory */
	/* Item writes waiting to go, batched (sync_items.c). */
	struct sync_item *items_head, *items_tail;
	unsigned items_inflight;   /* PutItem or TransactWriteItems requests */
	int items_single;          /* the endpoint has no TransactWriteItems */
	int items_paused;          /* after a conflict: until items_timer */
	uint64_t items_put_min_ms; /* the quickest lone PutItem */
	unsigned items_slow;       /* slow transactions so far */
	struct loop_timer *items_timer;
	struct sync_stats stats;
	char last_error[1024];
	unsigned s3_noted; /* S3_NOTE_* already said in the log */
};

/* sync_path.c */
int sync_wanted(const struct sync *s, const char *path);
int sync_open(const struct sync *s, const char *path);
int sync_open_parent(const struct sync *s, const char *path, const char **base);
int sync_key(const struct sync *s, const char *path, char *out, size_t outlen,
             struct err *e);
int64_t sync_mtime_ns(const struct stat *st);
int sync_same_identity(const struct stat *st, const struct state_file *f);
int sync_same_file(const struct stat *st, const struct state_file *f);
void sync_waiter_answer(struct sync_waiter **wp, int status,
                        const char *message);
/* sync_core.c: jobs and the scheduler */
struct job *sync_job_find(const struct sync *s, const char *path, size_t len);
struct job *sync_job_new(struct sync *s, const char *path, size_t len);
void sync_job_free(struct job *j);
void sync_job_settle(struct job *j, uint64_t delay_ms);
void sync_job_ready(struct job *j);
struct job *sync_mark(struct sync *s, const char *path, uint64_t delay_ms);
void sync_on_settle(void *arg);
void sync_pump(struct sync *s);
/* sync_core.c: a run's operation state and its end */
void sync_run_use(struct run *r, enum run_op op);
void sync_run_free(struct run *r);
struct run *sync_run_new(void);
void sync_job_finish(struct job *j, int ok);
void sync_job_fail(struct job *j, const struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sync_job_net_error(struct job *j, const char *what, const struct err *e);
void sync_job_keep_intent(struct job *j, int64_t id);
void sync_release_held(struct job *j);
/* sync_core.c: intents and the state database's troubles */
int64_t sync_add_intent(struct sync *s, const struct state_intent *in,
                        struct err *e);
void sync_trash_note(struct sync *s, const char *path, const char *trash,
                     int put);
int sync_space_errno(int err);
int sync_state_error(struct sync *s, const struct err *e);
void sync_space_blocked(struct sync *s, const char *why);
void sync_root_lost(struct sync *s, const char *why);

/* sync_trash.c */
int sync_trash_api_done(struct job *j, int ok);
int sync_trash_now(struct sync *s, const char *path, const char *trash,
                   char *msg, size_t msglen);

/* sync_guard.c */
void sync_delete_wait(struct sync *s, const char *path);
void sync_held_drop(struct sync *s, const char *path);
int sync_held_count_row(const char *name, const void *value, size_t len,
                        void *arg);
void sync_on_delete_timer(void *arg);

/* sync_remove.c */
void sync_remove_gone(struct job *j);
void sync_remove_item_deleted(struct job *j, const struct err *e,
                              const char *what, enum run_phase phase,
                              const char *key, const char *etag,
                              s3_done_cb next);

/* sync_items.c */
/* Writes item (stolen) for j, conditionally (invariant 2), batched with
 * others; cb(resp, e, j) as item_put's, exactly once. */
void sync_items_put(struct job *j, json_t *item, dynamo_done_cb cb);
void sync_items_on_timer(void *arg);
/* Ends every waiting entry with ERR_CANCEL (the engine is going away). */
void sync_items_cancel(struct sync *s);

/* sync_upload.c */
/* Says once in the log what the store did differently (r->notes). */
void sync_upload_notes(struct sync *s, const struct s3_result *r);
void sync_upload_converge(struct job *j);
void sync_upload_on_work(void *arg);
void sync_upload_put_item(struct job *j, const struct state_file *f,
                          const struct timespec *mtime, dynamo_done_cb cb);

/* sync_rename.c */
void sync_rename_start(struct job *j);

/* sync_recover.c */
int sync_recover_begin(struct sync *s, struct err *e);
void sync_recover_on_disk_timer(void *arg);

/* sync_root.c */
int sync_root_check(struct sync *s);
void sync_root_on_timer(void *arg);

/* sync_thumbs.c: thumbnails (all no-ops when they are off) */
int sync_thumbs_new(struct sync *s, const struct config *cfg, struct err *e);
void sync_thumbs_free(struct sync *s);
/* A row may want a thumbnail now: look. */
void sync_thumbs_touch(struct sync *s);
/* At start: when thumbnails were off the last time (or never recorded),
 * the rows synced meanwhile want theirs (one pass over the table, once);
 * records whether they are on now. */
int sync_thumbs_start(struct sync *s, struct err *e);
int sync_thumbs_idle(const struct sync *s);
/* The thumbnail key of an image's S3 key; -1 when off or too long. */
int sync_thumbs_key(const struct sync *s, const char *key, char *out,
                    size_t outlen);
/* Deletes an image's thumbnail (thumb, the recorded key; NULL: where one
 * would be for image_key, when thumbnails are on), then then(j); a store's
 * failure fails j (retried). */
void sync_thumbs_delete(struct job *j, const char *thumb, const char *image_key,
                        void (*then)(struct job *j));

/* sync_scan.c */
void sync_scan_now(struct sync *s);
void sync_scan_on_step(void *arg);
void sync_scan_on_timer(void *arg);

#endif
