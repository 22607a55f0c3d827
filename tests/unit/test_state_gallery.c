/*
 * test_state_gallery: the gallery's reads of `files`: a folder's own rows
 * newest first and its pages, search and type over the subtree, failed
 * rows left out, and the subfolders found by seeking (bytes past 0x7f,
 * names that sort around '/').
 */
#include "test_state.h"

/* cppcheck-suppress unknownMacro */
TestSuite(state_gallery, .init = setup, .fini = teardown);

static void
put_at(struct state *s, const char *path, int64_t mtime, const char *type)
{
	struct state_file f;
	struct err e;

	memset(&f, 0, sizeof(f));
	f.path = (char *)path;
	f.path_len = strlen(path);
	f.key = (char *)path;
	f.mtime_ns = mtime;
	snprintf(f.type, sizeof(f.type), "%s", type);
	err_clear(&e);
	cr_assert_eq(state_file_put(s, &f, &e), 0, "put: %s", e.message);
}

/* The paths of one page, '|'-separated, in a static buffer. */
static const char *
page(struct state *s, struct state_gallery_query *q)
{
	static char out[4096];
	struct buf b;
	struct err e;

	buf_init(&b, 0);
	err_clear(&e);
	if (q->dir != NULL && q->dir_len == 0)
		q->dir_len = strlen(q->dir);
	cr_assert_eq(state_gallery_page(s, q, collect, &b, &e), 0, "page: %s",
	             e.message);
	snprintf(out, sizeof(out), "%s", buf_cstr(&b) ? b.data : "");
	buf_cleanup(&b);
	return out;
}

static int
collect_folder(const char *name, size_t len, void *arg)
{
	struct buf *b = arg;

	buf_append(b, name, len);
	buf_putc(b, '|');
	return 0;
}

static const char *
folders(struct state *s, const char *dir, unsigned max)
{
	static char out[4096];
	struct buf b;
	struct err e;

	buf_init(&b, 0);
	err_clear(&e);
	cr_assert_eq(state_gallery_folders(s, dir, strlen(dir), max,
	                                   collect_folder, &b, &e),
	             0, "folders: %s", e.message);
	snprintf(out, sizeof(out), "%s", buf_cstr(&b) ? b.data : "");
	buf_cleanup(&b);
	return out;
}

static struct state *
sample(void)
{
	struct state *s = open_ok();
	struct err e;

	put_at(s, "old.jpg", 100, "image/jpeg");
	put_at(s, "new.png", 300, "image/png");
	put_at(s, "mid.jpg", 200, "image/jpeg");
	put_at(s, "same-b.jpg", 200, "image/jpeg");
	put_at(s, "a/x.jpg", 500, "image/jpeg");
	put_at(s, "a/b/Deep.PNG", 400, "image/png");
	put_at(s, "a.jpg", 50, "image/jpeg");
	put_at(s, "a0/y.jpg", 60, "image/jpeg");
	err_clear(&e);
	cr_assert_eq(state_file_fail(s, "broken.jpg", 10, "bad", &e), 0, "%s",
	             e.message);
	return s;
}

Test(state_gallery, newest_first_own_rows_only)
{
	struct state *s = sample();
	struct state_gallery_query q = {.dir = "", .limit = 100};

	cr_assert_str_eq(page(s, &q),
	                 "new.png|same-b.jpg|mid.jpg|old.jpg|a.jpg|");
	q.dir = "a/";
	q.dir_len = 0;
	cr_assert_str_eq(page(s, &q), "a/x.jpg|");
	state_close(s);
}

Test(state_gallery, pages_by_cursor_reach_every_row_once)
{
	struct state *s = sample();
	struct state_gallery_query q = {.dir = "", .limit = 2};

	cr_assert_str_eq(page(s, &q), "new.png|same-b.jpg|");
	q.after_mtime_ns = 200;
	q.after_path = "same-b.jpg";
	q.after_len = strlen("same-b.jpg");
	cr_assert_str_eq(page(s, &q), "mid.jpg|old.jpg|",
	                 "the tie on mtime goes on by path");
	q.after_mtime_ns = 100;
	q.after_path = "old.jpg";
	q.after_len = strlen("old.jpg");
	cr_assert_str_eq(page(s, &q), "a.jpg|");
	state_close(s);
}

Test(state_gallery, search_is_the_subtree_in_any_case_and_type_narrows)
{
	struct state *s = sample();
	struct state_gallery_query q = {.dir = "", .limit = 100};

	q.search = "DEEP";
	cr_assert_str_eq(page(s, &q), "a/b/Deep.PNG|");
	q.search = "jpg";
	q.dir = "a/";
	q.dir_len = 0;
	cr_assert_str_eq(page(s, &q), "a/x.jpg|",
	                 "below a/ only: not a.jpg or a0/y.jpg");
	q.search = "a/";
	q.dir = "";
	q.dir_len = 0;
	cr_assert_str_eq(page(s, &q), "a/x.jpg|a/b/Deep.PNG|");
	q.search = "b/";
	q.dir = "a/";
	q.dir_len = 0;
	cr_assert_str_eq(page(s, &q), "a/b/Deep.PNG|",
	                 "the search is on the path below dir");
	q.search = NULL;
	q.dir = "";
	q.dir_len = 0;
	q.type = "image/png";
	cr_assert_str_eq(page(s, &q), "new.png|");
	q.search = "e";
	cr_assert_str_eq(page(s, &q), "a/b/Deep.PNG|new.png|");
	state_close(s);
}

Test(state_gallery, folders_are_found_by_seeking)
{
	struct state *s = sample();

	cr_assert_str_eq(folders(s, "", 100), "a|a0|",
	                 "a.jpg and the root's files are not folders");
	cr_assert_str_eq(folders(s, "a/", 100), "b|");
	cr_assert_str_eq(folders(s, "a/b/", 100), "");
	cr_assert_str_eq(folders(s, "", 1), "a|", "at most max");
	cr_assert_str_eq(folders(s, "nothing/", 100), "");
	state_close(s);
}

Test(state_gallery, folders_with_high_bytes_and_failed_rows)
{
	struct state *s = open_ok();
	struct err e;

	put_at(s, "\xff/a.jpg", 1, "image/jpeg");
	put_at(s, "\xff\xff/b.jpg", 1, "image/jpeg");
	put_at(s, "\xff/\xff/c.jpg", 1, "image/jpeg");
	put_at(s, "z/\xfe.jpg", 1, "image/jpeg");
	err_clear(&e);
	cr_assert_eq(state_file_fail(s, "only-failed/x.jpg", 17, "bad", &e), 0);
	cr_assert_str_eq(folders(s, "", 100), "z|\xff|\xff\xff|",
	                 "a folder of failed rows only is not shown");
	cr_assert_str_eq(folders(s, "\xff/", 100), "\xff|");
	{
		struct state_gallery_query q = {.dir = "\xff/", .limit = 10};

		cr_assert_str_eq(page(s, &q), "\xff/a.jpg|");
	}
	state_close(s);
}
