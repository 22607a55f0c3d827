#include <criterion/criterion.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

TestSuite(loop);

struct fired {
	int order[16];
	int n;
	struct loop_timer *self;
	struct loop_timer *other;
	int rearm;
};

static void
on_timer(void *arg)
{
	struct fired *f = arg;

	f->order[f->n++] = 1;
}

struct tagged {
	struct fired *f;
	int tag;
};

static void
on_tagged(void *arg)
{
	struct tagged *t = arg;

	t->f->order[t->f->n++] = t->tag;
}

static void
run_for(struct loop *l, int ms)
{
	uint64_t end = loop_now_ms() + (uint64_t)ms;

	while (loop_now_ms() < end)
		cr_assert_eq(loop_run_once(l, 10, NULL), 0);
}

Test(loop, timers_fire_in_deadline_order)
{
	struct loop *l = loop_new(NULL);
	struct fired f = {0};
	struct tagged t[4];
	struct loop_timer *tm[4];
	int delays[4] = {40, 10, 30, 20}, i;

	for (i = 0; i < 4; i++) {
		t[i].f = &f;
		t[i].tag = delays[i];
		tm[i] = loop_timer_new(l, on_tagged, &t[i], NULL);
		cr_assert_eq(loop_timer_set(tm[i], delays[i]), 0);
	}
	/* disarmed and re-armed timers keep the heap right */
	loop_timer_set(tm[3], -1);
	loop_timer_set(tm[3], 5);
	run_for(l, 80);
	cr_assert_eq(f.n, 4);
	cr_assert_eq(f.order[0], 20);
	cr_assert_eq(f.order[1], 10);
	cr_assert_eq(f.order[2], 30);
	cr_assert_eq(f.order[3], 40);
	for (i = 0; i < 4; i++)
		loop_timer_free(tm[i]);
	loop_free(l);
}

static void
on_rearm(void *arg)
{
	struct fired *f = arg;

	f->n++;
	if (f->n < 5)
		loop_timer_set(f->self, 0);
}

Test(loop, zero_rearm_from_callback_does_not_spin)
{
	struct loop *l = loop_new(NULL);
	struct fired f = {0};

	f.self = loop_timer_new(l, on_rearm, &f, NULL);
	loop_timer_set(f.self, 0);
	/* one pass fires it once; its re-arm waits for the next pass */
	cr_assert_eq(loop_run_once(l, 0, NULL), 0);
	cr_assert_eq(f.n, 1);
	run_for(l, 20);
	cr_assert_eq(f.n, 5);
	loop_timer_free(f.self);
	loop_free(l);
}

static void
on_free_other(void *arg)
{
	struct fired *f = arg;

	f->n++;
	loop_timer_free(f->other);
	f->other = NULL;
}

Test(loop, callback_may_free_another_due_timer)
{
	struct loop *l = loop_new(NULL);
	struct fired f = {0}, g = {0};
	struct loop_timer *a, *b;

	a = loop_timer_new(l, on_free_other, &f, NULL);
	b = loop_timer_new(l, on_timer, &g, NULL);
	f.other = b;
	loop_timer_set(a, 1);
	loop_timer_set(b, 2);
	usleep(5000);
	run_for(l, 10);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(g.n, 0);
	loop_timer_free(a);
	loop_free(l);
}

static void
on_fd(int fd, uint32_t events, void *arg)
{
	int *n = arg;
	char c;

	cr_assert(events & EPOLLIN);
	cr_assert_eq(read(fd, &c, 1), 1);
	(*n)++;
}

Test(loop, fds_and_wait_bounded_by_timers)
{
	struct loop *l = loop_new(NULL);
	struct fired f = {0};
	struct loop_timer *t = loop_timer_new(l, on_timer, &f, NULL);
	int p[2], n = 0;
	uint64_t start;

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(loop_add_fd(l, p[0], EPOLLIN, on_fd, &n, NULL), 0);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(loop_run_once(l, 1000, NULL), 0);
	cr_assert_eq(n, 1);
	/* a timer shortens the wait: no 1 s sleep */
	loop_timer_set(t, 20);
	start = loop_now_ms();
	while (f.n == 0)
		cr_assert_eq(loop_run_once(l, 1000, NULL), 0);
	cr_assert_lt(loop_now_ms() - start, 500);
	loop_del_fd(l, p[0]);
	close(p[0]);
	close(p[1]);
	loop_timer_free(t);
	loop_free(l);
}
