#include "trash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define TRASH_TRIES 100 /* names tried in each of the two forms */

struct trash_move {
	int dfd;     /* the file's directory */
	char *base;  /* the file's name in it */
	char *trash; /* the trash folder */
	char *path;  /* where it goes below the trash folder */
	int n;       /* the candidate name being tried */
	int conflict;
	struct buf dst; /* candidate n */
	/* copying across file systems */
	int in;
	int out;
	struct buf tmp;
};

/* Creates the folders of dst with every missing parent. A component that
 * exists but is not a directory fails with ENOTDIR. */
static int
trash_mkdirs(char *dst)
{
	struct stat st;
	char *p;

	for (p = dst + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dst, 0700) == -1 &&
		    (errno != EEXIST || stat(dst, &st) == -1 ||
		     !S_ISDIR(st.st_mode))) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* fsync of the directory holding path, so that a new entry in it is on
 * disk before the file's old name is removed. */
static int
fsync_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, rc = -1, saved;

	if (dir == NULL)
		return -1;
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir)
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		rc = fsync(fd);
		saved = errno;
		close(fd);
		errno = saved;
	}
	free(dir);
	return rc;
}

/* Candidate m->n, its folders created. */
static int
trash_candidate(struct trash_move *m)
{
	int rc;

	buf_reset(&m->dst);
	if (m->conflict)
		rc = buf_printf(&m->dst, "%s/.deleted-%lld-%d/%s", m->trash,
		                (long long)time(NULL), m->n, m->path);
	else if (m->n == 0)
		rc = buf_printf(&m->dst, "%s/%s", m->trash, m->path);
	else
		rc = buf_printf(&m->dst, "%s/%s.%d", m->trash, m->path, m->n);
	if (rc == -1) {
		errno = ENOMEM;
		return -1;
	}
	return trash_mkdirs(m->dst.data);
}

/*
 * Renames from (in fromfd) to the first free candidate, from m->n on,
 * never replacing a file. -1 with errno: EXDEV (another file system: the
 * candidate is m->dst, its folders made), or the error that stopped it.
 */
static int
trash_place(struct trash_move *m, int fromfd, const char *from)
{
	for (; m->n < TRASH_TRIES; m->n++) {
		if (trash_candidate(m) == 0 &&
		    renameat2(fromfd, from, AT_FDCWD, m->dst.data,
		              RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EXDEV)
			return -1;
		if (errno == ENOTDIR && !m->conflict) {
			m->conflict = 1;
			m->n = -1;
			continue;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

static int
trash_fail(struct trash_move *m, char *msg, size_t msglen)
{
	snprintf(msg, msglen,
	         "deleted remotely, but the local file could not be moved to "
	         "the trash %s: %s",
	         m->trash, strerror(errno));
	return -1;
}

/* The copy begins: the source (non-blocking: it could have been swapped for
 * a FIFO) and a temporary file beside the candidate. */
static int
trash_copy_open(struct trash_move *m)
{
	struct stat st;

	m->in = openat(m->dfd, m->base,
	               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (m->in == -1)
		return -1;
	if (fstat(m->in, &st) == -1 || !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (buf_printf(&m->tmp, "%s.imgsync-partial-%ld", m->dst.data,
	               (long)getpid()) == -1) {
		errno = ENOMEM;
		return -1;
	}
	m->out =
	    open(m->tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return m->out == -1 ? -1 : 0;
}

struct trash_move *
trash_move_start(int dfd, const char *base, const char *trash, const char *path,
                 char *msg, size_t msglen, int *rc)
{
	struct trash_move *m;
	struct stat st;

	*rc = 0;
	snprintf(msg, msglen, "no local file");
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode)) {
		close(dfd);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(dfd);
		snprintf(msg, msglen, "out of memory");
		*rc = -1;
		return NULL;
	}
	m->dfd = dfd;
	m->in = m->out = -1;
	buf_init(&m->dst, 0);
	buf_init(&m->tmp, 0);
	if ((m->base = strdup(base)) == NULL ||
	    (m->trash = strdup(trash)) == NULL ||
	    (m->path = strdup(path)) == NULL) {
		trash_move_free(m);
		snprintf(msg, msglen, "out of memory");
		*rc = -1;
		return NULL;
	}
	if (trash_place(m, m->dfd, m->base) == 0) {
		snprintf(msg, msglen, "moved to %s", m->dst.data);
		trash_move_free(m);
		return NULL;
	}
	if (errno == EXDEV && trash_copy_open(m) == 0)
		return m;
	*rc = trash_fail(m, msg, msglen);
	trash_move_free(m);
	return NULL;
}

int
trash_move_step(struct trash_move *m, size_t budget, char *msg, size_t msglen)
{
	char chunk[65536];
	size_t done = 0;
	ssize_t n = 1;
	int rc;

	while ((budget == 0 || done < budget) &&
	       (n = read(m->in, chunk, sizeof(chunk))) > 0) {
		if (write(m->out, chunk, (size_t)n) != n) {
			if (errno == 0)
				errno = ENOSPC;
			return trash_fail(m, msg, msglen);
		}
		done += (size_t)n;
	}
	if (n < 0)
		return trash_fail(m, msg, msglen);
	if (n > 0)
		return 0; /* more next time */
	rc = fsync(m->out);
	if (close(m->out) == -1)
		rc = -1;
	m->out = -1;
	if (rc == -1 || trash_place(m, AT_FDCWD, m->tmp.data) == -1 ||
	    fsync_parent(m->dst.data) == -1)
		return trash_fail(m, msg, msglen);
	buf_cleanup(&m->tmp); /* it is the file now */
	if (unlinkat(m->dfd, m->base, 0) == -1) {
		/* Both copies stay: nothing lost; say so. */
		snprintf(msg, msglen,
		         "copied to %s, but the local file could not be "
		         "removed: %s",
		         m->dst.data, strerror(errno));
		return -1;
	}
	snprintf(msg, msglen, "moved to %s", m->dst.data);
	return 1;
}

void
trash_move_free(struct trash_move *m)
{
	if (m == NULL)
		return;
	if (m->out != -1)
		close(m->out);
	if (m->in != -1)
		close(m->in);
	if (m->tmp.data != NULL && m->tmp.len > 0)
		unlink(m->tmp.data); /* an unfinished copy */
	if (m->dfd != -1)
		close(m->dfd);
	buf_cleanup(&m->tmp);
	buf_cleanup(&m->dst);
	free(m->base);
	free(m->trash);
	free(m->path);
	free(m);
}
