#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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
	uint32_t gen;
	struct loop_reg *regs;
	size_t nregs;
	/* Timers live in a binary min-heap on their deadline: arming one is a
	 * few comparisons, not a system call. */
	struct loop_timer **heap;
	size_t nheap, capheap;
	uint64_t pass; /* timer dispatch passes, so a timer re-armed by its
	                  own callback waits for the next pass */
};

struct loop_timer {
	struct loop *loop;
	loop_timer_cb cb;
	void *arg;
	uint64_t deadline_ns;
	uint64_t pass;
	size_t idx; /* in the heap; SIZE_MAX when disarmed */
};

static uint64_t
loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
loop_now_ms(void)
{
	return loop_now_ns() / 1000000u;
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
	free(l->heap);
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
heap_swap(struct loop *l, size_t i, size_t j)
{
	struct loop_timer *t = l->heap[i];

	l->heap[i] = l->heap[j];
	l->heap[j] = t;
	l->heap[i]->idx = i;
	l->heap[j]->idx = j;
}

static void
heap_up(struct loop *l, size_t i)
{
	while (i > 0 &&
	       l->heap[(i - 1) / 2]->deadline_ns > l->heap[i]->deadline_ns) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct loop *l, size_t i)
{
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= l->nheap)
			return;
		if (c + 1 < l->nheap &&
		    l->heap[c + 1]->deadline_ns < l->heap[c]->deadline_ns)
			c++;
		if (l->heap[i]->deadline_ns <= l->heap[c]->deadline_ns)
			return;
		heap_swap(l, i, c);
		i = c;
	}
}

static void
heap_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = t->idx;

	if (i == SIZE_MAX)
		return;
	t->idx = SIZE_MAX;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->idx = i;
	heap_up(l, i);
	heap_down(l, l->heap[i]->idx);
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
	t->idx = SIZE_MAX;
	return t;
}

int
loop_timer_set(struct loop_timer *t, int64_t ms)
{
	struct loop *l = t->loop;
	struct loop_timer **h;
	size_t n;

	heap_remove(l, t);
	if (ms < 0)
		return 0;
	if (l->nheap == l->capheap) {
		n = l->capheap ? l->capheap * 2 : 64;
		h = realloc(l->heap, n * sizeof(*h));
		if (h == NULL)
			return -1;
		l->heap = h;
		l->capheap = n;
	}
	t->deadline_ns = loop_now_ns() + (uint64_t)ms * 1000000u;
	t->pass = l->pass;
	t->idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->idx);
	return 0;
}

void
loop_timer_free(struct loop_timer *t)
{
	if (t == NULL)
		return;
	heap_remove(t->loop, t);
	free(t);
}

/* Milliseconds until the first timer is due, capped by timeout_ms. */
static int
loop_wait_ms(const struct loop *l, int timeout_ms)
{
	uint64_t now, d;
	int ms;

	if (l->nheap == 0)
		return timeout_ms;
	now = loop_now_ns();
	d = l->heap[0]->deadline_ns;
	if (d <= now)
		return 0;
	/* round up, so the timer is due when we wake */
	d = (d - now + 999999u) / 1000000u;
	ms = d > INT32_MAX ? INT32_MAX : (int)d;
	return timeout_ms >= 0 && timeout_ms < ms ? timeout_ms : ms;
}

static void
loop_fire_timers(struct loop *l)
{
	uint64_t now = loop_now_ns();
	struct loop_timer *t;

	l->pass++;
	while (l->nheap > 0) {
		t = l->heap[0];
		/* armed by a callback of this pass: next time round */
		if (t->deadline_ns > now || t->pass == l->pass)
			break;
		heap_remove(l, t);
		t->cb(t->arg);
	}
}

int
loop_run_once(struct loop *l, int timeout_ms, struct err *e)
{
	struct epoll_event evs[64];
	struct loop_reg *r;
	int i, n, fd;
	uint32_t gen;

	n = epoll_wait(l->epfd, evs, 64, loop_wait_ms(l, timeout_ms));
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
	loop_fire_timers(l);
	return 0;
}
