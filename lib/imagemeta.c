#include "imagemeta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/*
 * Bounds on every loop over attacker-controlled counts. Real files stay far
 * below them; a hostile one costs at most this much work.
 */
#define SRC_WINDOW 8192 /* bytes cached per pread in fd mode */
#define JPEG_MAX_MARKERS 4096
#define JPEG_MAX_FILL 4096 /* 0xff fill bytes before one marker */
#define TIFF_MAX_ENTRIES 1024
#define ICO_MAX_ENTRIES 256
#define BMFF_MAX_BOXES 256 /* boxes looked at per container */
#define BMFF_MAX_BRANDS 64
#define HEIF_MAX_ITEMS 4096 /* ipma entries */
#define HEIF_MAX_PROPS 4096 /* ipco entries */
#define HEIF_MAX_ASSOC 255  /* property associations of one item (u8) */
#define SVG_MAX_NODES 64    /* prolog nodes before the root element */
#define SVG_MAX_ATTRS 256
#define SVG_MAX_TOKEN 32
#define HASH_CHUNK 65536

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

static uint32_t
be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t
le16(const unsigned char *p)
{
	return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
le24(const unsigned char *p)
{
	return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | le24(p);
}

static uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)le32(p + 4) << 32 | le32(p);
}

static uint32_t
rd16(const unsigned char *p, int le)
{
	return le ? le16(p) : be16(p);
}

static uint32_t
rd32(const unsigned char *p, int le)
{
	return le ? le32(p) : be32(p);
}

static uint64_t
rd64(const unsigned char *p, int le)
{
	return le ? le64(p) : be64(p);
}

static int
src_fill(struct src *s, uint64_t off)
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

/* Copies the n bytes at off to dst: 0, or -1 when they are not all there. */
static int
src_get(struct src *s, uint64_t off, void *dst, size_t n)
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
		if (src_fill(s, off) == -1 || n > s->wlen)
			return -1;
	}
	memcpy(dst, s->win + (off - s->woff), n);
	return 0;
}

/* As src_get, for n bytes that must also lie before end. */
static int
src_get_in(struct src *s, uint64_t off, uint64_t end, void *dst, size_t n)
{
	if (off > end || n > end - off)
		return -1;
	return src_get(s, off, dst, n);
}

static void
meta_type(struct imagemeta *m, const char *type)
{
	snprintf(m->type, sizeof(m->type), "%s", type);
}

static void
meta_dims(struct imagemeta *m, uint64_t w, uint64_t h)
{
	if (w == 0 || h == 0 || w > UINT32_MAX || h > UINT32_MAX)
		return;
	m->width = (unsigned)w;
	m->height = (unsigned)h;
	m->has_dimensions = 1;
}

static void
png_probe(struct src *s, struct imagemeta *m)
{
	unsigned char b[16]; /* length, "IHDR", width, height */
	uint32_t w, h;

	meta_type(m, "image/png");
	if (src_get(s, 8, b, sizeof(b)) == -1)
		return;
	if (be32(b) != 13 || memcmp(b + 4, "IHDR", 4) != 0)
		return;
	w = be32(b + 8);
	h = be32(b + 12);
	if (w > INT32_MAX || h > INT32_MAX)
		return;
	meta_dims(m, w, h);
}

static int
jpeg_is_sof(unsigned c)
{
	/* C4 is DHT, C8 reserved (JPG), CC is DAC: the rest are SOFn. */
	return c >= 0xc0 && c <= 0xcf && c != 0xc4 && c != 0xc8 && c != 0xcc;
}

/*
 * Walks the marker segments from SOI to the first frame header, skipping
 * each by its length, so EXIF thumbnails are never mistaken for the image.
 */
static void
jpeg_probe(struct src *s, struct imagemeta *m)
{
	unsigned char b[5];
	uint64_t off = 2;
	unsigned c, len, fill, i;

	meta_type(m, "image/jpeg");
	for (i = 0; i < JPEG_MAX_MARKERS; i++) {
		if (src_get(s, off, b, 1) == -1 || b[0] != 0xff)
			return;
		for (fill = 0; b[0] == 0xff; fill++) {
			if (fill > JPEG_MAX_FILL)
				return;
			off++;
			if (src_get(s, off, b, 1) == -1)
				return;
		}
		c = b[0];
		off++;
		if (c == 0x00)
			return;
		if (c == 0x01 || (c >= 0xd0 && c <= 0xd8))
			continue; /* TEM, RSTn, SOI stand alone */
		if (c == 0xd9 || c == 0xda)
			return; /* EOI or SOS before any frame header */
		if (src_get(s, off, b, 2) == -1)
			return;
		len = be16(b);
		if (len < 2)
			return;
		if (jpeg_is_sof(c)) {
			/* length, P, Y, X, Nf: Y = 0 means a DNL gives it */
			if (len < 8 || src_get(s, off + 2, b, 5) == -1)
				return;
			meta_dims(m, be16(b + 3), be16(b + 1));
			return;
		}
		off += len;
	}
}

static void
gif_probe(struct src *s, struct imagemeta *m)
{
	unsigned char b[4];

	meta_type(m, "image/gif");
	if (src_get(s, 6, b, sizeof(b)) == 0)
		meta_dims(m, le16(b), le16(b + 2));
}

/* Only the first chunk says what kind of WebP this is. */
static void
webp_probe(struct src *s, struct imagemeta *m)
{
	unsigned char c[8], d[10];
	uint32_t size, v;

	meta_type(m, "image/webp");
	if (src_get(s, 12, c, sizeof(c)) == -1)
		return;
	size = le32(c + 4);
	if (memcmp(c, "VP8 ", 4) == 0) {
		/* frame tag (bit 0 clear on a key frame), start code, dims */
		if (size < 10 || src_get(s, 20, d, 10) == -1)
			return;
		if ((d[0] & 1) != 0 || memcmp(d + 3, "\x9d\x01\x2a", 3) != 0)
			return;
		meta_dims(m, le16(d + 6) & 0x3fff, le16(d + 8) & 0x3fff);
	} else if (memcmp(c, "VP8L", 4) == 0) {
		/* signature, then 14 bits each of width-1 and height-1 */
		if (size < 5 || src_get(s, 20, d, 5) == -1 || d[0] != 0x2f)
			return;
		v = le32(d + 1);
		if (v >> 29 != 0)
			return; /* version must be 0 */
		meta_dims(m, (v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1);
	} else if (memcmp(c, "VP8X", 4) == 0) {
		/* flags, 3 reserved, 24 bits each of canvas width-1, height-1
		 */
		if (size < 10 || src_get(s, 20, d, 10) == -1)
			return;
		meta_dims(m, (uint64_t)le24(d + 4) + 1,
		          (uint64_t)le24(d + 7) + 1);
	}
}

/* "BM" alone is too weak: a known DIB header size must follow. */
static int
bmp_detect(const unsigned char *h, size_t n)
{
	uint32_t dib;

	if (n < 18 || h[0] != 'B' || h[1] != 'M')
		return 0;
	dib = le32(h + 14);
	return dib == 12 || dib == 16 || dib == 40 || dib == 52 || dib == 56 ||
	       dib == 64 || dib == 108 || dib == 124;
}

static void
bmp_probe(const unsigned char *h, size_t n, struct imagemeta *m)
{
	int64_t w, ht;

	meta_type(m, "image/bmp");
	if (le32(h + 14) == 12) {
		/* OS/2 BITMAPCOREHEADER: unsigned 16-bit */
		if (n >= 22)
			meta_dims(m, le16(h + 18), le16(h + 20));
		return;
	}
	if (n < 26)
		return;
	w = (int32_t)le32(h + 18);
	ht = (int32_t)le32(h + 22);
	if (ht < 0)
		ht = -ht; /* top-down */
	if (w > 0)
		meta_dims(m, (uint64_t)w, (uint64_t)ht);
}

/* Classic TIFF or BigTIFF: ImageWidth (256) and ImageLength (257). */
static void
tiff_probe(struct src *s, const unsigned char *h, size_t n, struct imagemeta *m)
{
	unsigned char b[20];
	int le = h[0] == 'I', big = rd16(h + 2, le) == 43;
	size_t esize = big ? 20 : 12;
	uint64_t ifd, count, first, i, v, w = 0, ht = 0;
	uint32_t tag;

	meta_type(m, "image/tiff");
	if (big) {
		if (n < 16 || rd16(h + 4, le) != 8 || rd16(h + 6, le) != 0)
			return;
		ifd = rd64(h + 8, le);
		if (src_get(s, ifd, b, 8) == -1)
			return;
		count = rd64(b, le);
		first = ifd + 8;
	} else {
		if (n < 8)
			return;
		ifd = rd32(h + 4, le);
		if (src_get(s, ifd, b, 2) == -1)
			return;
		count = rd16(b, le);
		first = ifd + 2;
	}
	for (i = 0; i < count && i < TIFF_MAX_ENTRIES; i++) {
		/* tag, type, count, then the value itself when it fits */
		if (src_get(s, first + i * esize, b, esize) == -1)
			break;
		tag = rd16(b, le);
		if ((tag != 256 && tag != 257) ||
		    (big ? rd64(b + 4, le) : rd32(b + 4, le)) == 0)
			continue;
		switch (rd16(b + 2, le)) {
		case 3: /* SHORT */
			v = rd16(b + (big ? 12 : 8), le);
			break;
		case 4: /* LONG */
			v = rd32(b + (big ? 12 : 8), le);
			break;
		case 16: /* LONG8, BigTIFF only */
			if (!big)
				continue;
			v = rd64(b + 12, le);
			break;
		default:
			continue;
		}
		if (tag == 256)
			w = v;
		else
			ht = v;
	}
	meta_dims(m, w, ht);
}

/*
 * 00 00 01 00 is weak: the count and the first directory entry must look
 * like an icon's too.
 */
static int
ico_detect(const unsigned char *h, size_t n)
{
	uint32_t count, bpp;

	if (n < 22 || memcmp(h, "\0\0\1\0", 4) != 0)
		return 0;
	count = le16(h + 4);
	bpp = le16(h + 12);
	return count > 0 && h[9] == 0 && le16(h + 10) <= 1 &&
	       (bpp == 0 || bpp == 1 || bpp == 4 || bpp == 8 || bpp == 16 ||
	        bpp == 24 || bpp == 32) &&
	       le32(h + 14) > 0 && le32(h + 18) >= 6 + 16 * count;
}

/* The largest picture in the directory; a size byte of 0 means 256. */
static void
ico_probe(struct src *s, const unsigned char *h, struct imagemeta *m)
{
	unsigned char b[16];
	uint32_t count = le16(h + 4), i, w, ht, bw = 0, bh = 0;

	meta_type(m, "image/vnd.microsoft.icon");
	for (i = 0; i < count && i < ICO_MAX_ENTRIES; i++) {
		if (src_get(s, 6 + 16 * (uint64_t)i, b, sizeof(b)) == -1)
			break;
		w = b[0] != 0 ? b[0] : 256;
		ht = b[1] != 0 ? b[1] : 256;
		if (w * ht > bw * bh) {
			bw = w;
			bh = ht;
		}
	}
	meta_dims(m, bw, bh);
}

/* LSB-first bit reader over a few bytes, for the JPEG XL size header. */
struct bits {
	const unsigned char *p;
	size_t n, pos;
	int fail;
};

static uint32_t
bits_get(struct bits *b, unsigned k)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < k; i++) {
		if (b->pos >= b->n * 8) {
			b->fail = 1;
			return 0;
		}
		v |= (uint32_t)(b->p[b->pos / 8] >> (b->pos % 8) & 1) << i;
		b->pos++;
	}
	return v;
}

static uint64_t
jxl_size(struct bits *b, int small)
{
	static const unsigned nbits[4] = {9, 13, 18, 30};

	if (small)
		return ((uint64_t)bits_get(b, 5) + 1) * 8;
	return (uint64_t)bits_get(b, nbits[bits_get(b, 2)]) + 1;
}

/* The codestream's SizeHeader follows its FF 0A signature. */
static void
jxl_codestream(struct src *s, uint64_t off, uint64_t end, struct imagemeta *m)
{
	static const unsigned ratio_num[8] = {0, 1, 12, 4, 3, 16, 5, 2};
	static const unsigned ratio_den[8] = {0, 1, 10, 3, 2, 9, 4, 1};
	unsigned char h[12]; /* the largest SizeHeader takes 69 bits */
	struct bits b;
	uint64_t w, ht, avail;
	uint32_t ratio;
	int small;

	if (off > end)
		return;
	avail = end - off;
	if (avail < 2 || src_get(s, off, h, 2) == -1 || h[0] != 0xff ||
	    h[1] != 0x0a)
		return;
	b.n = avail - 2 < sizeof(h) ? (size_t)(avail - 2) : sizeof(h);
	if (src_get(s, off + 2, h, b.n) == -1)
		return;
	b.p = h;
	b.pos = 0;
	b.fail = 0;
	small = (int)bits_get(&b, 1);
	ht = jxl_size(&b, small);
	ratio = bits_get(&b, 3);
	if (ratio == 0)
		w = jxl_size(&b, small);
	else
		w = ht * ratio_num[ratio] / ratio_den[ratio];
	if (!b.fail)
		meta_dims(m, w, ht);
}

/* An ISO BMFF box: its payload is [start, end). */
struct box {
	char type[4];
	uint64_t start, end;
};

/* Reads the header of the box at off, which must end at or before end. */
static int
box_read(struct src *s, uint64_t off, uint64_t end, struct box *bx)
{
	unsigned char h[8];
	uint64_t size, hdr = 8;

	if (src_get_in(s, off, end, h, 8) == -1)
		return -1;
	size = be32(h);
	memcpy(bx->type, h + 4, 4);
	if (size == 1) {
		if (src_get_in(s, off + 8, end, h, 8) == -1)
			return -1;
		size = be64(h);
		hdr = 16;
	} else if (size == 0) {
		size = end - off; /* to the end of the container */
	}
	if (size < hdr || size > end - off)
		return -1;
	bx->start = off + hdr;
	bx->end = off + size;
	return 0;
}

/* Finds the first box of the given type among those in [off, end). */
static int
box_find(struct src *s, uint64_t off, uint64_t end, const char *type,
         struct box *bx)
{
	int i;

	for (i = 0; i < BMFF_MAX_BOXES; i++) {
		if (box_read(s, off, end, bx) == -1)
			return -1;
		if (memcmp(bx->type, type, 4) == 0)
			return 0;
		off = bx->end;
	}
	return -1;
}

static void
jxl_container(struct src *s, struct imagemeta *m)
{
	struct box bx;
	uint64_t off = 0, end;
	int i;

	/*
	 * The codestream box is usually most of the file: its header is enough,
	 * so boxes may run past what there is to read.
	 */
	for (i = 0; i < BMFF_MAX_BOXES; i++) {
		if (box_read(s, off, UINT64_MAX, &bx) == -1)
			return;
		end = bx.end < s->size ? bx.end : s->size;
		if (memcmp(bx.type, "jxlc", 4) == 0) {
			jxl_codestream(s, bx.start, end, m);
			return;
		}
		if (memcmp(bx.type, "jxlp", 4) == 0) {
			/* a partial codestream, after its 4-byte index */
			jxl_codestream(s, bx.start + 4, end, m);
			return;
		}
		off = bx.end;
	}
}

/* 3: AVIF, 2: HEIC, 1: any other HEIF, 0: not an image brand. */
static int
bmff_brand_rank(const unsigned char *b)
{
	static const char *brands[] = {"avif", "avis", "heic", "heix",
	                               "hevc", "hevx", "mif1", "msf1"};
	static const int ranks[] = {3, 3, 2, 2, 2, 2, 1, 1};
	size_t i;

	for (i = 0; i < sizeof(brands) / sizeof(brands[0]); i++)
		if (memcmp(b, brands[i], 4) == 0)
			return ranks[i];
	return 0;
}

/* ftyp: major brand, minor version, compatible brands. */
static int
bmff_type(struct src *s, const struct box *ftyp)
{
	unsigned char b[4];
	uint64_t off;
	int i, r, best = 0;

	for (i = 0, off = ftyp->start; i < BMFF_MAX_BRANDS; i++, off += 4) {
		if (off == ftyp->start + 4)
			continue; /* the minor version */
		if (src_get_in(s, off, ftyp->end, b, 4) == -1)
			break;
		r = bmff_brand_rank(b);
		if (r > best)
			best = r;
	}
	return best;
}

/* pitm: the primary item's ID, 16 bits in version 0, else 32. */
static int
heif_pitm(struct src *s, const struct box *bx, uint32_t *id)
{
	unsigned char b[8];

	if (src_get_in(s, bx->start, bx->end, b, 6) == -1)
		return -1;
	if (b[0] == 0) {
		*id = be16(b + 4);
		return 0;
	}
	if (src_get_in(s, bx->start, bx->end, b, 8) == -1)
		return -1;
	*id = be32(b + 4);
	return 0;
}

/*
 * ipma: collects into props the (1-based) ipco indices associated with item
 * id. Returns how many, 0 when the item is not listed or the box is short.
 */
static size_t
heif_ipma(struct src *s, const struct box *bx, uint32_t id, uint32_t *props)
{
	unsigned char b[8];
	uint64_t off, end = bx->end;
	uint32_t count, item, i, j, nassoc;
	int version, wide;
	size_t n = 0;

	if (src_get_in(s, bx->start, end, b, 8) == -1)
		return 0;
	version = b[0];
	wide = b[3] & 1; /* flags: 15-bit rather than 7-bit indices */
	count = be32(b + 4);
	off = bx->start + 8;
	for (i = 0; i < count && i < HEIF_MAX_ITEMS; i++) {
		if (src_get_in(s, off, end, b, version < 1 ? 3 : 5) == -1)
			return 0;
		item = version < 1 ? be16(b) : be32(b);
		nassoc = b[version < 1 ? 2 : 4];
		off += version < 1 ? 3 : 5;
		if (item != id) {
			off += (uint64_t)nassoc * (wide ? 2 : 1);
			continue;
		}
		for (j = 0; j < nassoc; j++) {
			if (src_get_in(s, off, end, b, wide ? 2 : 1) == -1)
				return n;
			props[n++] = wide ? be16(b) & 0x7fff : b[0] & 0x7fu;
			off += wide ? 2 : 1;
		}
		return n;
	}
	return 0;
}

/*
 * ipco: the primary item's ispe (image spatial extents) when props names
 * one, else the largest ispe.
 */
static void
heif_ipco(struct src *s, const struct box *ipco, const uint32_t *props,
          size_t nprops, struct imagemeta *m)
{
	unsigned char b[12]; /* version, flags, width, height */
	struct box bx;
	uint64_t off = ipco->start, w, h, bw = 0, bh = 0;
	uint32_t idx;
	size_t k;

	for (idx = 1; idx <= HEIF_MAX_PROPS; idx++, off = bx.end) {
		if (box_read(s, off, ipco->end, &bx) == -1)
			break;
		if (memcmp(bx.type, "ispe", 4) != 0 ||
		    src_get_in(s, bx.start, bx.end, b, sizeof(b)) == -1)
			continue;
		w = be32(b + 4);
		h = be32(b + 8);
		for (k = 0; k < nprops; k++) {
			if (props[k] == idx && w > 0 && h > 0) {
				meta_dims(m, w, h);
				return;
			}
		}
		if (w * h > bw * bh) {
			bw = w;
			bh = h;
		}
	}
	meta_dims(m, bw, bh);
}

/* meta (a full box) > pitm, iprp > ipco, ipma. */
static void
heif_probe(struct src *s, const struct box *ftyp, struct imagemeta *m)
{
	struct box meta, bx, ipco, iprp;
	uint32_t props[HEIF_MAX_ASSOC], primary = 0;
	uint64_t off;
	size_t nprops = 0;
	int i, have_primary = 0, have_iprp = 0;

	memset(&iprp, 0, sizeof(iprp));

	if (box_find(s, ftyp->end, s->size, "meta", &meta) == -1)
		return;
	off = meta.start + 4;
	for (i = 0; i < BMFF_MAX_BOXES; i++, off = bx.end) {
		if (box_read(s, off, meta.end, &bx) == -1)
			break;
		if (memcmp(bx.type, "pitm", 4) == 0)
			have_primary = heif_pitm(s, &bx, &primary) == 0;
		else if (memcmp(bx.type, "iprp", 4) == 0) {
			iprp = bx;
			have_iprp = 1;
		}
	}
	if (!have_iprp ||
	    box_find(s, iprp.start, iprp.end, "ipco", &ipco) == -1)
		return;
	off = iprp.start;
	for (i = 0; have_primary && nprops == 0 && i < BMFF_MAX_BOXES;
	     i++, off = bx.end) {
		if (box_read(s, off, iprp.end, &bx) == -1)
			break;
		if (memcmp(bx.type, "ipma", 4) == 0)
			nprops = heif_ipma(s, &bx, primary, props);
	}
	heif_ipco(s, &ipco, props, nprops, m);
}

static void
bmff_probe(struct src *s, struct imagemeta *m)
{
	static const char *types[] = {NULL, "image/heif", "image/heic",
	                              "image/avif"};
	struct box ftyp;
	int rank;

	if (box_read(s, 0, s->size, &ftyp) == -1 ||
	    memcmp(ftyp.type, "ftyp", 4) != 0 || ftyp.end - ftyp.start < 8)
		return;
	rank = bmff_type(s, &ftyp);
	if (rank == 0)
		return;
	meta_type(m, types[rank]);
	heif_probe(s, &ftyp, m);
}

/* A byte of the text prolog, which is only looked for in the head. */
static int
svg_byte(struct src *s, uint64_t off)
{
	unsigned char c;

	if (off >= IMAGEMETA_HEAD || src_get(s, off, &c, 1) == -1)
		return -1;
	return c;
}

static int
svg_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
svg_match(struct src *s, uint64_t off, const char *lit)
{
	size_t i;

	for (i = 0; lit[i] != '\0'; i++)
		if (svg_byte(s, off + i) != (unsigned char)lit[i])
			return 0;
	return 1;
}

/* The offset just past the first lit at or after off, or 0. */
static uint64_t
svg_past(struct src *s, uint64_t off, const char *lit)
{
	for (; off < IMAGEMETA_HEAD; off++)
		if (svg_match(s, off, lit))
			return off + strlen(lit);
	return 0;
}

/* Past a doctype's '>', which its quotes and [internal subset] may hold. */
static uint64_t
svg_past_doctype(struct src *s, uint64_t off)
{
	int c, quote = 0, depth = 0;

	while ((c = svg_byte(s, off)) != -1) {
		if (quote != 0) {
			if (c == quote)
				quote = 0;
		} else if (depth > 0 && svg_match(s, off, "<!--")) {
			off = svg_past(s, off + 4, "-->");
			if (off == 0)
				return 0;
			continue;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '[') {
			depth++;
		} else if (c == ']' && depth > 0) {
			depth--;
		} else if (c == '>' && depth == 0) {
			return off + 1;
		}
		off++;
	}
	return 0;
}

/* "120", "120px", blanks around: anything else (%, em, 1.5) is not used. */
static uint32_t
svg_length(const char *v)
{
	uint32_t n = 0;
	size_t digits = 0;

	while (svg_space(*v))
		v++;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (++digits > 9)
			return 0;
		n = n * 10 + (uint32_t)(*v - '0');
	}
	if (digits == 0)
		return 0;
	if (v[0] == 'p' && v[1] == 'x')
		v += 2;
	while (svg_space(*v))
		v++;
	return *v == '\0' ? n : 0;
}

static int
svg_token_end(int c, int quote)
{
	if (quote != 0)
		return c == quote;
	return c == '=' || c == '>' || c == '/' || svg_space(c);
}

/* Reads one name or quoted value: 0 when it fit in tok, else -1. */
static int
svg_token(struct src *s, uint64_t *off, int quote, char *tok)
{
	size_t n = 0;
	int c, over = 0;

	while ((c = svg_byte(s, *off)) != -1 && !svg_token_end(c, quote)) {
		if (n < SVG_MAX_TOKEN - 1)
			tok[n++] = (char)c;
		else
			over = 1;
		(*off)++;
	}
	tok[n] = '\0';
	return c == -1 || over ? -1 : 0;
}

/* The attributes of <svg ...>, counted only when the tag is complete. */
static void
svg_attrs(struct src *s, uint64_t off, struct imagemeta *m)
{
	char name[SVG_MAX_TOKEN], value[SVG_MAX_TOKEN];
	uint32_t w = 0, h = 0;
	int c, quote, i, fits;

	for (i = 0; i < SVG_MAX_ATTRS; i++) {
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c == -1)
			return;
		if (c == '>' || c == '/') {
			meta_dims(m, w, h);
			return;
		}
		fits = svg_token(s, &off, 0, name) == 0;
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '=')
			return;
		off++;
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '"' && c != '\'')
			return;
		quote = c;
		off++;
		if (svg_token(s, &off, quote, value) == -1) {
			if (svg_byte(s, off) != quote)
				return;
			fits = 0;
		}
		off++;
		if (fits && strcmp(name, "width") == 0)
			w = svg_length(value);
		else if (fits && strcmp(name, "height") == 0)
			h = svg_length(value);
	}
}

/*
 * Text whose root element is <svg>, after an optional UTF-8 BOM, blanks,
 * the XML declaration, processing instructions, comments and a doctype.
 */
static void
svg_probe(struct src *s, struct imagemeta *m)
{
	uint64_t off = 0;
	int c, i;

	if (svg_match(s, 0, "\xef\xbb\xbf"))
		off = 3;
	for (i = 0; i < SVG_MAX_NODES; i++) {
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '<')
			return;
		if (svg_match(s, off, "<?")) {
			off = svg_past(s, off + 2, "?>");
		} else if (svg_match(s, off, "<!--")) {
			off = svg_past(s, off + 4, "-->");
		} else if (svg_match(s, off, "<!DOCTYPE")) {
			off = svg_past_doctype(s, off + 9);
		} else if (svg_match(s, off, "<svg")) {
			c = svg_byte(s, off + 4);
			if (c == '>' || c == '/' || (c != -1 && svg_space(c))) {
				meta_type(m, "image/svg+xml");
				svg_attrs(s, off + 4, m);
			}
			return;
		} else {
			return;
		}
		if (off == 0)
			return; /* unterminated */
	}
}

static void
probe(struct src *s, struct imagemeta *m)
{
	static const unsigned char jxl_sig[12] = {
	    0, 0, 0, 0x0c, 'J', 'X', 'L', ' ', 0x0d, 0x0a, 0x87, 0x0a};
	unsigned char h[32];
	size_t n;

	memset(m, 0, sizeof(*m));
	meta_type(m, IMAGEMETA_OCTET_STREAM);
	memset(h, 0, sizeof(h));
	if (!s->is_buf && s->size > 0 && src_fill(s, 0) == -1)
		return;
	n = s->size < sizeof(h) ? (size_t)s->size : sizeof(h);
	if (src_get(s, 0, h, n) == -1)
		return;
	if (n >= 8 && memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0)
		png_probe(s, m);
	else if (n >= 3 && memcmp(h, "\xff\xd8\xff", 3) == 0)
		jpeg_probe(s, m);
	else if (n >= 6 &&
	         (memcmp(h, "GIF87a", 6) == 0 || memcmp(h, "GIF89a", 6) == 0))
		gif_probe(s, m);
	else if (n >= 12 && memcmp(h, "RIFF", 4) == 0 &&
	         memcmp(h + 8, "WEBP", 4) == 0)
		webp_probe(s, m);
	else if (bmp_detect(h, n))
		bmp_probe(h, n, m);
	else if (n >= 4 &&
	         (memcmp(h, "II*\0", 4) == 0 || memcmp(h, "MM\0*", 4) == 0 ||
	          memcmp(h, "II+\0", 4) == 0 || memcmp(h, "MM\0+", 4) == 0))
		tiff_probe(s, h, n, m);
	else if (ico_detect(h, n))
		ico_probe(s, h, m);
	else if (n >= 2 && h[0] == 0xff && h[1] == 0x0a) {
		meta_type(m, "image/jxl");
		jxl_codestream(s, 0, s->size, m);
	} else if (n >= sizeof(jxl_sig) && memcmp(h, jxl_sig, 12) == 0) {
		meta_type(m, "image/jxl");
		jxl_container(s, m);
	} else if (n >= 8 && memcmp(h + 4, "ftyp", 4) == 0)
		bmff_probe(s, m);
	else
		svg_probe(s, m);
}

int
imagemeta_probe_fd(int fd, uint64_t size, struct imagemeta *m, struct err *e)
{
	unsigned char win[SRC_WINDOW];
	struct src s;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.size = size > INT64_MAX ? INT64_MAX : size;
	s.e = e;
	s.win = win;
	probe(&s, m);
	if (s.ioerr) {
		memset(m, 0, sizeof(*m));
		meta_type(m, IMAGEMETA_OCTET_STREAM);
		return -1;
	}
	return 0;
}

int
imagemeta_probe_buf(const void *p, size_t n, struct imagemeta *m)
{
	struct src s;

	memset(&s, 0, sizeof(s));
	s.is_buf = 1;
	s.buf = p;
	s.size = p != NULL ? n : 0;
	s.fd = -1;
	probe(&s, m);
	return 0;
}

struct imagemeta_hash {
	EVP_MD_CTX *ctx;
};

struct imagemeta_hash *
imagemeta_hash_new(void)
{
	struct imagemeta_hash *h;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL ||
	    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		imagemeta_hash_free(h);
		return NULL;
	}
	return h;
}

int
imagemeta_hash_update(struct imagemeta_hash *h, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
}

int
imagemeta_hash_final(struct imagemeta_hash *h, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32 ||
	    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		return -1;
	for (i = 0; i < len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

void
imagemeta_hash_free(struct imagemeta_hash *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

static int
same_mtime(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int
imagemeta_sha256_fd(int fd, char out[65], uint64_t *bytes, struct err *e)
{
	struct imagemeta_hash *h = NULL;
	struct stat before, after;
	unsigned char *chunk = NULL;
	uint64_t total = 0;
	ssize_t r;
	int rc = -1;

	if (fstat(fd, &before) == -1) {
		err_sys(e, "fstat");
		goto done;
	}
	chunk = malloc(HASH_CHUNK);
	h = imagemeta_hash_new();
	if (chunk == NULL || h == NULL) {
		errno = ENOMEM;
		err_sys(e, "sha256");
		goto done;
	}
	/* Stop once past the size seen at the start: it is changing. */
	while (total <= (uint64_t)before.st_size) {
		r = pread(fd, chunk, HASH_CHUNK, (off_t)total);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			err_sys(e, "pread at offset %llu",
			        (unsigned long long)total);
			goto done;
		}
		if (r == 0)
			break;
		if (imagemeta_hash_update(h, chunk, (size_t)r) == -1) {
			err_set(e, ERR_SYS, "sha256: OpenSSL failed");
			goto done;
		}
		total += (uint64_t)r;
	}
	if (fstat(fd, &after) == -1) {
		err_sys(e, "fstat");
		goto done;
	}
	if (total != (uint64_t)before.st_size ||
	    after.st_size != before.st_size || !same_mtime(&before, &after)) {
		err_set(
		    e, ERR_SYS,
		    "file changed while being hashed (%lld bytes, now %lld, "
		    "%llu read)",
		    (long long)before.st_size, (long long)after.st_size,
		    (unsigned long long)total);
		if (e != NULL)
			e->sys_errno = EAGAIN;
		goto done;
	}
	if (imagemeta_hash_final(h, out) == -1) {
		err_set(e, ERR_SYS, "sha256: OpenSSL failed");
		goto done;
	}
	if (bytes != NULL)
		*bytes = total;
	rc = 0;
done:
	imagemeta_hash_free(h);
	free(chunk);
	return rc;
}
