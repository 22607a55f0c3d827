/*
 * sigv4_cache: the signer's arithmetic and what it keeps between requests.
 * Every SHA-256 and HMAC-SHA256 of the signer is computed here, and the
 * signing key derived (the HMAC chain over date, region, service and
 * "aws4_request"); this is the only code that sees the secret.
 *
 * A struct sigv4_cache keeps two things, for whoever signs many requests
 * (an aws_client holds one):
 *   - the algorithms, fetched once: OpenSSL 3 looks a name up in its
 *     provider store on every EVP_Digest or HMAC call that is given only the
 *     legacy EVP_sha256(), which cost more than the hashing of a request;
 *   - the last derived key and what it was derived from: it changes once a
 *     day, when the credentials rotate or for another region/service, so
 *     nearly every request skips the four HMACs. The secret is kept
 *     (exactly, to compare) only in this slot, which is wiped whenever it is
 *     replaced and when the cache is freed.
 * A call without a cache uses an empty one of its own and wipes it before
 * returning: the same results, nothing kept.
 */
#include "sigv4_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct sigv4_cache *
sigv4_cache_new(struct err *e)
{
	struct sigv4_cache *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		sigv4_oom(e);
	return c;
}

static void
sigv4_cache_cleanup(struct sigv4_cache *c)
{
	EVP_MAC_CTX_free(c->mac_ctx);
	EVP_MAC_free(c->hmac);
	EVP_MD_CTX_free(c->md_ctx);
	EVP_MD_free(c->sha256);
	OPENSSL_cleanse(c, sizeof(*c));
}

void
sigv4_cache_free(struct sigv4_cache *c)
{
	if (c == NULL)
		return;
	sigv4_cache_cleanup(c);
	free(c);
}

struct sigv4_cache *
sigv4_cache_begin(const struct sigv4_input *in, struct sigv4_cache *tmp)
{
	if (in != NULL && in->cache != NULL)
		return in->cache;
	memset(tmp, 0, sizeof(*tmp));
	return tmp;
}

void
sigv4_cache_end(struct sigv4_cache *c, struct sigv4_cache *tmp)
{
	if (c == tmp)
		sigv4_cache_cleanup(tmp);
}

/* The algorithms, fetched at the first call; NULL when that failed. */
static struct sigv4_cache *
sigv4_cache_algs(struct sigv4_cache *a)
{
	OSSL_PARAM params[2];

	if (a->mac_ctx != NULL)
		return a;
	if (a->failed)
		return NULL;
	if (a->sha256 == NULL &&
	    (a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto fail;
	if (a->md_ctx == NULL && (a->md_ctx = EVP_MD_CTX_new()) == NULL)
		goto fail;
	if (a->hmac == NULL &&
	    (a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		goto fail;
	if ((a->mac_ctx = EVP_MAC_CTX_new(a->hmac)) == NULL)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(a->mac_ctx, params) != 1) {
		EVP_MAC_CTX_free(a->mac_ctx);
		a->mac_ctx = NULL;
		goto fail;
	}
	return a;
fail:
	/* Not retried on every request; the callers report the failure. */
	a->failed = 1;
	return NULL;
}

static void
sigv4_cache_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int
sigv4_cache_sha256(struct sigv4_cache *c, const void *p, size_t n, char out[65])
{
	struct sigv4_cache *a = sigv4_cache_algs(c);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (p == NULL)
		p = "";
	if (a == NULL || EVP_DigestInit_ex2(a->md_ctx, a->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(a->md_ctx, p, n) != 1 ||
	    EVP_DigestFinal_ex(a->md_ctx, md, &mdlen) != 1 ||
	    mdlen != SIGV4_KEY_LEN) {
		out[0] = '\0';
		return -1;
	}
	sigv4_cache_hex(md, mdlen, out);
	return 0;
}

void
sigv4_cache_sha256_hex(struct sigv4_cache *c, const void *p, size_t n,
                       char out[65])
{
	struct sigv4_cache tmp;

	if (c == NULL) {
		memset(&tmp, 0, sizeof(tmp));
		(void)sigv4_cache_sha256(&tmp, p, n, out);
		sigv4_cache_cleanup(&tmp);
		return;
	}
	(void)sigv4_cache_sha256(c, p, n, out);
}

static int
sigv4_cache_hmac(struct sigv4_cache *c, const void *key, size_t keylen,
                 const void *msg, size_t msglen,
                 unsigned char out[SIGV4_KEY_LEN])
{
	struct sigv4_cache *a = sigv4_cache_algs(c);
	size_t mdlen = 0;

	if (a == NULL || EVP_MAC_init(a->mac_ctx, key, keylen, NULL) != 1 ||
	    EVP_MAC_update(a->mac_ctx, msg, msglen) != 1 ||
	    EVP_MAC_final(a->mac_ctx, out, &mdlen, SIGV4_KEY_LEN) != 1 ||
	    mdlen != SIGV4_KEY_LEN)
		return -1;
	return 0;
}

/* The slot's scope string for these inputs; -1 if it does not fit. */
static int
sigv4_cache_scope(const char *date8, const char *region, const char *service,
                  char out[SIGV4_CACHE_SCOPE])
{
	size_t rl = strlen(region), sl = strlen(service);

	if (8 + 1 + rl + 1 + sl + 1 > SIGV4_CACHE_SCOPE)
		return -1;
	memcpy(out, date8, 8);
	out[8] = '/';
	memcpy(out + 9, region, rl);
	out[9 + rl] = '/';
	memcpy(out + 10 + rl, service, sl + 1);
	return 0;
}

/* The derived signing key; every intermediate copy is wiped. */
static int
sigv4_cache_derive(struct sigv4_cache *c, const char *secret, const char *date8,
                   const char *region, const char *service,
                   unsigned char key[SIGV4_KEY_LEN], struct err *e)
{
	unsigned char tmp[SIGV4_KEY_LEN];
	unsigned char *k = NULL;
	size_t klen;
	int rc = -1;

	klen = strlen(secret);
	if (klen > INT_MAX - 4) {
		err_set(e, ERR_INVALID, "sigv4: secret access key too long");
		return -1;
	}
	klen += 4;
	/* One exact allocation, not a buf: growing would leave copies. */
	k = malloc(klen);
	if (k == NULL)
		return sigv4_oom(e);
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, klen - 4);
	if (sigv4_cache_hmac(c, k, klen, date8, 8, tmp) == -1 ||
	    sigv4_cache_hmac(c, tmp, sizeof(tmp), region, strlen(region),
	                     key) == -1 ||
	    sigv4_cache_hmac(c, key, SIGV4_KEY_LEN, service, strlen(service),
	                     tmp) == -1 ||
	    sigv4_cache_hmac(c, tmp, sizeof(tmp), SIGV4_TERMINATOR,
	                     strlen(SIGV4_TERMINATOR), key) == -1) {
		OPENSSL_cleanse(key, SIGV4_KEY_LEN);
		err_set(e, ERR_SYS, "sigv4: HMAC-SHA256 failed");
		goto fail;
	}
	rc = 0;
fail:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	OPENSSL_cleanse(k, klen);
	free(k);
	return rc;
}

/* The derived key for these inputs, from the slot when it holds them, else
 * derived (and kept when it fits). */
static int
sigv4_cache_key(struct sigv4_cache *c, const struct sigv4_input *in,
                const char *date8, unsigned char key[SIGV4_KEY_LEN],
                struct err *e)
{
	struct sigv4_key_slot *s = &c->slot;
	char scope[SIGV4_CACHE_SCOPE];
	size_t slen = strlen(in->secret_access_key);
	int cacheable;

	cacheable =
	    slen < SIGV4_CACHE_SECRET &&
	    sigv4_cache_scope(date8, in->region, in->service, scope) == 0;
	if (cacheable && s->valid && s->secret_len == slen &&
	    CRYPTO_memcmp(s->secret, in->secret_access_key, slen) == 0 &&
	    strcmp(s->scope, scope) == 0) {
		memcpy(key, s->key, SIGV4_KEY_LEN);
		return 0;
	}
	if (sigv4_cache_derive(c, in->secret_access_key, date8, in->region,
	                       in->service, key, e) == -1)
		return -1;
	OPENSSL_cleanse(s, sizeof(*s));
	if (cacheable) {
		memcpy(s->secret, in->secret_access_key, slen);
		s->secret_len = slen;
		memcpy(s->scope, scope, sizeof(scope));
		memcpy(s->key, key, SIGV4_KEY_LEN);
		s->valid = 1;
	}
	return 0;
}

int
sigv4_cache_signature(struct sigv4_cache *c, const struct sigv4_input *in,
                      const char *date8, const char *msg, char signature[65],
                      struct err *e)
{
	unsigned char key[SIGV4_KEY_LEN], mac[SIGV4_KEY_LEN];
	int rc = -1;

	if (sigv4_cache_key(c, in, date8, key, e) == -1)
		return -1;
	if (sigv4_cache_hmac(c, key, sizeof(key), msg, strlen(msg), mac) ==
	    -1) {
		err_set(e, ERR_SYS, "sigv4: HMAC-SHA256 failed");
		goto fail;
	}
	sigv4_cache_hex(mac, sizeof(mac), signature);
	rc = 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}
