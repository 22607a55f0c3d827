#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/*
 * Registrations live in a table indexed by fd, so a callback may remove any
 * fd (even one that is ready in the same epoll batch) safely: a stale event
 * finds the slot empty or re-registered with a new generation.
 */
struct loop_reg {
	loop_fd_cb cb;
	void *arg;
	uint32_t gen;
	int used;
};

struct loop {
	int epfd;
	int stopped;
	uint32_t gen;
	struct loop_reg *regs;
	size_t nregs;
};

struct loop_timer {
	struct loop *loop;
	int fd;
	loop_timer_cb cb;
	void *arg;
};

uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *
loop_new(struct err *e)
{
	struct loop *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		err_sys(e, "loop: calloc");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		err_sys(e, "loop: epoll_create1");
		free(l);
		return NULL;
	}
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	close(l->epfd);
	free(l->regs);
	free(l);
}

static int
loop_grow(struct loop *l, int fd, struct err *e)
{
	size_t n = l->nregs ? l->nregs : 64;
	struct loop_reg *r;

	while (n <= (size_t)fd)
		n *= 2;
	if (n == l->nregs)
		return 0;
	r = realloc(l->regs, n * sizeof(*r));
	if (r == NULL) {
		err_sys(e, "loop: realloc");
		return -1;
	}
	memset(r + l->nregs, 0, (n - l->nregs) * sizeof(*r));
	l->regs = r;
	l->nregs = n;
	return 0;
}

static uint64_t
loop_pack(int fd, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)fd;
}

int
loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg,
            struct err *e)
{
	struct epoll_event ev;
	struct loop_reg *r;

	if (fd < 0) {
		err_set(e, ERR_INVALID, "loop: bad fd %d", fd);
		return -1;
	}
	if (loop_grow(l, fd, e) == -1)
		return -1;
	r = &l->regs[fd];
	r->cb = cb;
	r->arg = arg;
	r->gen = ++l->gen;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = loop_pack(fd, r->gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
		err_sys(e, "loop: epoll_ctl add fd %d", fd);
		r->cb = NULL;
		return -1;
	}
	r->used = 1;
	return 0;
}

int
loop_mod_fd(struct loop *l, int fd, uint32_t events, struct err *e)
{
	struct epoll_event ev;

	if (fd < 0 || (size_t)fd >= l->nregs || !l->regs[fd].used) {
		err_set(e, ERR_INVALID, "loop: fd %d not registered", fd);
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = loop_pack(fd, l->regs[fd].gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == -1) {
		err_sys(e, "loop: epoll_ctl mod fd %d", fd);
		return -1;
	}
	return 0;
}

void
loop_del_fd(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nregs || !l->regs[fd].used)
		return;
	/* The fd may already be closed by its owner; epoll then dropped it. */
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->regs[fd], 0, sizeof(l->regs[fd]));
}

static void
loop_timer_fire(int fd, uint32_t events, void *arg)
{
	struct loop_timer *t = arg;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return;
	t->cb(t->arg);
}

struct loop_timer *
loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg, struct err *e)
{
	struct loop_timer *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		err_sys(e, "loop: calloc");
		return NULL;
	}
	t->loop = l;
	t->cb = cb;
	t->arg = arg;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd == -1) {
		err_sys(e, "loop: timerfd_create");
		free(t);
		return NULL;
	}
	if (loop_add_fd(l, t->fd, EPOLLIN, loop_timer_fire, t, e) == -1) {
		close(t->fd);
		free(t);
		return NULL;
	}
	return t;
}

int
loop_timer_set(struct loop_timer *t, int64_t ms)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (ms >= 0) {
		/* A zero it_value disarms, so "now" is one nanosecond. */
		its.it_value.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
		if (ms == 0)
			its.it_value.tv_nsec = 1;
	}
	return timerfd_settime(t->fd, 0, &its, NULL);
}

void
loop_timer_free(struct loop_timer *t)
{
	if (t == NULL)
		return;
	loop_del_fd(t->loop, t->fd);
	close(t->fd);
	free(t);
}

int
loop_run_once(struct loop *l, int timeout_ms, struct err *e)
{
	struct epoll_event evs[64];
	struct loop_reg *r;
	int i, n, fd;
	uint32_t gen;

	n = epoll_wait(l->epfd, evs, 64, timeout_ms);
	if (n == -1) {
		if (errno == EINTR)
			return 0;
		err_sys(e, "loop: epoll_wait");
		return -1;
	}
	for (i = 0; i < n; i++) {
		fd = (int)(uint32_t)(evs[i].data.u64 & 0xffffffffu);
		gen = (uint32_t)(evs[i].data.u64 >> 32);
		if ((size_t)fd >= l->nregs)
			continue;
		r = &l->regs[fd];
		if (!r->used || r->gen != gen)
			continue;
		r->cb(fd, evs[i].events, r->arg);
	}
	return 0;
}

int
loop_run(struct loop *l, const int *done, struct err *e)
{
	l->stopped = 0;
	while (!l->stopped && (done == NULL || !*done)) {
		if (loop_run_once(l, 1000, e) == -1)
			return -1;
	}
	return 0;
}

void
loop_stop(struct loop *l)
{
	l->stopped = 1;
}
