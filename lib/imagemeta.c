/*
 * imagemeta: the public entry points. The probes build a byte source over
 * a buffer or a file and pick the format's parser from the magic bytes
 * (the parsers are in imagemeta_formats.c, imagemeta_bmff.c and
 * imagemeta_svg.c); the SHA-256, whole-file and incremental, is here too.
 */
#include "imagemeta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "imagemeta_impl.h"

#define HASH_CHUNK 65536

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
	if (!s->is_buf && s->size > 0 && imagemeta_src_fill(s, 0) == -1)
		return;
	n = s->size < sizeof(h) ? (size_t)s->size : sizeof(h);
	if (imagemeta_src_get(s, 0, h, n) == -1)
		return;
	if (n >= 8 && memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0)
		imagemeta_formats_png(s, m);
	else if (n >= 3 && memcmp(h, "\xff\xd8\xff", 3) == 0)
		imagemeta_formats_jpeg(s, m);
	else if (n >= 6 &&
	         (memcmp(h, "GIF87a", 6) == 0 || memcmp(h, "GIF89a", 6) == 0))
		imagemeta_formats_gif(s, m);
	else if (n >= 12 && memcmp(h, "RIFF", 4) == 0 &&
	         memcmp(h + 8, "WEBP", 4) == 0)
		imagemeta_formats_webp(s, m);
	else if (imagemeta_formats_bmp_detect(h, n))
		imagemeta_formats_bmp(h, n, m);
	else if (n >= 4 &&
	         (memcmp(h, "II*\0", 4) == 0 || memcmp(h, "MM\0*", 4) == 0 ||
	          memcmp(h, "II+\0", 4) == 0 || memcmp(h, "MM\0+", 4) == 0))
		imagemeta_formats_tiff(s, h, n, m);
	else if (imagemeta_formats_ico_detect(h, n))
		imagemeta_formats_ico(s, h, m);
	else if (n >= 2 && h[0] == 0xff && h[1] == 0x0a) {
		meta_type(m, "image/jxl");
		imagemeta_bmff_jxl_codestream(s, 0, s->size, m);
	} else if (n >= sizeof(jxl_sig) && memcmp(h, jxl_sig, 12) == 0) {
		meta_type(m, "image/jxl");
		imagemeta_bmff_jxl_container(s, m);
	} else if (n >= 8 && memcmp(h + 4, "ftyp", 4) == 0)
		imagemeta_bmff_probe(s, m);
	else
		imagemeta_svg_probe(s, m);
	if (m->orientation >= 5 && m->has_dimensions) {
		/* turned a quarter: displayed with the sides swapped */
		unsigned w = m->width;

		m->width = m->height;
		m->height = w;
	}
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
