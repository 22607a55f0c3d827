/*
 * child: a child with a clean signal state (see child.h).
 */
#include "child.h"

#include <signal.h>

extern char **environ;

int
child_spawn(pid_t *pid, const char *file, int search_path,
            const posix_spawn_file_actions_t *fa, char *const argv[])
{
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int rc;

	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGALRM);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                    POSIX_SPAWN_SETSIGDEF);
	rc = search_path ? posix_spawnp(pid, file, fa, &attr, argv, environ)
	                 : posix_spawn(pid, file, fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	return rc;
}
