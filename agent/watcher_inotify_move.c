/*
 * watcher_inotify_move: delivering events to the callback, and the
 * MOVED_FROM events waiting a little for their MOVED_TO (the pair can
 * straddle two reads). Any event on an overlapping path first settles the
 * waiting move as GONE, so the engine sees each path's events in order.
 * A moved directory's node stays detached from the tree while it waits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "watcher_inotify_impl.h"

static int
paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > lb)
		return paths_overlap(b, a);
	return memcmp(a, b, la) == 0 && (la == lb || b[la] == '/');
}

/* Removes waiting move i from the queue into *m, which owns its path. */
void
watcher_inotify_move_take(struct watcher *w, size_t i, struct wmove *m)
{
	*m = w->moves[i];
	memmove(&w->moves[i], &w->moves[i + 1],
	        (w->nmoves - i - 1) * sizeof(w->moves[0]));
	w->nmoves--;
}

/* Settles waiting move i as GONE. -1: the watcher was freed. */
int
watcher_inotify_move_flush(struct watcher *w, size_t i)
{
	struct watcher_event ev;
	struct wmove m;
	struct wnode *n;

	watcher_inotify_move_take(w, i, &m);
	n = watcher_inotify_tree_by_wd(w, m.wd);
	if (n != NULL && n->parent == NULL && n != w->rootnode)
		watcher_inotify_tree_forget(w, n, 1);
	memset(&ev, 0, sizeof(ev));
	ev.kind = WATCHER_GONE;
	ev.path = m.path;
	ev.is_dir = m.is_dir;
	w->cb(&ev, w->arg);
	free(m.path);
	return w->dead ? -1 : 0;
}

void
watcher_inotify_move_drop_all(struct watcher *w)
{
	size_t i;

	for (i = 0; i < w->nmoves; i++)
		free(w->moves[i].path);
	w->nmoves = 0;
}

int
watcher_inotify_move_expire(struct watcher *w)
{
	uint64_t now = loop_now_ms();

	while (w->nmoves > 0 && w->moves[0].deadline <= now)
		if (watcher_inotify_move_flush(w, 0) == -1)
			return -1;
	return 0;
}

void
watcher_inotify_move_arm(struct watcher *w)
{
	uint64_t now = loop_now_ms();
	int64_t ms = -1;

	if (w->nmoves > 0)
		ms = w->moves[0].deadline > now
		         ? (int64_t)(w->moves[0].deadline - now)
		         : 0;
	(void)loop_timer_set(w->timer, ms);
}

int
watcher_inotify_move_find(const struct watcher *w, uint32_t cookie)
{
	size_t i;

	for (i = w->nmoves; i > 0; i--)
		if (w->moves[i - 1].cookie == cookie)
			return (int)(i - 1);
	return -1;
}

/* Calls back, after the waiting moves ev's paths overlap; -1 when the
 * callback freed the watcher. */
static int
watcher_inotify_move_send(struct watcher *w, const struct watcher_event *ev)
{
	size_t i = 0;

	while (ev->path != NULL && i < w->nmoves) {
		if (paths_overlap(w->moves[i].path, ev->path) ||
		    (ev->old_path != NULL &&
		     paths_overlap(w->moves[i].path, ev->old_path))) {
			if (watcher_inotify_move_flush(w, i) == -1)
				return -1;
		} else
			i++;
	}
	w->cb(ev, w->arg);
	return w->dead ? -1 : 0;
}

int
watcher_inotify_move_emit(struct watcher *w, enum watcher_kind kind,
                          const char *path, const char *old_path, int is_dir,
                          const char *reason)
{
	struct watcher_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.path = path;
	ev.old_path = old_path;
	ev.is_dir = is_dir;
	ev.reason = reason;
	return watcher_inotify_move_send(w, &ev);
}

int
watcher_inotify_move_emit_file(struct watcher *w, const char *path,
                               const struct stat *st)
{
	struct watcher_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = WATCHER_FILE;
	ev.path = path;
	ev.st = st;
	return watcher_inotify_move_send(w, &ev);
}
