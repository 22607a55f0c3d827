#include "rootguard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER_TMP ROOTGUARD_MARKER ".tmp"
#define ID_LEN 32 /* hex digits */
#define META_ID "root_id"

/* The id in the marker of the folder dirfd: 1 found (id filled), 0 no
 * marker (or not one of ours). */
static int
marker_read(int dirfd, char id[ID_LEN + 1])
{
	char text[128];
	ssize_t n;
	int fd;

	fd = openat(dirfd, ROOTGUARD_MARKER,
	            O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	if (sscanf(text, "imgsync-root %32[0-9a-f]", id) != 1 ||
	    strlen(id) != ID_LEN)
		return 0;
	return 1;
}

/* Writes the marker (a new file renamed into place, synced). */
static int
marker_write(int dirfd, const char *id)
{
	char text[ID_LEN + 80];
	int fd, len, rc, saved;

	len = snprintf(text, sizeof(text),
	               "imgsync-root %s\n# imgsyncd mirrors this folder; see "
	               "imgsyncd(8)\n",
	               id);
	(void)unlinkat(dirfd, MARKER_TMP, 0);
	fd = openat(dirfd, MARKER_TMP,
	            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	rc = write(fd, text, (size_t)len) == len && fsync(fd) == 0 ? 0 : -1;
	saved = errno;
	close(fd);
	if (rc == 0)
		rc = renameat(dirfd, MARKER_TMP, dirfd, ROOTGUARD_MARKER);
	if (rc == -1) {
		saved = errno;
		(void)unlinkat(dirfd, MARKER_TMP, 0);
		errno = saved;
		return -1;
	}
	return fsync(dirfd) == 0 || errno == EINVAL ? 0 : -1;
}

static int
new_id(char id[ID_LEN + 1])
{
	unsigned char raw[ID_LEN / 2];
	size_t i;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -1;
	for (i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* The database's id: 1 found, 0 none yet, -1 error. */
static int
db_id(struct state *st, char id[ID_LEN + 1], struct err *e)
{
	char *v = NULL;
	int rc;

	rc = state_meta_get(st, META_ID, &v, NULL, e);
	if (rc == 1) {
		snprintf(id, ID_LEN + 1, "%s", v);
		free(v);
	}
	return rc;
}

/* The folder becomes the mirrored one: the database takes id, and the
 * marker is written when it is not there yet. */
static enum rootguard_verdict
adopt(struct state *st, int dirfd, const char *root, const char *id,
      int has_marker, char *why, size_t whylen, struct err *e)
{
	if (state_meta_put(st, META_ID, id, strlen(id), e) == -1)
		return ROOTGUARD_ERROR;
	if (has_marker || marker_write(dirfd, id) == 0) {
		snprintf(why, whylen, "%s is the mirrored folder (marker %s)",
		         root, ROOTGUARD_MARKER);
		return ROOTGUARD_ADOPTED;
	}
	snprintf(why, whylen,
	         "cannot write the marker %s/%s (%s): without it an unmounted "
	         "or replaced folder cannot be told apart; create it as root: "
	         "printf 'imgsync-root %s\\n' > %s/%s",
	         root, ROOTGUARD_MARKER, strerror(errno), id, root,
	         ROOTGUARD_MARKER);
	return ROOTGUARD_ADOPTED;
}

enum rootguard_verdict
rootguard_check(struct state *st, const char *root, int *rootfd, char *why,
                size_t whylen, struct err *e)
{
	char have[ID_LEN + 1] = "", mark[ID_LEN + 1] = "";
	enum rootguard_verdict v;
	uint64_t files = 0, failed = 0;
	int fd, known, marked;

	*rootfd = -1;
	why[0] = '\0';
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(
		    why, whylen,
		    "the watch root %s cannot be opened (%s): not mounted?",
		    root, strerror(errno));
		return ROOTGUARD_LOST;
	}
	known = db_id(st, have, e);
	if (known == -1)
		goto error;
	marked = marker_read(fd, mark);
	if (known && marked && strcmp(have, mark) == 0) {
		*rootfd = fd;
		return ROOTGUARD_OK;
	}
	if (state_count(st, &files, &failed, NULL, e) == -1)
		goto error;
	if (!known || files + failed == 0) {
		/* Nothing mirrored yet (or a database from before the
		 * marker): this folder is the one, and a marker already here
		 * (a lost database being rebuilt) keeps its id. */
		if (!marked && new_id(mark) == -1) {
			err_sys(e, "getrandom");
			goto error;
		}
		v = adopt(st, fd, root, marked ? mark : (known ? have : mark),
		          marked, why, whylen, e);
		if (v == ROOTGUARD_ERROR)
			goto error;
		*rootfd = fd;
		return v;
	}
	if (!marked)
		snprintf(
		    why, whylen,
		    "the watch root %s has no marker %s: it is not the "
		    "folder that was mirrored (a disk not mounted? a folder "
		    "replaced?); nothing is uploaded or deleted until it is "
		    "back (imgsyncd --adopt-root makes this folder the "
		    "mirror)",
		    root, ROOTGUARD_MARKER);
	else
		snprintf(why, whylen,
		         "the watch root %s has the marker of another state "
		         "database: it is not the folder that was mirrored; "
		         "nothing is uploaded or deleted until it is back",
		         root);
	close(fd);
	return ROOTGUARD_LOST;
error:
	close(fd);
	return ROOTGUARD_ERROR;
}

int
rootguard_adopt(struct state *st, const char *root, struct err *e)
{
	char id[ID_LEN + 1];
	int fd, known;

	known = db_id(st, id, e);
	if (known == -1)
		return -1;
	if (!known && (new_id(id) == -1 ||
	               state_meta_put(st, META_ID, id, strlen(id), e) == -1)) {
		if (e->kind == ERR_NONE)
			err_sys(e, "getrandom");
		return -1;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || marker_write(fd, id) == -1) {
		err_sys(e, "cannot write the marker %s/%s", root,
		        ROOTGUARD_MARKER);
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
rootguard_is_marker(const char *path)
{
	return strcmp(path, ROOTGUARD_MARKER) == 0 ||
	       strcmp(path, MARKER_TMP) == 0;
}
