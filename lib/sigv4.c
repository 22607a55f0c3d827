/*
 * sigv4: AWS Signature Version 4.
 *
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 * The steps, as that page numbers them: (1) the canonical request, method,
 * canonical URI, query and headers, signed-header list and payload hash
 * joined by newlines (the parts are sigv4_canon.c's); (2) its SHA-256;
 * (3) the string to sign, algorithm, date, scope and that digest; (4) the
 * signing key derived from the secret and the scope; (5) the signature, and
 * from it the Authorization header or the presigned query (the hashing
 * and the key are sigv4_cache.c's). This file checks the inputs and runs
 * the steps for the three forms in sigv4.h.
 */
#include "sigv4_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_CHUNK_ALGORITHM "AWS4-HMAC-SHA256-PAYLOAD"

static const char *const sigv4_auth_params[] = {
    "X-Amz-Algorithm", "X-Amz-Credential",     "X-Amz-Date",
    "X-Amz-Expires",   "X-Amz-Security-Token", "X-Amz-SignedHeaders",
    "X-Amz-Signature",
};

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
	sigv4_cache_sha256_hex(NULL, p, n, out);
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
sigv4_begin(struct sigv4_cache *c, const struct sigv4_input *in,
            struct sigv4_output *out, char **header_block, struct err *e)
{
	char date8[9];

	if (sigv4_check_scope(in, out->amz_date, e) == -1 ||
	    sigv4_check_request(in, e) == -1)
		return -1;
	if (in->payload_hash != NULL) {
		memcpy(out->payload_hash, in->payload_hash,
		       strlen(in->payload_hash) + 1);
	} else if (sigv4_cache_sha256(c, in->body, in->body_len,
	                              out->payload_hash) == -1) {
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
sigv4_finish(struct sigv4_cache *c, const struct sigv4_input *in,
             struct sigv4_output *out, const char *header_block, struct err *e)
{
	char digest[65];

	out->canonical_request = SIGV4_JOIN(
	    "\n", in->method, out->canonical_uri, out->canonical_query,
	    header_block, out->signed_headers, out->payload_hash);
	if (out->canonical_request == NULL)
		return sigv4_oom(e);
	if (sigv4_cache_sha256(c, out->canonical_request,
	                       strlen(out->canonical_request), digest) == -1) {
		err_set(e, ERR_SYS, "sigv4: SHA-256 failed");
		return -1;
	}
	/* The credential minus "AKID/" is the scope. */
	out->string_to_sign =
	    SIGV4_JOIN("\n", SIGV4_ALGORITHM, out->amz_date,
	               out->credential + strlen(in->access_key_id) + 1, digest);
	if (out->string_to_sign == NULL)
		return sigv4_oom(e);
	return sigv4_cache_signature(c, in, out->amz_date, out->string_to_sign,
	                             out->signature, e);
}

int
sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out,
           struct err *e)
{
	struct sigv4_cache tmp, *c;
	char *block = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	c = sigv4_cache_begin(in, &tmp);
	if (sigv4_begin(c, in, out, &block, e) == -1 ||
	    sigv4_canonical_query(in->query, in->nquery, &out->canonical_query,
	                          e) == -1 ||
	    sigv4_finish(c, in, out, block, e) == -1)
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
	sigv4_cache_end(c, &tmp);
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
	struct sigv4_cache tmp, *c;
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
	c = sigv4_cache_begin(in, &tmp);
	if (sigv4_begin(c, in, out, &block, e) == -1)
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
	    sigv4_finish(c, in, out, block, e) == -1)
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
	sigv4_cache_end(c, &tmp);
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
	struct sigv4_cache tmp, *c;
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
	c = sigv4_cache_begin(in, &tmp);
	if (sigv4_cache_sha256(c, data, len, digest) == -1) {
		err_set(e, ERR_SYS, "sigv4: SHA-256 failed");
		goto fail;
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
	if (sigv4_cache_signature(c, in, amz_date, sts, signature, e) == -1)
		goto fail;
	if (string_to_sign != NULL) {
		*string_to_sign = sts;
		sts = NULL;
	}
	rc = 0;
fail:
	sigv4_cache_end(c, &tmp);
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
