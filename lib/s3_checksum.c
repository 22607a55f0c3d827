/*
 * s3_checksum: the SHA-256 checksums S3 keeps with an object, as this client
 * sends them: base64 of the whole object's digest for one PutObject; for a
 * multipart upload, each part's, and the object's is the composite: base64
 * of the SHA-256 of the parts' digests, then "-<parts>". s3_checksum_file
 * computes, from the file, what an upload of it carries, for verify.
 */
#include "s3_impl.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
s3_checksum_b64(const unsigned char digest[32], char *out)
{
	EVP_EncodeBlock((unsigned char *)out, digest, 32);
}

static int
s3_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
s3_checksum_from_hex(const char *sha256, char *out, size_t outlen)
{
	unsigned char digest[32];
	size_t i;
	int hi, lo;

	if (outlen < 45 || sha256 == NULL || strlen(sha256) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = s3_hexval(sha256[2 * i]);
		lo = s3_hexval(sha256[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		digest[i] = (unsigned char)(hi << 4 | lo);
	}
	s3_checksum_b64(digest, out);
	return 0;
}

void
s3_checksum_of(const void *data, size_t len, char *out)
{
	unsigned char digest[32];

	SHA256(data, len, digest);
	s3_checksum_b64(digest, out);
}

/* The digest of len bytes of fd from off into part, and into whole's
 * running hash when whole is not NULL. */
static int
s3_checksum_range(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *whole,
                  unsigned char part[32], struct err *e)
{
	unsigned char chunk[65536];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ssize_t got;
	int rc = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		err_set(e, ERR_SYS, "s3: SHA-256 unavailable");
		goto done;
	}
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);

		got = pread(fd, chunk, want, (off_t)off);
		if (got < 0) {
			err_sys(e, "s3: reading the file");
			goto done;
		}
		if (got == 0) {
			err_set(e, ERR_SYS, "s3: the file shrank");
			goto done;
		}
		EVP_DigestUpdate(ctx, chunk, (size_t)got);
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	if (EVP_DigestFinal_ex(ctx, part, NULL) != 1) {
		err_set(e, ERR_SYS, "s3: SHA-256 failed");
		goto done;
	}
	if (whole != NULL)
		EVP_DigestUpdate(whole, part, 32);
	rc = 0;
done:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
s3_multipart(const struct s3 *s, uint64_t len)
{
	return len >= s->threshold;
}

uint64_t
s3_part_size(uint64_t configured, uint64_t len)
{
	uint64_t least = (len + S3_MAX_PARTS - 1) / S3_MAX_PARTS;

	least = (least + S3_MIB - 1) / S3_MIB * S3_MIB;
	return least > configured ? least : configured;
}

int
s3_checksum_file(const struct s3 *s, int fd, uint64_t len, char *out,
                 size_t outlen, struct err *e)
{
	unsigned char digest[32], composite[32];
	EVP_MD_CTX *whole;
	uint64_t off, n, size;
	char b64[48];
	int rc = -1;

	if (!s3_multipart(s, len)) {
		if (s3_checksum_range(fd, 0, len, NULL, digest, e) == -1)
			return -1;
		s3_checksum_b64(digest, b64);
		snprintf(out, outlen, "%s", b64);
		return 0;
	}
	whole = EVP_MD_CTX_new();
	if (whole == NULL ||
	    EVP_DigestInit_ex(whole, EVP_sha256(), NULL) != 1) {
		err_set(e, ERR_SYS, "s3: SHA-256 unavailable");
		goto done;
	}
	n = 0;
	size = s3_part_size(s->part_size, len);
	for (off = 0; off < len || n == 0; off += size) {
		uint64_t part = len - off < size ? len - off : size;

		if (s3_checksum_range(fd, off, part, whole, digest, e) == -1)
			goto done;
		n++;
	}
	if (EVP_DigestFinal_ex(whole, composite, NULL) != 1) {
		err_set(e, ERR_SYS, "s3: SHA-256 failed");
		goto done;
	}
	s3_checksum_b64(composite, b64);
	snprintf(out, outlen, "%s-%" PRIu64, b64, n);
	rc = 0;
done:
	EVP_MD_CTX_free(whole);
	return rc;
}

int
s3_checksum_part(int fd, uint64_t off, uint64_t len, char hex[65], char *b64,
                 struct err *e)
{
	unsigned char digest[32];
	size_t i;

	if (s3_checksum_range(fd, off, len, NULL, digest, e) == -1)
		return -1;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	s3_checksum_b64(digest, b64);
	return 0;
}
