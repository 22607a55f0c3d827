/*
 * imgsync-thumb: imgsyncd's thumbnail helper. It decodes untrusted images
 * in its own address space, so that a hostile file can at worst end this
 * process, never the daemon. It reads requests from the SOCK_SEQPACKET
 * socket on its standard input, each with the image's descriptor, and
 * answers each with the thumbnail or the reason there is none
 * (lib/thumb_proto.h). Once libvips is loaded it enters its sandbox
 * (sandbox.c): bounded memory (--memory-mb beyond its loaded libraries),
 * no file opened, no socket, no program run.
 * A request that takes longer than the time limit ends the process
 * (SIGALRM); the daemon says so and starts another.
 *
 *   imgsync-thumb [--memory-mb N] [--timeout-ms N]
 *   imgsync-thumb --check [--memory-mb N]
 *       enters the sandbox and tries what it must refuse (see sandbox.h);
 *       exits 0 when everything was refused.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "render.h"
#include "sandbox.h"
#include "thumb_proto.h"

#define DEFAULT_MEMORY_MB 256
#define DEFAULT_TIMEOUT_MS 20000

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || *out == 0 || *out > max
	           ? -1
	           : 0;
}

/* The next request and its descriptor: 1, 0 at the end (the daemon went
 * away), -1 for a message that is not a request (answered and dropped). */
static int
next_request(struct thumb_request *rq, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {rq, sizeof(*rq)};
	struct msghdr mh;
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = recvmsg(STDIN_FILENO, &mh, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n <= 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if ((size_t)n != sizeof(*rq) || (mh.msg_flags & MSG_CTRUNC) != 0 ||
	    rq->magic != THUMB_MAGIC || *fd < 0 || rq->side == 0 ||
	    rq->side > THUMB_MAX_SIDE || rq->quality == 0 ||
	    rq->quality > 100 || rq->format > THUMB_JPEG)
		return -1;
	return 1;
}

static int
answer(const struct thumb_answer *a, const void *data)
{
	struct iovec iov[2] = {{(void *)a, sizeof(*a)},
	                       {(void *)data, data != NULL ? a->len : 0}};
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = data != NULL ? 2 : 1;
	do
		n = sendmsg(STDIN_FILENO, &mh, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == -1 ? -1 : 0;
}

/* Ends the helper once it is in its sandbox, without exit handlers:
 * nothing is left to flush or free, and the one an AddressSanitizer build
 * adds (LeakSanitizer's check) needs ptrace, which the sandbox refuses. */
static _Noreturn void
leave(int code)
{
	_exit(code);
}

static void
arm(unsigned long ms)
{
	struct itimerval t;

	memset(&t, 0, sizeof(t));
	t.it_value.tv_sec = (time_t)(ms / 1000);
	t.it_value.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	setitimer(ITIMER_REAL, &t, NULL);
}

int
main(int argc, char **argv)
{
	unsigned long memory_mb = DEFAULT_MEMORY_MB,
	              timeout_ms = DEFAULT_TIMEOUT_MS;
	struct thumb_request rq = {0};
	struct thumb_answer a;
	char why[256];
	void *out;
	int i, fd, rc, check = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(argv[i], "--memory-mb") == 0 && i + 1 < argc &&
		         parse_uint(argv[i + 1], 1 << 20, &memory_mb) == 0)
			i++;
		else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc &&
		         parse_uint(argv[i + 1], 3600000, &timeout_ms) == 0)
			i++;
		else {
			fprintf(
			    stderr,
			    "usage: imgsync-thumb [--check] [--memory-mb N] "
			    "[--timeout-ms N] (a SOCK_SEQPACKET socket on "
			    "standard input)\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, SIG_DFL);
	if (sandbox_prepare(check, why, sizeof(why)) == -1 ||
	    render_init(argv[0], why, sizeof(why)) == -1 ||
	    sandbox_enter((uint64_t)memory_mb << 20, why, sizeof(why)) == -1) {
		fprintf(stderr, "imgsync-thumb: %s\n", why);
		return 1;
	}
	if (check)
		leave(sandbox_check());
	for (;;) {
		rc = next_request(&rq, &fd);
		if (rc == 0)
			leave(0);
		memset(&a, 0, sizeof(a));
		a.magic = THUMB_MAGIC;
		a.id = rq.id;
		out = NULL;
		if (rc == -1) {
			a.status = THUMB_BAD_REQUEST;
			snprintf(a.reason, sizeof(a.reason), "bad request");
		} else {
			arm(timeout_ms);
			render_thumbnail(fd, &rq, &a, &out);
			arm(0);
		}
		if (fd >= 0)
			close(fd);
		rc = answer(&a, out);
		render_free(out);
		if (rc == -1)
			leave(0); /* the daemon went away */
	}
}
