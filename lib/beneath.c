#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* EXDEV for what would leave dirfd: an absolute path or a ".." component. */
static int
beneath_check(const char *path)
{
	const char *p = path;
	size_t n;

	if (*p == '/') {
		errno = EXDEV;
		return -1;
	}
	while (*p != '\0') {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			errno = EXDEV;
			return -1;
		}
		p += n;
		p += strspn(p, "/");
	}
	return 0;
}

/* openat2, or -1 with errno ENOSYS where the kernel or a sandbox refuses
 * it (a seccomp filter answers ENOSYS, or EPERM with systemd's
 * SystemCallErrorNumber=EPERM). */
static int
beneath_openat2(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how;
	int fd;

	/* RESOLVE_NO_SYMLINKS refuses a symlink at the end too, with ELOOP;
	 * O_NOFOLLOW beside O_DIRECTORY would make that ENOTDIR. */
	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)((flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (flags & (O_CREAT | O_TMPFILE))
		how.mode = mode;
	how.resolve =
	    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd == -1 && (errno == EPERM || errno == E2BIG))
		errno = ENOSYS;
	return fd;
}

/* Walks the first len bytes of path a directory at a time from dirfd,
 * creating missing ones with mkdirs. The last directory's fd, or -1. */
static int
beneath_walk(int dirfd, const char *path, size_t len, int mkdirs, mode_t mode)
{
	char name[NAME_MAX + 1];
	const char *p = path, *end = path + len;
	struct stat st;
	size_t n;
	int fd, nfd, saved;

	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	while (fd != -1 && p < end) {
		n = strcspn(p, "/");
		if (n > (size_t)(end - p))
			n = (size_t)(end - p);
		if (n == 0 || (n == 1 && *p == '.')) {
			p += n + 1;
			continue;
		}
		if (n > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p += n + 1;
		if (mkdirs && mkdirat(fd, name, mode) == -1 &&
		    errno != EEXIST) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		nfd = openat(fd, name, DIR_FLAGS);
		saved = errno;
		/* O_DIRECTORY answers ENOTDIR for a symlink; say ELOOP, as
		 * openat2 does. */
		if (nfd == -1 && saved == ENOTDIR &&
		    fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			saved = ELOOP;
		close(fd);
		errno = saved;
		fd = nfd;
	}
	return fd;
}

int
beneath_open(int dirfd, const char *path, int flags, mode_t mode)
{
	const char *base;
	int fd, dfd, saved;

	if (beneath_check(path) == -1)
		return -1;
	fd = beneath_openat2(dirfd, path, flags, mode);
	if (fd != -1 || errno != ENOSYS)
		return fd;
	dfd = beneath_open_parent(dirfd, path, 0, 0, &base);
	if (dfd == -1)
		return -1;
	if (*base == '\0') /* "dir/": the directory itself */
		fd = openat(dfd, ".", flags | O_CLOEXEC, mode);
	else
		fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	saved = errno;
	close(dfd);
	errno = saved;
	return fd;
}

int
beneath_open_parent(int dirfd, const char *path, int mkdirs, mode_t mode,
                    const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t len;
	char *dir;
	int fd, saved;

	*base = slash != NULL ? slash + 1 : path;
	if (beneath_check(path) == -1)
		return -1;
	len = slash != NULL ? (size_t)(slash - path) : 0;
	if (len == 0 || mkdirs)
		return beneath_walk(dirfd, path, len, mkdirs, mode);
	dir = strndup(path, len);
	if (dir == NULL)
		return -1;
	fd = beneath_openat2(dirfd, dir, DIR_FLAGS, 0);
	saved = errno;
	free(dir);
	errno = saved;
	if (fd == -1 && errno == ENOSYS)
		fd = beneath_walk(dirfd, path, len, 0, 0);
	return fd;
}
