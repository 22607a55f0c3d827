#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "imagemeta.h"

#define NEVER SIZE_MAX

/* Every file a test writes lives in one temporary directory per test. */
static char tmpdir[256];

static void
setup(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_imagemeta.XXXXXX", base);
	cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void
teardown(void)
{
	struct dirent *de;
	DIR *d;

	d = opendir(tmpdir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	rmdir(tmpdir);
}

/* cppcheck-suppress unknownMacro */
TestSuite(imagemeta, .init = setup, .fini = teardown);

/* Byte writers over struct buf. */

static void
put(struct buf *b, const void *p, size_t n)
{
	cr_assert_eq(buf_append(b, p, n), 0);
}

static void
put8(struct buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void
put16be(struct buf *b, unsigned v)
{
	put8(b, v >> 8 & 0xff);
	put8(b, v & 0xff);
}

static void
put16le(struct buf *b, unsigned v)
{
	put8(b, v & 0xff);
	put8(b, v >> 8 & 0xff);
}

static void
put24be(struct buf *b, uint32_t v)
{
	put8(b, v >> 16 & 0xff);
	put16be(b, v & 0xffff);
}

static void
put24le(struct buf *b, uint32_t v)
{
	put16le(b, v & 0xffff);
	put8(b, v >> 16 & 0xff);
}

static void
put32be(struct buf *b, uint32_t v)
{
	put16be(b, v >> 16);
	put16be(b, v & 0xffff);
}

static void
put32le(struct buf *b, uint32_t v)
{
	put16le(b, v & 0xffff);
	put16le(b, v >> 16);
}

static void
put64le(struct buf *b, uint64_t v)
{
	put32le(b, (uint32_t)v);
	put32le(b, (uint32_t)(v >> 32));
}

static void
put16(struct buf *b, int le, unsigned v)
{
	if (le)
		put16le(b, v);
	else
		put16be(b, v);
}

static void
put32(struct buf *b, int le, uint32_t v)
{
	if (le)
		put32le(b, v);
	else
		put32be(b, v);
}

static void
putstr(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void
putfill(struct buf *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		put8(b, (unsigned)(i * 131 + seed) & 0xff);
}

static void
patch32be(struct buf *b, size_t at, uint32_t v)
{
	unsigned char *p = (unsigned char *)b->data + at;

	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
patch32le(struct buf *b, size_t at, uint32_t v)
{
	unsigned char *p = (unsigned char *)b->data + at;

	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* ISO BMFF boxes: open writes a size to patch on close. */
static size_t
box_open(struct buf *b, const char *type)
{
	size_t at = b->len;

	put32be(b, 0);
	put(b, type, 4);
	return at;
}

static void
box_close(struct buf *b, size_t at)
{
	patch32be(b, at, (uint32_t)(b->len - at));
}

/*
 * A sample file and what a probe must say about every prefix of it: the
 * type from type_end bytes on (application/octet-stream before), the
 * dimensions from dims_end bytes on and none before, except alt_w x alt_h
 * when a shorter prefix legitimately shows a smaller picture.
 */
struct sample {
	char name[40];
	struct buf b;
	const char *type;
	unsigned w, h;
	size_t type_end, dims_end;
	unsigned alt_w, alt_h;
};

static void
sample_image(struct sample *s, const char *type, unsigned w, unsigned h,
             size_t type_end, size_t dims_end)
{
	s->type = type;
	s->w = w;
	s->h = h;
	s->type_end = type_end;
	s->dims_end = dims_end;
}

/* PNG: signature, IHDR, IDAT, IEND. */

static uint32_t
crc32_png(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static void
png_chunk(struct buf *b, const char *type, const void *data, size_t n)
{
	size_t at;

	put32be(b, (uint32_t)n);
	at = b->len;
	put(b, type, 4);
	put(b, data, n);
	put32be(b, crc32_png((const unsigned char *)b->data + at, n + 4));
}

static void
mk_png(struct sample *s, uint32_t w, uint32_t h)
{
	unsigned char ihdr[13] = {0};

	put(&s->b, "\x89PNG\r\n\x1a\n", 8);
	ihdr[0] = (unsigned char)(w >> 24);
	ihdr[1] = (unsigned char)(w >> 16);
	ihdr[2] = (unsigned char)(w >> 8);
	ihdr[3] = (unsigned char)w;
	ihdr[4] = (unsigned char)(h >> 24);
	ihdr[5] = (unsigned char)(h >> 16);
	ihdr[6] = (unsigned char)(h >> 8);
	ihdr[7] = (unsigned char)h;
	ihdr[8] = 8; /* bit depth */
	ihdr[9] = 6; /* RGBA */
	png_chunk(&s->b, "IHDR", ihdr, sizeof(ihdr));
	png_chunk(&s->b, "IDAT", "\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);
	png_chunk(&s->b, "IEND", NULL, 0);
	sample_image(s, "image/png", w, h, 8, 24);
}

static void
s_png(struct sample *s)
{
	mk_png(s, 640, 480);
}

static void
s_png_huge(struct sample *s)
{
	mk_png(s, 100000, 3);
}

/* JPEG: marker segments, built so that a naive scan would go wrong. */

static void
jpeg_seg(struct buf *b, unsigned marker, const void *p, size_t n)
{
	put8(b, 0xff);
	put8(b, marker);
	put16be(b, (unsigned)n + 2);
	put(b, p, n);
}

/*
 * A valid DHT (one code each of lengths 2 and 3); read as a frame header
 * it would say 256x1.
 */
static void
jpeg_dht(struct buf *b)
{
	static const unsigned char dht[] = {
	    0x00, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01};

	jpeg_seg(b, 0xc4, dht, sizeof(dht));
}

static void
jpeg_frame(struct sample *s, unsigned sof, unsigned w, unsigned h)
{
	unsigned char f[15] = {8, 0, 0,    0, 0, 3,    1, 0x22,
	                       0, 2, 0x11, 1, 3, 0x11, 1};
	size_t code;

	f[1] = (unsigned char)(h >> 8);
	f[2] = (unsigned char)h;
	f[3] = (unsigned char)(w >> 8);
	f[4] = (unsigned char)w;
	/* fill bytes before the marker are allowed */
	put(&s->b, "\xff\xff", 2);
	code = s->b.len + 1;
	jpeg_seg(&s->b, sof, f, sizeof(f));
	/* code, length, P, Y, X */
	sample_image(s, "image/jpeg", w, h, 3, code + 8);
	if (h == 0)
		sample_image(s, "image/jpeg", 0, 0, 3, NEVER);
}

static void
jpeg_scan(struct buf *b)
{
	jpeg_dht(b);
	jpeg_seg(b, 0xda, "\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00", 10);
	put(b, "\x12\x34\xff\x00\x56\xff\xd0\x78", 8);
	put(b, "\xff\xd9", 2);
}

/*
 * SOI, JFIF, then app_bytes of APP1 (Exif, with an embedded thumbnail whose
 * frame header says 16x16) and APP2 segments, DQT, DHT, the frame, a scan.
 */
static void
mk_jpeg(struct sample *s, unsigned sof, unsigned w, unsigned h,
        size_t app_bytes)
{
	static const unsigned char thumb[] = {0xff, 0xd8, 0xff, 0xc0, 0x00,
	                                      0x11, 0x08, 0x00, 0x10, 0x00,
	                                      0x10, 0x03, 0x01, 0x22, 0x00};
	unsigned char *seg, q[65];
	size_t n, i;
	int first = 1;

	seg = malloc(65533);
	cr_assert_not_null(seg);
	put(&s->b, "\xff\xd8", 2);
	jpeg_seg(&s->b, 0xe0, "JFIF\0\1\1\0\0\1\0\1\0\0", 14);
	while (app_bytes > 0) {
		n = app_bytes < 65533 ? app_bytes : 65533;
		for (i = 0; i < n; i++)
			seg[i] = (unsigned char)(i * 7 + 0xfe);
		if (first && n >= 100 + sizeof(thumb)) {
			memcpy(seg, "Exif\0\0", 6);
			memcpy(seg + 100, thumb, sizeof(thumb));
		}
		jpeg_seg(&s->b, first ? 0xe1 : 0xe2, seg, n);
		app_bytes -= n;
		first = 0;
	}
	free(seg);
	memset(q, 1, sizeof(q));
	q[0] = 0;
	jpeg_seg(&s->b, 0xdb, q, sizeof(q));
	jpeg_dht(&s->b);
	if (sof == 0xc2) {
		jpeg_seg(&s->b, 0xcc, "\x10\x11", 2); /* DAC */
		put(&s->b, "\xff\x01", 2);            /* TEM stands alone */
	}
	jpeg_frame(s, sof, w, h);
	jpeg_scan(&s->b);
}

/* The frame header lies past IMAGEMETA_HEAD. */
static void
s_jpeg_baseline(struct sample *s)
{
	mk_jpeg(s, 0xc0, 4032, 3024, 65533 + 6000);
}

static void
s_jpeg_progressive(struct sample *s)
{
	mk_jpeg(s, 0xc2, 1200, 800, 300);
}

static void
s_jpeg_sof15(struct sample *s)
{
	mk_jpeg(s, 0xcf, 17, 1, 0);
}

/* Height 0: a DNL segment after the first scan would give it. */
static void
s_jpeg_dnl(struct sample *s)
{
	mk_jpeg(s, 0xc1, 300, 0, 0);
}

static void
s_jpeg_no_frame(struct sample *s)
{
	put(&s->b, "\xff\xd8", 2);
	jpeg_seg(&s->b, 0xe0, "JFIF\0\1\1\0\0\1\0\1\0\0", 14);
	jpeg_scan(&s->b);
	sample_image(s, "image/jpeg", 0, 0, 3, NEVER);
}

/* GIF: header, logical screen, one 1x1 frame elsewhere. */
static void
mk_gif(struct sample *s, const char *version, unsigned w, unsigned h)
{
	put(&s->b, version, 6);
	put16le(&s->b, w);
	put16le(&s->b, h);
	put(&s->b, "\x80\x00\x00", 3);
	put(&s->b, "\0\0\0\xff\xff\xff", 6);
	put(&s->b, "\x2c\x05\x00\x05\x00\x01\x00\x01\x00\x00", 10);
	put(&s->b, "\x02\x02\x44\x01\x00\x3b", 6);
	sample_image(s, "image/gif", w, h, 6, 10);
}

static void
s_gif89a(struct sample *s)
{
	mk_gif(s, "GIF89a", 320, 200);
}

static void
s_gif87a(struct sample *s)
{
	mk_gif(s, "GIF87a", 65535, 2);
}

/* WebP: RIFF, WEBP, then the first chunk decides. */

static void
webp_open(struct buf *b)
{
	put(b, "RIFF\0\0\0\0WEBP", 12);
}

static void
webp_close(struct buf *b)
{
	patch32le(b, 4, (uint32_t)(b->len - 8));
}

static void
s_webp_lossy(struct sample *s)
{
	struct buf *b = &s->b;

	webp_open(b);
	put(b, "VP8 ", 4);
	put32le(b, 20);
	/* key frame, version 0, shown; start code; scale bits set */
	put(b, "\x50\x01\x00\x9d\x01\x2a", 6);
	put16le(b, 1 << 14 | 1023);
	put16le(b, 2 << 14 | 767);
	putfill(b, 10, 3);
	webp_close(b);
	sample_image(s, "image/webp", 1023, 767, 12, 30);
}

static void
s_webp_lossless(struct sample *s)
{
	struct buf *b = &s->b;

	webp_open(b);
	put(b, "VP8L", 4);
	put32le(b, 12);
	put8(b, 0x2f);
	put32le(b, (16384 - 1) | (uint32_t)(2 - 1) << 14 | 1u << 28);
	putfill(b, 7, 5);
	webp_close(b);
	sample_image(s, "image/webp", 16384, 2, 12, 25);
}

static void
s_webp_extended(struct sample *s)
{
	struct buf *b = &s->b;

	webp_open(b);
	put(b, "VP8X", 4);
	put32le(b, 10);
	put(b, "\x12\0\0\0", 4); /* alpha, animation */
	put24le(b, 20000 - 1);
	put24le(b, 10000 - 1);
	put(b, "ANIM", 4);
	put32le(b, 6);
	put(b, "\0\0\0\0\0\0", 6);
	/* one 1x1 frame at 0,0 lasting 100 ms, far smaller than the canvas */
	put(b, "ANMF", 4);
	put32le(b, 16 + 8 + 6);
	put(b, "\0\0\0\0\0\0\0\0\0\0\0\0\x64\0\0\0", 16);
	put(b, "VP8L", 4);
	put32le(b, 6);
	put8(b, 0x2f);
	put32le(b, 0);
	put8(b, 0);
	webp_close(b);
	sample_image(s, "image/webp", 20000, 10000, 12, 30);
}

/* BMP: file header, then a DIB header of the given size. */
static void
mk_bmp(struct sample *s, uint32_t dib, int32_t w, int32_t h)
{
	struct buf *b = &s->b;
	size_t n;

	put(b, "BM", 2);
	put32le(b, 0);
	put32le(b, 0);
	put32le(b, 14 + dib);
	put32le(b, dib);
	if (dib == 12) {
		put16le(b, (unsigned)w);
		put16le(b, (unsigned)h);
		put16le(b, 1);
		put16le(b, 24);
		sample_image(s, "image/bmp", (unsigned)w, (unsigned)h, 18, 22);
	} else {
		put32le(b, (uint32_t)w);
		put32le(b, (uint32_t)h);
		put16le(b, 1);
		put16le(b, 24);
		for (n = 30; n < 14 + dib; n++)
			put8(b, 0);
		sample_image(s, "image/bmp", (unsigned)w,
		             (unsigned)(h < 0 ? -h : h), 18, 26);
	}
	putfill(b, 12, 9);
	patch32le(b, 2, (uint32_t)b->len);
}

static void
s_bmp_info(struct sample *s)
{
	mk_bmp(s, 40, 800, 600);
}

static void
s_bmp_topdown(struct sample *s)
{
	mk_bmp(s, 40, 31, -17);
}

static void
s_bmp_v5(struct sample *s)
{
	mk_bmp(s, 124, 70000, 1);
}

static void
s_bmp_core(struct sample *s)
{
	mk_bmp(s, 12, 65535, 300);
}

/* TIFF: pixel data first, then the IFD. */

static void
tiff_entry(struct buf *b, int le, unsigned tag, unsigned type, uint32_t v)
{
	put16(b, le, tag);
	put16(b, le, type);
	put32(b, le, 1);
	if (type == 3) {
		put16(b, le, v); /* left-justified in the value field */
		put16(b, le, 0);
	} else {
		put32(b, le, v);
	}
}

static void
mk_tiff(struct sample *s, int le, unsigned type, uint32_t w, uint32_t h,
        int subfile)
{
	struct buf *b = &s->b;
	uint32_t ifd = 8 + 16;

	put(b, le ? "II*\0" : "MM\0*", 4);
	put32(b, le, ifd);
	putfill(b, 16, 1);
	put16(b, le, subfile ? 7 : 6);
	if (subfile)
		tiff_entry(b, le, 254, 4, 0);
	tiff_entry(b, le, 256, type, w);
	tiff_entry(b, le, 257, type, h);
	tiff_entry(b, le, 258, 3, 8);
	tiff_entry(b, le, 262, 3, 1);
	tiff_entry(b, le, 273, 4, 8);
	tiff_entry(b, le, 279, 4, w * h);
	put32(b, le, 0);
	sample_image(s, "image/tiff", w, h, 4,
	             ifd + 2 + (subfile ? 3 : 2) * 12);
}

static void
s_tiff_le_short(struct sample *s)
{
	mk_tiff(s, 1, 3, 640, 480, 0);
}

static void
s_tiff_le_long(struct sample *s)
{
	mk_tiff(s, 1, 4, 70000, 3, 1);
}

static void
s_tiff_be_short(struct sample *s)
{
	mk_tiff(s, 0, 3, 1024, 2, 1);
}

static void
s_tiff_be_long(struct sample *s)
{
	mk_tiff(s, 0, 4, 123456, 654321, 0);
}

static void
s_tiff_bigtiff(struct sample *s)
{
	struct buf *b = &s->b;

	put(b, "II+\0\x08\0\0\0", 8);
	put64le(b, 16);
	put64le(b, 5);
	put16le(b, 256); /* LONG8 */
	put16le(b, 16);
	put64le(b, 1);
	put64le(b, 5000000);
	put16le(b, 257); /* SHORT */
	put16le(b, 3);
	put64le(b, 1);
	put16le(b, 7);
	put16le(b, 0);
	put32le(b, 0);
	put16le(b, 258);
	put16le(b, 3);
	put64le(b, 1);
	put64le(b, 8);
	put16le(b, 273); /* StripOffsets */
	put16le(b, 16);
	put64le(b, 1);
	put64le(b, 8);
	put16le(b, 279); /* StripByteCounts */
	put16le(b, 16);
	put64le(b, 1);
	put64le(b, 5000000 * 7);
	put64le(b, 0);
	sample_image(s, "image/tiff", 5000000, 7, 4, 16 + 8 + 2 * 20);
}

/* The first IFD (a thumbnail would be in the second) has no size. */
static void
s_tiff_no_size(struct sample *s)
{
	struct buf *b = &s->b;

	put(b, "MM\0*", 4);
	put32be(b, 8);
	put16be(b, 1);
	tiff_entry(b, 0, 258, 3, 8);
	put32be(b, 0);
	sample_image(s, "image/tiff", 0, 0, 4, NEVER);
}

/*
 * HEIF/AVIF: ftyp; meta with hdlr, pitm, iloc, iinf (items 1 and 2) and
 * iprp, whose ipco holds (1) the codec configuration, (2) item 2's ispe,
 * (3) the primary item's ispe, (4) pixi and (5) irot, and whose ipma lists
 * item 2 first; mdat with both items' (dummy) data.
 */

static void
heif_assoc(struct buf *b, int flags, unsigned idx, int essential)
{
	if (flags & 1)
		put16be(b, (essential ? 0x8000u : 0) | idx);
	else
		put8(b, (essential ? 0x80u : 0) | idx);
}

static void
heif_ispe(struct buf *b, uint32_t w, uint32_t h)
{
	size_t at = box_open(b, "ispe");

	put32be(b, 0);
	put32be(b, w);
	put32be(b, h);
	box_close(b, at);
}

static void
mk_heif(struct sample *s, const char *type, const char *brands, int pitm,
        int ipma_version, int ipma_flags, uint32_t pw, uint32_t ph, uint32_t ow,
        uint32_t oh)
{
	struct buf *b = &s->b;
	static const unsigned char hvcc[23] = {
	    1,    0x01, 0x60, 0,    0,    0,    0x90, 0, 0, 0,    0, 0,
	    0x5a, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0};
	int avif = strcmp(type, "image/avif") == 0;
	size_t ftyp, meta, at, iprp, ipco, iloc, mdat;
	unsigned item;

	ftyp = box_open(b, "ftyp");
	put(b, brands, 4);
	put32be(b, 0);
	putstr(b, brands + 4);
	box_close(b, ftyp);
	s->type_end = b->len;

	meta = box_open(b, "meta");
	put32be(b, 0);
	at = box_open(b, "hdlr");
	put32be(b, 0);
	put32be(b, 0);
	put(b, "pict", 4);
	put(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0", 13);
	box_close(b, at);
	if (pitm >= 0) {
		at = box_open(b, "pitm");
		put32be(b, (uint32_t)pitm << 24);
		if (pitm == 0)
			put16be(b, 1);
		else
			put32be(b, 1);
		box_close(b, at);
	}
	at = box_open(b, "iloc");
	put32be(b, 0);
	put8(b, 0x44); /* 4-byte offsets and lengths */
	put8(b, 0x00); /* no base offset */
	put16be(b, 2);
	iloc = b->len;
	for (item = 1; item <= 2; item++) {
		put16be(b, item);
		put16be(b, 0);
		put16be(b, 1);
		put32be(b, 0); /* patched below */
		put32be(b, 20);
	}
	box_close(b, at);
	at = box_open(b, "iinf");
	put32be(b, 0);
	put16be(b, 2);
	for (item = 1; item <= 2; item++) {
		size_t infe = box_open(b, "infe");

		put32be(b, 2u << 24);
		put16be(b, item);
		put16be(b, 0);
		put(b, avif ? "av01" : "hvc1", 4);
		put8(b, 0);
		box_close(b, infe);
	}
	box_close(b, at);

	iprp = box_open(b, "iprp");
	ipco = box_open(b, "ipco");
	if (avif) {
		at = box_open(b, "av1C");
		put32be(b, 0x81000c00);
	} else {
		at = box_open(b, "hvcC");
		put(b, hvcc, sizeof(hvcc));
	}
	box_close(b, at);
	heif_ispe(b, ow, oh);
	heif_ispe(b, pw, ph);
	at = box_open(b, "pixi");
	put32be(b, 0);
	put(b, "\x03\x08\x08\x08", 4);
	box_close(b, at);
	at = box_open(b, "irot");
	put8(b, 1);
	box_close(b, at);
	box_close(b, ipco);

	at = box_open(b, "ipma");
	put8(b, (unsigned)ipma_version);
	put24be(b, (uint32_t)ipma_flags);
	put32be(b, 2);
	if (ipma_version < 1)
		put16be(b, 2);
	else
		put32be(b, 2);
	put8(b, 2);
	heif_assoc(b, ipma_flags, 1, 1);
	heif_assoc(b, ipma_flags, 2, 0);
	if (ipma_version < 1)
		put16be(b, 1);
	else
		put32be(b, 1);
	put8(b, 4);
	heif_assoc(b, ipma_flags, 1, 1);
	heif_assoc(b, ipma_flags, 3, 0);
	heif_assoc(b, ipma_flags, 4, 0);
	heif_assoc(b, ipma_flags, 5, 1);
	box_close(b, at);
	box_close(b, iprp);
	box_close(b, meta);
	s->type = type;
	s->dims_end = b->len;
	if (pitm >= 0) {
		s->w = pw;
		s->h = ph;
	} else {
		s->w = pw * ph > ow * oh ? pw : ow;
		s->h = pw * ph > ow * oh ? ph : oh;
	}

	at = box_open(b, "mdat");
	mdat = b->len;
	putfill(b, 40, 11);
	box_close(b, at);
	patch32be(b, iloc + 6, (uint32_t)mdat);
	patch32be(b, iloc + 14 + 6, (uint32_t)(mdat + 20));
}

/* The primary item is not the largest: its ispe must win. */
static void
s_heic(struct sample *s)
{
	mk_heif(s, "image/heic",
	        "heic"
	        "mif1heic",
	        0, 0, 0, 1920, 1080, 4000, 3000);
}

static void
s_heic_major_mif1(struct sample *s)
{
	mk_heif(s, "image/heic",
	        "mif1"
	        "MiHEmiafheic",
	        0, 0, 0, 4032, 3024, 512, 512);
}

static void
s_avif(struct sample *s)
{
	mk_heif(s, "image/avif",
	        "avif"
	        "avifmif1miafMA1B",
	        1, 1, 1, 640, 480, 64, 64);
}

static void
s_avif_sequence(struct sample *s)
{
	mk_heif(s, "image/avif",
	        "avis"
	        "avismsf1iso8mif1",
	        0, 0, 1, 100, 50, 10, 5);
}

/* No pitm: the largest ispe. */
static void
s_heif_no_primary(struct sample *s)
{
	mk_heif(s, "image/heif",
	        "mif1"
	        "mif1",
	        -1, 0, 0, 1920, 1080, 4000, 3000);
}

/* JPEG XL: the SizeHeader, bit-packed LSB first after FF 0A. */

struct bitw {
	unsigned char b[16];
	size_t pos;
};

static void
bitw_put(struct bitw *w, uint32_t v, unsigned k)
{
	unsigned i;

	for (i = 0; i < k; i++, w->pos++)
		if (v >> i & 1)
			w->b[w->pos / 8] |= (unsigned char)(1u << (w->pos % 8));
}

static void
jxl_u32(struct bitw *w, uint32_t v)
{
	static const unsigned nb[4] = {9, 13, 18, 30};
	unsigned sel = 0;

	while (sel < 3 && v - 1 >= 1u << nb[sel])
		sel++;
	bitw_put(w, sel, 2);
	bitw_put(w, v - 1, nb[sel]);
}

/* Appends a codestream start; returns where its size header ends. */
static size_t
jxl_codestream(struct buf *b, uint32_t w, uint32_t h, unsigned ratio)
{
	struct bitw bw;
	int small =
	    h % 8 == 0 && h <= 256 && (ratio != 0 || (w % 8 == 0 && w <= 256));
	size_t end;

	memset(&bw, 0, sizeof(bw));
	bitw_put(&bw, (uint32_t)small, 1);
	if (small)
		bitw_put(&bw, h / 8 - 1, 5);
	else
		jxl_u32(&bw, h);
	bitw_put(&bw, ratio, 3);
	if (ratio == 0) {
		if (small)
			bitw_put(&bw, w / 8 - 1, 5);
		else
			jxl_u32(&bw, w);
	}
	put(b, "\xff\x0a", 2);
	put(b, bw.b, (bw.pos + 7) / 8);
	end = b->len;
	putfill(b, 24, 13);
	return end;
}

static void
s_jxl_small(struct sample *s)
{
	size_t end = jxl_codestream(&s->b, 256, 64, 0);

	sample_image(s, "image/jxl", 256, 64, 2, end);
}

static void
s_jxl_large(struct sample *s)
{
	size_t end = jxl_codestream(&s->b, 100000, 750, 0);

	sample_image(s, "image/jxl", 100000, 750, 2, end);
}

static void
s_jxl_ratio(struct sample *s)
{
	size_t end = jxl_codestream(&s->b, 0, 1000, 2); /* 12:10 */

	sample_image(s, "image/jxl", 1200, 1000, 2, end);
}

static void
s_jxl_container(struct sample *s)
{
	struct buf *b = &s->b;
	size_t at, end;

	put(b, "\0\0\0\x0cJXL \r\n\x87\n", 12);
	at = box_open(b, "ftyp");
	put(b, "jxl \0\0\0\0jxl ", 12);
	box_close(b, at);
	at = box_open(b, "jxll");
	put8(b, 5);
	box_close(b, at);
	at = box_open(b, "jxlc");
	end = jxl_codestream(b, 0, 1080, 5); /* 16:9 */
	box_close(b, at);
	sample_image(s, "image/jxl", 1920, 1080, 12, end);
}

/* ICO: a 16x16 entry, then a 256x256 one (size bytes 0). */
static void
s_ico(struct sample *s)
{
	struct buf *b = &s->b;

	put(b, "\0\0\1\0\2\0", 6);
	put(b, "\x10\x10\0\0\1\0\x20\0", 8);
	put32le(b, 64);
	put32le(b, 6 + 2 * 16);
	put(b, "\0\0\0\0\1\0\x20\0", 8);
	put32le(b, 64);
	put32le(b, 6 + 2 * 16 + 64);
	putfill(b, 128, 17);
	sample_image(s, "image/vnd.microsoft.icon", 256, 256, 22, 6 + 2 * 16);
	s->alt_w = s->alt_h = 16;
}

/* SVG: the type from "<svg" and one more byte, dims from its '>'. */
static void
mk_svg(struct sample *s, const char *text, unsigned w, unsigned h)
{
	const char *tag = strstr(text, "<svg"), *gt;

	cr_assert_not_null(tag);
	gt = strchr(tag, '>');
	cr_assert_not_null(gt);
	if (gt[-1] == '/')
		gt--;
	putstr(&s->b, text);
	sample_image(s, "image/svg+xml", w, h, (size_t)(tag - text) + 5,
	             w != 0 ? (size_t)(gt - text) + 1 : NEVER);
}

static void
s_svg_plain(struct sample *s)
{
	mk_svg(s,
	       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" "
	       "height=\"80\"><rect width=\"1\" height=\"1\"/></svg>\n",
	       120, 80);
}

static void
s_svg_prolog(struct sample *s)
{
	mk_svg(s,
	       "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\" "
	       "standalone=\"no\"?>\n"
	       "<!-- Created with Inkscape (http://www.inkscape.org/) -->\n"
	       "<?xml-stylesheet href=\"style.css\" type=\"text/css\"?>\n"
	       "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" "
	       "\"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\" [\n"
	       "  <!ENTITY ns_svg \"http://www.w3.org/2000/svg>\">\n"
	       "  <!-- it's a comment with a > in it -->\n"
	       "]>\n"
	       "\r\n<svg\n  version=\"1.1\"\n"
	       "  width = '64px'\n  height=\" 48 \"\n  stroke-width=\"3\"\n"
	       "  data-height=\"5\" viewBox=\"0 0 64 48\">\n</svg>\n",
	       64, 48);
}

static void
s_svg_selfclosing(struct sample *s)
{
	mk_svg(s, "  \t<svg height='9' width='7'/>", 7, 9);
}

static void
s_svg_percent(struct sample *s)
{
	mk_svg(
	    s,
	    "<svg width=\"100%\" height=\"100%\" viewBox=\"0 0 10 10\"></svg>",
	    0, 0);
}

static void
s_svg_units(struct sample *s)
{
	mk_svg(s, "<svg width=\"10.5\" height=\"3cm\"></svg>", 0, 0);
}

static void
s_svg_one_dim(struct sample *s)
{
	mk_svg(s, "<svg width=\"10\" data-height=\"4\" stroke-width=\"3\"/>", 0,
	       0);
}

static void
s_svg_bare(struct sample *s)
{
	mk_svg(s, "\xef\xbb\xbf\n<svg>\n</svg>", 0, 0);
}

/* Not images: always application/octet-stream. */

static void
s_not_text(struct sample *s)
{
	putstr(&s->b, "hello, world\nthis is not an image\n");
}

static void
s_not_empty(struct sample *s)
{
	(void)s;
}

static void
s_not_html(struct sample *s)
{
	putstr(&s->b, "<!DOCTYPE html>\n<html><body><svg width=\"5\" "
	              "height=\"5\"></svg></body></html>\n");
}

static void
s_not_svgfoo(struct sample *s)
{
	putstr(&s->b, "<?xml version=\"1.0\"?><svgfoo width=\"1\"/>");
}

static void
s_not_bm_text(struct sample *s)
{
	putstr(&s->b, "BMW owners club: meeting at eight\n");
}

static void
s_not_mp4(struct sample *s)
{
	size_t at = box_open(&s->b, "ftyp");

	put(&s->b, "isom\0\0\2\0isomiso2avc1mp41", 24);
	box_close(&s->b, at);
	at = box_open(&s->b, "mdat");
	putfill(&s->b, 32, 2);
	box_close(&s->b, at);
}

static void
s_not_zip(struct sample *s)
{
	put(&s->b, "PK\3\4\x14\0\0\0\x08\0", 10);
	putfill(&s->b, 40, 4);
}

static void
s_not_ico_like(struct sample *s)
{
	/* 00 00 01 00 without a sane directory */
	put(&s->b, "\0\0\1\0\0\0", 6);
	putfill(&s->b, 40, 6);
}

struct sample_def {
	const char *name;
	void (*build)(struct sample *);
};

static const struct sample_def defs[] = {
    {"png", s_png},
    {"png_huge", s_png_huge},
    {"jpeg_baseline", s_jpeg_baseline},
    {"jpeg_progressive", s_jpeg_progressive},
    {"jpeg_sof15", s_jpeg_sof15},
    {"jpeg_dnl", s_jpeg_dnl},
    {"jpeg_no_frame", s_jpeg_no_frame},
    {"gif89a", s_gif89a},
    {"gif87a", s_gif87a},
    {"webp_lossy", s_webp_lossy},
    {"webp_lossless", s_webp_lossless},
    {"webp_extended", s_webp_extended},
    {"bmp_info", s_bmp_info},
    {"bmp_topdown", s_bmp_topdown},
    {"bmp_v5", s_bmp_v5},
    {"bmp_core", s_bmp_core},
    {"tiff_le_short", s_tiff_le_short},
    {"tiff_le_long", s_tiff_le_long},
    {"tiff_be_short", s_tiff_be_short},
    {"tiff_be_long", s_tiff_be_long},
    {"tiff_bigtiff", s_tiff_bigtiff},
    {"tiff_no_size", s_tiff_no_size},
    {"heif_heic", s_heic},
    {"heif_heic_major_mif1", s_heic_major_mif1},
    {"heif_avif", s_avif},
    {"heif_avif_sequence", s_avif_sequence},
    {"heif_no_primary", s_heif_no_primary},
    {"jxl_small", s_jxl_small},
    {"jxl_large", s_jxl_large},
    {"jxl_ratio", s_jxl_ratio},
    {"jxl_container", s_jxl_container},
    {"ico", s_ico},
    {"svg_plain", s_svg_plain},
    {"svg_prolog", s_svg_prolog},
    {"svg_selfclosing", s_svg_selfclosing},
    {"svg_percent", s_svg_percent},
    {"svg_units", s_svg_units},
    {"svg_one_dim", s_svg_one_dim},
    {"svg_bare", s_svg_bare},
    {"not_text", s_not_text},
    {"not_empty", s_not_empty},
    {"not_html", s_not_html},
    {"not_svgfoo", s_not_svgfoo},
    {"not_bm_text", s_not_bm_text},
    {"not_mp4", s_not_mp4},
    {"not_zip", s_not_zip},
    {"not_ico_like", s_not_ico_like},
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static void
sample_build(struct sample *s, const struct sample_def *d)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	buf_init(&s->b, 0);
	s->type = IMAGEMETA_OCTET_STREAM;
	s->type_end = s->dims_end = NEVER;
	d->build(s);
	cr_assert(!s->b.failed);
}

static void
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
		cr_assert_gt(w, 0, "write: %s", strerror(errno));
		c += w;
		n -= (size_t)w;
	}
}

static int
file_create(const char *name, const void *p, size_t n)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	write_all(fd, p, n);
	return fd;
}

/* What a probe of the first len bytes of s must say. */
static void
expect(const struct sample *s, size_t len, const struct imagemeta *m,
       const char *how)
{
	const char *type =
	    len >= s->type_end ? s->type : IMAGEMETA_OCTET_STREAM;

	if (strcmp(m->type, type) != 0)
		cr_assert_fail("%s (%s, %zu of %zu bytes): type %s, want %s",
		               s->name, how, len, s->b.len, m->type, type);
	if (len >= s->dims_end &&
	    (!m->has_dimensions || m->width != s->w || m->height != s->h))
		cr_assert_fail("%s (%s, %zu of %zu bytes): %ux%u (%s), want "
		               "%ux%u",
		               s->name, how, len, s->b.len, m->width, m->height,
		               m->has_dimensions ? "has" : "none", s->w, s->h);
	if (len < s->dims_end && m->has_dimensions &&
	    !(s->alt_w != 0 && m->width == s->alt_w && m->height == s->alt_h))
		cr_assert_fail("%s (%s, %zu of %zu bytes): %ux%u from a prefix "
		               "that does not hold them",
		               s->name, how, len, s->b.len, m->width,
		               m->height);
	if (!m->has_dimensions && (m->width != 0 || m->height != 0))
		cr_assert_fail("%s (%s, %zu bytes): %ux%u without dimensions",
		               s->name, how, len, m->width, m->height);
}

/* Every sample whose name starts with prefix, whole, by fd and by buffer. */
static void
check_kind(const char *prefix)
{
	struct imagemeta m;
	struct sample s;
	struct err e;
	size_t i, n = 0;
	int fd;

	for (i = 0; i < NDEFS; i++) {
		if (strncmp(defs[i].name, prefix, strlen(prefix)) != 0)
			continue;
		sample_build(&s, &defs[i]);
		cr_assert_eq(s.type_end == NEVER,
		             strcmp(s.type, IMAGEMETA_OCTET_STREAM) == 0, "%s",
		             s.name);
		cr_assert_eq(imagemeta_probe_buf(s.b.data, s.b.len, &m), 0);
		expect(&s, s.b.len, &m, "buffer");
		fd = file_create(s.name, s.b.data, s.b.len);
		err_clear(&e);
		cr_assert_eq(imagemeta_probe_fd(fd, s.b.len, &m, &e), 0,
		             "%s: %s", s.name, e.message);
		expect(&s, s.b.len, &m, "fd");
		close(fd);
		buf_cleanup(&s.b);
		n++;
	}
	cr_assert_gt(n, 0, "no sample named %s*", prefix);
}

Test(imagemeta, png)
{
	check_kind("png");
}

Test(imagemeta, jpeg)
{
	check_kind("jpeg");
}

Test(imagemeta, gif)
{
	check_kind("gif");
}

Test(imagemeta, webp)
{
	check_kind("webp");
}

Test(imagemeta, bmp)
{
	check_kind("bmp");
}

Test(imagemeta, tiff)
{
	check_kind("tiff");
}

Test(imagemeta, heif_avif)
{
	check_kind("heif");
}

Test(imagemeta, jxl)
{
	check_kind("jxl");
}

Test(imagemeta, ico)
{
	check_kind("ico");
}

Test(imagemeta, svg)
{
	check_kind("svg");
}

Test(imagemeta, not_images)
{
	check_kind("not");
}

/*
 * A JPEG whose frame header sits after 400 KB of EXIF and ICC segments: the
 * fd probe finds it with a few small reads; a 64 KiB head only has the type.
 */
Test(imagemeta, jpeg_far_frame)
{
	struct imagemeta m;
	struct sample s;
	struct err e;
	int fd;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "far.jpg");
	buf_init(&s.b, 0);
	mk_jpeg(&s, 0xc0, 6000, 4000, 400 * 1000);
	cr_assert_gt(s.dims_end, 400 * 1000);
	fd = file_create(s.name, s.b.data, s.b.len);
	cr_assert_eq(imagemeta_probe_fd(fd, s.b.len, &m, &e), 0);
	cr_assert_str_eq(m.type, "image/jpeg");
	cr_assert(m.has_dimensions);
	cr_assert_eq(m.width, 6000);
	cr_assert_eq(m.height, 4000);
	imagemeta_probe_buf(s.b.data, IMAGEMETA_HEAD, &m);
	cr_assert_str_eq(m.type, "image/jpeg");
	cr_assert(!m.has_dimensions);
	imagemeta_probe_buf(s.b.data, s.b.len, &m);
	cr_assert_eq(m.width, 6000);
	close(fd);
	buf_cleanup(&s.b);
}

/*
 * EXIF Orientation. A JPEG whose APP1 holds "Exif\0\0" and a TIFF
 * structure (byte order le or not) with, in IFD0, a few entries and the
 * Orientation (type SHORT, count 1, value orient) at ifd_off; then a 640x480
 * frame. ifd_off past the segment: the IFD is not in it.
 */
static void
mk_exif_jpeg(struct buf *b, int le, unsigned orient, uint32_t ifd_off)
{
	struct buf x;

	buf_init(&x, 0);
	put(&x, "Exif\0\0", 6);
	put(&x, le ? "II" : "MM", 2);
	put16(&x, le, 42);
	put32(&x, le, ifd_off);
	put16(&x, le, 3);      /* entries */
	put16(&x, le, 0x010f); /* Make, ASCII, 4 bytes in the value */
	put16(&x, le, 2);
	put32(&x, le, 4);
	put(&x, "Cam\0", 4);
	put16(&x, le, 0x0112); /* Orientation */
	put16(&x, le, 3);
	put32(&x, le, 1);
	put16(&x, le, orient);
	put16(&x, le, 0);
	put16(&x, le, 0x011a); /* XResolution, a RATIONAL elsewhere */
	put16(&x, le, 5);
	put32(&x, le, 1);
	put32(&x, le, 8);
	put32(&x, le, 0); /* no IFD1 */
	put(b, "\xff\xd8", 2);
	jpeg_seg(b, 0xe1, x.data, x.len);
	jpeg_seg(b, 0xc0, "\x08\x01\xe0\x02\x80\x03\x01\x22\x00", 9);
	jpeg_scan(b);
	buf_cleanup(&x);
}

/* Width and height as displayed: swapped for 5-8, as coded for 1-4. */
Test(imagemeta, exif_orientation_turns_the_sides)
{
	static const struct {
		int le;
		unsigned orient, want, w, h;
	} cases[] = {
	    {1, 6, 6, 480, 640}, {0, 6, 6, 480, 640}, {1, 8, 8, 480, 640},
	    {0, 5, 5, 480, 640}, {1, 7, 7, 480, 640}, {1, 1, 1, 640, 480},
	    {0, 3, 3, 640, 480}, {1, 0, 0, 640, 480}, {1, 9, 0, 640, 480},
	};
	struct imagemeta m;
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_init(&b, 0);
		mk_exif_jpeg(&b, cases[i].le, cases[i].orient, 8);
		imagemeta_probe_buf(b.data, b.len, &m);
		cr_assert_str_eq(m.type, "image/jpeg");
		cr_assert_eq(m.orientation, cases[i].want, "case %zu", i);
		cr_assert_eq(m.width, cases[i].w, "case %zu", i);
		cr_assert_eq(m.height, cases[i].h, "case %zu", i);
		buf_cleanup(&b);
	}
}

/* A directory that lies outside the EXIF segment is not read, even when
 * the next segment holds one that would say 6 right where the offset
 * points; nor one at an offset far past the file. */
Test(imagemeta, exif_orientation_stays_in_its_segment)
{
	struct imagemeta m;
	struct buf b, ifd;

	buf_init(&ifd, 0);
	put16le(&ifd, 1);
	put16le(&ifd, 0x0112);
	put16le(&ifd, 3);
	put32le(&ifd, 1);
	put32le(&ifd, 6);
	put32le(&ifd, 0);
	/* SOI, APP1 (length 16: "Exif\0\0", the TIFF header at file
	 * offset 12) ends at 20; APP2's data starts at 24 = TIFF + 12 */
	buf_init(&b, 0);
	put(&b, "\xff\xd8", 2);
	jpeg_seg(&b, 0xe1, "Exif\0\0II*\0\x0c\0\0\0", 14);
	jpeg_seg(&b, 0xe2, ifd.data, ifd.len);
	jpeg_seg(&b, 0xc0, "\x08\x01\xe0\x02\x80\x03\x01\x22\x00", 9);
	jpeg_scan(&b);
	imagemeta_probe_buf(b.data, b.len, &m);
	cr_assert_eq(m.orientation, 0);
	cr_assert_eq(m.width, 640);
	buf_cleanup(&b);
	buf_cleanup(&ifd);
	buf_init(&b, 0);
	mk_exif_jpeg(&b, 1, 6, 0xffffff00u);
	imagemeta_probe_buf(b.data, b.len, &m);
	cr_assert_eq(m.orientation, 0);
	cr_assert_eq(m.width, 640);
	buf_cleanup(&b);
}

/* TIFF: Orientation (274) in the first directory. */
Test(imagemeta, tiff_orientation)
{
	struct imagemeta m;
	struct buf b;

	buf_init(&b, 0);
	put(&b, "II*\0", 4);
	put32le(&b, 8);
	put16le(&b, 3);
	put16le(&b, 256); /* ImageWidth SHORT 37 */
	put16le(&b, 3);
	put32le(&b, 1);
	put32le(&b, 37);
	put16le(&b, 257); /* ImageLength LONG 23 */
	put16le(&b, 4);
	put32le(&b, 1);
	put32le(&b, 23);
	put16le(&b, 274); /* Orientation 8 */
	put16le(&b, 3);
	put32le(&b, 1);
	put32le(&b, 8);
	put32le(&b, 0);
	imagemeta_probe_buf(b.data, b.len, &m);
	cr_assert_str_eq(m.type, "image/tiff");
	cr_assert_eq(m.orientation, 8);
	cr_assert_eq(m.width, 23);
	cr_assert_eq(m.height, 37);
	buf_cleanup(&b);
}

/* Every prefix of every sample, as a buffer and as a file of that size. */
Test(imagemeta, every_prefix, .timeout = 240)
{
	struct imagemeta m;
	struct sample s;
	struct err e;
	size_t i, len;
	int fd;

	for (i = 0; i < NDEFS; i++) {
		sample_build(&s, &defs[i]);
		fd = file_create(s.name, s.b.data, s.b.len);
		for (len = 0; len <= s.b.len; len++) {
			imagemeta_probe_buf(s.b.data, len, &m);
			expect(&s, len, &m, "buffer prefix");
			if (imagemeta_probe_fd(fd, len, &m, &e) != 0)
				cr_assert_fail("%s: %s", s.name, e.message);
			expect(&s, len, &m, "fd size");
		}
		close(fd);
		buf_cleanup(&s.b);
	}
}

/*
 * Files really cut short, probed with the size they had before (the file
 * shrank between fstat and the probe).
 */
Test(imagemeta, shrunken_file)
{
	struct imagemeta m;
	struct sample s;
	struct err e;
	size_t i, k, cut[4];
	int fd;

	for (i = 0; i < NDEFS; i++) {
		sample_build(&s, &defs[i]);
		fd = file_create(s.name, s.b.data, s.b.len);
		cut[0] = s.b.len / 2;
		cut[1] = s.dims_end != NEVER ? s.dims_end - 1 : 0;
		cut[2] = s.dims_end != NEVER ? s.dims_end : s.b.len;
		cut[3] = s.type_end != NEVER ? s.type_end - 1 : 1;
		for (k = 0; k < 4; k++) {
			if (cut[k] > s.b.len)
				continue;
			cr_assert_eq(pwrite(fd, s.b.data, s.b.len, 0),
			             (ssize_t)s.b.len);
			cr_assert_eq(ftruncate(fd, (off_t)cut[k]), 0);
			cr_assert_eq(
			    imagemeta_probe_fd(fd, s.b.len + 4096, &m, &e), 0);
			expect(&s, cut[k], &m, "shrunken file");
		}
		close(fd);
		buf_cleanup(&s.b);
	}
}

/* Deterministic xorshift64*, so a failure can be replayed. */
static uint64_t
rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545f4914f6cdd1dULL;
}

static const char *const known_types[] = {
    IMAGEMETA_OCTET_STREAM,
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/jxl",
    "image/vnd.microsoft.icon",
    "image/svg+xml",
};

static void
check_sane(const struct imagemeta *m, const char *what, size_t iter)
{
	size_t i;

	if (memchr(m->type, '\0', sizeof(m->type)) == NULL)
		cr_assert_fail("%s #%zu: type not terminated", what, iter);
	for (i = 0; i < sizeof(known_types) / sizeof(known_types[0]); i++)
		if (strcmp(m->type, known_types[i]) == 0)
			break;
	if (i == sizeof(known_types) / sizeof(known_types[0]))
		cr_assert_fail("%s #%zu: type %s", what, iter, m->type);
	if (m->has_dimensions ? m->width == 0 || m->height == 0
	                      : m->width != 0 || m->height != 0)
		cr_assert_fail("%s #%zu: %ux%u has_dimensions %d", what, iter,
		               m->width, m->height, m->has_dimensions);
}

/* Random bytes, half of them behind a real magic number. */
Test(imagemeta, fuzz_random, .timeout = 240)
{
	static const struct {
		const char *p;
		size_t n;
	} magic[] = {
	    {"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16},
	    {"\xff\xd8\xff", 3},
	    {"\xff\xd8\xff\xe1\x00\x04\0\0\xff\xc0", 10},
	    {"GIF89a", 6},
	    {"RIFF\0\0\0\0WEBPVP8 ", 16},
	    {"RIFF\0\0\0\0WEBPVP8L", 16},
	    {"RIFF\0\0\0\0WEBPVP8X", 16},
	    {"BM\0\0\0\0\0\0\0\0\0\0\0\0\x28\0\0\0", 18},
	    {"BM\0\0\0\0\0\0\0\0\0\0\0\0\x0c\0\0\0", 18},
	    {"II*\0\x08\0\0\0", 8},
	    {"MM\0*\0\0\0\x08", 8},
	    {"II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0", 16},
	    {"\0\0\1\0\1\0\0\0\0\0\1\0\x20\0", 14},
	    {"\xff\x0a", 2},
	    {"\0\0\0\x0cJXL \r\n\x87\n", 12},
	    {"\0\0\0\x18"
	     "ftypheic\0\0\0\0mif1heic",
	     24},
	    {"\0\0\0\x10"
	     "ftypavif\0\0\0\0\0\0\0\0meta",
	     24},
	    {"<svg ", 5},
	    {"<?xml ", 6},
	    {"\xef\xbb\xbf<!DOCTYPE svg [", 18},
	};
	struct imagemeta m;
	unsigned char *p;
	uint64_t st = 0x1234567887654321ULL;
	size_t i, j, n, k;

	p = malloc(2048);
	cr_assert_not_null(p);
	for (i = 0; i < 20000; i++) {
		n = (size_t)(rnd(&st) % 2048);
		for (j = 0; j < n; j++)
			p[j] = (unsigned char)rnd(&st);
		if (i % 2 == 0) {
			k = (size_t)(rnd(&st) %
			             (sizeof(magic) / sizeof(magic[0])));
			memcpy(p, magic[k].p, magic[k].n < n ? magic[k].n : n);
		}
		imagemeta_probe_buf(p, n, &m);
		check_sane(&m, "random", i);
	}
	free(p);
}

/* A 32-bit value that upsets length and offset fields. */
static uint32_t
nasty32(uint64_t *st)
{
	static const uint32_t v[] = {
	    0,      1,          2,           7,           8,
	    12,     16,         0x7f,        0x80,        0xff,
	    0xffff, 0x7fffffff, 0x80000000u, 0xfffffff0u, 0xffffffffu};

	return v[rnd(st) % (sizeof(v) / sizeof(v[0]))];
}

/*
 * Mutations of every valid sample through imagemeta_probe_buf; every tenth
 * also written to a file and probed by fd, which must agree exactly.
 */
Test(imagemeta, fuzz_mutations, .timeout = 240)
{
	struct imagemeta m, mf;
	struct sample s;
	struct err e;
	unsigned char *p;
	uint64_t st = 0xfeedfacecafebeefULL, r;
	size_t i, k, nmut, j, pos, len;
	uint32_t v;
	int fd;

	for (i = 0; i < NDEFS; i++) {
		sample_build(&s, &defs[i]);
		if (s.b.len == 0) {
			buf_cleanup(&s.b);
			continue;
		}
		p = malloc(s.b.len);
		cr_assert_not_null(p);
		fd = file_create(s.name, s.b.data, s.b.len);
		for (k = 0; k < 1000; k++) {
			memcpy(p, s.b.data, s.b.len);
			nmut = 1 + (size_t)(rnd(&st) % 8);
			for (j = 0; j < nmut; j++) {
				r = rnd(&st);
				if (r % 10 < 7)
					pos = (size_t)(rnd(&st) % (s.b.len < 512
					                               ? s.b.len
					                               : 512));
				else
					pos = (size_t)(rnd(&st) % s.b.len);
				switch (r / 10 % 5) {
				case 0:
					p[pos] = (unsigned char)rnd(&st);
					break;
				case 1:
					p[pos] ^=
					    (unsigned char)(1u
					                    << (rnd(&st) % 8));
					break;
				case 2:
					p[pos] = 0xff;
					break;
				case 3:
					p[pos] = 0;
					break;
				default:
					v = nasty32(&st);
					if (pos + 4 <= s.b.len) {
						p[pos] =
						    (unsigned char)(v >> 24);
						p[pos + 1] =
						    (unsigned char)(v >> 16);
						p[pos + 2] =
						    (unsigned char)(v >> 8);
						p[pos + 3] = (unsigned char)v;
					}
					break;
				}
			}
			len = rnd(&st) % 2 ? s.b.len
			                   : (size_t)(rnd(&st) % (s.b.len + 1));
			imagemeta_probe_buf(p, len, &m);
			check_sane(&m, s.name, k);
			if (k % 10 != 0)
				continue;
			cr_assert_eq(pwrite(fd, p, len, 0), (ssize_t)len);
			cr_assert_eq(ftruncate(fd, (off_t)len), 0);
			cr_assert_eq(imagemeta_probe_fd(fd, len, &mf, &e), 0);
			if (memcmp(&m, &mf, sizeof(m)) != 0)
				cr_assert_fail("%s #%zu: buffer says %s %ux%u, "
				               "fd says %s %ux%u",
				               s.name, k, m.type, m.width,
				               m.height, mf.type, mf.width,
				               mf.height);
		}
		close(fd);
		free(p);
		buf_cleanup(&s.b);
	}
}

Test(imagemeta, io_errors)
{
	struct imagemeta m;
	struct err e;
	char hex[65];
	int fd, pfd[2];

	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	err_clear(&e);
	cr_assert_eq(imagemeta_probe_fd(fd, 100, &m, &e), -1);
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_eq(e.sys_errno, EISDIR);
	cr_assert_str_eq(m.type, IMAGEMETA_OCTET_STREAM);
	cr_assert(!m.has_dimensions);
	err_clear(&e);
	cr_assert_eq(imagemeta_sha256_fd(fd, hex, NULL, &e), -1);
	cr_assert_eq(e.sys_errno, EISDIR);
	close(fd);

	err_clear(&e);
	cr_assert_eq(imagemeta_probe_fd(-1, 10, &m, &e), -1);
	cr_assert_eq(e.sys_errno, EBADF);
	/* nothing to read, nothing to fail */
	cr_assert_eq(imagemeta_probe_fd(-1, 0, &m, &e), 0);
	cr_assert_str_eq(m.type, IMAGEMETA_OCTET_STREAM);

	cr_assert_eq(pipe(pfd), 0);
	err_clear(&e);
	cr_assert_eq(imagemeta_sha256_fd(pfd[0], hex, NULL, &e), -1);
	cr_assert_eq(e.sys_errno, ESPIPE);
	close(pfd[0]);
	close(pfd[1]);

	/* a NULL error record is allowed */
	cr_assert_eq(imagemeta_probe_fd(-1, 10, &m, NULL), -1);
	cr_assert_eq(imagemeta_probe_buf(NULL, 10, &m), 0);
	cr_assert_str_eq(m.type, IMAGEMETA_OCTET_STREAM);
}

Test(imagemeta, fd_offset_untouched)
{
	struct imagemeta m;
	struct sample s;
	struct err e;
	char hex[65];
	int fd;

	sample_build(&s, &defs[0]);
	fd = file_create(s.name, s.b.data, s.b.len);
	cr_assert_eq(lseek(fd, 5, SEEK_SET), 5);
	cr_assert_eq(imagemeta_probe_fd(fd, s.b.len, &m, &e), 0);
	cr_assert_eq(imagemeta_sha256_fd(fd, hex, NULL, &e), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 5);
	close(fd);
	buf_cleanup(&s.b);
}

static void
hash_str(const char *s, char out[65])
{
	struct imagemeta_hash *h = imagemeta_hash_new();

	cr_assert_not_null(h);
	cr_assert_eq(imagemeta_hash_update(h, s, strlen(s)), 0);
	cr_assert_eq(imagemeta_hash_final(h, out), 0);
	imagemeta_hash_free(h);
}

Test(imagemeta, sha256_vectors)
{
	struct imagemeta_hash *h;
	char out[65];

	hash_str("abc", out);
	cr_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223"
	                      "b00361a396177a9cb410ff61f20015ad");
	hash_str("", out);
	cr_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb924"
	                      "27ae41e4649b934ca495991b7852b855");
	hash_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	         out);
	cr_assert_str_eq(out, "248d6a61d20638b8e5c026930c3e6039"
	                      "a33ce45964ff2167f6ecedd419db06c1");

	/* byte by byte, and the context is reusable after final */
	h = imagemeta_hash_new();
	cr_assert_not_null(h);
	cr_assert_eq(imagemeta_hash_update(h, "a", 1), 0);
	cr_assert_eq(imagemeta_hash_update(h, NULL, 0), 0);
	cr_assert_eq(imagemeta_hash_update(h, "b", 1), 0);
	cr_assert_eq(imagemeta_hash_update(h, "c", 1), 0);
	cr_assert_eq(imagemeta_hash_final(h, out), 0);
	cr_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223"
	                      "b00361a396177a9cb410ff61f20015ad");
	cr_assert_eq(imagemeta_hash_final(h, out), 0);
	cr_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb924"
	                      "27ae41e4649b934ca495991b7852b855");
	imagemeta_hash_free(h);
	imagemeta_hash_free(NULL);
}

Test(imagemeta, sha256_million_a)
{
	struct err e;
	char out[65], *p;
	uint64_t n = 0;
	int fd;

	p = malloc(1000000);
	cr_assert_not_null(p);
	memset(p, 'a', 1000000);
	fd = file_create("a.bin", p, 1000000);
	free(p);
	cr_assert_eq(imagemeta_sha256_fd(fd, out, &n, &e), 0, "%s", e.message);
	cr_assert_eq(n, 1000000);
	cr_assert_str_eq(out, "cdc76e5c9914fb9281a1c7e284d73e67"
	                      "f1809a48a497200e046d39ccc7112cd0");
	close(fd);
}

/* 3 MiB: sha256_fd equals the incremental hash over uneven chunks. */
Test(imagemeta, sha256_file_chunked)
{
	struct imagemeta_hash *h;
	struct err e;
	unsigned char *p;
	char whole[65], chunked[65];
	uint64_t st = 42, n = 0;
	size_t size = 3 << 20, off, step;
	int fd;

	p = malloc(size);
	cr_assert_not_null(p);
	for (off = 0; off < size; off++)
		p[off] = (unsigned char)(rnd(&st) >> 32);
	fd = file_create("big.bin", p, size);
	err_clear(&e);
	cr_assert_eq(imagemeta_sha256_fd(fd, whole, &n, &e), 0, "%s",
	             e.message);
	cr_assert_eq(n, size);

	h = imagemeta_hash_new();
	cr_assert_not_null(h);
	for (off = 0; off < size; off += step) {
		step = 1 + (size_t)(rnd(&st) % 100000);
		if (step > size - off)
			step = size - off;
		cr_assert_eq(imagemeta_hash_update(h, p + off, step), 0);
	}
	cr_assert_eq(imagemeta_hash_final(h, chunked), 0);
	cr_assert_str_eq(whole, chunked);
	cr_assert_eq(strlen(whole), 64);
	imagemeta_hash_free(h);
	close(fd);
	free(p);
}

struct appender {
	char path[PATH_MAX];
	atomic_int stop;
	atomic_long writes;
};

static void *
appender_run(void *arg)
{
	struct appender *a = arg;
	int fd;

	fd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	while (!atomic_load(&a->stop)) {
		if (write(fd, "x", 1) == 1)
			atomic_fetch_add(&a->writes, 1);
	}
	close(fd);
	return NULL;
}

/* A file appended to while it is hashed is reported, not hashed. */
Test(imagemeta, sha256_changing_file)
{
	struct appender a;
	struct timespec ts = {0, 1000000};
	struct err e;
	pthread_t t;
	char out[65], *p;
	size_t size = 4 << 20;
	int fd, i, seen = 0;

	p = calloc(1, size);
	cr_assert_not_null(p);
	fd = file_create("growing.bin", p, size);
	free(p);
	memset(&a, 0, sizeof(a));
	snprintf(a.path, sizeof(a.path), "%s/growing.bin", tmpdir);
	atomic_init(&a.stop, 0);
	atomic_init(&a.writes, 0);
	cr_assert_eq(pthread_create(&t, NULL, appender_run, &a), 0);
	while (atomic_load(&a.writes) == 0)
		nanosleep(&ts, NULL);
	for (i = 0; i < 50 && !seen; i++) {
		err_clear(&e);
		if (imagemeta_sha256_fd(fd, out, NULL, &e) == -1) {
			cr_assert_eq(e.kind, ERR_SYS);
			cr_assert_eq(e.sys_errno, EAGAIN, "%s", e.message);
			seen = 1;
		}
	}
	atomic_store(&a.stop, 1);
	pthread_join(t, NULL);
	cr_assert(seen, "a file growing while hashed was not reported");
	cr_assert_eq(imagemeta_sha256_fd(fd, out, NULL, &e), 0);
	close(fd);
}

/* The stand-in some machines have prints no "Version: ImageMagick" line. */
static int
imagemagick_present(void)
{
	char line[256];
	FILE *f;
	int real = 0;

	f = popen("convert -version 2>/dev/null", "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "Version: ImageMagick", 20) == 0)
			real = 1;
	pclose(f);
	return real;
}

/* A bonus check against a real encoder, when there is one. */
Test(imagemeta, imagemagick)
{
	static const struct {
		const char *coder; /* convert's format prefix, or "" */
		const char *file;
		const char *args;
		const char *type;
	} cases[] = {
	    {"", "a.jpg", "", "image/jpeg"},
	    {"", "p.jpg", "-interlace JPEG", "image/jpeg"},
	    {"", "a.png", "", "image/png"},
	    {"", "a.gif", "", "image/gif"},
	    {"", "a.bmp", "", "image/bmp"},
	    {"BMP2:", "b.bmp", "", "image/bmp"},
	    {"", "a.tif", "", "image/tiff"},
	    {"", "m.tif", "-endian MSB", "image/tiff"},
	    {"", "a.webp", "", "image/webp"},
	    {"", "l.webp", "-define webp:lossless=true", "image/webp"},
	    {"", "a.ico", "", "image/vnd.microsoft.icon"},
	};
	struct imagemeta m;
	struct stat sb;
	struct err e;
	char path[PATH_MAX], cmd[2 * PATH_MAX];
	size_t i, done = 0;
	int fd;

	if (!imagemagick_present()) {
		teardown(); /* a skipped test gets no .fini */
		cr_skip_test("ImageMagick's convert is not installed (convert "
		             "-version prints no \"Version: ImageMagick\"): "
		             "real-encoder check skipped, the byte-built "
		             "samples are the main proof");
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, cases[i].file);
		snprintf(cmd, sizeof(cmd),
		         "convert -size 37x23 gradient:red-blue %s '%s%s' "
		         ">/dev/null 2>&1",
		         cases[i].args, cases[i].coder, path);
		if (system(cmd) != 0) {
			cr_log_warn("convert cannot write %s: skipped", path);
			continue;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
		cr_assert_geq(fd, 0, "%s", path);
		cr_assert_eq(fstat(fd, &sb), 0);
		cr_assert_eq(
		    imagemeta_probe_fd(fd, (uint64_t)sb.st_size, &m, &e), 0);
		close(fd);
		cr_assert_str_eq(m.type, cases[i].type, "%s", path);
		cr_assert(m.has_dimensions, "%s", path);
		cr_assert_eq(m.width, 37, "%s", path);
		cr_assert_eq(m.height, 23, "%s", path);
		done++;
	}
	cr_assert_gt(done, 0, "convert wrote no file at all");
}
