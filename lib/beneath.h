/*
 * beneath: opening a path under a directory without ever leaving it and
 * without following any symlink, on the way or at the end (invariant
 * 6).
 *
 * openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS does this in one call,
 * and is tried first. Safety never rests on it: where it is missing or
 * refused (kernels before 5.6, or a seccomp filter such as systemd's
 * RestrictSUIDSGID=, which answers ENOSYS because it cannot inspect
 * struct open_how), the path is walked a component at a time, each
 * directory opened O_NOFOLLOW | O_DIRECTORY relative to the one before, so
 * a symlink anywhere is refused exactly as RESOLVE_NO_SYMLINKS refuses it.
 *
 * Paths are relative and '/'-separated. An absolute path or a ".."
 * component fails with EXDEV before anything is opened (names under the
 * watch root never hold one); empty and "." components are skipped.
 * A symlink fails with ELOOP.
 */
#ifndef IMGSYNC_BENEATH_H
#define IMGSYNC_BENEATH_H

#include <sys/types.h>

/* Opens path under the directory dirfd (borrowed). flags as openat's;
 * O_NOFOLLOW and O_CLOEXEC are always added. The new fd, or -1 with
 * errno. */
int beneath_open(int dirfd, const char *path, int flags, mode_t mode);

/* Opens the directory that holds path's last component (O_RDONLY), or a
 * copy of dirfd for a path of one component; *base points at that last
 * component inside path. With mkdirs, directories missing on the way are
 * created with mode (and still opened without following a symlink). The
 * fd, or -1 with errno. */
int beneath_open_parent(int dirfd, const char *path, int mkdirs, mode_t mode,
                        const char **base);

#endif
