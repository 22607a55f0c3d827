/*
 * no_openat2 COMMAND [ARG...]: runs COMMAND with openat2(2) answering
 * ENOSYS (see no_openat2.h): the integration tests start imgsyncd through
 * it to prove the daemon stays inside its root without openat2.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "no_openat2.h"

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: no_openat2 COMMAND [ARG...]\n");
		return 64;
	}
	if (no_openat2_install() == -1) {
		fprintf(stderr, "no_openat2: seccomp: %s\n", strerror(errno));
		return 71;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_openat2: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
