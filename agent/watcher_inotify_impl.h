/*
 * watcher_inotify_impl: what the files of the inotify backend of watcher.h
 * share, and nothing else includes. A kqueue backend replaces all the
 * watcher_inotify*.c files and this header together.
 *
 * The backend is split by role; each file calls only those below it:
 *
 *   watcher_inotify.c       the public API; reading inotify and handling
 *                           each event; pairing MOVED_FROM with MOVED_TO
 *   watcher_inotify_walk.c  walking directories: open relative to the
 *                           parent with O_NOFOLLOW, watch, read, report
 *   watcher_inotify_move.c  delivering events to the callback, settling
 *                           the moves that wait for their pair first
 *   watcher_inotify_tree.c  the tree of watched directories and its two
 *                           hash tables (by wd, by parent and name)
 *
 * The walk reports files through watcher_inotify_move_emit(), which calls
 * the callback pointer stored in struct watcher: no arrow points up.
 */
#ifndef IMGSYNC_WATCHER_INOTIFY_IMPL_H
#define IMGSYNC_WATCHER_INOTIFY_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "buf.h"
#include "err.h"
#include "loop.h"
#include "watcher.h"

#define WATCHER_READ_SIZE (64 * 1024)
#define WATCHER_MAX_MOVES 64

/* A watched directory. */
struct wnode {
	int wd;
	int rewalk;           /* its path led elsewhere: walk it when seen */
	struct wnode *parent; /* NULL: the root, or detached by a move */
	struct wnode *child;  /* first child */
	struct wnode *next;   /* siblings */
	struct wnode *prev;
	struct wnode *wd_next; /* hash chains */
	struct wnode *name_next;
	uint32_t name_hash;
	uint64_t mark; /* the scan that last saw it */
	size_t namelen;
	char *name;
};

/* A MOVED_FROM waiting for its MOVED_TO. */
struct wmove {
	uint32_t cookie;
	int is_dir;
	int wd; /* the moved directory's node, -1 if it had none */
	uint64_t deadline;
	char *path;
};

struct walk;

struct watcher {
	struct loop *loop;
	char *root;
	size_t rootlen;
	watcher_cb cb;
	void *arg;
	int fd;
	struct loop_timer *timer;

	struct wnode *rootnode;
	struct wnode **by_wd;
	struct wnode **by_name;
	size_t nbuckets; /* both tables, a power of two */
	size_t count;
	uint64_t gen;
	struct walk *scan; /* a scan under way (watcher_scan_begin) */

	struct wmove moves[WATCHER_MAX_MOVES];
	size_t nmoves;

	struct buf scratch[2]; /* event paths: path and old_path */
	int busy;              /* watcher frames on the stack */
	int dead;              /* watcher_free() was called from a callback */
	int root_gone;
	char degraded[1536];
	char last_error[1024];
	char rbuf[WATCHER_READ_SIZE]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
};

/* Tree (watcher_inotify_tree.c). A node is in the name table exactly when
 * it has a parent; the root node has none. */
struct wnode *watcher_inotify_tree_by_wd(const struct watcher *w, int wd);
struct wnode *watcher_inotify_tree_by_name(const struct watcher *w,
                                           const struct wnode *parent,
                                           const char *name, size_t len);
struct wnode *watcher_inotify_tree_new(struct watcher *w, int wd,
                                       struct wnode *parent, const char *name,
                                       size_t len);
int watcher_inotify_tree_move(struct watcher *w, struct wnode *n,
                              struct wnode *parent, const char *name,
                              size_t len);
void watcher_inotify_tree_unlink(struct watcher *w, struct wnode *n);
/* rm: also remove the inotify watches. */
void watcher_inotify_tree_forget(struct watcher *w, struct wnode *top, int rm);
void watcher_inotify_tree_forget_all(struct watcher *w, int rm);
void watcher_inotify_tree_sweep(struct watcher *w);
int watcher_inotify_tree_is_ancestor(const struct wnode *a,
                                     const struct wnode *n);
size_t watcher_inotify_tree_depth(const struct wnode *n);
const char *watcher_inotify_tree_path(const struct watcher *w, struct buf *out,
                                      const struct wnode *dir, const char *name,
                                      size_t namelen);

/* Events and waiting moves (watcher_inotify_move.c). Each returning int
 * returns -1 only when the callback freed the watcher. */
int watcher_inotify_move_emit(struct watcher *w, enum watcher_kind kind,
                              const char *path, const char *old_path,
                              int is_dir, const char *reason);
/* WATCHER_FILE of a walk, with the file's lstat. */
int watcher_inotify_move_emit_file(struct watcher *w, const char *path,
                                   const struct stat *st);
void watcher_inotify_move_take(struct watcher *w, size_t i, struct wmove *m);
int watcher_inotify_move_flush(struct watcher *w, size_t i);
int watcher_inotify_move_expire(struct watcher *w);
void watcher_inotify_move_arm(struct watcher *w);
int watcher_inotify_move_find(const struct watcher *w, uint32_t cookie);
void watcher_inotify_move_drop_all(struct watcher *w);

/* Walks (watcher_inotify_walk.c). */
int watcher_inotify_walk_scan_begin(struct watcher *w, int fd,
                                    const struct stat *st, struct err *e);
int watcher_inotify_walk_scan_step(struct watcher *w, size_t budget);
void watcher_inotify_walk_scan_end(struct watcher *w);
int watcher_inotify_walk_new(struct watcher *w, int pwd, const char *name,
                             size_t len);
int watcher_inotify_walk_lstat(const struct watcher *w, const struct wnode *dir,
                               const char *name, const char *rel,
                               struct stat *st);

#endif
