/*
 * sync_guard: the mass-deletion guard (sync.max_delete, invariant 5). A
 * local deletion waits SYNC_DELETE_WINDOW_MS for the others of its batch; a
 * batch over the operator's limits is held, persisted as "held:PATH" rows of
 * the state database's meta table, until the operator confirms, and so is
 * every deletion while some are held. A held file that comes back is no
 * longer held.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "sync_impl.h"

#define SYNC_DELETE_MIN_BATCH 20 /* max_delete_percent: batches this big */

static int
guard_key(const char *path, struct buf *key)
{
	buf_init(key, 0);
	buf_printf(key, "%s%s", SYNC_HELD, path);
	return buf_cstr(key) != NULL ? 0 : -1;
}

static int
guard_is_held(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;
	char *v = NULL;
	int rc;

	if (s->nheld == 0 || guard_key(path, &key) == -1)
		return 0;
	err_clear(&e);
	rc = state_meta_get(s->state, key.data, &v, NULL, &e);
	free(v);
	buf_cleanup(&key);
	return rc == 1;
}

static void
guard_hold(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;

	if (guard_is_held(s, path) || guard_key(path, &key) == -1)
		return;
	err_clear(&e);
	if (state_meta_put(s->state, key.data, "", 0, &e) == -1)
		log_warnx("state: %s", e.message);
	else
		s->nheld++;
	buf_cleanup(&key);
}

/* The file is back (or the deletion was sent): no longer held. */
void
sync_held_drop(struct sync *s, const char *path)
{
	struct buf key;
	struct err e;

	if (!guard_is_held(s, path) || guard_key(path, &key) == -1)
		return;
	err_clear(&e);
	if (state_meta_delete(s->state, key.data, &e) == -1)
		log_warnx("state: %s", e.message);
	else
		s->nheld--;
	buf_cleanup(&key);
}

/* A file the mirror has is gone locally: with sync.delete = "keep" the
 * remote copies stay (the state forgets it); else it waits for its batch,
 * or joins the held deletions. */
void
sync_delete_wait(struct sync *s, const char *path)
{
	char **more, *copy;
	struct err e;

	if (s->keep) {
		err_clear(&e);
		if (state_file_delete(s->state, path, strlen(path), &e) == -1)
			log_warnx("state: %s", e.message);
		return;
	}
	if (guard_is_held(s, path))
		return;
	if (s->nheld > 0) {
		guard_hold(s, path);
		return;
	}
	copy = strdup(path);
	more = realloc(s->batch, (s->nbatch + 1) * sizeof(*more));
	if (copy == NULL || more == NULL) {
		free(copy);
		if (more != NULL)
			s->batch = more;
		return; /* the next rescan finds it again */
	}
	s->batch = more;
	s->batch[s->nbatch++] = copy;
	loop_timer_set(s->delete_timer, SYNC_DELETE_WINDOW_MS);
}

/* Whether n deletions at once are more than the operator allowed. */
static int
guard_too_many(const struct sync *s, uint64_t n)
{
	uint64_t files = 0;
	struct err e;

	if (s->max_delete > 0 && n > s->max_delete)
		return 1;
	/* A share of a small mirror is a few files: routine. */
	err_clear(&e);
	if (s->max_delete_pct == 0 || n <= SYNC_DELETE_MIN_BATCH ||
	    state_count(s->state, &files, NULL, NULL, &e) == -1)
		return 0;
	return n * 100 > (uint64_t)s->max_delete_pct * files;
}

/* The batch is complete: sent, or held. */
void
sync_on_delete_timer(void *arg)
{
	struct sync *s = arg;
	struct job *j;
	size_t i;
	int hold = s->nheld > 0 || guard_too_many(s, s->nbatch);

	for (i = 0; i < s->nbatch; i++) {
		if (hold) {
			guard_hold(s, s->batch[i]);
		} else if ((j = sync_mark(s, s->batch[i], 0)) != NULL) {
			j->delete_ok = 1;
		}
		free(s->batch[i]);
	}
	if (hold && s->nbatch > 0)
		log_warnx("%" PRIu64 " deletions held (more than "
		          "sync.max_delete = %u files or %u%% of the mirror at "
		          "once): nothing is deleted remotely until the "
		          "operator confirms (imgsyncctl deletions lists them, "
		          "imgsyncctl deletions --confirm sends them)",
		          s->nheld, s->max_delete, s->max_delete_pct);
	free(s->batch);
	s->batch = NULL;
	s->nbatch = 0;
	sync_pump(s);
}

uint64_t
sync_held_count(const struct sync *s)
{
	return s->nheld;
}

int
sync_held_each(struct sync *s, state_meta_cb cb, void *arg, struct err *e)
{
	return state_meta_each(s->state, SYNC_HELD, cb, arg, e);
}

struct guard_list {
	char **paths;
	size_t n;
	int nomem;
};

static int
guard_list_row(const char *name, const void *value, size_t len, void *arg)
{
	struct guard_list *h = arg;
	char **more;

	(void)value;
	(void)len;
	more = realloc(h->paths, (h->n + 1) * sizeof(*more));
	if (more == NULL ||
	    (more[h->n] = strdup(name + strlen(SYNC_HELD))) == NULL) {
		if (more != NULL)
			h->paths = more;
		h->nomem = 1;
		return 1;
	}
	h->paths = more;
	h->n++;
	return 0;
}

long
sync_held_confirm(struct sync *s, struct err *e)
{
	struct guard_list h;
	struct job *j;
	size_t i;
	long n = 0;

	memset(&h, 0, sizeof(h));
	if (state_meta_each(s->state, SYNC_HELD, guard_list_row, &h, e) == -1)
		n = -1;
	for (i = 0; i < h.n; i++) {
		if (n != -1) {
			sync_held_drop(s, h.paths[i]);
			if ((j = sync_mark(s, h.paths[i], 0)) != NULL) {
				j->delete_ok = 1;
				n++;
			}
		}
		free(h.paths[i]);
	}
	free(h.paths);
	if (n != -1 && h.nomem) {
		err_set(e, ERR_SYS, "out of memory");
		n = -1;
	}
	if (n > 0)
		log_info("the operator confirmed %ld held deletions: sending "
		         "them",
		         n);
	sync_pump(s);
	return n;
}

/* Held deletions survive restarts: counted at start. */
int
sync_held_count_row(const char *name, const void *value, size_t len, void *arg)
{
	(void)name;
	(void)value;
	(void)len;
	(*(uint64_t *)arg)++;
	return 0;
}
