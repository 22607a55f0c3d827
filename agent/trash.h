/*
 * trash: moving a file that /delete removed from the mirror out of the
 * watch root into the trash folder, so that a mistaken call loses nothing.
 *
 * The file goes to trash/PATH, or trash/PATH.1, .2 ... when that is taken,
 * or trash/.deleted-TIME-N/PATH when a folder on the way is taken by a file
 * (one deleted earlier). Below the trash folder no symlink is followed:
 * one planted there counts as a name clash. On the same file system it is
 * a rename. On another one it is copied under a new temporary name
 * (O_EXCL), step by step so that the event loop is never held for long,
 * given the original's mode, owner (where permitted) and times, synced,
 * renamed into place (never over another file), its folder synced, and
 * only then is the original unlinked, and only if its name still holds the
 * same file, unchanged (device, inode, size, mtime, ctime): a version saved
 * over it during the copy stays. A crash or power loss at any moment
 * leaves the file in one of the two places.
 */
#ifndef IMGSYNC_TRASH_H
#define IMGSYNC_TRASH_H

#include <stddef.h>

struct trash_move;

/*
 * Starts moving the file base in the directory dfd (taken: closed by the
 * move) to the trash folder trash (absolute), as path. Returns NULL when it
 * is over, with *rc 0 (msg: where it went, or "no local file") or -1 (msg:
 * why not); else a move that still has to copy: call trash_move_step until
 * it returns non-zero, then trash_move_free.
 */
struct trash_move *trash_move_start(int dfd, const char *base,
                                    const char *trash, const char *path,
                                    char *msg, size_t msglen, int *rc);
/* Copies up to budget bytes (0: all); 0 when there is more, 1 done and -1
 * failed (msg says where or why; errno too, or 0 when the file changed
 * during the copy). trash_move_start's -1 leaves errno set likewise. */
int trash_move_step(struct trash_move *m, size_t budget, char *msg,
                    size_t msglen);
/* Frees a move; one that did not finish leaves the file where it was and
 * removes the partial copy. NULL is a no-op. */
void trash_move_free(struct trash_move *m);

#endif
