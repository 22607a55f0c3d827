/*
 * checkremote_thumb: with thumbnails on, --check-remote runs the thumbnail
 * helper the way the daemon will (its path, its memory limit, this user,
 * this sandbox) with --check: it enters its sandbox and tries what must be
 * refused. Reported ok, or a problem with what the helper said. A one-shot
 * mode, so it waits for the child (at most a few seconds).
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkremote_impl.h"
#include "child.h"

#define THUMB_CHECK_MS 10000

/* Up to len - 1 bytes of what the child wrote, its last line kept whole. */
static void
thumb_read_all(int fd, char *out, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < len && (r = read(fd, out + n, len - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
}

void
checkremote_thumb_check(struct cr *c)
{
	const struct config_thumbnails *t = &c->cfg->thumbnails;
	posix_spawn_file_actions_t fa;
	char mem[16], said[600], msg[800], *p;
	char *argv[] = {t->helper, "--check", "--memory-mb", mem, NULL};
	int pipefd[2], status = 0, rc, waited = 0;
	pid_t pid, r;

	if (!t->enabled)
		return;
	snprintf(mem, sizeof(mem), "%d", t->memory_mb);
	if (pipe2(pipefd, O_CLOEXEC) == -1) {
		checkremote_report_problem(c, CHECKREMOTE_OTHER,
		                           "thumbnail helper", t->helper,
		                           strerror(errno), NULL);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	rc = child_spawn(&pid, t->helper, 0, &fa, argv);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		snprintf(msg, sizeof(msg),
		         "cannot run it: %s (thumbnails.helper)", strerror(rc));
		checkremote_report_problem(c, CHECKREMOTE_OTHER,
		                           "thumbnail helper", t->helper, msg,
		                           NULL);
		return;
	}
	thumb_read_all(pipefd[0], said, sizeof(said));
	close(pipefd[0]);
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	       waited < THUMB_CHECK_MS) {
		struct timespec ts = {0, 10 * 1000000};

		nanosleep(&ts, NULL);
		waited += 10;
	}
	if (r == 0) {
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
	}
	for (p = said; *p != '\0'; p++)
		if (*p == '\n')
			*p = ';';
	if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		checkremote_report_ok(c, "thumbnail helper", t->helper,
		                      "(its sandbox holds: files, sockets, "
		                      "fork and executable memory refused)");
		return;
	}
	snprintf(msg, sizeof(msg),
	         "it cannot work here: %s; thumbnails would not be made "
	         "(check thumbnails.helper, and that libvips is installed)",
	         said[0] != '\0' ? said : "it ended without saying why");
	checkremote_report_problem(c, CHECKREMOTE_OTHER, "thumbnail helper",
	                           t->helper, msg, NULL);
}
