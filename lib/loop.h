/*
 * loop: a small single-threaded epoll event loop: (fd, events, callback,
 * arg) registrations and one-shot timers. Callbacks must not block.
 */
#ifndef IMGSYNC_LOOP_H
#define IMGSYNC_LOOP_H

#include <stdint.h>

#include "err.h"

struct loop;
struct loop_timer;

/* events is a mask of EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP. */
typedef void (*loop_fd_cb)(int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(void *arg);

struct loop *loop_new(struct err *e);
/* The caller removes its fds and frees its timers first. */
void loop_free(struct loop *l);

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb,
                void *arg, struct err *e);
int loop_mod_fd(struct loop *l, int fd, uint32_t events, struct err *e);
void loop_del_fd(struct loop *l, int fd);

struct loop_timer *loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg,
                                  struct err *e);
/* Arms the timer to fire once after ms milliseconds; ms < 0 disarms. */
int loop_timer_set(struct loop_timer *t, int64_t ms);
void loop_timer_free(struct loop_timer *t);

/* Waits up to timeout_ms (-1 = forever) and dispatches what is ready. */
int loop_run_once(struct loop *l, int timeout_ms, struct err *e);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);

#endif
