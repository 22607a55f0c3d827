/*
 * child: starting a child program from the daemon with a clean signal
 * state. The daemon blocks SIGTERM, SIGINT and SIGHUP (for its signalfd)
 * and ignores SIGPIPE; a child gets none of that: nothing blocked, those
 * and SIGALRM at their defaults.
 */
#ifndef IMGSYNC_CHILD_H
#define IMGSYNC_CHILD_H

#include <spawn.h>
#include <sys/types.h>

/* posix_spawn (search_path: posix_spawnp) of argv with fa, the
 * environment kept: 0 with *pid set, or the errno value. */
int child_spawn(pid_t *pid, const char *file, int search_path,
                const posix_spawn_file_actions_t *fa, char *const argv[]);

#endif
