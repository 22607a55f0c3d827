#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "watcher.h"

/* Every test gets base/root (the watch root) and base/out (outside it). */
static char base[PATH_MAX / 2];
static char root[PATH_MAX];
static char outside[PATH_MAX];
static struct loop *lp;
static struct watcher *wt;

/* What the callback saw, with copies of the strings. */
struct rec {
	enum watcher_kind kind;
	char *path;
	char *old_path;
	int is_dir;
	char *reason;
	uint64_t at;
};
static struct rec *recs;
static size_t nrecs, caprecs;
static int free_on_file; /* the callback frees the watcher on a FILE */
static int scan_on_file; /* the callback rescans on a FILE */

static char *
dup_or_null(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	cr_assert_not_null(d);
	return d;
}

static void
on_event(const struct watcher_event *ev, void *arg)
{
	struct rec *r;

	(void)arg;
	if (nrecs == caprecs) {
		caprecs = caprecs ? caprecs * 2 : 256;
		recs = realloc(recs, caprecs * sizeof(*recs));
		cr_assert_not_null(recs);
	}
	r = &recs[nrecs++];
	r->kind = ev->kind;
	r->path = dup_or_null(ev->path);
	r->old_path = dup_or_null(ev->old_path);
	r->is_dir = ev->is_dir;
	r->reason = dup_or_null(ev->reason);
	r->at = loop_now_ms();
	if (ev->kind == WATCHER_FILE || ev->kind == WATCHER_RENAME ||
	    ev->kind == WATCHER_GONE || ev->kind == WATCHER_MODIFIED) {
		cr_assert_not_null(ev->path);
		cr_assert_neq(ev->path[0], '\0', "an empty path");
		cr_assert_neq(ev->path[0], '/', "a leading slash");
	}
	if (scan_on_file && ev->kind == WATCHER_FILE) {
		scan_on_file = 0;
		cr_assert_eq(watcher_scan(wt, NULL), 0);
	}
	if (free_on_file && ev->kind == WATCHER_FILE) {
		free_on_file = 0;
		watcher_free(wt);
		wt = NULL;
	}
}

/* Removes a tree with neither recursion nor one fd per level: some trees
 * here are 4100 levels deep. */
static void
rm_tree(const char *path)
{
	char **names = NULL, *sub;
	size_t n = 0, cap = 0;
	const struct dirent *de;
	struct stat st;
	int fd, pfd, cfd, isdir;
	DIR *d;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd == -1)
		return;
	for (;;) {
		cfd = openat(fd, ".", O_RDONLY | O_DIRECTORY);
		d = cfd == -1 ? NULL : fdopendir(cfd);
		if (d == NULL)
			break;
		sub = NULL;
		for (;;) {
			de = readdir(d);
			if (de == NULL)
				break;
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			isdir = de->d_type == DT_DIR;
			if (de->d_type == DT_UNKNOWN &&
			    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			        0)
				isdir = S_ISDIR(st.st_mode);
			if (!isdir)
				unlinkat(fd, de->d_name, 0);
			else if (sub == NULL)
				sub = strdup(de->d_name);
		}
		closedir(d);
		if (sub != NULL) {
			cfd = openat(fd, sub,
			             O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (cfd == -1) {
				free(sub);
				break;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				names = realloc(names, cap * sizeof(*names));
				cr_assert_not_null(names);
			}
			names[n++] = sub;
			close(fd);
			fd = cfd;
			continue;
		}
		if (n == 0) {
			rmdir(path);
			break;
		}
		pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = pfd;
		n--;
		unlinkat(fd, names[n], AT_REMOVEDIR);
		free(names[n]);
		if (fd == -1)
			break;
	}
	if (fd != -1)
		close(fd);
	while (n > 0)
		free(names[--n]);
	free(names);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/test_watcher.XXXXXX", tmp);
	cr_assert_not_null(mkdtemp(base), "mkdtemp: %s", strerror(errno));
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/out", base);
	cr_assert_eq(mkdir(root, 0755), 0);
	cr_assert_eq(mkdir(outside, 0755), 0);
	lp = loop_new(NULL);
	cr_assert_not_null(lp);
}

static void
teardown(void)
{
	size_t i;

	watcher_free(wt);
	wt = NULL;
	loop_free(lp);
	lp = NULL;
	if (base[0] != '\0')
		rm_tree(base);
	base[0] = '\0';
	for (i = 0; i < nrecs; i++) {
		free(recs[i].path);
		free(recs[i].old_path);
		free(recs[i].reason);
	}
	free(recs);
	recs = NULL;
	nrecs = caprecs = 0;
}

/* cppcheck-suppress unknownMacro */
TestSuite(watcher, .init = setup, .fini = teardown, .timeout = 30);

/* A skipped test does not run .fini: clean up first. */
#define SKIP(...)                                                              \
	do {                                                                   \
		teardown();                                                    \
		cr_skip_test(__VA_ARGS__);                                     \
	} while (0)

/* dir/rel in one of a few rotating buffers. */
static const char *
at(const char *dir, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static int i;
	char *p = bufs[i++ % 8];
	int n = snprintf(p, PATH_MAX, "%s/%s", dir, rel);

	cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, rel);
	return p;
}

static void
put(const char *path, const char *data)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void
mkd(const char *path)
{
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path,
	             strerror(errno));
}

static void
start(void)
{
	struct err e;

	err_clear(&e);
	wt = watcher_new(lp, root, on_event, NULL, &e);
	cr_assert_not_null(wt, "watcher_new: %s", e.message);
	cr_assert_eq(watcher_scan(wt, &e), 0, "watcher_scan: %s", e.message);
}

static int
find_from(size_t from, enum watcher_kind kind, const char *path)
{
	size_t i;

	for (i = from; i < nrecs; i++)
		if (recs[i].kind == kind &&
		    (path == NULL ||
		     (recs[i].path != NULL && strcmp(recs[i].path, path) == 0)))
			return (int)i;
	return -1;
}

static int
find(enum watcher_kind kind, const char *path)
{
	return find_from(0, kind, path);
}

static size_t
count(enum watcher_kind kind, const char *path)
{
	size_t i, n = 0;

	for (i = 0; i < nrecs; i++)
		if (recs[i].kind == kind &&
		    (path == NULL ||
		     (recs[i].path != NULL && strcmp(recs[i].path, path) == 0)))
			n++;
	return n;
}

static void
run_for(int ms)
{
	uint64_t end = loop_now_ms() + (uint64_t)ms;

	while (loop_now_ms() < end)
		cr_assert_eq(loop_run_once(lp, 5, NULL), 0);
}

/* Runs the loop until kind/path was seen at or after index from (returns
 * its index) or 5 s passed (-1). */
static int
wait_from(size_t from, enum watcher_kind kind, const char *path)
{
	uint64_t end = loop_now_ms() + 5000;
	int i;

	for (;;) {
		i = find_from(from, kind, path);
		if (i >= 0 || loop_now_ms() >= end)
			return i;
		cr_assert_eq(loop_run_once(lp, 10, NULL), 0);
	}
}

static int
wait_for(enum watcher_kind kind, const char *path)
{
	return wait_from(0, kind, path);
}

static int
any_path_prefix(size_t from, const char *prefix)
{
	size_t i, n = strlen(prefix);

	for (i = from; i < nrecs; i++)
		if ((recs[i].path != NULL &&
		     strncmp(recs[i].path, prefix, n) == 0) ||
		    (recs[i].old_path != NULL &&
		     recs[i].kind != WATCHER_RENAME &&
		     strncmp(recs[i].old_path, prefix, n) == 0))
			return 1;
	return 0;
}

Test(watcher, scan_reports_files_not_symlinks)
{
	mkd(at(root, "x"));
	mkd(at(root, "x/y"));
	put(at(root, "a.jpg"), "a");
	put(at(root, "x/b.jpg"), "b");
	put(at(root, "x/y/c.jpg"), "c");
	mkd(at(outside, "od"));
	put(at(outside, "o.jpg"), "o");
	put(at(outside, "od/p.jpg"), "p");
	cr_assert_eq(symlink("a.jpg", at(root, "lfile")), 0);
	cr_assert_eq(symlink("x", at(root, "ldir")), 0);
	cr_assert_eq(symlink(at(outside, "o.jpg"), at(root, "lout")), 0);
	cr_assert_eq(symlink(at(outside, "od"), at(root, "x/lodir")), 0);
	cr_assert_eq(symlink("nowhere", at(root, "dangling")), 0);
	cr_assert_eq(mkfifo(at(root, "fifo"), 0644), 0);

	start();
	cr_assert_eq(nrecs, 3, "got %zu events", nrecs);
	cr_assert_eq(count(WATCHER_FILE, "a.jpg"), 1);
	cr_assert_eq(count(WATCHER_FILE, "x/b.jpg"), 1);
	cr_assert_eq(count(WATCHER_FILE, "x/y/c.jpg"), 1);
	cr_assert_eq(watcher_count(wt), 3);
	cr_assert_str_eq(watcher_backend(), "inotify");
	cr_assert_null(watcher_degraded(wt));
	cr_assert_null(watcher_last_error(wt));

	/* A second scan reports everything again and watches nothing new. */
	cr_assert_eq(watcher_scan(wt, NULL), 0);
	cr_assert_eq(nrecs, 6);
	cr_assert_eq(watcher_count(wt), 3);
}

/* A scan in steps reports about budget files a step, even in the middle
 * of a directory, every file once in all, and sweeps only at its end. */
Test(watcher, scan_in_steps_pauses_and_resumes)
{
	char rel[64];
	int i, steps = 0, more;
	size_t before;
	struct err e;

	for (i = 0; i < 3; i++) {
		snprintf(rel, sizeof(rel), "d%d", i);
		mkd(at(root, rel));
	}
	for (i = 0; i < 300; i++) {
		snprintf(rel, sizeof(rel), "d%d/f%03d.jpg", i % 3, i);
		put(at(root, rel), "x");
	}
	err_clear(&e);
	wt = watcher_new(lp, root, on_event, NULL, &e);
	cr_assert_not_null(wt, "watcher_new: %s", e.message);
	cr_assert_eq(watcher_scan_begin(wt, &e), 0, "%s", e.message);
	cr_assert(watcher_scanning(wt));
	do {
		before = nrecs;
		more = watcher_scan_step(wt, 40);
		cr_assert_leq(nrecs - before, 40, "step %d: %zu files", steps,
		              nrecs - before);
		steps++;
	} while (more == 1 && steps < 100);
	cr_assert_eq(more, 0);
	cr_assert_geq(steps, 8, "300 files in steps of 40: %d steps", steps);
	cr_assert_not(watcher_scanning(wt));
	cr_assert_eq(count(WATCHER_FILE, NULL), 300);
	for (i = 0; i < 300; i++) {
		snprintf(rel, sizeof(rel), "d%d/f%03d.jpg", i % 3, i);
		cr_assert_eq(count(WATCHER_FILE, rel), 1, "%s", rel);
	}
	cr_assert_eq(watcher_count(wt), 4);
	/* Watched as the scan went: a file written now is an event. */
	put(at(root, "d1/new.jpg"), "n");
	cr_assert_geq(wait_for(WATCHER_FILE, "d1/new.jpg"), 0);
}

/* A directory renamed while the scan is paused before reaching it keeps
 * its watch (the end of the scan sweeps only what it no longer found). */
Test(watcher, scan_paused_keeps_a_directory_moved_meanwhile)
{
	char rel[64];
	int i, more = 1, steps = 0;
	struct err e;

	mkd(at(root, "a"));
	mkd(at(root, "b"));
	for (i = 0; i < 50; i++) {
		snprintf(rel, sizeof(rel), "a/f%02d.jpg", i);
		put(at(root, rel), "x");
		snprintf(rel, sizeof(rel), "b/g%02d.jpg", i);
		put(at(root, rel), "y");
	}
	start(); /* a first scan watches a and b */
	err_clear(&e);
	cr_assert_eq(watcher_scan_begin(wt, &e), 0, "%s", e.message);
	cr_assert_eq(watcher_scan_step(wt, 10), 1);
	/* The second scan is in the middle of one of them; the other one,
	 * watched by the first, it has not reached yet: move both. */
	cr_assert_eq(rename(at(root, "a"), at(root, "a2")), 0);
	cr_assert_eq(rename(at(root, "b"), at(root, "b2")), 0);
	run_for(100);
	while (more == 1 && steps++ < 100)
		more = watcher_scan_step(wt, 10);
	cr_assert_eq(more, 0);
	run_for(50);
	cr_assert_eq(watcher_count(wt), 3, "the root, a2 and b2 stay watched");
	put(at(root, "a2/late.jpg"), "l");
	put(at(root, "b2/late.jpg"), "l");
	cr_assert_geq(wait_for(WATCHER_FILE, "a2/late.jpg"), 0);
	cr_assert_geq(wait_for(WATCHER_FILE, "b2/late.jpg"), 0);
}

Test(watcher, new_root_must_be_a_directory)
{
	struct err e;

	put(at(base, "file"), "x");
	err_clear(&e);
	cr_assert_null(watcher_new(lp, at(base, "file"), on_event, NULL, &e));
	cr_assert_eq(e.kind, ERR_INVALID);
	cr_assert_null(
	    watcher_new(lp, at(base, "missing"), on_event, NULL, &e));
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_eq(e.sys_errno, ENOENT);
}

Test(watcher, write_and_close_is_file)
{
	start();
	put(at(root, "new.jpg"), "data");
	cr_assert_geq(wait_for(WATCHER_FILE, "new.jpg"), 0);
}

Test(watcher, modify_while_open_then_close)
{
	int fd, m, f;

	start();
	fd = open(at(root, "m.jpg"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "abc", 3), 3);
	m = wait_for(WATCHER_MODIFIED, "m.jpg");
	cr_assert_geq(m, 0);
	cr_assert_eq(find(WATCHER_FILE, "m.jpg"), -1, "FILE before close");
	close(fd);
	f = wait_for(WATCHER_FILE, "m.jpg");
	cr_assert_gt(f, m);
}

Test(watcher, delete_is_gone)
{
	int i;

	put(at(root, "a.jpg"), "a");
	mkd(at(root, "d"));
	mkd(at(root, "d/e"));
	put(at(root, "d/e/f.jpg"), "f");
	start();
	cr_assert_eq(watcher_count(wt), 3);
	cr_assert_eq(unlink(at(root, "a.jpg")), 0);
	i = wait_for(WATCHER_GONE, "a.jpg");
	cr_assert_geq(i, 0);
	cr_assert_eq(recs[i].is_dir, 0);
	rm_tree(at(root, "d"));
	i = wait_for(WATCHER_GONE, "d");
	cr_assert_geq(i, 0);
	cr_assert_eq(recs[i].is_dir, 1);
	cr_assert_geq(find(WATCHER_GONE, "d/e/f.jpg"), 0);
	run_for(50);
	cr_assert_eq(watcher_count(wt), 1);
}

Test(watcher, rename_within_root_is_one_rename)
{
	size_t n0;
	int i;

	put(at(root, "a.jpg"), "a");
	mkd(at(root, "sub"));
	start();
	n0 = nrecs;
	cr_assert_eq(rename(at(root, "a.jpg"), at(root, "sub/b.jpg")), 0);
	i = wait_for(WATCHER_RENAME, "sub/b.jpg");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(recs[i].old_path, "a.jpg");
	cr_assert_eq(recs[i].is_dir, 0);
	run_for(100);
	cr_assert_eq(nrecs, n0 + 1, "%zu events, not one", nrecs - n0);
}

Test(watcher, move_out_is_gone_after_the_pairing_delay)
{
	uint64_t t0;
	size_t n0;
	int i;

	put(at(root, "a.jpg"), "a");
	start();
	n0 = nrecs;
	t0 = loop_now_ms();
	cr_assert_eq(rename(at(root, "a.jpg"), at(outside, "a.jpg")), 0);
	i = wait_for(WATCHER_GONE, "a.jpg");
	cr_assert_geq(i, 0);
	cr_assert_eq(recs[i].is_dir, 0);
	cr_assert_geq(recs[i].at - t0, 20, "GONE after %d ms",
	              (int)(recs[i].at - t0));
	run_for(100);
	cr_assert_eq(nrecs, n0 + 1);
}

Test(watcher, move_out_then_replace_keeps_order)
{
	int g, f;

	put(at(root, "a.jpg"), "a");
	start();
	/* Both land in one read: GONE must not come after the new FILE. */
	cr_assert_eq(rename(at(root, "a.jpg"), at(outside, "a.jpg")), 0);
	put(at(root, "a.jpg"), "new");
	f = wait_from(1, WATCHER_FILE, "a.jpg");
	cr_assert_geq(f, 0);
	run_for(100);
	g = find_from(1, WATCHER_GONE, "a.jpg");
	cr_assert_geq(g, 0);
	cr_assert_lt(g, f);
	cr_assert_eq(find_from((size_t)f + 1, WATCHER_GONE, "a.jpg"), -1);
}

Test(watcher, move_in_is_file_but_not_a_symlink)
{
	size_t n0;

	put(at(outside, "in.jpg"), "in");
	cr_assert_eq(symlink(at(outside, "in.jpg"), at(outside, "ln")), 0);
	start();
	n0 = nrecs;
	cr_assert_eq(rename(at(outside, "ln"), at(root, "ln")), 0);
	cr_assert_eq(symlink("in.jpg", at(root, "ln2")), 0);
	cr_assert_eq(rename(at(root, "ln2"), at(root, "ln3")), 0);
	cr_assert_eq(rename(at(outside, "in.jpg"), at(root, "in.jpg")), 0);
	cr_assert_geq(wait_for(WATCHER_FILE, "in.jpg"), 0);
	run_for(100);
	/* A symlink is never a file; where it lands is gone (it could have
	 * replaced one). */
	cr_assert_eq(find_from(n0, WATCHER_FILE, "ln"), -1);
	cr_assert_eq(find_from(n0, WATCHER_FILE, "ln3"), -1);
	cr_assert_eq(find_from(n0, WATCHER_FILE, "ln2"), -1);
}

/* A symlink or a FIFO renamed over a file: the file is gone. */
Test(watcher, symlink_or_fifo_renamed_over_a_file_is_gone)
{
	size_t n0;

	put(at(root, "a.jpg"), "a");
	put(at(root, "b.jpg"), "b");
	cr_assert_eq(symlink("/etc/passwd", at(outside, "ln")), 0);
	start();
	n0 = nrecs;
	/* From outside the root, and from inside it. */
	cr_assert_eq(rename(at(outside, "ln"), at(root, "a.jpg")), 0);
	cr_assert_eq(mkfifo(at(root, "f.tmp"), 0644), 0);
	cr_assert_eq(rename(at(root, "f.tmp"), at(root, "b.jpg")), 0);
	cr_assert_geq(wait_for(WATCHER_GONE, "a.jpg"), 0);
	cr_assert_geq(wait_for(WATCHER_GONE, "b.jpg"), 0);
	cr_assert_eq(find_from(n0, WATCHER_FILE, "a.jpg"), -1);
	cr_assert_eq(find_from(n0, WATCHER_FILE, "b.jpg"), -1);
}

Test(watcher, hard_link_in_is_file)
{
	put(at(outside, "h.jpg"), "h");
	start();
	cr_assert_eq(link(at(outside, "h.jpg"), at(root, "h.jpg")), 0);
	cr_assert_geq(wait_for(WATCHER_FILE, "h.jpg"), 0);
}

Test(watcher, mkdir_p_then_burst_loses_nothing)
{
	char name[64];
	uint64_t end;
	int i, missing;

	start();
	mkd(at(root, "a"));
	mkd(at(root, "a/b"));
	mkd(at(root, "a/b/c"));
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "a/b/c/f%02d.jpg", i);
		put(at(root, name), name);
	}
	end = loop_now_ms() + 5000;
	do {
		cr_assert_eq(loop_run_once(lp, 10, NULL), 0);
		missing = 0;
		for (i = 0; i < 50; i++) {
			snprintf(name, sizeof(name), "a/b/c/f%02d.jpg", i);
			if (find(WATCHER_FILE, name) < 0)
				missing++;
		}
	} while (missing > 0 && loop_now_ms() < end);
	cr_assert_eq(missing, 0, "%d files never reported", missing);
	cr_assert_eq(watcher_count(wt), 4);
	/* And the new directories are watched. */
	put(at(root, "a/b/c/later.jpg"), "l");
	cr_assert_geq(wait_for(WATCHER_FILE, "a/b/c/later.jpg"), 0);
}

Test(watcher, directory_rename_rewrites_paths)
{
	size_t n0, n1;
	int i;

	mkd(at(root, "a"));
	mkd(at(root, "a/b"));
	mkd(at(root, "a/b/c"));
	put(at(root, "a/b/c/old.jpg"), "o");
	start();
	n0 = nrecs;
	cr_assert_eq(rename(at(root, "a"), at(root, "z")), 0);
	put(at(root, "z/b/c/new.jpg"), "n");
	cr_assert_geq(wait_for(WATCHER_FILE, "z/b/c/new.jpg"), 0);
	i = find(WATCHER_RENAME, "z");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(recs[i].old_path, "a");
	cr_assert_eq(recs[i].is_dir, 1);

	/* Deeper, and across parents. */
	n1 = nrecs;
	cr_assert_eq(rename(at(root, "z/b"), at(root, "z/q")), 0);
	put(at(root, "z/q/c/n2.jpg"), "n");
	cr_assert_geq(wait_for(WATCHER_FILE, "z/q/c/n2.jpg"), 0);
	/* Watched before the move, or the kernel has nowhere to queue the
	 * MOVED_TO (the walk of z2 would then find c: a new directory). */
	mkd(at(root, "z2"));
	run_for(30);
	cr_assert_eq(rename(at(root, "z/q/c"), at(root, "z2/c")), 0);
	put(at(root, "z2/c/n3.jpg"), "n");
	cr_assert_geq(wait_for(WATCHER_FILE, "z2/c/n3.jpg"), 0);
	i = find(WATCHER_RENAME, "z2/c");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(recs[i].old_path, "z/q/c");
	cr_assert(!any_path_prefix(n0, "a/"), "an event under the old name");
	cr_assert(!any_path_prefix(n1, "z/b/"), "an event under the old name");
	cr_assert_eq(watcher_count(wt), 5);
}

Test(watcher, move_directory_out_is_gone)
{
	size_t n0;
	int i;

	mkd(at(root, "a"));
	mkd(at(root, "a/b"));
	put(at(root, "a/b/x.jpg"), "x");
	start();
	cr_assert_eq(watcher_count(wt), 3);
	n0 = nrecs;
	cr_assert_eq(rename(at(root, "a"), at(outside, "a")), 0);
	i = wait_for(WATCHER_GONE, "a");
	cr_assert_geq(i, 0);
	cr_assert_eq(recs[i].is_dir, 1);
	put(at(outside, "a/b/late.jpg"), "l");
	run_for(100);
	cr_assert_eq(nrecs, n0 + 1);
	cr_assert_eq(watcher_count(wt), 1);
}

Test(watcher, move_directory_out_then_make_it_again)
{
	int g, f;

	mkd(at(root, "a"));
	put(at(root, "a/x.jpg"), "x");
	start();
	/* One read: GONE a must come before anything under the new a. */
	cr_assert_eq(rename(at(root, "a"), at(outside, "a")), 0);
	mkd(at(root, "a"));
	put(at(root, "a/y.jpg"), "y");
	f = wait_for(WATCHER_FILE, "a/y.jpg");
	cr_assert_geq(f, 0);
	g = find(WATCHER_GONE, "a");
	cr_assert_geq(g, 0);
	cr_assert_lt(g, f);
	cr_assert_eq(recs[g].is_dir, 1);
	cr_assert_eq(watcher_count(wt), 2);
	/* The old one is forgotten, the new one watched. */
	put(at(outside, "a/old.jpg"), "o");
	put(at(root, "a/z.jpg"), "z");
	cr_assert_geq(wait_for(WATCHER_FILE, "a/z.jpg"), 0);
	run_for(50);
	cr_assert_eq(find(WATCHER_FILE, "a/old.jpg"), -1);
	cr_assert_eq(count(WATCHER_GONE, "a"), 1);
}

Test(watcher, scan_from_the_callback_mid_walk)
{
	char name[64];
	int i;

	start();
	scan_on_file = 1;
	mkd(at(root, "a"));
	mkd(at(root, "a/b"));
	mkd(at(root, "a/c"));
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a/%c/f%d.jpg", 'b' + i % 2, i);
		put(at(root, name), "f");
	}
	cr_assert_geq(wait_for(WATCHER_FILE, "a/c/f9.jpg"), 0);
	run_for(50);
	cr_assert_eq(scan_on_file, 0);
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a/%c/f%d.jpg", 'b' + i % 2, i);
		cr_assert_geq(find(WATCHER_FILE, name), 0, "%s", name);
	}
	cr_assert_eq(watcher_count(wt), 4);
	put(at(root, "a/b/late.jpg"), "l");
	cr_assert_geq(wait_for(WATCHER_FILE, "a/b/late.jpg"), 0);
}

Test(watcher, move_directory_in_reports_its_files)
{
	mkd(at(outside, "d"));
	mkd(at(outside, "d/e"));
	put(at(outside, "d/g.jpg"), "g");
	put(at(outside, "d/e/f.jpg"), "f");
	cr_assert_eq(symlink("f.jpg", at(outside, "d/e/lnk")), 0);
	start();
	cr_assert_eq(rename(at(outside, "d"), at(root, "d")), 0);
	cr_assert_geq(wait_for(WATCHER_FILE, "d/e/f.jpg"), 0);
	cr_assert_geq(wait_for(WATCHER_FILE, "d/g.jpg"), 0);
	cr_assert_eq(find(WATCHER_FILE, "d/e/lnk"), -1);
	cr_assert_eq(watcher_count(wt), 3);
	put(at(root, "d/e/new.jpg"), "n");
	cr_assert_geq(wait_for(WATCHER_FILE, "d/e/new.jpg"), 0);
}

Test(watcher, scan_forgets_directories_that_vanished)
{
	mkd(at(root, "a"));
	mkd(at(root, "a/b"));
	start();
	cr_assert_eq(watcher_count(wt), 3);
	/* Moved away while no event is read, as after an overflow. */
	cr_assert_eq(rename(at(root, "a"), at(outside, "a")), 0);
	cr_assert_eq(watcher_scan(wt, NULL), 0);
	cr_assert_eq(watcher_count(wt), 1);
	cr_assert_geq(wait_for(WATCHER_GONE, "a"), 0);
	put(at(outside, "a/b/late.jpg"), "l");
	run_for(50);
	cr_assert_eq(find(WATCHER_FILE, NULL), -1);
	cr_assert_eq(watcher_count(wt), 1);
}

Test(watcher, queue_overflow_is_rescan)
{
	char name[64];
	long max = 0, i, n;
	FILE *f;
	int fd, r;

	f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 0;
		fclose(f);
	}
	if (max <= 0 || max > 100000)
		SKIP("fs.inotify.max_queued_events is %ld: too many "
		     "events to overflow it in a unit test",
		     max);
	mkd(at(root, "flood"));
	start();
	/* Each file queues CREATE and CLOSE_WRITE. */
	n = max / 2 + 1000;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "flood/f%ld", i);
		fd = open(at(root, name), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		cr_assert_geq(fd, 0);
		close(fd);
	}
	r = wait_for(WATCHER_RESCAN, NULL);
	cr_assert_geq(r, 0);
	cr_assert_not_null(recs[r].reason);
	cr_assert(strstr(recs[r].reason, "max_queued_events") != NULL, "%s",
	          recs[r].reason);
	cr_assert_eq(watcher_scan(wt, NULL), 0);
	cr_assert_eq(watcher_count(wt), 2);
}

Test(watcher, root_deleted_is_root_gone)
{
	struct err e;
	size_t n0;
	int i;

	mkd(at(root, "sub"));
	put(at(root, "sub/a.jpg"), "a");
	start();
	rm_tree(root);
	i = wait_for(WATCHER_ROOT_GONE, NULL);
	cr_assert_geq(i, 0);
	cr_assert_not_null(recs[i].reason);
	cr_assert_eq(watcher_count(wt), 0);
	run_for(50);
	cr_assert_eq(count(WATCHER_ROOT_GONE, NULL), 1);

	err_clear(&e);
	cr_assert_eq(watcher_scan(wt, &e), -1);
	cr_assert_eq(e.sys_errno, ENOENT);

	/* Made again: a scan starts afresh. */
	mkd(root);
	put(at(root, "b.jpg"), "b");
	n0 = nrecs;
	cr_assert_eq(watcher_scan(wt, NULL), 0);
	cr_assert_geq(find_from(n0, WATCHER_FILE, "b.jpg"), 0);
	cr_assert_eq(watcher_count(wt), 1);
	put(at(root, "c.jpg"), "c");
	cr_assert_geq(wait_for(WATCHER_FILE, "c.jpg"), 0);
}

Test(watcher, root_moved_is_root_gone)
{
	start();
	cr_assert_eq(rename(root, at(outside, "moved")), 0);
	cr_assert_geq(wait_for(WATCHER_ROOT_GONE, NULL), 0);
	cr_assert_eq(watcher_count(wt), 0);
}

Test(watcher, odd_names_are_exact_bytes)
{
	int i;

	put(at(root, "pre\n\xff.jpg"), "p");
	start();
	cr_assert_geq(find(WATCHER_FILE, "pre\n\xff.jpg"), 0);
	put(at(root, "run\n\xfe\t.jpg"), "r");
	cr_assert_geq(wait_for(WATCHER_FILE, "run\n\xfe\t.jpg"), 0);
	cr_assert_eq(rename(at(root, "run\n\xfe\t.jpg"), at(root, "ren\xff\n")),
	             0);
	i = wait_for(WATCHER_RENAME, "ren\xff\n");
	cr_assert_geq(i, 0);
	cr_assert_str_eq(recs[i].old_path, "run\n\xfe\t.jpg");
	mkd(at(root, "d\n\xff"));
	put(at(root, "d\n\xff/f\\.jpg"), "f");
	cr_assert_geq(wait_for(WATCHER_FILE, "d\n\xff/f\\.jpg"), 0);
}

/* Makes depth levels of name under dir; returns an fd on the last. */
static int
make_chain(const char *dir, const char *name, int depth)
{
	int fd, nfd, i;

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	for (i = 0; i < depth; i++) {
		cr_assert_eq(mkdirat(fd, name, 0755), 0, "mkdirat: %s",
		             strerror(errno));
		nfd = openat(fd, name, O_RDONLY | O_DIRECTORY);
		cr_assert_geq(nfd, 0);
		close(fd);
		fd = nfd;
	}
	return fd;
}

static void
put_at(int dfd, const char *name)
{
	int fd;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "openat %s: %s", name, strerror(errno));
	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
}

Test(watcher, paths_beyond_path_max)
{
	char name[251], *want;
	size_t len;
	int fd, ofd, i;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	fd = make_chain(root, name, 20);
	put_at(fd, "deep.jpg");
	len = 20 * 251 + strlen("deep.jpg");
	want = malloc(len + 64);
	cr_assert_not_null(want);
	want[0] = '\0';
	for (i = 0; i < 20; i++) {
		strcat(want, name);
		strcat(want, "/");
	}
	len = strlen(want);
	cr_assert_gt(len, PATH_MAX);

	start();
	strcpy(want + len, "deep.jpg");
	cr_assert_geq(find(WATCHER_FILE, want), 0);
	cr_assert_eq(watcher_count(wt), 21);

	put_at(fd, "late.jpg");
	strcpy(want + len, "late.jpg");
	cr_assert_geq(wait_for(WATCHER_FILE, want), 0);

	cr_assert_eq(mkdirat(fd, "sub", 0755), 0);
	put_at(fd, "sub/s.jpg");
	strcpy(want + len, "sub/s.jpg");
	cr_assert_geq(wait_for(WATCHER_FILE, want), 0);

	/* Moved in and hard-linked: both are looked at with lstat. */
	put(at(outside, "m.jpg"), "m");
	ofd = open(outside, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(ofd, 0);
	cr_assert_eq(renameat(ofd, "m.jpg", fd, "m.jpg"), 0);
	strcpy(want + len, "m.jpg");
	cr_assert_geq(wait_for(WATCHER_FILE, want), 0);
	put(at(outside, "h.jpg"), "h");
	cr_assert_eq(linkat(ofd, "h.jpg", fd, "h.jpg", 0), 0);
	strcpy(want + len, "h.jpg");
	cr_assert_geq(wait_for(WATCHER_FILE, want), 0);
	cr_assert_eq(symlinkat("m.jpg", ofd, "sl"), 0);
	cr_assert_eq(renameat(ofd, "sl", fd, "sl"), 0);
	run_for(50);
	strcpy(want + len, "sl");
	cr_assert_eq(find(WATCHER_FILE, want), -1);
	close(ofd);
	close(fd);
	free(want);
}

Test(watcher, depth_is_bounded)
{
	const char *err;
	int fd, top, i;
	size_t n0;

	top = open(root, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(top, 0);
	fd = make_chain(root, "d", 3);
	put_at(fd, "shallow.jpg");
	close(fd);
	fd = make_chain(root, "e", 4100);
	put_at(fd, "bottom.jpg");
	close(fd);
	close(top);

	start();
	cr_assert_geq(find(WATCHER_FILE, "d/d/d/shallow.jpg"), 0);
	for (i = 0; i < (int)nrecs; i++)
		cr_assert(strstr(recs[i].path, "bottom") == NULL);
	err = watcher_last_error(wt);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "4096") != NULL, "%s", err);
	cr_assert_null(watcher_degraded(wt));
	cr_assert_eq(watcher_count(wt), 1 + 3 + 4096);

	/* At the limit, files are reported; a new directory below it is not
	 * watched. */
	n0 = nrecs;
	fd = open(root, O_RDONLY | O_DIRECTORY);
	for (i = 0; i < 4096 && fd >= 0; i++) {
		top = openat(fd, "e", O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = top;
	}
	cr_assert_geq(fd, 0);
	cr_assert_eq(mkdirat(fd, "new", 0755), 0);
	put_at(fd, "new/x.jpg");
	put_at(fd, "at4096.jpg");
	i = wait_from(n0, WATCHER_FILE, NULL);
	cr_assert_geq(i, 0);
	cr_assert(strstr(recs[i].path, "/at4096.jpg") != NULL);
	cr_assert_eq(strlen(recs[i].path), 4096 * 2 + strlen("at4096.jpg"));
	run_for(50);
	for (i = (int)n0; i < (int)nrecs; i++)
		cr_assert(strstr(recs[i].path, "x.jpg") == NULL);
	cr_assert_eq(watcher_count(wt), 1 + 3 + 4096);
	close(fd);
}

Test(watcher, permission_denied_is_skipped)
{
	const char *err;
	int saved;

	if (geteuid() == 0) {
		/* Root reads everything: be somebody else (this test runs in
		 * its own process). */
		if (chown(base, 65534, 65534) == -1 ||
		    chown(root, 65534, 65534) == -1 ||
		    chown(outside, 65534, 65534) == -1 || setgid(65534) == -1 ||
		    setuid(65534) == -1) {
			saved = errno;
			SKIP("cannot drop privileges: %s", strerror(saved));
		}
		/* Else /proc/self/fd stays root's. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	mkd(at(root, "ok"));
	mkd(at(root, "locked"));
	put(at(root, "ok/a.jpg"), "a");
	put(at(root, "locked/b.jpg"), "b");
	cr_assert_eq(chmod(at(root, "locked"), 0), 0);
	start();
	cr_assert_geq(find(WATCHER_FILE, "ok/a.jpg"), 0);
	cr_assert_eq(find(WATCHER_FILE, "locked/b.jpg"), -1);
	err = watcher_last_error(wt);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "locked") != NULL, "%s", err);
	cr_assert(strstr(err, strerror(EACCES)) != NULL, "%s", err);
	cr_assert_null(watcher_degraded(wt));
	cr_assert_eq(watcher_count(wt), 2);
	cr_assert_eq(chmod(at(root, "locked"), 0755), 0);
}

static int
write_file(const char *path, const char *text)
{
	int fd, r;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
	close(fd);
	return r;
}

static int
set_watch_limit(const char *n)
{
	return write_file("/proc/sys/user/max_inotify_watches", n);
}

/* Runs in a forked child, without Criterion's asserts: the failing line
 * (or "skip: why") goes to the pipe. */
#define LIMIT_CHECK(c)                                                         \
	do {                                                                   \
		if (!(c)) {                                                    \
			dprintf(out, "line %d: %s", __LINE__, #c);             \
			return 1;                                              \
		}                                                              \
	} while (0)

static int
limit_scenario(int out)
{
	const char *why;
	char dir[8], file[16];
	int i, fd;

	/* A user namespace has its own inotify watch limit: the test hits
	 * one without touching the machine's. */
	if (unshare(CLONE_NEWUSER) == -1 ||
	    write_file("/proc/self/uid_map", "0 0 1") == -1 ||
	    set_watch_limit("3") == -1) {
		dprintf(out,
		        "skip: no user namespace with its own watch "
		        "limit: %s",
		        strerror(errno));
		return 2;
	}
	for (i = 0; i < 5; i++) {
		snprintf(dir, sizeof(dir), "%c", 'a' + i);
		snprintf(file, sizeof(file), "%c/f.jpg", 'a' + i);
		LIMIT_CHECK(mkdir(at(root, dir), 0755) == 0);
		fd = open(at(root, file), O_WRONLY | O_CREAT, 0644);
		LIMIT_CHECK(fd >= 0);
		close(fd);
	}
	lp = loop_new(NULL);
	LIMIT_CHECK(lp != NULL);
	wt = watcher_new(lp, root, on_event, NULL, NULL);
	LIMIT_CHECK(wt != NULL);
	LIMIT_CHECK(watcher_scan(wt, NULL) == 0);
	why = watcher_degraded(wt);
	LIMIT_CHECK(why != NULL);
	LIMIT_CHECK(strstr(why, "cannot watch ") != NULL);
	LIMIT_CHECK(strstr(why, "raise fs.inotify.max_user_watches") != NULL);
	LIMIT_CHECK(watcher_count(wt) == 3);
	/* Every file is still reported, and no RESCAN from a scan. */
	LIMIT_CHECK(count(WATCHER_FILE, NULL) == 5);
	LIMIT_CHECK(find(WATCHER_RESCAN, NULL) == -1);

	LIMIT_CHECK(set_watch_limit("100") == 0);
	LIMIT_CHECK(watcher_scan(wt, NULL) == 0);
	LIMIT_CHECK(watcher_degraded(wt) == NULL);
	LIMIT_CHECK(watcher_count(wt) == 6);

	/* After start-up, the engine also hears of it. */
	LIMIT_CHECK(set_watch_limit("6") == 0);
	LIMIT_CHECK(mkdir(at(root, "new"), 0755) == 0);
	fd = open(at(root, "new/x.jpg"), O_WRONLY | O_CREAT, 0644);
	LIMIT_CHECK(fd >= 0);
	close(fd);
	i = wait_for(WATCHER_RESCAN, NULL);
	LIMIT_CHECK(i >= 0);
	LIMIT_CHECK(strstr(recs[i].reason, "max_user_watches") != NULL);
	LIMIT_CHECK(find(WATCHER_FILE, "new/x.jpg") >= 0);
	LIMIT_CHECK(watcher_degraded(wt) != NULL);
	watcher_free(wt);
	loop_free(lp);
	return 0;
}

Test(watcher, watch_limit_degrades_and_recovers)
{
	char msg[512];
	ssize_t n;
	pid_t pid;
	int fds[2], status;

	/* unshare(CLONE_NEWUSER) needs a single-threaded process. */
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(limit_scenario(fds[1]));
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child crashed");
	if (WEXITSTATUS(status) == 2)
		SKIP("%s", msg);
	cr_assert_eq(WEXITSTATUS(status), 0, "%s", msg);
}

Test(watcher, free_from_the_callback)
{
	struct err e;

	put(at(root, "a.jpg"), "a");
	put(at(root, "b.jpg"), "b");
	err_clear(&e);
	wt = watcher_new(lp, root, on_event, NULL, &e);
	cr_assert_not_null(wt);
	free_on_file = 1;
	cr_assert_eq(watcher_scan(wt, &e), 0);
	cr_assert_null(wt);
	cr_assert_eq(nrecs, 1);

	wt = watcher_new(lp, root, on_event, NULL, &e);
	cr_assert_not_null(wt);
	cr_assert_eq(watcher_scan(wt, &e), 0);
	free_on_file = 1;
	put(at(root, "c.jpg"), "c");
	put(at(root, "d.jpg"), "d");
	cr_assert_geq(wait_for(WATCHER_FILE, "c.jpg"), 0);
	cr_assert_null(wt);
	run_for(50);
	cr_assert_eq(find(WATCHER_FILE, "d.jpg"), -1);
}
