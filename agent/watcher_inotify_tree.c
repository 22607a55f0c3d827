/*
 * watcher_inotify_tree: the watched directories of the inotify backend, a
 * tree of nodes (wd, parent, name). An event's path is built by walking up
 * to the root, so renaming a directory is one relink however many
 * directories lie under it. Nodes are found by wd (for events) and by
 * (parent, name) (for directory moves and deletes) through two chained hash
 * tables. A data structure: it reads no file system and calls nobody back;
 * forgetting a node may remove its inotify watch.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "buf.h"
#include "text.h"
#include "watcher_inotify_impl.h"

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

struct wnode *
watcher_inotify_tree_by_wd(const struct watcher *w, int wd)
{
	struct wnode *n;

	if (wd < 0)
		return NULL;
	for (n = w->by_wd[node_wd_slot(w, wd)]; n != NULL; n = n->wd_next)
		if (n->wd == wd)
			return n;
	return NULL;
}

struct wnode *
watcher_inotify_tree_by_name(const struct watcher *w,
                             const struct wnode *parent, const char *name,
                             size_t len)
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

void
watcher_inotify_tree_unlink(struct watcher *w, struct wnode *n)
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

struct wnode *
watcher_inotify_tree_new(struct watcher *w, int wd, struct wnode *parent,
                         const char *name, size_t len)
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

int
watcher_inotify_tree_move(struct watcher *w, struct wnode *n,
                          struct wnode *parent, const char *name, size_t len)
{
	char *s;

	s = malloc(len + 1);
	if (s == NULL)
		return -1;
	memcpy(s, name, len);
	s[len] = '\0';
	watcher_inotify_tree_unlink(w, n);
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
void
watcher_inotify_tree_forget(struct watcher *w, struct wnode *top, int rm)
{
	struct wnode *n = top, *up;

	watcher_inotify_tree_unlink(w, top);
	for (;;) {
		while (n->child != NULL)
			n = n->child;
		if (n == top)
			break;
		up = n->parent;
		watcher_inotify_tree_unlink(w, n);
		node_drop(w, n, rm);
		n = up;
	}
	node_drop(w, top, rm);
}

void
watcher_inotify_tree_forget_all(struct watcher *w, int rm)
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

int
watcher_inotify_tree_is_ancestor(const struct wnode *a, const struct wnode *n)
{
	for (; n != NULL; n = n->parent)
		if (n == a)
			return 1;
	return 0;
}

/* Levels below the top of n's tree. */
size_t
watcher_inotify_tree_depth(const struct wnode *n)
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
const char *
watcher_inotify_tree_path(const struct watcher *w, struct buf *out,
                          const struct wnode *dir, const char *name,
                          size_t namelen)
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

/* Drops nodes a scan did not see: directories gone while events were
 * lost. */
void
watcher_inotify_tree_sweep(struct watcher *w)
{
	struct wnode *n, *next;

	if (w->rootnode == NULL)
		return;
	n = w->rootnode->child;
	while (n != NULL) {
		if (n->mark != w->gen) {
			next = node_after(w, n);
			watcher_inotify_tree_forget(w, n, 1);
			n = next;
		} else if (n->child != NULL)
			n = n->child;
		else
			n = node_after(w, n);
	}
}
