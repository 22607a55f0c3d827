/*
 * state_meta: the `meta` table, small named values the daemon keeps
 * between runs (the watch root it was started on, the summary's ETag,
 * ...). Names are text, values are bytes.
 */
#include "state_impl.h"

#include <stdlib.h>

static const struct state_sql meta_get = {
    ST_META_GET, "SELECT value FROM meta WHERE name = ?1"};
static const struct state_sql meta_put = {
    ST_META_PUT, "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)"};
static const struct state_sql meta_delete = {
    ST_META_DELETE, "DELETE FROM meta WHERE name = ?1"};
static const struct state_sql meta_each = {
    ST_META_EACH, "SELECT name, value FROM meta "
                  "WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name"};

struct meta_value {
	char **value;
	size_t *len;
};

/* A lookup's row: a copy of the value, and stop. */
static int
meta_get_row(sqlite3_stmt *st, void *arg)
{
	struct meta_value *v = arg;

	if (state_col_dup(st, 0, v->value, v->len) == -1 || *v->value == NULL)
		return -1;
	return 1;
}

int
state_meta_get(struct state *s, const char *name, char **value, size_t *len,
               struct err *e)
{
	const struct state_arg args[] = {STATE_TEXT(name)};
	struct meta_value v = {value, len};

	*value = NULL;
	if (len != NULL)
		*len = 0;
	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	return state_rows(s, &meta_get, args, nitems(args), meta_get_row, &v,
	                  e);
}

int
state_meta_put(struct state *s, const char *name, const void *value, size_t len,
               struct err *e)
{
	const struct state_arg args[] = {STATE_TEXT(name),
	                                 STATE_BLOB(value, len)};

	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	if (value == NULL && len > 0)
		return state_invalid(s, e, "no meta value");
	return state_run(s, &meta_put, args, nitems(args), e);
}

int
state_meta_delete(struct state *s, const char *name, struct err *e)
{
	const struct state_arg args[] = {STATE_TEXT(name)};

	if (name == NULL)
		return state_invalid(s, e, "no meta name");
	return state_run(s, &meta_delete, args, nitems(args), e);
}

struct meta_walk {
	state_meta_cb cb;
	void *arg;
};

static int
meta_walk_row(sqlite3_stmt *st, void *arg)
{
	struct meta_walk *w = arg;
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const void *value = sqlite3_column_blob(st, 1);

	if (name == NULL)
		return -1;
	return w->cb(name, value != NULL ? value : "",
	             (size_t)sqlite3_column_bytes(st, 1), w->arg) != 0;
}

int
state_meta_each(struct state *s, const char *prefix, state_meta_cb cb,
                void *arg, struct err *e)
{
	const struct state_arg args[] = {STATE_TEXT(prefix)};
	struct meta_walk w = {cb, arg};

	return state_rows(s, &meta_each, args, nitems(args), meta_walk_row, &w,
	                  e);
}
