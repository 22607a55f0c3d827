#include "trash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "buf.h"

#define TRASH_TRIES 100 /* names tried in each of the two forms */

struct trash_move {
	int dfd;     /* the file's directory */
	char *base;  /* the file's name in it */
	char *trash; /* the trash folder, for messages */
	int trashfd; /* the trash folder, opened without following a link */
	char *path;  /* where it goes below the trash folder */
	int n;       /* the candidate name being tried */
	int conflict;
	struct buf dst;   /* candidate n, relative to trashfd */
	int dstdir;       /* the candidate's folder */
	const char *leaf; /* the candidate's name in dstdir (in dst) */
	/* copying across file systems */
	int in;
	struct stat src; /* the file as the copy began */
	int out;
	int tmpdir;     /* the folder of the partial copy */
	struct buf tmp; /* the partial copy's name in tmpdir */
};

/* Creates the trash folder itself (and its parents) the first time. */
static int
trash_open_root(const char *trash)
{
	char *dir = strdup(trash), *p;
	int fd;

	if (dir == NULL)
		return -1;
	for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		(void)mkdir(dir, 0700); /* an error shows in the open below */
		*p = '/';
	}
	(void)mkdir(dir, 0700);
	free(dir);
	fd = open(trash, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Candidate m->n, its folders created below the trash folder without
 * following any symlink (one planted in the trash is a name clash). */
static int
trash_candidate(struct trash_move *m)
{
	int rc;

	buf_reset(&m->dst);
	if (m->conflict)
		rc = buf_printf(&m->dst, ".deleted-%lld-%d/%s",
		                (long long)time(NULL), m->n, m->path);
	else if (m->n == 0)
		rc = buf_printf(&m->dst, "%s", m->path);
	else
		rc = buf_printf(&m->dst, "%s.%d", m->path, m->n);
	if (rc == -1) {
		errno = ENOMEM;
		return -1;
	}
	if (m->dstdir != -1)
		close(m->dstdir);
	m->dstdir =
	    beneath_open_parent(m->trashfd, m->dst.data, 1, 0700, &m->leaf);
	if (m->dstdir == -1 && errno == ELOOP)
		errno = ENOTDIR;
	return m->dstdir == -1 ? -1 : 0;
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
		    renameat2(fromfd, from, m->dstdir, m->leaf,
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
 * a FIFO) and a new temporary file beside the candidate. */
static int
trash_copy_open(struct trash_move *m)
{
	int tries;

	/* A read-only file system: the original could not be unlinked after
	 * the copy, which would only leave a copy more each time. */
	if (faccessat(m->dfd, ".", W_OK, AT_EACCESS) == -1 && errno == EROFS)
		return -1;
	m->in = openat(m->dfd, m->base,
	               O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (m->in == -1)
		return -1;
	if (fstat(m->in, &m->src) == -1 || !S_ISREG(m->src.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (buf_printf(&m->tmp, "%s.imgsync-partial-%ld", m->leaf,
	               (long)getpid()) == -1) {
		errno = ENOMEM;
		return -1;
	}
	m->tmpdir = fcntl(m->dstdir, F_DUPFD_CLOEXEC, 0);
	if (m->tmpdir == -1)
		return -1;
	for (tries = 0; tries < 2; tries++) {
		m->out = openat(
		    m->tmpdir, m->tmp.data,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (m->out != -1 || errno != EEXIST)
			break;
		/* Left by a crash of an earlier process with this pid. */
		(void)unlinkat(m->tmpdir, m->tmp.data, 0);
	}
	return m->out == -1 ? -1 : 0;
}

/* The copy gets the original's owner (where permitted: root's daemon, or
 * the same owner), mode and times. */
static void
trash_copy_attrs(const struct trash_move *m)
{
	struct timespec times[2];

	/* Each is best effort: the copy's content is what matters. (Tested
	 * with if: glibc's fortified fchown warns on a (void) cast.) */
	if (fchown(m->out, m->src.st_uid, m->src.st_gid) == -1 &&
	    fchown(m->out, (uid_t)-1, m->src.st_gid) == -1) {
		/* another group than ours: the daemon's stays */
	}
	if (fchmod(m->out, m->src.st_mode & 07777) == -1) {
		/* the copy keeps 0600 */
	}
	times[0] = m->src.st_atim;
	times[1] = m->src.st_mtim;
	if (futimens(m->out, times) == -1) {
		/* the copy keeps the time of the copy */
	}
}

static int
same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether the name still holds the very file that was copied, unchanged:
 * only then may it be unlinked. */
static int
trash_source_unchanged(const struct trash_move *m)
{
	struct stat now, held;

	return fstat(m->in, &held) == 0 && same_version(&held, &m->src) &&
	       fstatat(m->dfd, m->base, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	       same_version(&now, &m->src);
}

struct trash_move *
trash_move_start(int dfd, const char *base, const char *trash, const char *path,
                 char *msg, size_t msglen, int *rc)
{
	struct trash_move *m;
	struct stat st;
	int saved;

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
	m->trashfd = m->dstdir = m->tmpdir = m->in = m->out = -1;
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
	m->trashfd = trash_open_root(trash);
	if (m->trashfd != -1 && trash_place(m, m->dfd, m->base) == 0) {
		snprintf(msg, msglen, "moved to %s/%s", m->trash, m->dst.data);
		trash_move_free(m);
		return NULL;
	}
	if (m->trashfd != -1 && errno == EXDEV && trash_copy_open(m) == 0)
		return m;
	*rc = trash_fail(m, msg, msglen);
	saved = errno;
	trash_move_free(m);
	errno = saved;
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
	trash_copy_attrs(m);
	rc = fsync(m->out);
	if (close(m->out) == -1)
		rc = -1;
	m->out = -1;
	if (rc == -1 || trash_place(m, m->tmpdir, m->tmp.data) == -1 ||
	    fsync(m->dstdir) == -1)
		return trash_fail(m, msg, msglen);
	buf_reset(&m->tmp); /* it is the file now */
	if (!trash_source_unchanged(m)) {
		/* Saved over during the copy: the new version stays and is
		 * synced again; the trash keeps the one that was deleted. */
		snprintf(msg, msglen,
		         "copied to %s/%s, but the local file changed while it "
		         "was copied: the new version stays",
		         m->trash, m->dst.data);
		errno = 0;
		return -1;
	}
	if (unlinkat(m->dfd, m->base, 0) == -1) {
		/* Both copies stay: nothing lost; say so. */
		snprintf(msg, msglen,
		         "copied to %s/%s, but the local file could not be "
		         "removed: %s",
		         m->trash, m->dst.data, strerror(errno));
		return -1;
	}
	snprintf(msg, msglen, "moved to %s/%s", m->trash, m->dst.data);
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
	if (m->tmpdir != -1) {
		if (m->tmp.len > 0) /* an unfinished copy */
			(void)unlinkat(m->tmpdir, m->tmp.data, 0);
		close(m->tmpdir);
	}
	if (m->dstdir != -1)
		close(m->dstdir);
	if (m->trashfd != -1)
		close(m->trashfd);
	if (m->dfd != -1)
		close(m->dfd);
	buf_cleanup(&m->tmp);
	buf_cleanup(&m->dst);
	free(m->base);
	free(m->trash);
	free(m->path);
	free(m);
}
