/*
 * dirwalk: the regular files under a directory, for the walks that only
 * read (the files of a renamed directory, verify's files the state database
 * does not know). No symlink is followed and, when asked, no other file
 * system entered.
 *
 * The watcher has its own walk (agent/watcher_inotify_walk.c): it sets up
 * a watch on each directory before reading it, goes 4,096 levels deep
 * without holding a descriptor per level, and reports what it could not
 * watch; this one holds a descriptor per level, so it stops at
 * DIRWALK_MAX_DEPTH.
 */
#ifndef IMGSYNC_DIRWALK_H
#define IMGSYNC_DIRWALK_H

#include <stddef.h>
#include <sys/stat.h>

#define DIRWALK_MAX_DEPTH 256

/* path is relative to the walk's start (with the start's own rel prefix),
 * NUL-terminated, borrowed for the call. Non-zero stops the walk. */
typedef int (*dirwalk_cb)(const char *path, size_t len, const struct stat *st,
                          void *arg);

/* Calls cb for each regular file under dirfd (taken: closed before the
 * return). rel is the path of dirfd ("" for none); one_dev: stay on dirfd's
 * file system. 0, 1 when cb stopped the walk, -1 out of memory. Directories
 * that cannot be read are skipped. */
int dirwalk(int dirfd, const char *rel, int one_dev, dirwalk_cb cb, void *arg);

#endif
