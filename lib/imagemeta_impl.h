/*
 * imagemeta_impl: what the files of the imagemeta module share. The byte
 * source the format parsers read through (imagemeta_src.c), the big- and
 * little-endian readers, and the entry points of each format's parser,
 * which imagemeta.c picks from the magic bytes: imagemeta_formats.c
 * (PNG, JPEG, GIF, WebP, BMP, TIFF, ICO), imagemeta_bmff.c (HEIF/HEIC/AVIF
 * and JPEG XL) and imagemeta_svg.c. A parser sets the type and, when the
 * header says so, the dimensions; it never fails, and calls nothing but
 * the byte source.
 */
#ifndef IMGSYNC_IMAGEMETA_IMPL_H
#define IMGSYNC_IMAGEMETA_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "imagemeta.h"

#define SRC_WINDOW 8192 /* bytes cached per pread in fd mode */

/*
 * Where bytes come from: a caller's buffer, or a file read with pread
 * through a small window so byte-wise scans do not cost a syscall each.
 */
struct src {
	int is_buf;
	const unsigned char *buf;
	int fd;
	uint64_t size; /* bytes that may be read, from offset 0 */
	struct err *e;
	int ioerr;
	unsigned char *win;
	uint64_t woff;
	size_t wlen;
};

/* Reads the window at off; -1 (and s->ioerr set) when pread fails. */
int imagemeta_src_fill(struct src *s, uint64_t off);
/* Copies the n bytes at off to dst: 0, or -1 when they are not all there. */
int imagemeta_src_get(struct src *s, uint64_t off, void *dst, size_t n);
/* As imagemeta_src_get, for n bytes that must also lie before end. */
int imagemeta_src_get_in(struct src *s, uint64_t off, uint64_t end, void *dst,
                         size_t n);

static inline uint32_t
be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static inline uint32_t
le16(const unsigned char *p)
{
	return (uint32_t)p[1] << 8 | p[0];
}

static inline uint32_t
le24(const unsigned char *p)
{
	return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | le24(p);
}

static inline uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)le32(p + 4) << 32 | le32(p);
}

static inline uint32_t
rd16(const unsigned char *p, int le)
{
	return le ? le16(p) : be16(p);
}

static inline uint32_t
rd32(const unsigned char *p, int le)
{
	return le ? le32(p) : be32(p);
}

static inline uint64_t
rd64(const unsigned char *p, int le)
{
	return le ? le64(p) : be64(p);
}

static inline void
meta_type(struct imagemeta *m, const char *type)
{
	snprintf(m->type, sizeof(m->type), "%s", type);
}

static inline void
meta_dims(struct imagemeta *m, uint64_t w, uint64_t h)
{
	if (w == 0 || h == 0 || w > UINT32_MAX || h > UINT32_MAX)
		return;
	m->width = (unsigned)w;
	m->height = (unsigned)h;
	m->has_dimensions = 1;
}

/* imagemeta_formats.c; h holds the file's first n (up to 32) bytes. */
void imagemeta_formats_png(struct src *s, struct imagemeta *m);
void imagemeta_formats_jpeg(struct src *s, struct imagemeta *m);
void imagemeta_formats_gif(struct src *s, struct imagemeta *m);
void imagemeta_formats_webp(struct src *s, struct imagemeta *m);
int imagemeta_formats_bmp_detect(const unsigned char *h, size_t n);
void imagemeta_formats_bmp(const unsigned char *h, size_t n,
                           struct imagemeta *m);
void imagemeta_formats_tiff(struct src *s, const unsigned char *h, size_t n,
                            struct imagemeta *m);
int imagemeta_formats_ico_detect(const unsigned char *h, size_t n);
void imagemeta_formats_ico(struct src *s, const unsigned char *h,
                           struct imagemeta *m);

/* imagemeta_bmff.c */
void imagemeta_bmff_jxl_codestream(struct src *s, uint64_t off, uint64_t end,
                                   struct imagemeta *m);
void imagemeta_bmff_jxl_container(struct src *s, struct imagemeta *m);
void imagemeta_bmff_probe(struct src *s, struct imagemeta *m);

/* imagemeta_svg.c */
void imagemeta_svg_probe(struct src *s, struct imagemeta *m);

#endif
