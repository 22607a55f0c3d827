/*
 * sync: the engine that keeps the bucket and the table a mirror of the
 * watch root. Events from the watcher mark paths dirty; after the settle
 * delay each dirty path is converged: compared with the state database and
 * uploaded, deleted or renamed remotely as needed. At most one operation per
 * path runs at a time, at most `concurrency` at once. Every operation is an
 * intent in the state database before its first network call and is cleared
 * when it is done, so a crash at any instant is finished at the next start.
 */
#ifndef IMGSYNC_SYNC_H
#define IMGSYNC_SYNC_H

#include <stdint.h>

#include "config.h"
#include "dynamo.h"
#include "errclass.h"
#include "loop.h"
#include "s3.h"
#include "state.h"
#include "summary.h"
#include "watcher.h"

struct sync;

/* Everything is borrowed and must outlive the engine. */
struct sync_deps {
	struct loop *loop;
	struct s3 *s3;
	struct dynamo *ddb;
	struct state *state;
	struct summary *summary; /* may be NULL */
	const char *hostname;
};

struct sync_stats {
	uint64_t queued;   /* dirty paths waiting (settling or ready) */
	uint64_t running;  /* operations in flight */
	uint64_t limit;    /* ... at most, now (adaptive, sync.concurrency) */
	uint64_t uploaded; /* since start */
	uint64_t deleted;
	uint64_t renamed;
	uint64_t unchanged;
	uint64_t failed; /* permanent failures since start */
	uint64_t bytes;  /* uploaded */
	uint64_t rescans;
	uint64_t thumbnails;        /* made and stored since start */
	uint64_t thumbnails_failed; /* none to be had (the reason logged) */
	uint64_t scanned; /* files the scan under way (or the last) found */
	int scanning;     /* a scan is under way */
	uint64_t fail_by[ERR_REASON_N]; /* by err_reason (errclass.h) */
};

/* How a path given by the control socket resolves under the root. */
enum sync_path_kind {
	SYNC_PATH_FILE,    /* a regular file */
	SYNC_PATH_MISSING, /* nothing there */
	SYNC_PATH_OUTSIDE, /* through a symlink, or out of the root */
	SYNC_PATH_OTHER,   /* a directory, device, ... */
};

/* status: 0 done, -1 failed (message says why), -2 cancelled (shutdown).
 * message is borrowed for the call. */
typedef void (*sync_done_cb)(int status, const char *message, void *arg);

/* cfg is copied for what the engine needs; see sync_reconfigure. */
struct sync *sync_new(const struct config *cfg, const struct sync_deps *deps,
                      struct err *e);
/* Cancels nothing by itself: free the AWS clients first (their callbacks
 * end every running operation), then the engine. */
void sync_free(struct sync *s);

/* The watcher's callback (arg is the engine, which makes its watcher). */
void sync_on_event(const struct watcher_event *ev, void *arg);

/* Checks that the folder at the root is the mirrored one (rootguard.h),
 * finishes the intents a crash left, then walks the root: new or changed
 * files are uploaded, vanished ones deleted, unchanged ones cost nothing.
 * A folder that is not the mirrored one is the lost state, not an error:
 * nothing starts, and the engine checks again every 2 s and carries on by
 * itself when it is back. -1 only when the state database fails. */
int sync_start(struct sync *s, struct err *e);
/* Forgets what the state database knows of path and converges it again:
 * its object and item are written anew (verify's repair). */
int sync_reupload(struct sync *s, const char *path, struct err *e);
/* Local deletions held by the mass-deletion guard (sync.max_delete): how
 * many, each (cb gets "held:PATH" names), and the operator's confirmation,
 * which sends them all (returns how many, or -1). */
uint64_t sync_held_count(const struct sync *s);
int sync_held_each(struct sync *s, state_meta_cb cb, void *arg, struct err *e);
long sync_held_confirm(struct sync *s, struct err *e);
/* Why the state database cannot be written (its file system is full or
 * read-only: work waits and resumes by itself), or NULL. */
const char *sync_disk_full_why(const struct sync *s);
/* Why the root is not the mirrored folder, or NULL when it is. */
const char *sync_root_lost_why(const struct sync *s);
/* The watch root's directory fd (borrowed; open files beneath it with
 * beneath.h), or -1 while the root is lost. */
int sync_root_fd(const struct sync *s);
/* Walks everything again (also retries files that failed). */
void sync_rescan(struct sync *s, const char *why);
/* Applies what can change without a restart: include/exclude, settle delay,
 * concurrency, source, summary; logs what needs a restart. */
void sync_reconfigure(struct sync *s, const struct config *cfg);

/* Stops starting new operations; running ones go on. */
void sync_stop(struct sync *s);
/* Nothing dirty, nothing running, no rescan pending. */
int sync_idle(const struct sync *s);
void sync_get_stats(const struct sync *s, struct sync_stats *st);
/* Paused: nothing new starts except deletes asked by the control socket;
 * running operations finish, events still queue. */
void sync_pause(struct sync *s);
void sync_resume(struct sync *s);
int sync_paused(const struct sync *s);
int sync_stopping(const struct sync *s);
int sync_rescanning(const struct sync *s);

/* The last error met, permanent or retried ("" when none). */
const char *sync_last_error(const struct sync *s);
void sync_note_error(struct sync *s, const char *message);

/* Where path (relative to the root, never followed through a symlink)
 * leads. */
enum sync_path_kind sync_path_kind(const struct sync *s, const char *path);
/* Whether include/exclude select path. */
int sync_path_wanted(const struct sync *s, const char *path);

/* Converges path now (no settle delay). */
int sync_upload(struct sync *s, const char *path, struct err *e);
/* Marks every failed file dirty; returns how many. */
long sync_retry_failed(struct sync *s, struct err *e);
/*
 * Deletes path's item, then its object (whether or not the state database
 * knows them), then moves the local file, if any, into the folder trash
 * (absolute; created if missing). cb fires exactly once, also on shutdown.
 * Runs even while paused.
 */
int sync_delete(struct sync *s, const char *path, const char *trash,
                sync_done_cb cb, void *arg, struct err *e);

#endif
