/*
 * buf: a growable byte buffer with a hard cap. On any failure (allocation or
 * cap exceeded) the buffer frees its memory and stays failed, so a caller can
 * append many times and check once.
 */
#ifndef IMGSYNC_BUF_H
#define IMGSYNC_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated when len > 0 or after buf_cstr */
	size_t len;
	size_t cap;
	size_t max; /* 0 = no cap */
	int failed;
};

void buf_init(struct buf *b, size_t max);
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The contents as a C string ("" when empty); NULL once failed. */
const char *buf_cstr(struct buf *b);
/* Hands the memory to the caller (who frees it) and resets the buffer. */
char *buf_steal(struct buf *b);

#endif
