/*
 * sigv4_impl.h: what the signer's three files share, and nobody else
 * includes. sigv4.c is the public signing API (checks, the canonical
 * request, the string to sign, the output); sigv4_canon.c puts a request in
 * canonical form (URI, query, headers); sigv4_cache.c does every hash and
 * HMAC, derives the signing key and keeps the caches of struct sigv4_cache.
 */
#ifndef IMGSYNC_SIGV4_IMPL_H
#define IMGSYNC_SIGV4_IMPL_H

#include <errno.h>
#include <stddef.h>

#include <openssl/types.h> /* not evp.h: its err.h would meet ours */

#include "sigv4.h"

#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_KEY_LEN 32
#define SIGV4_CACHE_SECRET 128
#define SIGV4_CACHE_SCOPE 128

/* The last derived key and what it was derived from. */
struct sigv4_key_slot {
	int valid;
	size_t secret_len;
	char secret[SIGV4_CACHE_SECRET];
	char scope[SIGV4_CACHE_SCOPE]; /* date8 '/' region '/' service */
	unsigned char key[SIGV4_KEY_LEN];
};

struct sigv4_cache {
	/* The algorithms, fetched at first use. */
	EVP_MD *sha256;
	EVP_MAC *hmac;
	EVP_MD_CTX *md_ctx;
	EVP_MAC_CTX *mac_ctx;
	int failed; /* a fetch failed: not retried on every request */
	struct sigv4_key_slot slot;
};

/*
 * All three files
 */
/* Sets e for an allocation failure; returns -1. Here rather than in one of
 * the files so that none of them calls another back for it. */
static inline int
sigv4_oom(struct err *e)
{
	errno = ENOMEM;
	err_sys(e, "sigv4: out of memory");
	return -1;
}

/*
 * sigv4_canon.c
 */
/* A-Za-z0-9 and "-._~". */
int sigv4_is_unreserved(unsigned char c);
/* s[0..n) is a non-empty RFC 9110 token. */
int sigv4_is_token(const char *s, size_t n);
/* out->canonical_uri from in->path, as in->mode says. */
int sigv4_canonical_uri(const struct sigv4_input *in, struct sigv4_output *out,
                        struct err *e);
/* Encoded "name=value" pairs sorted by encoded name, then value; *out is
 * the caller's to free. */
int sigv4_canonical_query(const struct sigv4_kv *q, size_t nq, char **out,
                          struct err *e);
/* The canonical header block and the signed-header list; both the
 * caller's to free. */
int sigv4_canonical_headers(const struct sigv4_input *in, char **block,
                            char **names, struct err *e);

/*
 * sigv4_cache.c
 */
/* The cache a call uses: in->cache, else tmp made empty (and wiped by
 * sigv4_cache_end), so that a call without a cache keeps nothing. */
struct sigv4_cache *sigv4_cache_begin(const struct sigv4_input *in,
                                      struct sigv4_cache *tmp);
void sigv4_cache_end(struct sigv4_cache *c, struct sigv4_cache *tmp);
/* Lowercase hex SHA-256 of p[0..n) (p may be NULL when n is 0); -1 and
 * out "" when the digest fails. */
int sigv4_cache_sha256(struct sigv4_cache *c, const void *p, size_t n,
                       char out[65]);
/* The signature of msg: HMAC under the key derived from in's secret,
 * date8, region and service, as lowercase hex. */
int sigv4_cache_signature(struct sigv4_cache *c, const struct sigv4_input *in,
                          const char *date8, const char *msg,
                          char signature[65], struct err *e);

#endif
