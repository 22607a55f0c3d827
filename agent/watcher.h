/*
 * watcher: what changed under the watch root, as events the sync engine
 * understands. The engine sees only this header; the inotify backend
 * (watcher_inotify*.c) is one implementation, and a kqueue backend for the
 * BSDs and macOS fits behind the same functions.
 *
 * Paths are relative to the root, '/'-separated, with no leading slash,
 * exact bytes (not necessarily UTF-8), NUL-terminated and never "".
 */
#ifndef IMGSYNC_WATCHER_H
#define IMGSYNC_WATCHER_H

#include <stddef.h>
#include <sys/stat.h>

#include "err.h"
#include "loop.h"

enum watcher_kind {
	WATCHER_FILE,      /* a regular file was written and closed, moved in,
	                      or found in a new directory: (re)consider it */
	WATCHER_MODIFIED,  /* a file is being written: postpone it */
	WATCHER_GONE,      /* path (file or directory) deleted or moved out */
	WATCHER_RENAME,    /* old_path -> path, within the root */
	WATCHER_RESCAN,    /* events were lost (queue overflow, watch limit):
	                      walk everything again */
	WATCHER_ROOT_GONE, /* the root itself was deleted or moved */
};

struct watcher_event {
	enum watcher_kind kind;
	const char *path;
	const char *old_path; /* WATCHER_RENAME only */
	int is_dir;           /* GONE and RENAME: path is a directory */
	const char *reason;   /* RESCAN: why, for the log */
	/* FILE from a scan's walk: the file's lstat as the walk saw it (the
	 * engine tells an unchanged file by it without opening it); NULL
	 * otherwise. */
	const struct stat *st;
};

/* Borrowed event, valid only during the call. */
typedef void (*watcher_cb)(const struct watcher_event *ev, void *arg);

struct watcher;

/* root must exist and be a directory; nothing is watched until
 * watcher_scan(). */
struct watcher *watcher_new(struct loop *l, const char *root, watcher_cb cb,
                            void *arg, struct err *e);
void watcher_free(struct watcher *w);

/* Watches every directory under the root (symlinks are never followed) and
 * reports every regular file found as WATCHER_FILE, synchronously, before
 * it returns. Used at start-up and for each RESCAN. Returns -1 only when the
 * root cannot be read. A directory that cannot be watched (the watch limit,
 * ENOSPC) makes the watcher degraded and scanning goes on. */
int watcher_scan(struct watcher *w, struct err *e);
/* The same scan in steps, so that the caller's queue stays short: begin
 * watches the root; each step walks on until about budget more files were
 * reported (0: all), and says 1 while there is more to walk, 0 once the
 * scan is over (and the tree swept of what it no longer found). A scan
 * begun while another is under way starts again from the root; the root
 * gone ends it. */
int watcher_scan_begin(struct watcher *w, struct err *e);
int watcher_scan_step(struct watcher *w, size_t budget);
int watcher_scanning(const struct watcher *w);

/* Non-NULL while some directory could not be watched: the reason, naming
 * fs.inotify.max_user_watches for the watch limit. The engine then rescans
 * periodically; a scan that watches everything clears it. A directory that
 * cannot be watched after start-up is also reported as a RESCAN event. */
const char *watcher_degraded(const struct watcher *w);

/* Non-NULL once a directory was skipped for a reason a rescan does not cure
 * (permission denied, more than 4096 levels deep, a bind-mount loop): the
 * last such directory and why, for the log. Its files are not mirrored. */
const char *watcher_last_error(const struct watcher *w);

/* Directories watched now. */
size_t watcher_count(const struct watcher *w);
const char *watcher_backend(void);

#endif
