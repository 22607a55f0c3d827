/*
 * imagemeta_src: the byte source the format parsers read through, a
 * caller's buffer or a file read with pread through a small window, every
 * read bounds-checked against the bytes there are.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "imagemeta_impl.h"

int
imagemeta_src_fill(struct src *s, uint64_t off)
{
	size_t want = SRC_WINDOW, got = 0;
	ssize_t r;

	if (s->size - off < want)
		want = (size_t)(s->size - off);
	s->woff = off;
	s->wlen = 0;
	while (got < want) {
		r = pread(s->fd, s->win + got, want - got, (off_t)(off + got));
		if (r == -1) {
			if (errno == EINTR)
				continue;
			err_sys(s->e, "pread at offset %llu",
			        (unsigned long long)(off + got));
			s->ioerr = 1;
			return -1;
		}
		if (r == 0) {
			/* the file shrank: what is left is all there is */
			s->size = off + got;
			break;
		}
		got += (size_t)r;
	}
	s->wlen = got;
	return 0;
}

int
imagemeta_src_get(struct src *s, uint64_t off, void *dst, size_t n)
{
	if (s->ioerr || off > s->size || n > s->size - off)
		return -1;
	if (n == 0)
		return 0;
	if (s->is_buf) {
		memcpy(dst, s->buf + off, n);
		return 0;
	}
	if (n > SRC_WINDOW)
		return -1;
	if (off < s->woff || off - s->woff > s->wlen ||
	    n > s->wlen - (off - s->woff)) {
		if (imagemeta_src_fill(s, off) == -1 || n > s->wlen)
			return -1;
	}
	memcpy(dst, s->win + (off - s->woff), n);
	return 0;
}

int
imagemeta_src_get_in(struct src *s, uint64_t off, uint64_t end, void *dst,
                     size_t n)
{
	if (off > end || n > end - off)
		return -1;
	return imagemeta_src_get(s, off, dst, n);
}
