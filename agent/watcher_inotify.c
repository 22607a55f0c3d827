/*
 * watcher_inotify: the Linux backend of watcher.h, one inotify instance
 * watching every directory under the root.
 *
 * Watched directories form a tree of nodes (wd, parent, name): an event's
 * path is built by walking up to the root, so renaming a directory is one
 * relink however many directories lie under it. Nodes are found by wd (for
 * events) and by (parent, name) (for directory moves and deletes) through
 * two chained hash tables.
 *
 * Directories are opened relative to their parent with O_NOFOLLOW and
 * watched through /proc/self/fd/N: a symlink is never followed, the watch
 * is on exactly the directory that is then read, and paths longer than
 * PATH_MAX work. Each directory is watched before it is read, so a file
 * created in it is either seen by the walk or reported by an event.
 *
 * A MOVED_FROM waits a little for its MOVED_TO (the pair can straddle two
 * reads); meanwhile a moved directory's node is detached from the tree.
 * Any event on an overlapping path first settles the waiting move as GONE,
 * so the engine sees each path's events in order.
 *
 * The callback may call watcher_scan(); watcher_free() from the callback is
 * deferred until the watcher's own frames have unwound.
 */
#include "watcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "text.h"

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

#define WATCHER_READ_SIZE (64 * 1024)
#define WATCHER_READS_PER_WAKE 16 /* then back to the loop: no starving */
#define WATCHER_MAX_DEPTH 4096
#define WATCHER_MOVE_MS 30 /* how long a MOVED_FROM waits for its TO */
#define WATCHER_MAX_MOVES 64
#define WATCHER_WALK_FDS 32  /* directories a walk keeps open at most */
#define WATCHER_MSG_PATH 400 /* bytes of a path quoted in a message */

#define WATCHER_OVERFLOW                                                       \
	"inotify queue overflowed (fs.inotify.max_queued_events)"
#define WATCHER_LIMIT                                                          \
	"the inotify watch limit is reached; raise "                           \
	"fs.inotify.max_user_watches (sysctl fs.inotify.max_user_watches=N)"

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

/* One directory of a walk. */
struct walk_frame {
	DIR *dir; /* NULL once closed to save fds */
	int wd;   /* -1: not watched */
	dev_t dev;
	ino_t ino;
	size_t pathlen; /* its path is walk->path[0, pathlen) */
	size_t namelen; /* its own name ends that path */
	size_t depth;
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
};

static int watcher_walk_new(struct watcher *, int, const char *, size_t);

/* Nodes. */

static size_t
node_name_slot(const struct watcher *w, const struct wnode *parent, uint32_t h)
{
	uint64_t x = (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull;

	return (size_t)((x >> 32) ^ h) & (w->nbuckets - 1);
}

static size_t
node_wd_slot(const struct watcher *w, int wd)
{
	return (size_t)(unsigned int)wd & (w->nbuckets - 1);
}

static struct wnode *
node_by_wd(const struct watcher *w, int wd)
{
	struct wnode *n;

	if (wd < 0)
		return NULL;
	for (n = w->by_wd[node_wd_slot(w, wd)]; n != NULL; n = n->wd_next)
		if (n->wd == wd)
			return n;
	return NULL;
}

static struct wnode *
node_by_name(const struct watcher *w, const struct wnode *parent,
             const char *name, size_t len)
{
	uint32_t h = text_hash(name, len);
	struct wnode *n;

	n = w->by_name[node_name_slot(w, parent, h)];
	for (; n != NULL; n = n->name_next)
		if (n->parent == parent && n->name_hash == h &&
		    n->namelen == len && memcmp(n->name, name, len) == 0)
			return n;
	return NULL;
}

/* Keeps the load at most one; a failed grow only makes chains longer. */
static void
node_grow(struct watcher *w)
{
	struct wnode **wds, **names, *n, *next;
	size_t i, slot, nb = w->nbuckets * 2, old = w->nbuckets;

	if (w->count < w->nbuckets)
		return;
	wds = calloc(nb, sizeof(*wds));
	names = calloc(nb, sizeof(*names));
	if (wds == NULL || names == NULL) {
		free(wds);
		free(names);
		return;
	}
	free(w->by_name);
	w->by_name = names;
	w->nbuckets = nb;
	for (i = 0; i < old; i++) {
		for (n = w->by_wd[i]; n != NULL; n = next) {
			next = n->wd_next;
			slot = node_wd_slot(w, n->wd);
			n->wd_next = wds[slot];
			wds[slot] = n;
			if (n->parent != NULL) {
				slot =
				    node_name_slot(w, n->parent, n->name_hash);
				n->name_next = names[slot];
				names[slot] = n;
			}
		}
	}
	free(w->by_wd);
	w->by_wd = wds;
}

/* A node is in the name table exactly when it has a parent. */
static void
node_link(struct watcher *w, struct wnode *n, struct wnode *parent)
{
	size_t slot;

	n->parent = parent;
	n->prev = NULL;
	n->next = parent->child;
	if (n->next != NULL)
		n->next->prev = n;
	parent->child = n;
	slot = node_name_slot(w, parent, n->name_hash);
	n->name_next = w->by_name[slot];
	w->by_name[slot] = n;
}

static void
node_unlink(struct watcher *w, struct wnode *n)
{
	struct wnode **pp;

	if (n->parent == NULL)
		return;
	pp = &w->by_name[node_name_slot(w, n->parent, n->name_hash)];
	while (*pp != n)
		pp = &(*pp)->name_next;
	*pp = n->name_next;
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		n->parent->child = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	n->parent = n->next = n->prev = n->name_next = NULL;
}

static struct wnode *
node_new(struct watcher *w, int wd, struct wnode *parent, const char *name,
         size_t len)
{
	struct wnode *n;
	size_t slot;

	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->name = malloc(len + 1);
	if (n->name == NULL) {
		free(n);
		return NULL;
	}
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	n->namelen = len;
	n->name_hash = text_hash(name, len);
	n->wd = wd;
	n->mark = w->gen;
	node_grow(w);
	slot = node_wd_slot(w, wd);
	n->wd_next = w->by_wd[slot];
	w->by_wd[slot] = n;
	w->count++;
	if (parent != NULL)
		node_link(w, n, parent);
	return n;
}

static int
node_move(struct watcher *w, struct wnode *n, struct wnode *parent,
          const char *name, size_t len)
{
	char *s;

	s = malloc(len + 1);
	if (s == NULL)
		return -1;
	memcpy(s, name, len);
	s[len] = '\0';
	node_unlink(w, n);
	free(n->name);
	n->name = s;
	n->namelen = len;
	n->name_hash = text_hash(name, len);
	node_link(w, n, parent);
	return 0;
}

/* Frees an unlinked, childless node. */
static void
node_drop(struct watcher *w, struct wnode *n, int rm)
{
	struct wnode **pp = &w->by_wd[node_wd_slot(w, n->wd)];

	while (*pp != n)
		pp = &(*pp)->wd_next;
	*pp = n->wd_next;
	/* The kernel may have dropped the watch already: EINVAL is fine. */
	if (rm)
		(void)inotify_rm_watch(w->fd, n->wd);
	if (n == w->rootnode)
		w->rootnode = NULL;
	w->count--;
	free(n->name);
	free(n);
}

/* Forgets n and everything under it, iteratively (trees can be deep). */
static void
node_forget(struct watcher *w, struct wnode *top, int rm)
{
	struct wnode *n = top, *up;

	node_unlink(w, top);
	for (;;) {
		while (n->child != NULL)
			n = n->child;
		if (n == top)
			break;
		up = n->parent;
		node_unlink(w, n);
		node_drop(w, n, rm);
		n = up;
	}
	node_drop(w, top, rm);
}

static void
node_forget_all(struct watcher *w, int rm)
{
	struct wnode *n;
	size_t i;

	for (i = 0; i < w->nbuckets; i++) {
		while (w->by_wd[i] != NULL) {
			n = w->by_wd[i];
			w->by_wd[i] = n->wd_next;
			if (rm)
				(void)inotify_rm_watch(w->fd, n->wd);
			free(n->name);
			free(n);
		}
		w->by_name[i] = NULL;
	}
	w->count = 0;
	w->rootnode = NULL;
}

static int
node_is_ancestor(const struct wnode *a, const struct wnode *n)
{
	for (; n != NULL; n = n->parent)
		if (n == a)
			return 1;
	return 0;
}

/* Levels below the top of n's tree. */
static size_t
node_depth(const struct wnode *n)
{
	size_t d = 0;

	for (; n->parent != NULL; n = n->parent)
		d++;
	return d;
}

/* The next node in preorder after n's subtree, or NULL. */
static struct wnode *
node_after(const struct watcher *w, struct wnode *n)
{
	for (; n != NULL && n != w->rootnode; n = n->parent)
		if (n->next != NULL)
			return n->next;
	return NULL;
}

/*
 * The path of dir/name (name may be NULL) into out. NULL when dir is not
 * attached to the root (moved away, pending) or memory ran out.
 */
static const char *
node_path(const struct watcher *w, struct buf *out, const struct wnode *dir,
          const char *name, size_t namelen)
{
	const struct wnode *n;
	size_t len = 0, pos;

	for (n = dir; n->parent != NULL; n = n->parent)
		len += n->namelen + 1;
	if (n != w->rootnode)
		return NULL;
	if (name != NULL)
		len += namelen + 1;
	if (len > 0)
		len--;
	/* Reserve len bytes, then fill them from the end. */
	buf_reset(out);
	if (len > INT_MAX || buf_printf(out, "%*s", (int)len, "") == -1 ||
	    buf_cstr(out) == NULL)
		return NULL;
	pos = len;
	if (name != NULL) {
		pos -= namelen;
		memcpy(out->data + pos, name, namelen);
		if (pos > 0)
			out->data[--pos] = '/';
	}
	for (n = dir; n->parent != NULL; n = n->parent) {
		pos -= n->namelen;
		memcpy(out->data + pos, n->name, n->namelen);
		if (pos > 0)
			out->data[--pos] = '/';
	}
	return out->data;
}

/* Messages. */

static void
watcher_note(char *out, size_t outlen, const struct watcher *w,
             const char *what, const char *rel, const char *why)
{
	size_t rl = rel != NULL ? strlen(rel) : 0;
	int cut = rl > WATCHER_MSG_PATH;

	snprintf(out, outlen, "cannot %s %s%s%.*s%s: %s", what, w->root,
	         rl > 0 ? "/" : "", (int)(cut ? WATCHER_MSG_PATH : rl),
	         rel != NULL ? rel : "", cut ? "..." : "", why);
}

/* Events. */

static int
paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > lb)
		return paths_overlap(b, a);
	return memcmp(a, b, la) == 0 && (la == lb || b[la] == '/');
}

/* Settles waiting move i as GONE. -1: the watcher was freed. */
static int
move_flush(struct watcher *w, size_t i)
{
	struct watcher_event ev;
	struct wmove m = w->moves[i];
	struct wnode *n;

	memmove(&w->moves[i], &w->moves[i + 1],
	        (w->nmoves - i - 1) * sizeof(w->moves[0]));
	w->nmoves--;
	n = node_by_wd(w, m.wd);
	if (n != NULL && n->parent == NULL && n != w->rootnode)
		node_forget(w, n, 1);
	memset(&ev, 0, sizeof(ev));
	ev.kind = WATCHER_GONE;
	ev.path = m.path;
	ev.is_dir = m.is_dir;
	w->cb(&ev, w->arg);
	free(m.path);
	return w->dead ? -1 : 0;
}

static void
move_drop_all(struct watcher *w)
{
	size_t i;

	for (i = 0; i < w->nmoves; i++)
		free(w->moves[i].path);
	w->nmoves = 0;
}

static int
move_expire(struct watcher *w)
{
	uint64_t now = loop_now_ms();

	while (w->nmoves > 0 && w->moves[0].deadline <= now)
		if (move_flush(w, 0) == -1)
			return -1;
	return 0;
}

static void
move_arm(struct watcher *w)
{
	uint64_t now = loop_now_ms();
	int64_t ms = -1;

	if (w->nmoves > 0)
		ms = w->moves[0].deadline > now
		         ? (int64_t)(w->moves[0].deadline - now)
		         : 0;
	(void)loop_timer_set(w->timer, ms);
}

static int
move_find(const struct watcher *w, uint32_t cookie)
{
	size_t i;

	for (i = w->nmoves; i > 0; i--)
		if (w->moves[i - 1].cookie == cookie)
			return (int)(i - 1);
	return -1;
}

/* Calls back; -1 when the callback freed the watcher. */
static int
watcher_emit(struct watcher *w, enum watcher_kind kind, const char *path,
             const char *old_path, int is_dir, const char *reason)
{
	struct watcher_event ev;
	size_t i = 0;

	while (path != NULL && i < w->nmoves) {
		if (paths_overlap(w->moves[i].path, path) ||
		    (old_path != NULL &&
		     paths_overlap(w->moves[i].path, old_path))) {
			if (move_flush(w, i) == -1)
				return -1;
		} else
			i++;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.path = path;
	ev.old_path = old_path;
	ev.is_dir = is_dir;
	ev.reason = reason;
	w->cb(&ev, w->arg);
	return w->dead ? -1 : 0;
}

/* Opens the directory of an attached node, one component at a time. */
static int
watcher_open_node(const struct watcher *w, const struct wnode *dir)
{
	const struct wnode **chain, *n;
	size_t depth = node_depth(dir), i;
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
static int
watcher_lstat(const struct watcher *w, const struct wnode *dir,
              const char *name, const char *rel, struct stat *st)
{
	char abs[4096];
	int fd, r, saved;

	if (w->rootlen + strlen(rel) + 2 <= sizeof(abs)) {
		snprintf(abs, sizeof(abs), "%s/%s", w->root, rel);
		return fstatat(AT_FDCWD, abs, st, AT_SYMLINK_NOFOLLOW);
	}
	fd = watcher_open_node(w, dir);
	if (fd == -1)
		return -1;
	r = fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static int
watcher_add(const struct watcher *w, int fd)
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
	watcher_note(w->degraded, sizeof(w->degraded), w, what, rel,
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
		watcher_note(w->last_error, sizeof(w->last_error), w, what, rel,
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

/* Reads the top frame: reports its files, lists its subdirectories. */
static int
walk_read(struct walk *k)
{
	struct walk_frame *f = &k->frames[k->nframes - 1];
	const struct dirent *de;
	const char *path;
	struct stat st;
	unsigned char type;
	size_t len;

	for (;;) {
		errno = 0;
		de = readdir(f->dir);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		len = strlen(de->d_name);
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(f->dir), de->d_name, &st,
			            AT_SYMLINK_NOFOLLOW) == -1)
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
			    watcher_emit(k->w, WATCHER_FILE, path, NULL, 0,
			                 NULL) == -1)
				return -1;
		}
	}
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

	wd = watcher_add(w, fd);
	if (wd == -1) {
		saved = errno;
		walk_failed(k, "watch", walk_join(k, name, len), saved);
		return -1;
	}
	n = node_by_wd(w, wd);
	if (n != NULL && n->parent == parent && n->namelen == len &&
	    memcmp(n->name, name, len) == 0) {
		/* Walked when it was watched; events cover it since. */
		if (!k->scan && !n->rewalk)
			*descend = 0;
		n->rewalk = 0;
		n->mark = w->gen;
		return wd;
	}
	if (n != NULL && node_is_ancestor(n, parent)) {
		watcher_note(
		    w->last_error, sizeof(w->last_error), w, "watch",
		    walk_join(k, name, len),
		    "it contains itself (a bind mount?); not descending");
		*descend = 0;
		return -1;
	}
	if (n != NULL)
		node_unlink(w, n);
	o = node_by_name(w, parent, name, len);
	if (o != NULL)
		node_forget(w, o, 1);
	if (n != NULL && node_move(w, n, parent, name, len) == -1) {
		node_forget(w, n, 1);
		n = NULL;
	} else if (n == NULL)
		n = node_new(w, wd, parent, name, len);
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
	parent = node_by_wd(k->w, f->wd);
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

static int
walk_run(struct walk *k)
{
	struct walk_frame *f;
	const char *name;
	size_t len;
	int fd, last, saved;

	while (k->nframes > 0 && !k->path.failed) {
		f = &k->frames[k->nframes - 1];
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
				watcher_note(
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
		if (walk_enter(k, fd, name, len) == -1)
			return -1;
	}
	if (k->path.failed)
		walk_degrade(k, "read", NULL, ENOMEM);
	return 0;
}

/*
 * A directory appeared as name in the directory of node pwd (created or
 * moved): watch it and what is under it, report the files found.
 */
static int
watcher_walk_new(struct watcher *w, int pwd, const char *name, size_t len)
{
	struct wnode *p = node_by_wd(w, pwd);
	struct walk k;
	struct stat st;
	DIR *d;
	int fd, wd, r = 0;

	if (p == NULL || node_path(w, &w->scratch[1], p, NULL, 0) == NULL)
		return 0;
	walk_init(&k, w, 0);
	fd = watcher_open_node(w, p);
	if (fd == -1) {
		walk_failed(&k, "read", w->scratch[1].data, errno);
		goto done;
	}
	/* Its path may lead elsewhere by now: then wait for its move. */
	wd = fstat(fd, &st) == 0 ? watcher_add(w, fd) : -1;
	if (wd != p->wd) {
		if (wd != -1 && node_by_wd(w, wd) == NULL)
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
	if (walk_push(&k, d, p->wd, &st, NULL, 0, node_depth(p)) == -1) {
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
		r = watcher_emit(w, WATCHER_RESCAN, NULL, NULL, 0, w->degraded);
	return r;
}

/* Drops nodes a scan did not see: directories gone while events were
 * lost. */
static void
watcher_sweep(struct watcher *w)
{
	struct wnode *n, *next;

	if (w->rootnode == NULL)
		return;
	n = w->rootnode->child;
	while (n != NULL) {
		if (n->mark != w->gen) {
			next = node_after(w, n);
			node_forget(w, n, 1);
			n = next;
		} else if (n->child != NULL)
			n = n->child;
		else
			n = node_after(w, n);
	}
}

/* Event handlers; each returns -1 only when the watcher was freed. */

static int
watcher_root_gone(struct watcher *w, const char *why)
{
	if (w->root_gone)
		return 0;
	w->root_gone = 1;
	move_drop_all(w);
	node_forget_all(w, 1);
	return watcher_emit(w, WATCHER_ROOT_GONE, NULL, NULL, 0, why);
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
		node_forget(w, dir, 1);
	else if (mask & IN_UNMOUNT)
		return watcher_emit(
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
	if (w->nmoves == WATCHER_MAX_MOVES && move_flush(w, 0) == -1) {
		free(copy);
		return -1;
	}
	if (ie->mask & IN_ISDIR) {
		/* The flush may have forgotten nodes: look dir up again. */
		dir = node_by_wd(w, ie->wd);
		n = dir != NULL ? node_by_name(w, dir, name, len) : NULL;
		if (n != NULL)
			node_unlink(w, n);
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

	i = move_find(w, ie->cookie);
	if (i == -1) {
		/* Moved in from outside. */
		if (is_dir)
			return watcher_walk_new(w, ie->wd, name, len);
		if (watcher_lstat(w, dir, name, path, &st) == 0) {
			/* A symlink or FIFO renamed over a file: the file
			 * is gone. */
			if (!S_ISREG(st.st_mode))
				return watcher_emit(w, WATCHER_GONE, path, NULL,
				                    0, NULL);
		} else if (errno == ENOENT)
			return 0;
		return watcher_emit(w, WATCHER_FILE, path, NULL, 0, NULL);
	}
	m = w->moves[i];
	memmove(&w->moves[i], &w->moves[i + 1],
	        (w->nmoves - (size_t)i - 1) * sizeof(w->moves[0]));
	w->nmoves--;
	if (!is_dir) {
		/* A symlink or FIFO renamed: nothing the engine knows left
		 * the old name, but a file it replaced at the new one is
		 * gone. */
		if (watcher_lstat(w, dir, name, path, &st) == 0 &&
		    !S_ISREG(st.st_mode)) {
			free(m.path);
			return watcher_emit(w, WATCHER_GONE, path, NULL, 0,
			                    NULL);
		}
		r = watcher_emit(w, WATCHER_RENAME, path, m.path, 0, NULL);
		free(m.path);
		return r;
	}
	n = node_by_wd(w, m.wd);
	if (n != NULL && n->parent == NULL && n != w->rootnode) {
		o = node_by_name(w, dir, name, len);
		if (o != NULL)
			node_forget(w, o, 1);
		if (node_move(w, n, dir, name, len) == -1)
			node_forget(w, n, 1);
	}
	r = watcher_emit(w, WATCHER_RENAME, path, m.path, 1, NULL);
	free(m.path);
	if (r == -1)
		return -1;
	/* Checks the node is really there; walks it if it was not known. */
	return watcher_walk_new(w, ie->wd, name, len);
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
			if (move_flush(w, 0) == -1)
				return -1;
		return watcher_emit(w, WATCHER_RESCAN, NULL, NULL, 0,
		                    WATCHER_OVERFLOW);
	}
	dir = node_by_wd(w, ie->wd);
	if (dir == NULL)
		return 0;
	if (ie->mask &
	    (IN_IGNORED | IN_UNMOUNT | IN_DELETE_SELF | IN_MOVE_SELF))
		return watcher_self(w, dir, ie->mask);
	len = ie->len > 0 ? strnlen(ie->name, ie->len) : 0;
	if (len == 0)
		return 0;
	name = ie->name;
	path = node_path(w, &w->scratch[0], dir, name, len);
	if (path == NULL) {
		/* In a directory moved away: a move into it leaves the root. */
		i = (ie->mask & IN_MOVED_TO) ? move_find(w, ie->cookie) : -1;
		return i >= 0 ? move_flush(w, (size_t)i) : 0;
	}
	if (ie->mask & IN_CLOSE_WRITE)
		return watcher_emit(w, WATCHER_FILE, path, NULL, 0, NULL);
	if (ie->mask & IN_MODIFY)
		return watcher_emit(w, WATCHER_MODIFIED, path, NULL, 0, NULL);
	if (ie->mask & IN_CREATE) {
		if (ie->mask & IN_ISDIR)
			return watcher_walk_new(w, ie->wd, name, len);
		/* A hard link gets no CLOSE_WRITE; a new file gets one. */
		if (watcher_lstat(w, dir, name, path, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_nlink > 1)
			return watcher_emit(w, WATCHER_FILE, path, NULL, 0,
			                    NULL);
		return 0;
	}
	if (ie->mask & IN_DELETE) {
		n = (ie->mask & IN_ISDIR) ? node_by_name(w, dir, name, len)
		                          : NULL;
		if (n != NULL)
			node_forget(w, n, 1);
		return watcher_emit(w, WATCHER_GONE, path, NULL,
		                    (ie->mask & IN_ISDIR) != 0, NULL);
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
	if (w->by_wd != NULL && w->by_name != NULL)
		node_forget_all(w, 0);
	move_drop_all(w);
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
		move_arm(w);
	watcher_release(w);
}

static void
watcher_on_timer(void *arg)
{
	struct watcher *w = arg;

	w->busy++;
	/* A MOVED_TO may sit unread: pair it before giving up. */
	if (watcher_drain(w) == 0 && move_expire(w) == 0)
		move_arm(w);
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

/* Watches the root; a new root (deleted and made again) starts afresh. */
static int
watcher_scan_root(struct watcher *w, struct walk *k, int fd)
{
	struct wnode *n;
	int wd;

	wd = watcher_add(w, fd);
	if (wd == -1) {
		walk_degrade(k, "watch", NULL, errno);
		if (w->rootnode != NULL)
			node_forget(w, w->rootnode, 1);
		return -1;
	}
	if (w->rootnode != NULL && w->rootnode->wd != wd)
		node_forget(w, w->rootnode, 1);
	n = node_by_wd(w, wd);
	if (n != NULL && n != w->rootnode) {
		/* Cannot happen short of bind mounts: start afresh. */
		node_unlink(w, n);
		node_forget(w, n, 0);
	}
	if (w->rootnode == NULL)
		w->rootnode = node_new(w, wd, NULL, "", 0);
	if (w->rootnode == NULL) {
		(void)inotify_rm_watch(w->fd, wd);
		walk_degrade(k, "watch", NULL, ENOMEM);
		return -1;
	}
	w->rootnode->mark = w->gen;
	w->root_gone = 0;
	return wd;
}

int
watcher_scan(struct watcher *w, struct err *e)
{
	struct walk k;
	struct stat st;
	DIR *d;
	int fd, wd, r;

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
	w->busy++;
	w->gen++;
	walk_init(&k, w, 1);
	wd = watcher_scan_root(w, &k, fd);
	d = fdopendir(fd);
	if (d == NULL) {
		err_sys(e, "watcher: cannot read %s", w->root);
		close(fd);
		walk_cleanup(&k);
		watcher_release(w);
		return -1;
	}
	if (walk_push(&k, d, wd, &st, NULL, 0, 0) == -1) {
		closedir(d);
		walk_degrade(&k, "read", NULL, ENOMEM);
		r = 0;
	} else {
		r = walk_read(&k);
		if (r == 0)
			r = walk_run(&k);
	}
	if (r == 0) {
		watcher_sweep(w);
		if (!k.failed)
			w->degraded[0] = '\0';
	}
	walk_cleanup(&k);
	watcher_release(w);
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
