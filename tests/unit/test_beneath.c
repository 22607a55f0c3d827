#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "beneath.h"
#include "no_openat2.h"

/* A tree: root/a/b/c.jpg, root/link -> outside (a directory holding
 * secret.jpg), root/a/flink -> outside/secret.jpg. */
static char top[64];
static char path[256];
static int rootfd = -1;

static const char *
at(const char *rel)
{
	snprintf(path, sizeof(path), "%s/%s", top, rel);
	return path;
}

static void
put(const char *rel, const char *text)
{
	FILE *f = fopen(at(rel), "w");

	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void
setup(void)
{
	char target[128];

	snprintf(top, sizeof(top), "/tmp/test_beneath.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	cr_assert_eq(mkdir(at("root"), 0700), 0);
	cr_assert_eq(mkdir(at("root/a"), 0700), 0);
	cr_assert_eq(mkdir(at("root/a/b"), 0700), 0);
	cr_assert_eq(mkdir(at("outside"), 0700), 0);
	put("root/a/b/c.jpg", "inside");
	put("outside/secret.jpg", "secret");
	snprintf(target, sizeof(target), "%s/outside", top);
	cr_assert_eq(symlink(target, at("root/link")), 0);
	cr_assert_eq(symlink("../../outside/secret.jpg", at("root/a/flink")),
	             0);
	rootfd = open(at("root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(rootfd != -1);
}

static void
teardown(void)
{
	char cmd[128];

	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	cr_assert_eq(system(cmd), 0);
}

static void
without_openat2(void)
{
	struct open_how how;

	setup();
	cr_assert_eq(no_openat2_install(), 0, "seccomp: %s", strerror(errno));
	/* The filter works: openat2 itself is now refused. */
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY;
	cr_assert_eq(syscall(SYS_openat2, rootfd, "a", &how, sizeof(how)), -1);
	cr_assert_eq(errno, ENOSYS);
}

static void
read_back(int fd, const char *want)
{
	char got[32];
	ssize_t n;

	cr_assert(fd != -1, "open: %s", strerror(errno));
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	cr_assert(n >= 0);
	got[n] = '\0';
	cr_assert_str_eq(got, want);
}

/* The same checks with and without openat2. */
static void
check_all(void)
{
	char target[128];
	const char *base;
	int fd;

	read_back(beneath_open(rootfd, "a/b/c.jpg", O_RDONLY, 0), "inside");
	read_back(beneath_open(rootfd, "./a//b/c.jpg", O_RDONLY, 0), "inside");

	/* A symlinked directory on the way. */
	errno = 0;
	cr_assert_eq(beneath_open(rootfd, "link/secret.jpg", O_RDONLY, 0), -1);
	cr_assert_eq(errno, ELOOP);
	/* A symlink at the end. */
	errno = 0;
	cr_assert_eq(beneath_open(rootfd, "a/flink", O_RDONLY, 0), -1);
	cr_assert_eq(errno, ELOOP);
	/* Out of the root by name. */
	errno = 0;
	cr_assert_eq(beneath_open(rootfd, "../outside/secret.jpg", O_RDONLY, 0),
	             -1);
	cr_assert_eq(errno, EXDEV);
	errno = 0;
	cr_assert_eq(
	    beneath_open(rootfd, "a/../../outside/secret.jpg", O_RDONLY, 0),
	    -1);
	cr_assert_eq(errno, EXDEV);
	errno = 0;
	snprintf(target, sizeof(target), "%s/outside/secret.jpg", top);
	cr_assert_eq(beneath_open(rootfd, target, O_RDONLY, 0), -1);
	cr_assert_eq(errno, EXDEV);

	/* Parents. */
	fd = beneath_open_parent(rootfd, "a/b/c.jpg", 0, 0, &base);
	cr_assert(fd != -1);
	cr_assert_str_eq(base, "c.jpg");
	read_back(openat(fd, base, O_RDONLY), "inside");
	close(fd);
	fd = beneath_open_parent(rootfd, "top.jpg", 0, 0, &base);
	cr_assert(fd != -1);
	cr_assert_str_eq(base, "top.jpg");
	close(fd);
	errno = 0;
	cr_assert_eq(
	    beneath_open_parent(rootfd, "link/secret.jpg", 0, 0, &base), -1);
	cr_assert(errno == ELOOP || errno == ENOTDIR, "errno %d", errno);

	/* Creating folders: made inside, never through a symlink. */
	fd = beneath_open_parent(rootfd, "new/deep/x.jpg", 1, 0700, &base);
	cr_assert(fd != -1, "%s", strerror(errno));
	close(fd);
	cr_assert_eq(access(at("root/new/deep"), F_OK), 0);
	errno = 0;
	cr_assert_eq(
	    beneath_open_parent(rootfd, "link/made/x.jpg", 1, 0700, &base), -1);
	cr_assert_neq(access(at("outside/made"), F_OK), 0);

	/* Creating a file. */
	fd = beneath_open(rootfd, "a/new.jpg", O_WRONLY | O_CREAT | O_EXCL,
	                  0600);
	cr_assert(fd != -1);
	close(fd);
	errno = 0;
	cr_assert_eq(beneath_open(rootfd, "link/new.jpg",
	                          O_WRONLY | O_CREAT | O_EXCL, 0600),
	             -1);
	cr_assert_neq(access(at("outside/new.jpg"), F_OK), 0);
}

TestSuite(beneath);

Test(beneath, with_openat2, .init = setup, .fini = teardown)
{
	check_all();
}

Test(beneath, without_openat2, .init = without_openat2, .fini = teardown)
{
	check_all();
}
