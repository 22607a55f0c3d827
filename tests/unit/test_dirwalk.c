#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirwalk.h"

static char top[64];
static char seen[64][1024];
static size_t nseen;

static int
open_top(void)
{
	int fd = open(top, O_RDONLY | O_DIRECTORY);

	cr_assert_geq(fd, 0);
	return fd;
}

static void
put_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT, 0644);

	cr_assert_geq(fd, 0, "%s", name);
	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
}

static int
record(const char *path, size_t len, const struct stat *st, void *arg)
{
	cr_assert_eq(strlen(path), len);
	cr_assert(S_ISREG(st->st_mode));
	if (nseen < 64)
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", path);
	return arg != NULL && nseen >= *(size_t *)arg;
}

static int
was_seen(const char *path)
{
	size_t i;

	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], path) == 0)
			return 1;
	return 0;
}

static void
setup(void)
{
	int fd;

	snprintf(top, sizeof(top), "/tmp/imgsync-dirwalk-XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	nseen = 0;
	fd = open_top();
	cr_assert_eq(mkdirat(fd, "a", 0755), 0);
	cr_assert_eq(mkdirat(fd, "a/b", 0755), 0);
	put_at(fd, "top.jpg");
	put_at(fd, "a/b/deep.jpg");
	cr_assert_eq(symlinkat("/etc", fd, "a/etc"), 0);
	cr_assert_eq(symlinkat("top.jpg", fd, "link.jpg"), 0);
	cr_assert_eq(mkfifoat(fd, "fifo", 0644), 0);
	close(fd);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(dirwalk, .init = setup, .fini = teardown);

Test(dirwalk, regular_files_only_no_symlink_followed)
{
	cr_assert_eq(dirwalk(open_top(), "", 1, record, NULL), 0);
	cr_assert_eq(nseen, 2);
	cr_assert(was_seen("top.jpg"));
	cr_assert(was_seen("a/b/deep.jpg"));
}

Test(dirwalk, paths_carry_the_start)
{
	int fd = open_top(), sub = openat(fd, "a", O_RDONLY | O_DIRECTORY);

	close(fd);
	cr_assert_geq(sub, 0);
	cr_assert_eq(dirwalk(sub, "moved/a", 0, record, NULL), 0);
	cr_assert_eq(nseen, 1);
	cr_assert_str_eq(seen[0], "moved/a/b/deep.jpg");
}

Test(dirwalk, the_callback_stops_it)
{
	size_t one = 1;

	cr_assert_eq(dirwalk(open_top(), "", 0, record, &one), 1);
	cr_assert_eq(nseen, 1);
}

Test(dirwalk, stops_past_its_depth)
{
	int fd = open_top(), next, i;

	for (i = 0; i < DIRWALK_MAX_DEPTH + 2; i++) {
		cr_assert_eq(mkdirat(fd, "d", 0755), 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		cr_assert_geq(next, 0);
		if (i == DIRWALK_MAX_DEPTH - 2)
			put_at(next, "in.jpg");
		close(fd);
		fd = next;
	}
	put_at(fd, "out.jpg");
	close(fd);
	cr_assert_eq(dirwalk(open_top(), "", 0, record, NULL), 0);
	cr_assert_eq(nseen, 3, "%zu", nseen);
	for (i = 0; i < (int)nseen; i++)
		cr_assert(strstr(seen[i], "out.jpg") == NULL, "%s", seen[i]);
}
