/*
 * s3_parts: the SHA-256 of each part of a file, as an upload of it in parts
 * will cut it, computed from the file's bytes fed in order: the one pass
 * that hashes the whole file for its intent feeds them too. A part is then
 * sent and signed from its digest here, read once, as it goes out, instead
 * of once more beforehand. The object can then hold only the bytes that
 * were hashed: a part that changed since fails the store's check of its
 * payload hash instead of going up under the old whole-file SHA-256.
 */
#include "s3_impl.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>

struct s3_parts {
	uint64_t len;       /* the file's length */
	uint64_t part_size; /* s3_part_size of it */
	unsigned nparts;
	unsigned done;    /* parts whose digest is complete */
	uint64_t in_part; /* bytes of part done fed so far */
	EVP_MD_CTX *ctx;  /* part done's running hash */
	unsigned char (*digest)[32];
};

struct s3_parts *
s3_parts_new(const struct s3 *s, uint64_t len, struct err *e)
{
	struct s3_parts *p;

	if (!s3_multipart(s, len))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		err_sys(e, "s3: calloc");
		return NULL;
	}
	p->len = len;
	p->part_size = s3_part_size(s->part_size, len);
	p->nparts = (unsigned)((len + p->part_size - 1) / p->part_size);
	if (p->part_size > S3_MAX_PART || p->nparts == 0) {
		/* s3_upload_multipart refuses it, or reads it itself */
		free(p);
		return NULL;
	}
	p->digest = calloc(p->nparts, sizeof(*p->digest));
	p->ctx = EVP_MD_CTX_new();
	if (p->digest == NULL || p->ctx == NULL ||
	    EVP_DigestInit_ex(p->ctx, EVP_sha256(), NULL) != 1) {
		err_set(e, ERR_SYS, "s3: SHA-256 unavailable");
		s3_parts_free(p);
		return NULL;
	}
	return p;
}

int
s3_parts_update(struct s3_parts *p, const void *data, size_t n)
{
	const unsigned char *c = data;

	while (n > 0) {
		uint64_t size, room;
		size_t take;

		if (p->done == p->nparts)
			return -1; /* more than len bytes */
		size = p->done + 1 < p->nparts
		           ? p->part_size
		           : p->len - (uint64_t)p->done * p->part_size;
		room = size - p->in_part;
		take = (uint64_t)n < room ? n : (size_t)room;
		if (EVP_DigestUpdate(p->ctx, c, take) != 1)
			return -1;
		c += take;
		n -= take;
		p->in_part += take;
		if (p->in_part == size) {
			if (EVP_DigestFinal_ex(p->ctx, p->digest[p->done],
			                       NULL) != 1 ||
			    EVP_DigestInit_ex(p->ctx, EVP_sha256(), NULL) != 1)
				return -1;
			p->done++;
			p->in_part = 0;
		}
	}
	return 0;
}

int
s3_parts_digest(const struct s3_parts *p, uint64_t part_size, unsigned i,
                char hex[65], char b64[48])
{
	unsigned k;

	if (p == NULL || p->part_size != part_size || i >= p->done)
		return -1;
	for (k = 0; k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", p->digest[i][k]);
	EVP_EncodeBlock((unsigned char *)b64, p->digest[i], 32);
	return 0;
}

void
s3_parts_free(struct s3_parts *p)
{
	if (p == NULL)
		return;
	EVP_MD_CTX_free(p->ctx);
	free(p->digest);
	free(p);
}
