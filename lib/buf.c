#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_cleanup(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static int
buf_fail(struct buf *b)
{
	buf_cleanup(b);
	b->failed = 1;
	return -1;
}

static int
buf_reserve(struct buf *b, size_t n)
{
	size_t want, ncap;
	char *p;

	if (b->failed)
		return -1;
	if (n > (size_t)-1 - b->len - 1)
		return buf_fail(b);
	want = b->len + n + 1;
	if (b->max != 0 && want - 1 > b->max)
		return buf_fail(b);
	if (want <= b->cap)
		return 0;
	ncap = b->cap != 0 ? b->cap : 64;
	while (ncap < want)
		ncap = ncap > (size_t)-1 / 2 ? want : ncap * 2;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return buf_fail(b);
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	if (b->failed)
		return -1;
	/* Formatted once when it fits in what is allocated (the usual case),
	 * measured first only when it does not. */
	room = b->data != NULL ? b->cap - b->len : 0;
	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return buf_fail(b);
	if ((size_t)n < room) {
		if (b->max != 0 && b->len + (size_t)n > b->max)
			return buf_fail(b);
		b->len += (size_t)n;
		return 0;
	}
	if (buf_reserve(b, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *
buf_cstr(struct buf *b)
{
	if (b->failed)
		return NULL;
	if (b->data == NULL && buf_reserve(b, 0) == -1)
		return NULL;
	b->data[b->len] = '\0';
	return b->data;
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (buf_cstr(b) == NULL)
		return NULL;
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
