/*
 * sync_path: paths and files, for every room of the engine. Which paths the
 * mirror holds (include, exclude, never the root marker, the summary or
 * what lies under the thumbnails' prefix),
 * their S3 keys, opening them beneath the root (invariant 6), and whether a
 * file is still the one its state row recorded.
 */
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beneath.h"
#include "rootguard.h"
#include "sync_impl.h"
#include "text.h"

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Whether a path is one the mirror should hold. */
int
sync_wanted(const struct sync *s, const char *path)
{
	const char *name = base_name(path);
	size_t i, plen = strlen(s->prefix);
	int in = 0;

	if (rootguard_is_marker(path))
		return 0;
	if (s->thumbs_path_prefix != NULL &&
	    strncmp(path, s->thumbs_path_prefix,
	            strlen(s->thumbs_path_prefix)) == 0)
		return 0;
	if (s->summary_key != NULL &&
	    strncmp(s->summary_key, s->prefix, plen) == 0 &&
	    strcmp(s->summary_key + plen, path) == 0)
		return 0;
	for (i = 0; i < s->ninclude && !in; i++)
		in = fnmatch(s->include[i], name, FNM_CASEFOLD) == 0;
	if (!in)
		return 0;
	for (i = 0; i < s->nexclude; i++)
		if (fnmatch(s->exclude[i], name, 0) == 0)
			return 0;
	return 1;
}

/* Opens a path under the root without following any symlink, so nothing
 * outside the root is ever read (invariant 6). */
int
sync_open(const struct sync *s, const char *path)
{
	return beneath_open(s->rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY,
	                    0);
}

/* Opens path's directory under the root, following no symlink; *base
 * points at the last component. -1 with errno (ELOOP, ENOTDIR, EXDEV: a
 * symlink or out of the root). */
int
sync_open_parent(const struct sync *s, const char *path, const char **base)
{
	return beneath_open_parent(s->rootfd, path, 0, 0, base);
}

/* The S3 key of path; -1 (e: ERR_NAME) when it cannot be one. */
int
sync_key(const struct sync *s, const char *path, char *out, size_t outlen,
         struct err *e)
{
	int n = snprintf(out, outlen, "%s%s", s->prefix, path);

	if (n < 0 || (size_t)n >= outlen) {
		err_set(e, ERR_NAME, "the S3 key would be longer than %u bytes",
		        SYNC_MAX_KEY);
		return -1;
	}
	if (!text_utf8_valid(out, (size_t)n)) {
		err_set(e, ERR_NAME,
		        "the file name is not valid UTF-8, which S3 keys and "
		        "DynamoDB strings must be");
		return -1;
	}
	return 0;
}

int64_t
sync_mtime_ns(const struct stat *st)
{
	return text_timespec_ns(&st->st_mtim);
}

/* The same file, by size, mtime and inode: what a rename keeps (it
 * changes the ctime). */
int
sync_same_identity(const struct stat *st, const struct state_file *f)
{
	return (uint64_t)st->st_size == f->size &&
	       sync_mtime_ns(st) == f->mtime_ns &&
	       (uint64_t)st->st_ino == f->inode;
}

int
sync_same_file(const struct stat *st, const struct state_file *f)
{
	/* ctime too: content changed with its size and mtime put back
	 * (cp -p, rsync -t, touch -r) changes it, and it cannot be set back.
	 * 0: a row from before it was kept. */
	return sync_same_identity(st, f) &&
	       (f->ctime_ns == 0 ||
	        text_timespec_ns(&st->st_ctim) == f->ctime_ns);
}

/* Answers a waiting control request, once, and frees the waiter. */
void
sync_waiter_answer(struct sync_waiter **wp, int status, const char *message)
{
	struct sync_waiter *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	w->cb(status, message, w->arg);
	free(w->trash);
	free(w);
}
