/*
 * watcher_inotify_walk: walking and watching directories for the inotify
 * backend, at a scan and when a directory appears.
 *
 * Directories are opened relative to their parent with O_NOFOLLOW and
 * watched through /proc/self/fd/N: a symlink is never followed, the watch
 * is on exactly the directory that is then read, and paths longer than
 * PATH_MAX work. Each directory is watched before it is read, so a file
 * created in it is either seen by the walk or reported by an event. A walk
 * keeps few directories open and goes at most 4096 levels deep. Files
 * found are reported through watcher_inotify_move_emit().
 *
 * A scan goes in steps (watcher_scan_begin/_step): its walk is kept
 * between them and pauses once a step reported its budget of files, even
 * in the middle of a directory, so that the engine's queue stays short
 * however many files the tree holds. Between steps, events change the tree
 * as usual; a directory the scan has not reached yet is reached as it is
 * then, and one that moved keeps its watch (the move walks it again, which
 * marks it for the sweep at the end).
 *
 * It is over 600 lines: the walk is one algorithm (frames, the fd budget,
 * reopening a closed frame, watching before reading, pausing), and its
 * parts share struct walk, which nothing else needs to see.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "watcher_inotify_impl.h"

/*
 * IN_DONT_FOLLOW is in the mask as documented, but a watch is added through
 * the /proc/self/fd magic link, which must be followed: the fd itself was
 * opened with O_NOFOLLOW, which is what keeps symlinks out.
 */
#define WATCHER_MASK                                                           \
	(IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |            \
	 IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_MODIFY | IN_ONLYDIR |  \
	 IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define WATCHER_FD_MASK (WATCHER_MASK & ~(uint32_t)IN_DONT_FOLLOW)

#define WATCHER_MAX_DEPTH 4096
#define WATCHER_WALK_FDS 32  /* directories a walk keeps open at most */
#define WATCHER_MSG_PATH 400 /* bytes of a path quoted in a message */

#define WATCHER_LIMIT                                                          \
	"the inotify watch limit is reached; raise "                           \
	"fs.inotify.max_user_watches (sysctl fs.inotify.max_user_watches=N)"

/* One directory of a walk. */
struct walk_frame {
	DIR *dir; /* NULL once closed to save fds */
	int wd;   /* -1: not watched */
	dev_t dev;
	ino_t ino;
	size_t pathlen; /* its path is walk->path[0, pathlen) */
	size_t namelen; /* its own name ends that path */
	size_t depth;
	int reading;        /* its files are being read (a paused scan) */
	struct buf subdirs; /* still to visit, each NUL-terminated */
	size_t pos;
};

struct walk {
	struct watcher *w;
	int scan;   /* report every file, descend everywhere */
	int failed; /* something could not be watched: degraded */
	int deep_noted;
	struct walk_frame *frames;
	size_t nframes;
	size_t cap;
	size_t nopen;
	struct buf path;
	size_t emitted; /* files reported */
	size_t budget;  /* pause once emitted reaches it; 0: never */
};

/* Messages. */

static void
walk_note(char *out, size_t outlen, const struct watcher *w, const char *what,
          const char *rel, const char *why)
{
	size_t rl = rel != NULL ? strlen(rel) : 0;
	int cut = rl > WATCHER_MSG_PATH;

	snprintf(out, outlen, "cannot %s %s%s%.*s%s: %s", what, w->root,
	         rl > 0 ? "/" : "", (int)(cut ? WATCHER_MSG_PATH : rl),
	         rel != NULL ? rel : "", cut ? "..." : "", why);
}

/* Opens the directory of an attached node, one component at a time. */
static int
open_node(const struct watcher *w, const struct wnode *dir)
{
	const struct wnode **chain, *n;
	size_t depth = watcher_inotify_tree_depth(dir), i;
	int fd, nfd, saved;

	chain = malloc((depth + 1) * sizeof(*chain));
	if (chain == NULL)
		return -1;
	for (i = 0, n = dir; n->parent != NULL; n = n->parent)
		chain[i++] = n;
	fd = open(w->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd != -1 && i > 0) {
		i--;
		nfd = openat(fd, chain[i]->name,
		             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		saved = errno;
		close(fd);
		errno = saved;
		fd = nfd;
	}
	free(chain);
	return fd;
}

/* lstat of dir/name, whose path is rel. */
int
watcher_inotify_walk_lstat(const struct watcher *w, const struct wnode *dir,
                           const char *name, const char *rel, struct stat *st)
{
	char abs[4096];
	int fd, r, saved;

	if (w->rootlen + strlen(rel) + 2 <= sizeof(abs)) {
		snprintf(abs, sizeof(abs), "%s/%s", w->root, rel);
		return fstatat(AT_FDCWD, abs, st, AT_SYMLINK_NOFOLLOW);
	}
	fd = open_node(w, dir);
	if (fd == -1)
		return -1;
	r = fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static int
add_watch(const struct watcher *w, int fd)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return inotify_add_watch(w->fd, proc, WATCHER_FD_MASK);
}

/* Walks. */

static void
walk_init(struct walk *k, struct watcher *w, int scan)
{
	memset(k, 0, sizeof(*k));
	k->w = w;
	k->scan = scan;
	buf_init(&k->path, 0);
}

static void
walk_cut(struct walk *k, size_t len)
{
	if (!k->path.failed && k->path.data != NULL) {
		k->path.len = len;
		k->path.data[len] = '\0';
	}
}

/* The path of name in the top frame, in k->path; NULL when out of memory. */
static const char *
walk_join(struct walk *k, const char *name, size_t len)
{
	size_t base = k->frames[k->nframes - 1].pathlen;

	walk_cut(k, base);
	if (base > 0)
		buf_putc(&k->path, '/');
	buf_append(&k->path, name, len);
	return k->path.failed ? NULL : k->path.data;
}

static void
walk_pop(struct walk *k)
{
	struct walk_frame *f = &k->frames[--k->nframes];

	if (f->dir != NULL) {
		closedir(f->dir);
		k->nopen--;
	}
	buf_cleanup(&f->subdirs);
	if (k->nframes > 0)
		walk_cut(k, k->frames[k->nframes - 1].pathlen);
}

static void
walk_cleanup(struct walk *k)
{
	while (k->nframes > 0)
		walk_pop(k);
	free(k->frames);
	buf_cleanup(&k->path);
}

static void
walk_degrade(struct walk *k, const char *what, const char *rel, int errnum)
{
	struct watcher *w = k->w;

	if (k->failed)
		return;
	k->failed = 1;
	walk_note(w->degraded, sizeof(w->degraded), w, what, rel,
	          errnum == ENOSPC ? WATCHER_LIMIT : strerror(errnum));
}

/* ENOENT and friends: it vanished under us, events will tell. */
static void
walk_failed(struct walk *k, const char *what, const char *rel, int errnum)
{
	struct watcher *w = k->w;

	if (errnum == ENOENT || errnum == ENOTDIR || errnum == ELOOP)
		return;
	if (errnum == EACCES || errnum == EPERM)
		walk_note(w->last_error, sizeof(w->last_error), w, what, rel,
		          strerror(errnum));
	else
		walk_degrade(k, what, rel, errnum);
}

static int
walk_push(struct walk *k, DIR *d, int wd, const struct stat *st,
          const char *name, size_t len, size_t depth)
{
	struct walk_frame *f;
	size_t ncap;

	if (k->nframes == k->cap) {
		ncap = k->cap ? k->cap * 2 : 16;
		f = realloc(k->frames, ncap * sizeof(*f));
		if (f == NULL)
			return -1;
		k->frames = f;
		k->cap = ncap;
	}
	if (k->nframes > 0)
		walk_join(k, name, len);
	if (k->path.failed)
		return -1;
	f = &k->frames[k->nframes++];
	memset(f, 0, sizeof(*f));
	f->dir = d;
	f->wd = wd;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->pathlen = k->path.len;
	f->namelen = k->nframes > 1 ? len : 0;
	f->depth = depth;
	buf_init(&f->subdirs, 0);
	k->nopen++;
	return 0;
}

/* Closes the outermost open frames (never the first or the top one). */
static void
walk_budget(struct walk *k)
{
	size_t i;

	for (i = 1; k->nopen > WATCHER_WALK_FDS && i + 1 < k->nframes; i++) {
		if (k->frames[i].dir != NULL) {
			closedir(k->frames[i].dir);
			k->frames[i].dir = NULL;
			k->nopen--;
		}
	}
}

/* Reopens the top frame from its nearest open ancestor, checking that the
 * names still lead to the same directory. */
static int
walk_reopen(struct walk *k)
{
	struct walk_frame *f = &k->frames[k->nframes - 1];
	char name[256 + 1];
	struct stat st;
	size_t j = k->nframes - 1, i;
	int fd, nfd;

	while (j > 0 && k->frames[j].dir == NULL)
		j--;
	if (k->frames[j].dir == NULL)
		return -1;
	fd = dirfd(k->frames[j].dir);
	for (i = j + 1; i < k->nframes; i++) {
		if (k->frames[i].namelen >= sizeof(name)) {
			nfd = -1;
		} else {
			memcpy(name,
			       k->path.data + k->frames[i].pathlen -
			           k->frames[i].namelen,
			       k->frames[i].namelen);
			name[k->frames[i].namelen] = '\0';
			nfd = openat(fd, name,
			             O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                 O_CLOEXEC);
		}
		if (i > j + 1)
			close(fd);
		fd = nfd;
		if (fd == -1)
			return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_dev != f->dev ||
	    st.st_ino != f->ino) {
		close(fd);
		return -1;
	}
	f->dir = fdopendir(fd);
	if (f->dir == NULL) {
		close(fd);
		return -1;
	}
	k->nopen++;
	walk_budget(k);
	return 0;
}

/* Reads the top frame: reports its files, lists its subdirectories. -1:
 * the watcher was freed; 1: paused (the budget is spent); 0: done. */
static int
walk_read(struct walk *k)
{
	struct walk_frame *f = &k->frames[k->nframes - 1];
	const struct dirent *de;
	const char *path;
	struct stat st;
	unsigned char type;
	size_t len;
	int have_st;

	f->reading = 1;
	for (;;) {
		if (k->budget > 0 && k->emitted >= k->budget) {
			walk_cut(k, f->pathlen);
			return 1; /* paused: the next step reads on */
		}
		errno = 0;
		de = readdir(f->dir);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name);
		type = de->d_type;
		/* A file's lstat goes with it (one name looked up in its
		 * directory): the engine tells an unchanged file by it. */
		have_st = (type == DT_UNKNOWN || type == DT_REG) &&
		          fstatat(dirfd(f->dir), de->d_name, &st,
		                  AT_SYMLINK_NOFOLLOW) == 0;
		if (type == DT_UNKNOWN) {
			if (!have_st)
				continue;
			if (S_ISREG(st.st_mode))
				type = DT_REG;
			else if (S_ISDIR(st.st_mode))
				type = DT_DIR;
		}
		if (type == DT_DIR) {
			buf_append(&f->subdirs, de->d_name, len + 1);
		} else if (type == DT_REG) {
			path = walk_join(k, de->d_name, len);
			if (path != NULL &&
			    watcher_inotify_move_emit_file(
			        k->w, path,
			        have_st && S_ISREG(st.st_mode) ? &st : NULL) ==
			        -1)
				return -1;
			k->emitted++;
		}
	}
	f->reading = 0;
	walk_cut(k, f->pathlen);
	if (f->subdirs.failed)
		walk_degrade(k, "read", k->path.data, ENOMEM);
	return 0;
}

/*
 * Watches the directory fd, name in the top frame's directory. Returns its
 * wd or -1; *descend says whether to walk it.
 */
static int
walk_watch(struct walk *k, int fd, struct wnode *parent, const char *name,
           size_t len, int *descend)
{
	struct watcher *w = k->w;
	struct wnode *n, *o;
	int wd, saved;

	wd = add_watch(w, fd);
	if (wd == -1) {
		saved = errno;
		walk_failed(k, "watch", walk_join(k, name, len), saved);
		return -1;
	}
	n = watcher_inotify_tree_by_wd(w, wd);
	if (n != NULL && n->parent == parent && n->namelen == len &&
	    memcmp(n->name, name, len) == 0) {
		/* Walked when it was watched; events cover it since. */
		if (!k->scan && !n->rewalk)
			*descend = 0;
		n->rewalk = 0;
		n->mark = w->gen;
		return wd;
	}
	if (n != NULL && watcher_inotify_tree_is_ancestor(n, parent)) {
		walk_note(w->last_error, sizeof(w->last_error), w, "watch",
		          walk_join(k, name, len),
		          "it contains itself (a bind mount?); not descending");
		*descend = 0;
		return -1;
	}
	if (n != NULL)
		watcher_inotify_tree_unlink(w, n);
	o = watcher_inotify_tree_by_name(w, parent, name, len);
	if (o != NULL)
		watcher_inotify_tree_forget(w, o, 1);
	if (n != NULL &&
	    watcher_inotify_tree_move(w, n, parent, name, len) == -1) {
		watcher_inotify_tree_forget(w, n, 1);
		n = NULL;
	} else if (n == NULL)
		n = watcher_inotify_tree_new(w, wd, parent, name, len);
	if (n == NULL) {
		(void)inotify_rm_watch(w->fd, wd);
		walk_degrade(k, "watch", walk_join(k, name, len), ENOMEM);
		return -1;
	}
	n->rewalk = 0;
	n->mark = w->gen;
	return wd;
}

/* Opens, watches and reads name, a subdirectory of the top frame. */
static int
walk_enter(struct walk *k, int fd, const char *name, size_t len)
{
	struct walk_frame *f = &k->frames[k->nframes - 1];
	struct wnode *parent;
	struct stat st;
	int wd = -1, descend = 1, saved;
	DIR *d;

	if (fstat(fd, &st) == -1) {
		close(fd);
		return 0;
	}
	parent = watcher_inotify_tree_by_wd(k->w, f->wd);
	if (parent != NULL)
		wd = walk_watch(k, fd, parent, name, len, &descend);
	if (!descend) {
		close(fd);
		return 0;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		saved = errno;
		walk_failed(k, "read", walk_join(k, name, len), saved);
		close(fd);
		return 0;
	}
	if (walk_push(k, d, wd, &st, name, len, f->depth + 1) == -1) {
		closedir(d);
		walk_degrade(k, "read", k->path.data, ENOMEM);
		return 0;
	}
	walk_budget(k);
	return walk_read(k);
}

/* Walks on from the top frame. -1: the watcher was freed; 1: paused; 0:
 * the walk is over. */
static int
walk_run(struct walk *k)
{
	struct walk_frame *f;
	const char *name;
	size_t len;
	int fd, last, saved, r;

	while (k->nframes > 0 && !k->path.failed) {
		f = &k->frames[k->nframes - 1];
		if (f->reading) {
			if (f->dir == NULL && walk_reopen(k) == -1) {
				f->reading = 0; /* gone meanwhile */
				continue;
			}
			r = walk_read(k);
			if (r != 0)
				return r;
			continue;
		}
		if (k->budget > 0 && k->emitted >= k->budget)
			return 1;
		if (f->subdirs.data == NULL || f->pos >= f->subdirs.len) {
			walk_pop(k);
			continue;
		}
		name = f->subdirs.data + f->pos;
		len = strlen(name);
		f->pos += len + 1;
		last = f->pos >= f->subdirs.len;
		if (f->depth >= WATCHER_MAX_DEPTH) {
			if (!k->deep_noted)
				walk_note(
				    k->w->last_error, sizeof(k->w->last_error),
				    k->w, "watch", walk_join(k, name, len),
				    "more than 4096 levels below the root");
			k->deep_noted = 1;
			f->pos = f->subdirs.len;
			continue;
		}
		if (f->dir == NULL && walk_reopen(k) == -1) {
			f->pos = f->subdirs.len;
			continue;
		}
		fd = openat(dirfd(f->dir), name,
		            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			saved = errno;
			walk_failed(k, "read", walk_join(k, name, len), saved);
			continue;
		}
		/* Done with this directory: spare the fd (not the first). */
		if (last && k->nframes > 1) {
			closedir(f->dir);
			f->dir = NULL;
			k->nopen--;
		}
		r = walk_enter(k, fd, name, len);
		if (r != 0)
			return r;
	}
	if (k->path.failed)
		walk_degrade(k, "read", NULL, ENOMEM);
	return 0;
}

/*
 * A directory appeared as name in the directory of node pwd (created or
 * moved): watch it and what is under it, report the files found.
 */
int
watcher_inotify_walk_new(struct watcher *w, int pwd, const char *name,
                         size_t len)
{
	struct wnode *p = watcher_inotify_tree_by_wd(w, pwd);
	struct walk k;
	struct stat st;
	DIR *d;
	int fd, wd, r = 0;

	if (p == NULL ||
	    watcher_inotify_tree_path(w, &w->scratch[1], p, NULL, 0) == NULL)
		return 0;
	walk_init(&k, w, 0);
	fd = open_node(w, p);
	if (fd == -1) {
		walk_failed(&k, "read", w->scratch[1].data, errno);
		goto done;
	}
	/* Its path may lead elsewhere by now: then wait for its move. */
	wd = fstat(fd, &st) == 0 ? add_watch(w, fd) : -1;
	if (wd != p->wd) {
		if (wd != -1 && watcher_inotify_tree_by_wd(w, wd) == NULL)
			(void)inotify_rm_watch(w->fd, wd);
		p->rewalk = 1;
		close(fd);
		goto done;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		goto done;
	}
	buf_puts(&k.path, w->scratch[1].data);
	if (walk_push(&k, d, p->wd, &st, NULL, 0,
	              watcher_inotify_tree_depth(p)) == -1) {
		closedir(d);
		walk_degrade(&k, "read", NULL, ENOMEM);
		goto done;
	}
	buf_append(&k.frames[0].subdirs, name, len);
	buf_putc(&k.frames[0].subdirs, '\0');
	r = walk_run(&k);
done:
	walk_cleanup(&k);
	if (r == 0 && k.failed && w->degraded[0] != '\0')
		r = watcher_inotify_move_emit(w, WATCHER_RESCAN, NULL, NULL, 0,
		                              w->degraded);
	return r;
}

/* Watches the root; a new root (deleted and made again) starts afresh. */
static int
walk_root(struct watcher *w, struct walk *k, int fd)
{
	struct wnode *n;
	int wd;

	wd = add_watch(w, fd);
	if (wd == -1) {
		walk_degrade(k, "watch", NULL, errno);
		if (w->rootnode != NULL)
			watcher_inotify_tree_forget(w, w->rootnode, 1);
		return -1;
	}
	if (w->rootnode != NULL && w->rootnode->wd != wd)
		watcher_inotify_tree_forget(w, w->rootnode, 1);
	n = watcher_inotify_tree_by_wd(w, wd);
	if (n != NULL && n != w->rootnode) {
		/* Cannot happen short of bind mounts: start afresh. */
		watcher_inotify_tree_unlink(w, n);
		watcher_inotify_tree_forget(w, n, 0);
	}
	if (w->rootnode == NULL)
		w->rootnode = watcher_inotify_tree_new(w, wd, NULL, "", 0);
	if (w->rootnode == NULL) {
		(void)inotify_rm_watch(w->fd, wd);
		walk_degrade(k, "watch", NULL, ENOMEM);
		return -1;
	}
	w->rootnode->mark = w->gen;
	w->root_gone = 0;
	return wd;
}

/*
 * The walk of a scan (watcher_scan_begin): watches the root, open as fd,
 * and will watch every directory under it and report every regular file,
 * step by step. -1 when the root cannot be read; fd is closed either way.
 */
int
watcher_inotify_walk_scan_begin(struct watcher *w, int fd,
                                const struct stat *st, struct err *e)
{
	struct walk *k;
	DIR *d;
	int wd;

	watcher_inotify_walk_scan_end(w);
	k = malloc(sizeof(*k));
	if (k == NULL) {
		err_sys(e, "watcher: malloc");
		close(fd);
		return -1;
	}
	walk_init(k, w, 1);
	wd = walk_root(w, k, fd);
	d = fdopendir(fd);
	if (d == NULL) {
		err_sys(e, "watcher: cannot read %s", w->root);
		close(fd);
		walk_cleanup(k);
		free(k);
		return -1;
	}
	if (walk_push(k, d, wd, st, NULL, 0, 0) == -1) {
		closedir(d);
		walk_degrade(k, "read", NULL, ENOMEM);
	} else {
		k->frames[0].reading = 1;
	}
	w->scan = k;
	return 0;
}

/* One step of the scan: reports about budget files (0: all). -1: the
 * watcher was freed; 1: more to do; 0: the scan is over (the tree swept of
 * what it no longer found). */
int
watcher_inotify_walk_scan_step(struct watcher *w, size_t budget)
{
	struct walk *k = w->scan;
	int r;

	if (k == NULL)
		return 0;
	k->budget = budget > 0 ? k->emitted + budget : 0;
	r = walk_run(k);
	if (r != 0)
		return r;
	watcher_inotify_tree_sweep(w);
	if (!k->failed)
		w->degraded[0] = '\0';
	watcher_inotify_walk_scan_end(w);
	return 0;
}

/* Drops the scan under way, if any. */
void
watcher_inotify_walk_scan_end(struct watcher *w)
{
	if (w->scan == NULL)
		return;
	walk_cleanup(w->scan);
	free(w->scan);
	w->scan = NULL;
}
