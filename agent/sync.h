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
	uint64_t uploaded; /* since start */
	uint64_t deleted;
	uint64_t renamed;
	uint64_t unchanged;
	uint64_t failed; /* permanent failures since start */
	uint64_t bytes;  /* uploaded */
	uint64_t rescans;
};

/* cfg is copied for what the engine needs; see sync_reconfigure. */
struct sync *sync_new(const struct config *cfg, const struct sync_deps *deps,
                      struct err *e);
/* Cancels nothing by itself: free the AWS clients first (their callbacks
 * end every running operation), then the engine. */
void sync_free(struct sync *s);

/* The watcher's callback (arg is the engine). */
void sync_on_event(const struct watcher_event *ev, void *arg);
void sync_set_watcher(struct sync *s, struct watcher *w);

/* Finishes the intents a crash left, then walks the root: new or changed
 * files are uploaded, vanished ones deleted, unchanged ones cost nothing. */
int sync_start(struct sync *s, struct err *e);
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
/* The watch root disappeared: the loop was stopped and the daemon exits. */
int sync_root_gone(const struct sync *s);

#endif
