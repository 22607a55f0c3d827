/*
 * sigv4: AWS Signature Version 4.
 *
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 * The one place this departs from "encode what the caller gives" is the
 * generic-mode path, normalised the way botocore's remove_dot_segments()
 * does it (empty and "." segments dropped, ".." pops, a trailing slash kept
 * only when something is left), which is what the AWS test suite expects.
 */
#include "sigv4.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_CHUNK_ALGORITHM "AWS4-HMAC-SHA256-PAYLOAD"
#define SIGV4_KEY_LEN 32

/* An encoded query pair or a canonicalised header, pointing into a buf. */
struct sigv4_item {
	size_t name_off;
	size_t value_off;
	size_t order;
	const char *name;
	const char *value;
};

static const char *const sigv4_auth_params[] = {
    "X-Amz-Algorithm", "X-Amz-Credential",     "X-Amz-Date",
    "X-Amz-Expires",   "X-Amz-Security-Token", "X-Amz-SignedHeaders",
    "X-Amz-Signature",
};

static int
sigv4_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* ASCII white space, as aws-c-auth and the C locale's isspace() see it. */
static int
sigv4_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* RFC 9110 tchar: what header names, methods and scope parts may hold. */
static int
sigv4_is_tchar(unsigned char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
sigv4_is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!sigv4_is_tchar((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

static int
sigv4_is_lower_hex(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

static void
sigv4_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
sigv4_oom(struct err *e)
{
	errno = ENOMEM;
	err_sys(e, "sigv4: out of memory");
	return -1;
}

/*
 * Algorithms fetched once per thread: OpenSSL 3 looks a name up in its
 * provider store on every EVP_Digest or HMAC call that is given only the
 * legacy EVP_sha256(), which cost more than the hashing of a request.
 */
struct sigv4_algs {
	EVP_MD *sha256;
	EVP_MAC *hmac;
	EVP_MD_CTX *md_ctx;
	EVP_MAC_CTX *mac_ctx;
	int failed;
};

static _Thread_local struct sigv4_algs sigv4_algs;

static struct sigv4_algs *
sigv4_algs_get(void)
{
	struct sigv4_algs *a = &sigv4_algs;
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

static int
sigv4_sha256(const void *p, size_t n, char out[65])
{
	struct sigv4_algs *a = sigv4_algs_get();
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
	sigv4_hex(md, mdlen, out);
	return 0;
}

static int
sigv4_hmac(const void *key, size_t keylen, const void *msg, size_t msglen,
           unsigned char out[SIGV4_KEY_LEN])
{
	struct sigv4_algs *a = sigv4_algs_get();
	size_t mdlen = 0;

	if (a == NULL || EVP_MAC_init(a->mac_ctx, key, keylen, NULL) != 1 ||
	    EVP_MAC_update(a->mac_ctx, msg, msglen) != 1 ||
	    EVP_MAC_final(a->mac_ctx, out, &mdlen, SIGV4_KEY_LEN) != 1 ||
	    mdlen != SIGV4_KEY_LEN)
		return -1;
	return 0;
}

/*
 * The last derived key of this thread and what it was derived from: it
 * changes once a day, when the credentials rotate or for another
 * region/service, so nearly every request skips the four HMACs. The
 * secret is kept (exactly, to compare) only in this cache, which is wiped
 * whenever it is replaced.
 */
#define SIGV4_CACHE_SECRET 128
#define SIGV4_CACHE_SCOPE 128

struct sigv4_key_cache {
	int valid;
	size_t secret_len;
	char secret[SIGV4_CACHE_SECRET];
	char scope[SIGV4_CACHE_SCOPE]; /* date8 '/' region '/' service */
	unsigned char key[SIGV4_KEY_LEN];
};

static _Thread_local struct sigv4_key_cache sigv4_key_cache;

/* The cache slot's scope string for these inputs; -1 if it does not fit. */
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

/*
 * The derived signing key, HMAC chain over date, region, service and
 * "aws4_request". The only code that sees the secret; every intermediate
 * copy is wiped.
 */
static int
sigv4_signing_key(const char *secret, const char *date8, const char *region,
                  const char *service, unsigned char key[SIGV4_KEY_LEN],
                  struct err *e)
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
	if (sigv4_hmac(k, klen, date8, 8, tmp) == -1 ||
	    sigv4_hmac(tmp, sizeof(tmp), region, strlen(region), key) == -1 ||
	    sigv4_hmac(key, SIGV4_KEY_LEN, service, strlen(service), tmp) ==
	        -1 ||
	    sigv4_hmac(tmp, sizeof(tmp), SIGV4_TERMINATOR,
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

/* The derived key for these inputs, from the thread's cache when it holds
 * them, else derived (and cached when it fits). */
static int
sigv4_key_for(const struct sigv4_input *in, const char *date8,
              unsigned char key[SIGV4_KEY_LEN], struct err *e)
{
	struct sigv4_key_cache *c = &sigv4_key_cache;
	char scope[SIGV4_CACHE_SCOPE];
	size_t slen = strlen(in->secret_access_key);
	int cacheable;

	cacheable =
	    slen < SIGV4_CACHE_SECRET &&
	    sigv4_cache_scope(date8, in->region, in->service, scope) == 0;
	if (cacheable && c->valid && c->secret_len == slen &&
	    CRYPTO_memcmp(c->secret, in->secret_access_key, slen) == 0 &&
	    strcmp(c->scope, scope) == 0) {
		memcpy(key, c->key, SIGV4_KEY_LEN);
		return 0;
	}
	if (sigv4_signing_key(in->secret_access_key, date8, in->region,
	                      in->service, key, e) == -1)
		return -1;
	OPENSSL_cleanse(c, sizeof(*c));
	if (cacheable) {
		memcpy(c->secret, in->secret_access_key, slen);
		c->secret_len = slen;
		memcpy(c->scope, scope, sizeof(scope));
		memcpy(c->key, key, SIGV4_KEY_LEN);
		c->valid = 1;
	}
	return 0;
}

/* HMAC of msg under the derived key, as lowercase hex. */
static int
sigv4_signature(const struct sigv4_input *in, const char *date8,
                const char *msg, char signature[65], struct err *e)
{
	unsigned char key[SIGV4_KEY_LEN], mac[SIGV4_KEY_LEN];
	int rc = -1;

	if (sigv4_key_for(in, date8, key, e) == -1)
		return -1;
	if (sigv4_hmac(key, sizeof(key), msg, strlen(msg), mac) == -1) {
		err_set(e, ERR_SYS, "sigv4: HMAC-SHA256 failed");
		goto fail;
	}
	sigv4_hex(mac, sizeof(mac), signature);
	rc = 0;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

static void
sigv4_digits(char *p, int v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
sigv4_amz_date(time_t when, char out[17])
{
	struct tm tm;

	out[0] = '\0';
	if (gmtime_r(&when, &tm) == NULL)
		return;
	if (tm.tm_year < 1 - 1900 || tm.tm_year > 9999 - 1900)
		return;
	sigv4_digits(out, tm.tm_year + 1900, 4);
	sigv4_digits(out + 4, tm.tm_mon + 1, 2);
	sigv4_digits(out + 6, tm.tm_mday, 2);
	out[8] = 'T';
	sigv4_digits(out + 9, tm.tm_hour, 2);
	sigv4_digits(out + 11, tm.tm_min, 2);
	sigv4_digits(out + 13, tm.tm_sec, 2);
	out[15] = 'Z';
	out[16] = '\0';
}

void
sigv4_sha256_hex(const void *p, size_t n, char out[65])
{
	(void)sigv4_sha256(p, n, out);
}

int
sigv4_uri_encode(struct buf *b, const char *s, size_t n, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, run;
	unsigned char c;
	char pct[3];

	for (i = 0; i < n;) {
		for (run = i; run < n; run++) {
			c = (unsigned char)s[run];
			if (!sigv4_is_unreserved(c) &&
			    !(keep_slash && c == '/'))
				break;
		}
		if (run > i && buf_append(b, s + i, run - i) == -1)
			return -1;
		if (run == n)
			break;
		c = (unsigned char)s[run];
		pct[0] = '%';
		pct[1] = digits[c >> 4];
		pct[2] = digits[c & 0x0f];
		if (buf_append(b, pct, sizeof(pct)) == -1)
			return -1;
		i = run + 1;
	}
	return b->failed ? -1 : 0;
}

/* botocore's remove_dot_segments() on an absolute path, into b. */
static int
sigv4_path_normalize(struct buf *b, const char *path)
{
	size_t n, i, j, nseg = 0;

	n = strlen(path);
	for (i = 0; i < n; i = j + 1) {
		for (j = i; j < n && path[j] != '/'; j++)
			;
		if (j == i || (j - i == 1 && path[i] == '.'))
			continue;
		if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nseg > 0) {
				while (b->data[--b->len] != '/')
					;
				b->data[b->len] = '\0';
				nseg--;
			}
			continue;
		}
		if (buf_putc(b, '/') == -1 ||
		    buf_append(b, path + i, j - i) == -1)
			return -1;
		nseg++;
	}
	if (nseg == 0 || (n > 0 && path[n - 1] == '/'))
		return buf_putc(b, '/');
	return 0;
}

static int
sigv4_canonical_uri(const struct sigv4_input *in, struct sigv4_output *out,
                    struct err *e)
{
	struct buf norm, uri;
	const char *p = in->path;
	size_t n = strlen(in->path);
	int rc = -1;

	buf_init(&norm, 0);
	buf_init(&uri, 0);
	if (in->mode == SIGV4_GENERIC) {
		if (sigv4_path_normalize(&norm, in->path) == -1)
			goto fail;
		p = norm.data;
		n = norm.len;
	} else if (n == 0) {
		p = "/";
		n = 1;
	}
	if (sigv4_uri_encode(&uri, p, n, 1) == -1)
		goto fail;
	out->canonical_uri = buf_steal(&uri);
	if (out->canonical_uri == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		sigv4_oom(e);
	buf_cleanup(&norm);
	buf_cleanup(&uri);
	return rc;
}

static int
sigv4_item_cmp_query(const void *a, const void *b)
{
	const struct sigv4_item *x = a, *y = b;
	int c;

	c = strcmp(x->name, y->name);
	if (c == 0)
		c = strcmp(x->value, y->value);
	return c;
}

static int
sigv4_item_cmp_header(const void *a, const void *b)
{
	const struct sigv4_item *x = a, *y = b;
	int c;

	c = strcmp(x->name, y->name);
	if (c == 0)
		c = x->order < y->order ? -1 : x->order > y->order;
	return c;
}

static void
sigv4_items_resolve(struct sigv4_item *items, size_t n, const struct buf *b)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i].name = b->data + items[i].name_off;
		items[i].value = b->data + items[i].value_off;
	}
}

/* Encoded "name=value" pairs sorted by encoded name, then value. */
static int
sigv4_canonical_query(const struct sigv4_kv *q, size_t nq, char **out,
                      struct err *e)
{
	struct sigv4_item *items = NULL;
	struct buf enc, res;
	const char *v;
	size_t i;
	int rc = -1;

	buf_init(&enc, 0);
	buf_init(&res, 0);
	if (nq > 0) {
		items = calloc(nq, sizeof(*items));
		if (items == NULL)
			goto fail;
	}
	for (i = 0; i < nq; i++) {
		v = q[i].value != NULL ? q[i].value : "";
		items[i].order = i;
		items[i].name_off = enc.len;
		sigv4_uri_encode(&enc, q[i].name, strlen(q[i].name), 0);
		buf_putc(&enc, '\0');
		items[i].value_off = enc.len;
		sigv4_uri_encode(&enc, v, strlen(v), 0);
		if (buf_putc(&enc, '\0') == -1)
			goto fail;
	}
	if (nq > 0) {
		sigv4_items_resolve(items, nq, &enc);
		qsort(items, nq, sizeof(*items), sigv4_item_cmp_query);
	}
	for (i = 0; i < nq; i++) {
		if (i > 0)
			buf_putc(&res, '&');
		buf_puts(&res, items[i].name);
		buf_putc(&res, '=');
		buf_puts(&res, items[i].value);
	}
	*out = buf_steal(&res);
	if (*out == NULL)
		goto fail;
	rc = 0;
fail:
	if (rc == -1)
		sigv4_oom(e);
	free(items);
	buf_cleanup(&enc);
	buf_cleanup(&res);
	return rc;
}

/* Trims v and collapses inner runs of white space to one space. */
static int
sigv4_header_value(struct buf *b, const char *v)
{
	const char *p, *start;
	int gap = 0;

	for (p = v; *p != '\0';) {
		if (sigv4_is_space((unsigned char)*p)) {
			p++;
			continue;
		}
		if (gap)
			buf_putc(b, ' ');
		for (start = p;
		     *p != '\0' && !sigv4_is_space((unsigned char)*p); p++)
			;
		buf_append(b, start, (size_t)(p - start));
		gap = 1;
	}
	return buf_putc(b, '\0');
}

static int
sigv4_header_name(struct buf *b, const char *name, size_t idx, struct err *e)
{
	size_t n, i;

	while (sigv4_is_space((unsigned char)*name))
		name++;
	n = strlen(name);
	while (n > 0 && sigv4_is_space((unsigned char)name[n - 1]))
		n--;
	if (!sigv4_is_token(name, n)) {
		err_set(e, ERR_INVALID,
		        "sigv4: header %zu: name is not an HTTP token", idx);
		return -1;
	}
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_putc(b, c);
	}
	return buf_putc(b, '\0') == -1 ? sigv4_oom(e) : 0;
}

/*
 * The canonical header block ("name:value\n" per distinct name, sorted,
 * repeats joined with ',' in their original order) and the signed-header
 * list.
 */
static int
sigv4_canonical_headers(const struct sigv4_input *in, char **block,
                        char **names, struct err *e)
{
	struct sigv4_item *items = NULL;
	struct buf enc, blk, sig;
	size_t i, n = in->nheaders;
	int rc = -1;

	buf_init(&enc, 0);
	buf_init(&blk, 0);
	buf_init(&sig, 0);
	if (n > 0) {
		items = calloc(n, sizeof(*items));
		if (items == NULL) {
			sigv4_oom(e);
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		items[i].order = i;
		items[i].name_off = enc.len;
		if (sigv4_header_name(&enc, in->headers[i].name, i, e) == -1)
			goto fail;
		items[i].value_off = enc.len;
		if (sigv4_header_value(&enc, in->headers[i].value != NULL
		                                 ? in->headers[i].value
		                                 : "") == -1) {
			sigv4_oom(e);
			goto fail;
		}
	}
	if (n > 0) {
		sigv4_items_resolve(items, n, &enc);
		qsort(items, n, sizeof(*items), sigv4_item_cmp_header);
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(items[i].name, items[i - 1].name) == 0) {
			buf_putc(&blk, ',');
		} else {
			if (i > 0) {
				buf_putc(&blk, '\n');
				buf_putc(&sig, ';');
			}
			buf_puts(&blk, items[i].name);
			buf_putc(&blk, ':');
			buf_puts(&sig, items[i].name);
		}
		buf_puts(&blk, items[i].value);
	}
	if (n > 0)
		buf_putc(&blk, '\n');
	*block = buf_steal(&blk);
	*names = buf_steal(&sig);
	if (*block == NULL || *names == NULL) {
		free(*block);
		free(*names);
		*block = *names = NULL;
		sigv4_oom(e);
		goto fail;
	}
	rc = 0;
fail:
	free(items);
	buf_cleanup(&enc);
	buf_cleanup(&blk);
	buf_cleanup(&sig);
	return rc;
}

static int
sigv4_check_token(const char *what, const char *s, struct err *e)
{
	if (s == NULL || !sigv4_is_token(s, strlen(s))) {
		err_set(e, ERR_INVALID, "sigv4: %s is missing or not a token",
		        what);
		return -1;
	}
	return 0;
}

/* What every signature needs: the scope and the credentials. */
static int
sigv4_check_scope(const struct sigv4_input *in, char amz_date[17],
                  struct err *e)
{
	if (in == NULL) {
		err_set(e, ERR_INVALID, "sigv4: no input");
		return -1;
	}
	if (sigv4_check_token("region", in->region, e) == -1 ||
	    sigv4_check_token("service", in->service, e) == -1 ||
	    sigv4_check_token("access key id", in->access_key_id, e) == -1)
		return -1;
	if (in->secret_access_key == NULL) {
		err_set(e, ERR_CREDS, "sigv4: no secret access key");
		return -1;
	}
	sigv4_amz_date(in->when, amz_date);
	if (amz_date[0] == '\0') {
		err_set(e, ERR_INVALID, "sigv4: time out of range");
		return -1;
	}
	return 0;
}

/* A hex digest or one of the UNSIGNED-PAYLOAD style names; it has to fit
 * sigv4_output.payload_hash. */
static int
sigv4_payload_hash_ok(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		if (!sigv4_is_unreserved((unsigned char)h[i]) || h[i] == '.' ||
		    h[i] == '_' || h[i] == '~')
			return 0;
	}
	return 1;
}

static int
sigv4_check_request(const struct sigv4_input *in, struct err *e)
{
	const char *h = in->payload_hash;
	size_t i;

	if (in->mode != SIGV4_GENERIC && in->mode != SIGV4_S3) {
		err_set(e, ERR_INVALID, "sigv4: unknown mode %d",
		        (int)in->mode);
		return -1;
	}
	if (sigv4_check_token("method", in->method, e) == -1)
		return -1;
	if (in->path == NULL || (in->nquery > 0 && in->query == NULL) ||
	    (in->nheaders > 0 && in->headers == NULL) ||
	    (in->body_len > 0 && in->body == NULL)) {
		err_set(e, ERR_INVALID,
		        "sigv4: missing path, query, headers "
		        "or body");
		return -1;
	}
	for (i = 0; i < in->nquery; i++) {
		if (in->query[i].name == NULL) {
			err_set(e, ERR_INVALID, "sigv4: query %zu has no name",
			        i);
			return -1;
		}
	}
	for (i = 0; i < in->nheaders; i++) {
		if (in->headers[i].name == NULL) {
			err_set(e, ERR_INVALID, "sigv4: header %zu has no name",
			        i);
			return -1;
		}
	}
	if (h != NULL && !sigv4_payload_hash_ok(h)) {
		err_set(e, ERR_INVALID, "sigv4: bad payload hash");
		return -1;
	}
	return 0;
}

/*
 * The n strings joined with sep between them, in one exact allocation (the
 * hot path signs every request; printf-style formatting of these long
 * strings cost more than the hashing). NULL when out of memory.
 */
static char *
sigv4_join(const char *sep, const char *const *parts, size_t n)
{
	size_t seplen = strlen(sep), len = 0, i;
	char *out, *q;

	for (i = 0; i < n; i++)
		len += strlen(parts[i]);
	if (n > 1)
		len += seplen * (n - 1);
	out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	q = out;
	for (i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);

		if (i > 0) {
			memcpy(q, sep, seplen);
			q += seplen;
		}
		memcpy(q, parts[i], l);
		q += l;
	}
	*q = '\0';
	return out;
}

#define SIGV4_JOIN(sep, ...)                                                   \
	sigv4_join(sep, (const char *const[]){__VA_ARGS__},                    \
	           sizeof((const char *const[]){__VA_ARGS__}) /                \
	               sizeof(const char *))

/* Everything before the query string is known: date, payload hash,
 * credential, canonical URI and headers. */
static int
sigv4_begin(const struct sigv4_input *in, struct sigv4_output *out,
            char **header_block, struct err *e)
{
	char date8[9];

	if (sigv4_check_scope(in, out->amz_date, e) == -1 ||
	    sigv4_check_request(in, e) == -1)
		return -1;
	if (in->payload_hash != NULL) {
		memcpy(out->payload_hash, in->payload_hash,
		       strlen(in->payload_hash) + 1);
	} else if (sigv4_sha256(in->body, in->body_len, out->payload_hash) ==
	           -1) {
		err_set(e, ERR_SYS, "sigv4: SHA-256 failed");
		return -1;
	}
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	out->credential = SIGV4_JOIN("/", in->access_key_id, date8, in->region,
	                             in->service, SIGV4_TERMINATOR);
	if (out->credential == NULL)
		return sigv4_oom(e);
	if (sigv4_canonical_uri(in, out, e) == -1)
		return -1;
	return sigv4_canonical_headers(in, header_block, &out->signed_headers,
	                               e);
}

/* The canonical request, the string to sign and the signature. */
static int
sigv4_finish(const struct sigv4_input *in, struct sigv4_output *out,
             const char *header_block, struct err *e)
{
	char digest[65];

	out->canonical_request = SIGV4_JOIN(
	    "\n", in->method, out->canonical_uri, out->canonical_query,
	    header_block, out->signed_headers, out->payload_hash);
	if (out->canonical_request == NULL)
		return sigv4_oom(e);
	if (sigv4_sha256(out->canonical_request, strlen(out->canonical_request),
	                 digest) == -1) {
		err_set(e, ERR_SYS, "sigv4: SHA-256 failed");
		return -1;
	}
	/* The credential minus "AKID/" is the scope. */
	out->string_to_sign =
	    SIGV4_JOIN("\n", SIGV4_ALGORITHM, out->amz_date,
	               out->credential + strlen(in->access_key_id) + 1, digest);
	if (out->string_to_sign == NULL)
		return sigv4_oom(e);
	return sigv4_signature(in, out->amz_date, out->string_to_sign,
	                       out->signature, e);
}

int
sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out,
           struct err *e)
{
	char *block = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (sigv4_begin(in, out, &block, e) == -1 ||
	    sigv4_canonical_query(in->query, in->nquery, &out->canonical_query,
	                          e) == -1 ||
	    sigv4_finish(in, out, block, e) == -1)
		goto fail;
	out->authorization =
	    SIGV4_JOIN("", SIGV4_ALGORITHM " Credential=", out->credential,
	               ", SignedHeaders=", out->signed_headers,
	               ", Signature=", out->signature);
	if (out->authorization == NULL) {
		sigv4_oom(e);
		goto fail;
	}
	rc = 0;
fail:
	free(block);
	if (rc == -1)
		sigv4_output_cleanup(out);
	return rc;
}

static int
sigv4_is_auth_param(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(sigv4_auth_params) / sizeof(*sigv4_auth_params);
	     i++) {
		if (strcmp(name, sigv4_auth_params[i]) == 0)
			return 1;
	}
	return 0;
}

int
sigv4_presign(const struct sigv4_input *in, const char *session_token,
              int expires_secs, struct sigv4_output *out, struct err *e)
{
	struct sigv4_kv *q = NULL;
	struct buf b;
	char *block = NULL, expires[16];
	size_t i, n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (expires_secs < 1 || expires_secs > SIGV4_MAX_EXPIRES) {
		err_set(e, ERR_INVALID, "sigv4: expiry %d not in 1..%d",
		        expires_secs, SIGV4_MAX_EXPIRES);
		return -1;
	}
	if (sigv4_begin(in, out, &block, e) == -1)
		goto fail;
	for (i = 0; i < in->nquery; i++) {
		if (sigv4_is_auth_param(in->query[i].name)) {
			err_set(e, ERR_INVALID, "sigv4: query already has %s",
			        in->query[i].name);
			goto fail;
		}
	}
	q = calloc(in->nquery + 6, sizeof(*q));
	if (q == NULL) {
		sigv4_oom(e);
		goto fail;
	}
	if (in->nquery > 0)
		memcpy(q, in->query, in->nquery * sizeof(*q));
	n = in->nquery;
	snprintf(expires, sizeof(expires), "%d", expires_secs);
	q[n++] = (struct sigv4_kv){"X-Amz-Algorithm", SIGV4_ALGORITHM};
	q[n++] = (struct sigv4_kv){"X-Amz-Credential", out->credential};
	q[n++] = (struct sigv4_kv){"X-Amz-Date", out->amz_date};
	q[n++] = (struct sigv4_kv){"X-Amz-Expires", expires};
	if (session_token != NULL)
		q[n++] =
		    (struct sigv4_kv){"X-Amz-Security-Token", session_token};
	q[n++] = (struct sigv4_kv){"X-Amz-SignedHeaders", out->signed_headers};
	if (sigv4_canonical_query(q, n, &out->canonical_query, e) == -1 ||
	    sigv4_finish(in, out, block, e) == -1)
		goto fail;
	buf_init(&b, 0);
	buf_printf(&b, "%s&X-Amz-Signature=%s", out->canonical_query,
	           out->signature);
	out->presigned_query = buf_steal(&b);
	if (out->presigned_query == NULL) {
		sigv4_oom(e);
		goto fail;
	}
	rc = 0;
fail:
	free(q);
	free(block);
	if (rc == -1)
		sigv4_output_cleanup(out);
	return rc;
}

int
sigv4_sign_chunk(const struct sigv4_input *in, const char *prev_signature,
                 const void *data, size_t len, char signature[65],
                 char **string_to_sign, struct err *e)
{
	struct buf b;
	char amz_date[17], digest[65];
	char *sts = NULL;
	int rc = -1;

	signature[0] = '\0';
	if (string_to_sign != NULL)
		*string_to_sign = NULL;
	if (sigv4_check_scope(in, amz_date, e) == -1)
		return -1;
	if (prev_signature == NULL || !sigv4_is_lower_hex(prev_signature, 64) ||
	    (len > 0 && data == NULL)) {
		err_set(e, ERR_INVALID,
		        "sigv4: bad chunk or previous signature");
		return -1;
	}
	if (sigv4_sha256(data, len, digest) == -1) {
		err_set(e, ERR_SYS, "sigv4: SHA-256 failed");
		return -1;
	}
	buf_init(&b, 0);
	buf_printf(&b, "%s\n%s\n%.8s/%s/%s/%s\n%s\n%s\n%s",
	           SIGV4_CHUNK_ALGORITHM, amz_date, amz_date, in->region,
	           in->service, SIGV4_TERMINATOR, prev_signature,
	           SIGV4_EMPTY_SHA256, digest);
	sts = buf_steal(&b);
	if (sts == NULL) {
		sigv4_oom(e);
		goto fail;
	}
	if (sigv4_signature(in, amz_date, sts, signature, e) == -1)
		goto fail;
	if (string_to_sign != NULL) {
		*string_to_sign = sts;
		sts = NULL;
	}
	rc = 0;
fail:
	if (rc == -1)
		signature[0] = '\0';
	free(sts);
	return rc;
}

void
sigv4_output_cleanup(struct sigv4_output *out)
{
	if (out == NULL)
		return;
	free(out->canonical_uri);
	free(out->canonical_query);
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->signed_headers);
	free(out->credential);
	free(out->authorization);
	free(out->presigned_query);
	memset(out, 0, sizeof(*out));
}
