/*
 * test_state_meta: the `meta` table: values as bytes, and walks by name
 * prefix.
 */
#include "test_state.h"

/* cppcheck-suppress unknownMacro */
TestSuite(state_meta, .init = setup, .fini = teardown);

Test(state_meta, meta_values)
{
	struct state *s = open_ok();
	struct err e;
	char *v;
	size_t len;

	err_clear(&e);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 0);
	cr_assert_null(v);
	cr_assert_eq(state_meta_put(s, "watch_root", "/srv/\xffimg\n", 10, &e),
	             0, "%s", e.message);
	cr_assert_eq(state_meta_put(s, "empty", "", 0, &e), 0);
	state_close(s);

	s = open_ok();
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 1);
	cr_assert_eq(len, 10);
	cr_assert_eq(memcmp(v, "/srv/\xffimg\n", 10), 0);
	cr_assert_eq(v[10], '\0');
	free(v);
	cr_assert_eq(state_meta_get(s, "empty", &v, NULL, &e), 1);
	cr_assert_str_eq(v, "");
	free(v);
	cr_assert_eq(state_meta_put(s, "watch_root", "/other", 6, &e), 0);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 1);
	cr_assert_str_eq(v, "/other");
	free(v);
	cr_assert_eq(state_meta_delete(s, "watch_root", &e), 0);
	cr_assert_eq(state_meta_get(s, "watch_root", &v, &len, &e), 0);
	state_close(s);
}

struct meta_seen {
	char names[8][32];
	size_t lens[8];
	int n;
	int stop_at;
};

static int
meta_row(const char *name, const void *value, size_t len, void *arg)
{
	struct meta_seen *m = arg;

	(void)value;
	snprintf(m->names[m->n], sizeof(m->names[0]), "%s", name);
	m->lens[m->n++] = len;
	return m->n == m->stop_at;
}

Test(state_meta, meta_each_by_prefix)
{
	struct state *s = open_ok();
	struct meta_seen m;
	struct err e;

	err_clear(&e);
	cr_assert_eq(state_meta_put(s, "trash:b/\xff.png", "/t", 2, &e), 0);
	cr_assert_eq(state_meta_put(s, "trash:a.png", "/trash", 6, &e), 0);
	cr_assert_eq(state_meta_put(s, "trash", "x", 1, &e), 0);
	cr_assert_eq(state_meta_put(s, "trasH:c", "x", 1, &e), 0);
	cr_assert_eq(state_meta_put(s, "watch_root", "/srv", 4, &e), 0);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(state_meta_each(s, "trash:", meta_row, &m, &e), 0, "%s",
	             e.message);
	cr_assert_eq(m.n, 2);
	cr_assert_str_eq(m.names[0], "trash:a.png");
	cr_assert_eq(m.lens[0], 6);
	cr_assert_str_eq(m.names[1], "trash:b/\xff.png");
	memset(&m, 0, sizeof(m));
	m.stop_at = 1;
	cr_assert_eq(state_meta_each(s, "trash:", meta_row, &m, &e), 1);
	cr_assert_eq(m.n, 1);
	memset(&m, 0, sizeof(m));
	cr_assert_eq(state_meta_each(s, "nothing:", meta_row, &m, &e), 0);
	cr_assert_eq(m.n, 0);
	state_close(s);
}
