/*
 * state_intents: the `intents` table, the operations in progress. An
 * intent is written, and on disk, before the network call it guards
 * (invariant 3), and forgotten once the operation finished; what is left
 * after a crash is what recovery must look at. The WAL is fsynced after
 * each write here, unless a batch is open: then at its commit.
 */
#include "state_impl.h"

#include <stdlib.h>
#include <string.h>

#define INTENT_COLS                                                            \
	"id, op, path, old_path, key, old_key, size, mtime_ns, sha256, "       \
	"upload_id, created_at"

static const struct state_sql intent_add = {
    ST_INTENT_ADD, "INSERT INTO intents (op, path, old_path, key, "
                   "old_key, size, mtime_ns, sha256, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"};
static const struct state_sql intent_upload_id = {
    ST_INTENT_UPLOAD_ID, "UPDATE intents SET upload_id = ?2 WHERE id = ?1"};
static const struct state_sql intent_done = {
    ST_INTENT_DONE, "DELETE FROM intents WHERE id = ?1"};
static const struct state_sql intents_all = {
    ST_INTENTS_ALL, "SELECT " INTENT_COLS " FROM intents ORDER BY id"};
static const struct state_sql intent_count = {ST_INTENT_COUNT,
                                              "SELECT count(*) FROM intents"};

const char *
state_op_name(enum state_op op)
{
	switch (op) {
	case STATE_OP_UPLOAD:
		return "upload";
	case STATE_OP_DELETE:
		return "delete";
	case STATE_OP_RENAME:
		return "rename";
	}
	return NULL;
}

static int
state_op_parse(const unsigned char *name, enum state_op *op)
{
	if (name == NULL)
		return -1;
	if (strcmp((const char *)name, "upload") == 0)
		*op = STATE_OP_UPLOAD;
	else if (strcmp((const char *)name, "delete") == 0)
		*op = STATE_OP_DELETE;
	else if (strcmp((const char *)name, "rename") == 0)
		*op = STATE_OP_RENAME;
	else
		return -1;
	return 0;
}

void
state_intent_cleanup(struct state_intent *in)
{
	if (in == NULL)
		return;
	free(in->path);
	free(in->old_path);
	free(in->key);
	free(in->old_key);
	free(in->upload_id);
	in->path = in->old_path = in->key = in->old_key = in->upload_id = NULL;
	in->path_len = in->old_len = 0;
}

/* Row in INTENT_COLS order into in; -1 when out of memory. */
static int
intent_from_row(sqlite3_stmt *st, struct state_intent *in)
{
	memset(in, 0, sizeof(*in));
	in->id = sqlite3_column_int64(st, 0);
	if (state_op_parse(sqlite3_column_text(st, 1), &in->op) == -1)
		in->op = STATE_OP_UPLOAD; /* the CHECK makes this unreachable */
	if (state_col_dup(st, 2, &in->path, &in->path_len) == -1 ||
	    state_col_dup(st, 3, &in->old_path, &in->old_len) == -1 ||
	    state_col_dup(st, 4, &in->key, NULL) == -1 ||
	    state_col_dup(st, 5, &in->old_key, NULL) == -1 ||
	    state_col_dup(st, 9, &in->upload_id, NULL) == -1)
		goto fail;
	if (in->path == NULL || in->key == NULL)
		goto fail;
	in->size = (uint64_t)sqlite3_column_int64(st, 6);
	in->mtime_ns = sqlite3_column_int64(st, 7);
	state_col_copy(st, 8, in->sha256, sizeof(in->sha256));
	state_col_copy(st, 10, in->created_at, sizeof(in->created_at));
	return 0;
fail:
	state_intent_cleanup(in);
	return -1;
}

/* What makes an intent invalid, or NULL. */
static const char *
intent_invalid(const struct state_intent *in)
{
	if (state_op_name(in->op) == NULL)
		return "unknown intent operation";
	if (in->path == NULL || in->path_len == 0)
		return "empty path";
	if (in->key == NULL)
		return "no key";
	if (in->op == STATE_OP_RENAME &&
	    (in->old_path == NULL || in->old_len == 0 || in->old_key == NULL))
		return "rename without the old path or key";
	if (in->size > INT64_MAX)
		return "size out of range";
	return NULL;
}

int64_t
state_intent_add(struct state *s, const struct state_intent *in, struct err *e)
{
	int is_rename = in->op == STATE_OP_RENAME;
	const char *why;
	char now[32];
	const struct state_arg args[] = {
	    STATE_TEXT(state_op_name(in->op)),
	    STATE_BLOB(in->path, in->path_len),
	    is_rename ? STATE_BLOB(in->old_path, in->old_len) : STATE_NULL,
	    STATE_TEXT(in->key),
	    STATE_TEXT(is_rename ? in->old_key : NULL),
	    STATE_INT(in->size),
	    STATE_INT(in->mtime_ns),
	    STATE_FIELD(in->sha256, sizeof(in->sha256)),
	    STATE_TEXT(now),
	};

	if ((why = intent_invalid(in)) != NULL)
		return state_invalid(s, e, why);
	state_now(now); /* bound by address: read when it runs */
	if (state_run(s, &intent_add, args, nitems(args), e) == -1)
		return -1;
	/* Inside a batch, state_commit makes it durable. */
	if (!s->in_batch && state_wal_sync(s, e) == -1)
		return -1;
	return sqlite3_last_insert_rowid(s->db);
}

int
state_intent_set_upload_id(struct state *s, int64_t id, const char *upload_id,
                           struct err *e)
{
	const struct state_arg args[] = {STATE_INT(id), STATE_TEXT(upload_id)};

	/* Durable like the intent itself: the parts are sent next. */
	if (state_run(s, &intent_upload_id, args, nitems(args), e) == -1)
		return -1;
	return s->in_batch ? 0 : state_wal_sync(s, e);
}

int
state_intent_done(struct state *s, int64_t id, struct err *e)
{
	const struct state_arg args[] = {STATE_INT(id)};

	return state_run(s, &intent_done, args, nitems(args), e);
}

struct intent_walk {
	state_intent_cb cb;
	void *arg;
};

static int
intent_walk_row(sqlite3_stmt *st, void *arg)
{
	struct intent_walk *w = arg;
	struct state_intent in;
	int rc;

	if (intent_from_row(st, &in) == -1)
		return -1;
	rc = w->cb(&in, w->arg);
	state_intent_cleanup(&in);
	return rc != 0;
}

int
state_intents_each(struct state *s, state_intent_cb cb, void *arg,
                   struct err *e)
{
	struct intent_walk w = {cb, arg};

	return state_rows(s, &intents_all, NULL, 0, intent_walk_row, &w, e);
}

int
state_intent_count(struct state *s, uint64_t *n, struct err *e)
{
	return state_number(s, &intent_count, n, e);
}
