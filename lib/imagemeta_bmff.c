/*
 * imagemeta_bmff: the formats made of ISO BMFF boxes: HEIF, HEIC and AVIF
 * (the brand decides the type, the primary item's ispe the dimensions), and
 * JPEG XL, whose container is made of the same boxes and whose bare
 * codestream's size header is parsed here too.
 */
#include <string.h>

#include "imagemeta_impl.h"

/*
 * Bounds on every loop over attacker-controlled counts. Real files stay far
 * below them; a hostile one costs at most this much work.
 */
#define BMFF_MAX_BOXES 256 /* boxes looked at per container */
#define BMFF_MAX_BRANDS 64
#define HEIF_MAX_ITEMS 4096 /* ipma entries */
#define HEIF_MAX_PROPS 4096 /* ipco entries */
#define HEIF_MAX_ASSOC 255  /* property associations of one item (u8) */

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
void
imagemeta_bmff_jxl_codestream(struct src *s, uint64_t off, uint64_t end,
                              struct imagemeta *m)
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
	if (avail < 2 || imagemeta_src_get(s, off, h, 2) == -1 ||
	    h[0] != 0xff || h[1] != 0x0a)
		return;
	b.n = avail - 2 < sizeof(h) ? (size_t)(avail - 2) : sizeof(h);
	if (imagemeta_src_get(s, off + 2, h, b.n) == -1)
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

	if (imagemeta_src_get_in(s, off, end, h, 8) == -1)
		return -1;
	size = be32(h);
	memcpy(bx->type, h + 4, 4);
	if (size == 1) {
		if (imagemeta_src_get_in(s, off + 8, end, h, 8) == -1)
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

void
imagemeta_bmff_jxl_container(struct src *s, struct imagemeta *m)
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
			imagemeta_bmff_jxl_codestream(s, bx.start, end, m);
			return;
		}
		if (memcmp(bx.type, "jxlp", 4) == 0) {
			/* a partial codestream, after its 4-byte index */
			imagemeta_bmff_jxl_codestream(s, bx.start + 4, end, m);
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
		if (imagemeta_src_get_in(s, off, ftyp->end, b, 4) == -1)
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

	if (imagemeta_src_get_in(s, bx->start, bx->end, b, 6) == -1)
		return -1;
	if (b[0] == 0) {
		*id = be16(b + 4);
		return 0;
	}
	if (imagemeta_src_get_in(s, bx->start, bx->end, b, 8) == -1)
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

	if (imagemeta_src_get_in(s, bx->start, end, b, 8) == -1)
		return 0;
	version = b[0];
	wide = b[3] & 1; /* flags: 15-bit rather than 7-bit indices */
	count = be32(b + 4);
	off = bx->start + 8;
	for (i = 0; i < count && i < HEIF_MAX_ITEMS; i++) {
		if (imagemeta_src_get_in(s, off, end, b, version < 1 ? 3 : 5) ==
		    -1)
			return 0;
		item = version < 1 ? be16(b) : be32(b);
		nassoc = b[version < 1 ? 2 : 4];
		off += version < 1 ? 3 : 5;
		if (item != id) {
			off += (uint64_t)nassoc * (wide ? 2 : 1);
			continue;
		}
		for (j = 0; j < nassoc; j++) {
			if (imagemeta_src_get_in(s, off, end, b,
			                         wide ? 2 : 1) == -1)
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
		    imagemeta_src_get_in(s, bx.start, bx.end, b, sizeof(b)) ==
		        -1)
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

void
imagemeta_bmff_probe(struct src *s, struct imagemeta *m)
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
