/*
 * imagemeta_formats: the header parsers of the flat raster formats, PNG,
 * JPEG, GIF, WebP, BMP, TIFF and ICO: each sets the type and, when the
 * header holds them, the dimensions as coded; JPEG (its EXIF segment) and
 * TIFF also the EXIF Orientation.
 */
#include <string.h>

#include "imagemeta_impl.h"

/*
 * Bounds on every loop over attacker-controlled counts. Real files stay far
 * below them; a hostile one costs at most this much work.
 */
#define JPEG_MAX_MARKERS 4096
#define JPEG_MAX_FILL 4096 /* 0xff fill bytes before one marker */
#define TIFF_MAX_ENTRIES 1024
#define ICO_MAX_ENTRIES 256

#define TAG_ORIENTATION 0x0112

/* An Orientation entry's value (a SHORT, count 1) when it is 1-8; else 0. */
static unsigned
tiff_orientation(const unsigned char *entry, int le, int big)
{
	uint32_t v;

	if (rd16(entry + 2, le) != 3 ||
	    (big ? rd64(entry + 4, le) : rd32(entry + 4, le)) != 1)
		return 0;
	v = rd16(entry + (big ? 12 : 8), le);
	return v >= 1 && v <= 8 ? v : 0;
}

/*
 * The Orientation in IFD0 of the TIFF structure an EXIF segment holds,
 * from tiff (its header) to end: 1-8, or 0 when it says none or reads
 * outside the segment.
 */
static unsigned
exif_orientation(struct src *s, uint64_t tiff, uint64_t end)
{
	unsigned char b[12];
	uint64_t ifd, i, count;
	int le;

	if (imagemeta_src_get_in(s, tiff, end, b, 8) == -1)
		return 0;
	if (memcmp(b, "II*\0", 4) == 0)
		le = 1;
	else if (memcmp(b, "MM\0*", 4) == 0)
		le = 0;
	else
		return 0;
	ifd = tiff + rd32(b + 4, le);
	if (imagemeta_src_get_in(s, ifd, end, b, 2) == -1)
		return 0;
	count = rd16(b, le);
	for (i = 0; i < count && i < TIFF_MAX_ENTRIES; i++) {
		if (imagemeta_src_get_in(s, ifd + 2 + i * 12, end, b, 12) == -1)
			return 0;
		if (rd16(b, le) == TAG_ORIENTATION)
			return tiff_orientation(b, le, 0);
	}
	return 0;
}

void
imagemeta_formats_png(struct src *s, struct imagemeta *m)
{
	unsigned char b[16]; /* length, "IHDR", width, height */
	uint32_t w, h;

	meta_type(m, "image/png");
	if (imagemeta_src_get(s, 8, b, sizeof(b)) == -1)
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
void
imagemeta_formats_jpeg(struct src *s, struct imagemeta *m)
{
	unsigned char b[5], exif[6];
	uint64_t off = 2;
	unsigned c, len, fill, i;

	meta_type(m, "image/jpeg");
	for (i = 0; i < JPEG_MAX_MARKERS; i++) {
		if (imagemeta_src_get(s, off, b, 1) == -1 || b[0] != 0xff)
			return;
		for (fill = 0; b[0] == 0xff; fill++) {
			if (fill > JPEG_MAX_FILL)
				return;
			off++;
			if (imagemeta_src_get(s, off, b, 1) == -1)
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
		if (imagemeta_src_get(s, off, b, 2) == -1)
			return;
		len = be16(b);
		if (len < 2)
			return;
		if (jpeg_is_sof(c)) {
			/* length, P, Y, X, Nf: Y = 0 means a DNL gives it */
			if (len < 8 ||
			    imagemeta_src_get(s, off + 2, b, 5) == -1)
				return;
			meta_dims(m, be16(b + 3), be16(b + 1));
			return;
		}
		/* APP1 "Exif\0\0", then a TIFF structure; the first one counts
		 * (a later APP1 may be XMP) */
		if (c == 0xe1 && m->orientation == 0 && len >= 8 &&
		    imagemeta_src_get(s, off + 2, exif, 6) == 0 &&
		    memcmp(exif, "Exif\0\0", 6) == 0)
			m->orientation =
			    exif_orientation(s, off + 8, off + len);
		off += len;
	}
}

void
imagemeta_formats_gif(struct src *s, struct imagemeta *m)
{
	unsigned char b[4];

	meta_type(m, "image/gif");
	if (imagemeta_src_get(s, 6, b, sizeof(b)) == 0)
		meta_dims(m, le16(b), le16(b + 2));
}

/* Only the first chunk says what kind of WebP this is. */
void
imagemeta_formats_webp(struct src *s, struct imagemeta *m)
{
	unsigned char c[8], d[10];
	uint32_t size, v;

	meta_type(m, "image/webp");
	if (imagemeta_src_get(s, 12, c, sizeof(c)) == -1)
		return;
	size = le32(c + 4);
	if (memcmp(c, "VP8 ", 4) == 0) {
		/* frame tag (bit 0 clear on a key frame), start code, dims */
		if (size < 10 || imagemeta_src_get(s, 20, d, 10) == -1)
			return;
		if ((d[0] & 1) != 0 || memcmp(d + 3, "\x9d\x01\x2a", 3) != 0)
			return;
		meta_dims(m, le16(d + 6) & 0x3fff, le16(d + 8) & 0x3fff);
	} else if (memcmp(c, "VP8L", 4) == 0) {
		/* signature, then 14 bits each of width-1 and height-1 */
		if (size < 5 || imagemeta_src_get(s, 20, d, 5) == -1 ||
		    d[0] != 0x2f)
			return;
		v = le32(d + 1);
		if (v >> 29 != 0)
			return; /* version must be 0 */
		meta_dims(m, (v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1);
	} else if (memcmp(c, "VP8X", 4) == 0) {
		/* flags, 3 reserved, 24 bits each of canvas width-1, height-1
		 */
		if (size < 10 || imagemeta_src_get(s, 20, d, 10) == -1)
			return;
		meta_dims(m, (uint64_t)le24(d + 4) + 1,
		          (uint64_t)le24(d + 7) + 1);
	}
}

/* "BM" alone is too weak: a known DIB header size must follow. */
int
imagemeta_formats_bmp_detect(const unsigned char *h, size_t n)
{
	uint32_t dib;

	if (n < 18 || h[0] != 'B' || h[1] != 'M')
		return 0;
	dib = le32(h + 14);
	return dib == 12 || dib == 16 || dib == 40 || dib == 52 || dib == 56 ||
	       dib == 64 || dib == 108 || dib == 124;
}

void
imagemeta_formats_bmp(const unsigned char *h, size_t n, struct imagemeta *m)
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
void
imagemeta_formats_tiff(struct src *s, const unsigned char *h, size_t n,
                       struct imagemeta *m)
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
		if (imagemeta_src_get(s, ifd, b, 8) == -1)
			return;
		count = rd64(b, le);
		first = ifd + 8;
	} else {
		if (n < 8)
			return;
		ifd = rd32(h + 4, le);
		if (imagemeta_src_get(s, ifd, b, 2) == -1)
			return;
		count = rd16(b, le);
		first = ifd + 2;
	}
	for (i = 0; i < count && i < TIFF_MAX_ENTRIES; i++) {
		/* tag, type, count, then the value itself when it fits */
		if (imagemeta_src_get(s, first + i * esize, b, esize) == -1)
			break;
		tag = rd16(b, le);
		if (tag == TAG_ORIENTATION) {
			m->orientation = tiff_orientation(b, le, big);
			continue;
		}
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
int
imagemeta_formats_ico_detect(const unsigned char *h, size_t n)
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
void
imagemeta_formats_ico(struct src *s, const unsigned char *h,
                      struct imagemeta *m)
{
	unsigned char b[16];
	uint32_t count = le16(h + 4), i, w, ht, bw = 0, bh = 0;

	meta_type(m, "image/vnd.microsoft.icon");
	for (i = 0; i < count && i < ICO_MAX_ENTRIES; i++) {
		if (imagemeta_src_get(s, 6 + 16 * (uint64_t)i, b, sizeof(b)) ==
		    -1)
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
