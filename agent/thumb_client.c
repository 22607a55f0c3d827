/*
 * thumb_client: imgsync-thumb seen from the daemon (see thumb_client.h).
 * The helper's death is noticed as the end of its socket; it is reaped by
 * pid (polled: the daemon keeps no SIGCHLD handler), and the request it
 * had fails with what its exit status says. A helper that neither answers
 * nor dies within its time limit and a grace second is killed.
 */
#include "thumb_client.h"
#include "child.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THUMB_GRACE_MS 1000
#define THUMB_REAP_MS 20

struct thumb_client {
	struct loop *loop;
	struct thumb_client_opts o;
	char *helper;
	int sock; /* ours; -1 when no helper runs */
	pid_t pid;
	uint32_t next_id;
	/* the request in flight */
	thumb_done_cb cb;
	void *arg;
	uint32_t id;
	struct loop_timer *deadline;
	struct loop_timer *reaper;
	pid_t dying; /* a helper being reaped */
	int dying_polls;
};

static void thumb_on_deadline(void *arg);
static void thumb_on_reap(void *arg);

struct thumb_client *
thumb_client_new(struct loop *l, const struct thumb_client_opts *opts,
                 struct err *e)
{
	struct thumb_client *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->helper = strdup(opts->helper)) == NULL) {
		free(c);
		err_sys(e, "thumbnails: calloc");
		return NULL;
	}
	c->loop = l;
	c->o = *opts;
	c->o.helper = c->helper;
	c->sock = -1;
	c->deadline = loop_timer_new(l, thumb_on_deadline, c, e);
	c->reaper = loop_timer_new(l, thumb_on_reap, c, e);
	if (c->deadline == NULL || c->reaper == NULL) {
		thumb_client_free(c);
		return NULL;
	}
	return c;
}

/* Why the helper ended, from its status. */
static void
thumb_why_ended(const struct thumb_client *c, int status, char *why, size_t len)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		snprintf(why, len,
		         "the thumbnail helper took longer than its %u ms",
		         c->o.timeout_ms);
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		snprintf(why, len,
		         "the thumbnail helper was killed (no answer within "
		         "its %u ms)",
		         c->o.timeout_ms);
	else if (WIFSIGNALED(status))
		snprintf(why, len,
		         "the thumbnail helper died of signal %d (%s)",
		         WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(why, len, "the thumbnail helper exited with status %d",
		         WEXITSTATUS(status));
}

/* Calls back the request in flight (if any) with why. */
static void
thumb_fail(struct thumb_client *c, const char *why, int helper_fault)
{
	thumb_done_cb cb = c->cb;

	loop_timer_set(c->deadline, -1);
	c->cb = NULL;
	if (cb != NULL)
		cb(NULL, 0, 0, 0, why, helper_fault, c->arg);
}

/* The socket is closed; the helper is reaped by the timer. */
static void
thumb_drop(struct thumb_client *c)
{
	if (c->sock != -1) {
		loop_del_fd(c->loop, c->sock);
		close(c->sock);
		c->sock = -1;
	}
	c->dying = c->pid;
	c->dying_polls = 0;
	c->pid = 0;
	if (c->dying > 0)
		loop_timer_set(c->reaper, 0);
}

static void
thumb_on_reap(void *arg)
{
	struct thumb_client *c = arg;
	char why[160];
	int status = 0;
	pid_t r;

	if (c->dying <= 0)
		return;
	r = waitpid(c->dying, &status, WNOHANG);
	if (r == 0) {
		/* closed its socket but lingers: killed after the grace */
		if (++c->dying_polls * THUMB_REAP_MS > THUMB_GRACE_MS)
			kill(c->dying, SIGKILL);
		loop_timer_set(c->reaper, THUMB_REAP_MS);
		return;
	}
	c->dying = 0;
	if (r == -1)
		snprintf(why, sizeof(why), "the thumbnail helper ended");
	else
		thumb_why_ended(c, status, why, sizeof(why));
	/* It exits non-zero only when it cannot start; an image ends it
	 * by a signal (its time limit, a crash). */
	thumb_fail(c, why, r > 0 && WIFEXITED(status) && WEXITSTATUS(status));
}

static void
thumb_on_deadline(void *arg)
{
	struct thumb_client *c = arg;

	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	thumb_drop(c);
}

static void
thumb_on_answer(int fd, uint32_t events, void *arg)
{
	struct thumb_client *c = arg;
	struct thumb_answer a;
	unsigned char *msg;
	ssize_t n, want;
	char why[300];

	(void)events;
	want = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
	if (want == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (want <= 0) { /* the helper ended */
		thumb_drop(c);
		return;
	}
	msg = malloc((size_t)want);
	n = msg != NULL ? recv(fd, msg, (size_t)want, MSG_DONTWAIT) : -1;
	if (n < (ssize_t)sizeof(a)) {
		free(msg);
		if (c->pid > 0)
			kill(c->pid, SIGKILL);
		thumb_drop(c);
		return;
	}
	memcpy(&a, msg, sizeof(a));
	a.reason[sizeof(a.reason) - 1] = '\0';
	if (a.magic != THUMB_MAGIC || a.id != c->id || c->cb == NULL ||
	    (a.status == THUMB_OK && (size_t)n != sizeof(a) + a.len)) {
		free(msg);
		if (c->pid > 0)
			kill(c->pid, SIGKILL);
		thumb_drop(c);
		return;
	}
	loop_timer_set(c->deadline, -1);
	{
		thumb_done_cb cb = c->cb;

		c->cb = NULL;
		if (a.status == THUMB_OK) {
			cb(msg + sizeof(a), a.len, a.width, a.height, NULL, 0,
			   c->arg);
		} else {
			snprintf(why, sizeof(why), "%s",
			         a.reason[0] != '\0' ? a.reason
			                             : "the helper made none");
			cb(NULL, 0, 0, 0, why, 0, c->arg);
		}
	}
	free(msg);
}

static int
thumb_start(struct thumb_client *c, struct err *e)
{
	posix_spawn_file_actions_t fa;
	char mem[16], tmo[16];
	char *argv[] = {c->helper,      "--memory-mb", mem,
	                "--timeout-ms", tmo,           NULL};
	int sv[2], rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		err_sys(e, "socketpair for the thumbnail helper");
		return -1;
	}
	snprintf(mem, sizeof(mem), "%u", c->o.memory_mb);
	snprintf(tmo, sizeof(tmo), "%u", c->o.timeout_ms);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	rc = child_spawn(&pid, c->helper, 0, &fa, argv);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		err_set(e, ERR_SYS, "cannot run the thumbnail helper %s: %s",
		        c->helper, strerror(rc));
		return -1;
	}
	if (loop_add_fd(c->loop, sv[0], EPOLLIN, thumb_on_answer, c, e) == -1) {
		close(sv[0]);
		kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		return -1;
	}
	c->sock = sv[0];
	c->pid = pid;
	return 0;
}

int
thumb_client_ask(struct thumb_client *c, int fd, thumb_done_cb cb, void *arg,
                 struct err *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct thumb_request rq;
	struct iovec iov = {&rq, sizeof(rq)};
	struct msghdr mh;
	struct cmsghdr *cm;

	if (c->cb != NULL) {
		err_set(e, ERR_INVALID, "the thumbnail helper is busy");
		return -1;
	}
	if (c->dying > 0) { /* an idle helper that ended: reaped now */
		kill(c->dying, SIGKILL);
		(void)waitpid(c->dying, NULL, 0);
		c->dying = 0;
		loop_timer_set(c->reaper, -1);
	}
	if (c->sock == -1 && thumb_start(c, e) == -1)
		return -1;
	memset(&rq, 0, sizeof(rq));
	rq.magic = THUMB_MAGIC;
	rq.id = ++c->next_id;
	rq.side = c->o.side;
	rq.format = (uint32_t)c->o.format;
	rq.quality = c->o.quality;
	memset(&mh, 0, sizeof(mh));
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(c->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == -1) {
		err_sys(e, "sending to the thumbnail helper");
		if (c->pid > 0)
			kill(c->pid, SIGKILL);
		thumb_drop(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	c->id = rq.id;
	loop_timer_set(c->deadline, (int64_t)c->o.timeout_ms + THUMB_GRACE_MS);
	return 0;
}

void
thumb_client_free(struct thumb_client *c)
{
	if (c == NULL)
		return;
	if (c->sock != -1) {
		loop_del_fd(c->loop, c->sock);
		close(c->sock); /* the helper sees the end and exits */
		c->sock = -1;
	}
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		(void)waitpid(c->pid, NULL, 0);
	}
	if (c->dying > 0) {
		kill(c->dying, SIGKILL);
		(void)waitpid(c->dying, NULL, 0);
	}
	c->dying = 0;
	thumb_fail(c, "cancelled", 0);
	loop_timer_free(c->deadline);
	loop_timer_free(c->reaper);
	free(c->helper);
	free(c);
}
