/*
 * watcher_inotify: the Linux backend of watcher.h, one inotify instance
 * watching every directory under the root. This file holds the public
 * functions and reads inotify, turning each event into what the engine
 * understands; watcher_inotify_impl.h lists the files below it.
 *
 * A MOVED_FROM waits a little for its MOVED_TO (the pair can straddle two
 * reads); meanwhile a moved directory's node is detached from the tree.
 * Any event on an overlapping path first settles the waiting move as GONE
 * (watcher_inotify_move.c), so the engine sees each path's events in order.
 * An overflowed queue settles every waiting move and asks for a rescan.
 *
 * The callback may call watcher_scan(); watcher_free() from the callback is
 * deferred until the watcher's own frames have unwound.
 */
#include "watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "watcher_inotify_impl.h"

#define WATCHER_READS_PER_WAKE 16 /* then back to the loop: no starving */
#define WATCHER_MOVE_MS 30        /* how long a MOVED_FROM waits for its TO */

#define WATCHER_OVERFLOW                                                       \
	"inotify queue overflowed (fs.inotify.max_queued_events)"

/* Event handlers; each returns -1 only when the watcher was freed. */

static int
watcher_root_gone(struct watcher *w, const char *why)
{
	if (w->root_gone)
		return 0;
	w->root_gone = 1;
	watcher_inotify_walk_scan_end(w);
	watcher_inotify_move_drop_all(w);
	watcher_inotify_tree_forget_all(w, 1);
	return watcher_inotify_move_emit(w, WATCHER_ROOT_GONE, NULL, NULL, 0,
	                                 why);
}

static int
watcher_self(struct watcher *w, struct wnode *dir, uint32_t mask)
{
	if (dir == w->rootnode) {
		if (mask & IN_DELETE_SELF)
			return watcher_root_gone(w,
			                         "the watch root was deleted");
		if (mask & IN_MOVE_SELF)
			return watcher_root_gone(w, "the watch root was moved");
		if (mask & IN_UNMOUNT)
			return watcher_root_gone(
			    w, "the watch root's file system was unmounted");
		return watcher_root_gone(w, "the watch root is not watched");
	}
	if (mask & IN_IGNORED)
		watcher_inotify_tree_forget(w, dir, 1);
	else if (mask & IN_UNMOUNT)
		return watcher_inotify_move_emit(
		    w, WATCHER_RESCAN, NULL, NULL, 0,
		    "a file system under the watch root was unmounted");
	return 0;
}

static int
watcher_moved_from(struct watcher *w, struct wnode *dir,
                   const struct inotify_event *ie, const char *name, size_t len,
                   const char *path)
{
	struct wmove *m;
	struct wnode *n = NULL;
	char *copy;

	copy = strdup(path);
	if (copy == NULL)
		return 0;
	if (w->nmoves == WATCHER_MAX_MOVES &&
	    watcher_inotify_move_flush(w, 0) == -1) {
		free(copy);
		return -1;
	}
	if (ie->mask & IN_ISDIR) {
		/* The flush may have forgotten nodes: look dir up again. */
		dir = watcher_inotify_tree_by_wd(w, ie->wd);
		n = dir != NULL
		        ? watcher_inotify_tree_by_name(w, dir, name, len)
		        : NULL;
		if (n != NULL)
			watcher_inotify_tree_unlink(w, n);
	}
	m = &w->moves[w->nmoves++];
	m->cookie = ie->cookie;
	m->is_dir = (ie->mask & IN_ISDIR) != 0;
	m->wd = n != NULL ? n->wd : -1;
	m->deadline = loop_now_ms() + WATCHER_MOVE_MS;
	m->path = copy;
	return 0;
}

static int
watcher_moved_to(struct watcher *w, struct wnode *dir,
                 const struct inotify_event *ie, const char *name, size_t len,
                 const char *path)
{
	struct wmove m;
	struct wnode *n, *o;
	struct stat st;
	int i, r, is_dir = (ie->mask & IN_ISDIR) != 0;

	i = watcher_inotify_move_find(w, ie->cookie);
	if (i == -1) {
		/* Moved in from outside. */
		if (is_dir)
			return watcher_inotify_walk_new(w, ie->wd, name, len);
		if (watcher_inotify_walk_lstat(w, dir, name, path, &st) == 0) {
			/* A symlink or FIFO renamed over a file: the file
			 * is gone. */
			if (!S_ISREG(st.st_mode))
				return watcher_inotify_move_emit(
				    w, WATCHER_GONE, path, NULL, 0, NULL);
		} else if (errno == ENOENT)
			return 0;
		return watcher_inotify_move_emit(w, WATCHER_FILE, path, NULL, 0,
		                                 NULL);
	}
	watcher_inotify_move_take(w, (size_t)i, &m);
	if (!is_dir) {
		/* A symlink or FIFO renamed: nothing the engine knows left
		 * the old name, but a file it replaced at the new one is
		 * gone. */
		if (watcher_inotify_walk_lstat(w, dir, name, path, &st) == 0 &&
		    !S_ISREG(st.st_mode)) {
			free(m.path);
			return watcher_inotify_move_emit(w, WATCHER_GONE, path,
			                                 NULL, 0, NULL);
		}
		r = watcher_inotify_move_emit(w, WATCHER_RENAME, path, m.path,
		                              0, NULL);
		free(m.path);
		return r;
	}
	n = watcher_inotify_tree_by_wd(w, m.wd);
	if (n != NULL && n->parent == NULL && n != w->rootnode) {
		o = watcher_inotify_tree_by_name(w, dir, name, len);
		if (o != NULL)
			watcher_inotify_tree_forget(w, o, 1);
		if (watcher_inotify_tree_move(w, n, dir, name, len) == -1)
			watcher_inotify_tree_forget(w, n, 1);
	}
	r = watcher_inotify_move_emit(w, WATCHER_RENAME, path, m.path, 1, NULL);
	free(m.path);
	if (r == -1)
		return -1;
	/* Checks the node is really there; walks it if it was not known. */
	return watcher_inotify_walk_new(w, ie->wd, name, len);
}

static int
watcher_event(struct watcher *w, const struct inotify_event *ie)
{
	struct wnode *dir, *n;
	const char *name, *path;
	struct stat st;
	size_t len;
	int i;

	if (ie->mask & IN_Q_OVERFLOW) {
		while (w->nmoves > 0)
			if (watcher_inotify_move_flush(w, 0) == -1)
				return -1;
		return watcher_inotify_move_emit(w, WATCHER_RESCAN, NULL, NULL,
		                                 0, WATCHER_OVERFLOW);
	}
	dir = watcher_inotify_tree_by_wd(w, ie->wd);
	if (dir == NULL)
		return 0;
	if (ie->mask &
	    (IN_IGNORED | IN_UNMOUNT | IN_DELETE_SELF | IN_MOVE_SELF))
		return watcher_self(w, dir, ie->mask);
	len = ie->len > 0 ? strnlen(ie->name, ie->len) : 0;
	if (len == 0)
		return 0;
	name = ie->name;
	path = watcher_inotify_tree_path(w, &w->scratch[0], dir, name, len);
	if (path == NULL) {
		/* In a directory moved away: a move into it leaves the root. */
		i = (ie->mask & IN_MOVED_TO)
		        ? watcher_inotify_move_find(w, ie->cookie)
		        : -1;
		return i >= 0 ? watcher_inotify_move_flush(w, (size_t)i) : 0;
	}
	if (ie->mask & IN_CLOSE_WRITE)
		return watcher_inotify_move_emit(w, WATCHER_FILE, path, NULL, 0,
		                                 NULL);
	if (ie->mask & IN_MODIFY)
		return watcher_inotify_move_emit(w, WATCHER_MODIFIED, path,
		                                 NULL, 0, NULL);
	if (ie->mask & IN_CREATE) {
		if (ie->mask & IN_ISDIR)
			return watcher_inotify_walk_new(w, ie->wd, name, len);
		/* A hard link gets no CLOSE_WRITE; a new file gets one. */
		if (watcher_inotify_walk_lstat(w, dir, name, path, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_nlink > 1)
			return watcher_inotify_move_emit(w, WATCHER_FILE, path,
			                                 NULL, 0, NULL);
		return 0;
	}
	if (ie->mask & IN_DELETE) {
		n = (ie->mask & IN_ISDIR)
		        ? watcher_inotify_tree_by_name(w, dir, name, len)
		        : NULL;
		if (n != NULL)
			watcher_inotify_tree_forget(w, n, 1);
		return watcher_inotify_move_emit(w, WATCHER_GONE, path, NULL,
		                                 (ie->mask & IN_ISDIR) != 0,
		                                 NULL);
	}
	if (ie->mask & IN_MOVED_FROM)
		return watcher_moved_from(w, dir, ie, name, len, path);
	if (ie->mask & IN_MOVED_TO)
		return watcher_moved_to(w, dir, ie, name, len, path);
	return 0;
}

static int
watcher_drain(struct watcher *w)
{
	const struct inotify_event *ie;
	ssize_t n;
	size_t off;
	int i;

	for (i = 0; i < WATCHER_READS_PER_WAKE; i++) {
		n = read(w->fd, w->rbuf, sizeof(w->rbuf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			snprintf(w->last_error, sizeof(w->last_error),
			         "inotify read: %s", strerror(errno));
		if (n <= 0)
			return 0;
		for (off = 0; off + sizeof(*ie) <= (size_t)n;
		     off += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(void *)(w->rbuf +
			                                            off);
			if (watcher_event(w, ie) == -1)
				return -1;
		}
	}
	return 0;
}

static void
watcher_destroy(struct watcher *w)
{
	size_t i;

	if (w->fd != -1) {
		loop_del_fd(w->loop, w->fd);
		close(w->fd);
	}
	loop_timer_free(w->timer);
	watcher_inotify_walk_scan_end(w);
	if (w->by_wd != NULL && w->by_name != NULL)
		watcher_inotify_tree_forget_all(w, 0);
	watcher_inotify_move_drop_all(w);
	for (i = 0; i < 2; i++)
		buf_cleanup(&w->scratch[i]);
	free(w->by_wd);
	free(w->by_name);
	free(w->root);
	free(w);
}

static void
watcher_release(struct watcher *w)
{
	if (--w->busy == 0 && w->dead)
		watcher_destroy(w);
}

static void
watcher_on_read(int fd, uint32_t events, void *arg)
{
	struct watcher *w = arg;

	(void)fd;
	(void)events;
	w->busy++;
	if (watcher_drain(w) == 0)
		watcher_inotify_move_arm(w);
	watcher_release(w);
}

static void
watcher_on_timer(void *arg)
{
	struct watcher *w = arg;

	w->busy++;
	/* A MOVED_TO may sit unread: pair it before giving up. */
	if (watcher_drain(w) == 0 && watcher_inotify_move_expire(w) == 0)
		watcher_inotify_move_arm(w);
	watcher_release(w);
}

/* Public. */

struct watcher *
watcher_new(struct loop *l, const char *root, watcher_cb cb, void *arg,
            struct err *e)
{
	struct watcher *w;
	struct stat st;

	if (root == NULL || root[0] == '\0' || cb == NULL) {
		err_set(e, ERR_INVALID, "watcher: no root or no callback");
		return NULL;
	}
	if (stat(root, &st) == -1) {
		err_sys(e, "watcher: %s", root);
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		err_set(e, ERR_INVALID, "watcher: %s is not a directory", root);
		return NULL;
	}
	if (access("/proc/self/fd", X_OK) == -1) {
		err_sys(e, "watcher: /proc/self/fd (is /proc mounted?)");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		err_sys(e, "watcher: calloc");
		return NULL;
	}
	w->loop = l;
	w->cb = cb;
	w->arg = arg;
	w->fd = -1;
	buf_init(&w->scratch[0], 0);
	buf_init(&w->scratch[1], 0);
	w->nbuckets = 64;
	w->root = strdup(root);
	w->by_wd = calloc(w->nbuckets, sizeof(*w->by_wd));
	w->by_name = calloc(w->nbuckets, sizeof(*w->by_name));
	if (w->root == NULL || w->by_wd == NULL || w->by_name == NULL) {
		err_sys(e, "watcher: calloc");
		goto fail;
	}
	w->rootlen = strlen(root);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd == -1) {
		if (errno == EMFILE)
			err_sys(e, "watcher: inotify_init1 (raise "
			           "fs.inotify.max_user_instances?)");
		else
			err_sys(e, "watcher: inotify_init1");
		goto fail;
	}
	if (loop_add_fd(l, w->fd, EPOLLIN, watcher_on_read, w, e) == -1)
		goto fail;
	w->timer = loop_timer_new(l, watcher_on_timer, w, e);
	if (w->timer == NULL)
		goto fail;
	return w;
fail:
	watcher_destroy(w);
	return NULL;
}

void
watcher_free(struct watcher *w)
{
	if (w == NULL)
		return;
	if (w->busy > 0)
		w->dead = 1;
	else
		watcher_destroy(w);
}

int
watcher_scan_begin(struct watcher *w, struct err *e)
{
	struct stat st;
	int fd;

	if (w->dead)
		return 0;
	fd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		err_sys(e, "watcher: cannot read %s", w->root);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		err_sys(e, "watcher: cannot read %s", w->root);
		close(fd);
		return -1;
	}
	w->gen++;
	return watcher_inotify_walk_scan_begin(w, fd, &st, e);
}

int
watcher_scan_step(struct watcher *w, size_t budget)
{
	int r;

	if (w->dead)
		return 0;
	w->busy++;
	r = watcher_inotify_walk_scan_step(w, budget);
	watcher_release(w);
	return r == 1;
}

int
watcher_scanning(const struct watcher *w)
{
	return w->scan != NULL;
}

int
watcher_scan(struct watcher *w, struct err *e)
{
	if (watcher_scan_begin(w, e) == -1)
		return -1;
	(void)watcher_scan_step(w, 0);
	return 0;
}

const char *
watcher_degraded(const struct watcher *w)
{
	return w->degraded[0] != '\0' ? w->degraded : NULL;
}

const char *
watcher_last_error(const struct watcher *w)
{
	return w->last_error[0] != '\0' ? w->last_error : NULL;
}

size_t
watcher_count(const struct watcher *w)
{
	return w->count;
}

const char *
watcher_backend(void)
{
	return "inotify";
}
