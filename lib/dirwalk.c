#include "dirwalk.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

struct dirwalk {
	dirwalk_cb cb;
	void *arg;
	int one_dev;
	dev_t dev;
	struct buf path;
};

static int
dirwalk_dir(struct dirwalk *w, int dirfd, int depth)
{
	size_t len = w->path.len;
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int fd, rc = 0;

	dir = depth <= DIRWALK_MAX_DEPTH ? fdopendir(dirfd) : NULL;
	if (dir == NULL) {
		close(dirfd);
		return 0;
	}
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		        -1 ||
		    (w->one_dev && st.st_dev != w->dev))
			continue;
		w->path.len = len;
		if (len > 0)
			buf_putc(&w->path, '/');
		buf_puts(&w->path, de->d_name);
		if (buf_cstr(&w->path) == NULL) {
			rc = -1;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd, de->d_name,
			            O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			                O_CLOEXEC);
			if (fd != -1)
				rc = dirwalk_dir(w, fd, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			rc = w->cb(w->path.data, w->path.len, &st, w->arg) != 0
			         ? 1
			         : 0;
		}
	}
	w->path.len = len;
	closedir(dir);
	return rc;
}

int
dirwalk(int dirfd, const char *rel, int one_dev, dirwalk_cb cb, void *arg)
{
	struct dirwalk w;
	struct stat st;
	int rc;

	memset(&w, 0, sizeof(w));
	w.cb = cb;
	w.arg = arg;
	w.one_dev = one_dev;
	if (fstat(dirfd, &st) == -1) {
		close(dirfd);
		return 0;
	}
	w.dev = st.st_dev;
	buf_init(&w.path, 0);
	if (buf_puts(&w.path, rel) == -1 || buf_cstr(&w.path) == NULL) {
		close(dirfd);
		buf_cleanup(&w.path);
		return -1;
	}
	rc = dirwalk_dir(&w, dirfd, 0);
	buf_cleanup(&w.path);
	return rc;
}
