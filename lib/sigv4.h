/*
 * sigv4: AWS Signature Version 4 (AWS4-HMAC-SHA256) request signing, as an
 * Authorization header (sigv4_sign), as presigned query parameters
 * (sigv4_presign) and for aws-chunked payload chunks (sigv4_sign_chunk).
 *
 * The signer is pure: it does not read the clock, the environment or the
 * network, and it adds no header of its own. The caller passes every header
 * it will send (host, x-amz-date, x-amz-content-sha256, x-amz-security-token
 * included when it wants them signed); all of them are signed.
 *
 * All pointers in struct sigv4_input are borrowed for the duration of the
 * call. The secret access key is used only to derive the signing key;
 * neither ever appears in the output. Without a cache (in->cache NULL) both
 * are wiped before the call returns; with one, the cache keeps the last key
 * and its secret (to compare) until it derives another or is freed.
 */
#ifndef IMGSYNC_SIGV4_H
#define IMGSYNC_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_STREAMING_PAYLOAD "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define SIGV4_EMPTY_SHA256                                                     \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* The longest X-Amz-Expires S3 accepts (seven days). */
#define SIGV4_MAX_EXPIRES 604800

enum sigv4_mode {
	/*
	 * Every service but S3: the path is taken as it appears in the request
	 * line, dot segments are removed and repeated slashes merged, then each
	 * byte is URI-encoded (so an already-encoded "%20" becomes "%2520").
	 */
	SIGV4_GENERIC,
	/*
	 * S3: the path is the raw (unencoded) object path; each byte is
	 * URI-encoded exactly once and "//", "./" and "../" are kept.
	 */
	SIGV4_S3,
};

/*
 * What a signer keeps from one request to the next: the OpenSSL algorithms,
 * fetched once, and the last derived signing key (it changes once a day,
 * when the credentials rotate or for another region or service). Whoever
 * signs many requests owns one (an aws_client does) and passes it in
 * sigv4_input.cache; the results are the same with or without it. Used by
 * one thread at a time.
 */
struct sigv4_cache;

struct sigv4_cache *sigv4_cache_new(struct err *e);
/* Wipes the kept key and secret, and frees; NULL is a no-op. */
void sigv4_cache_free(struct sigv4_cache *c);

struct sigv4_kv {
	const char *name;
	const char *value; /* NULL is taken as "" */
};

struct sigv4_input {
	enum sigv4_mode mode;
	const char *method; /* used as given, e.g. "GET" */
	const char *path;   /* see enum sigv4_mode; "" is taken as "/" */
	/* Unencoded names and values, in any order; repeats allowed. */
	const struct sigv4_kv *query;
	size_t nquery;
	/*
	 * Headers as sent, in order. Names are matched case-insensitively and
	 * must be HTTP tokens; values are trimmed and inner runs of white
	 * space (folded lines included) collapse to one space; repeated names
	 * are joined with ',' in the order given.
	 */
	const struct sigv4_kv *headers;
	size_t nheaders;
	/*
	 * Lowercase hex SHA-256 of the body, "UNSIGNED-PAYLOAD" or
	 * "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" (any 1..64 of A-Za-z0-9 and
	 * '-', used verbatim); NULL: computed from body.
	 */
	const char *payload_hash;
	const void *body; /* may be NULL when body_len is 0 */
	size_t body_len;
	const char *region;
	const char *service;
	time_t when; /* UTC seconds, years 1..9999 */
	const char *access_key_id;
	const char *secret_access_key;
	struct sigv4_cache *cache; /* borrowed; NULL: nothing kept */
};

/* Filled in by sigv4_sign and sigv4_presign; the heap strings are owned by
 * the output and freed by sigv4_output_cleanup. */
struct sigv4_output {
	char amz_date[17];     /* YYYYMMDDTHHMMSSZ */
	char payload_hash[65]; /* hex, or UNSIGNED-PAYLOAD and the like */
	char signature[65];
	char *canonical_uri;
	char *canonical_query; /* also usable as the wire query string */
	char *canonical_request;
	char *string_to_sign;
	char *signed_headers; /* "host;x-amz-date" */
	char *credential;     /* "AKID/20150830/us-east-1/s3/aws4_request" */
	/* sigv4_sign only (NULL after sigv4_presign): the header value
	 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
	 */
	char *authorization;
	/* sigv4_presign only (NULL after sigv4_sign): the wire query string,
	 * canonical_query followed by "&X-Amz-Signature=<signature>" */
	char *presigned_query;
};

/*
 * Signs for an Authorization header. On success returns 0 and fills out
 * (which the caller later passes to sigv4_output_cleanup). On failure
 * returns -1 with e set (ERR_INVALID for a bad input, ERR_CREDS for a
 * missing secret, ERR_SYS for memory or crypto failure) and out zeroed.
 */
int sigv4_sign(const struct sigv4_input *in, struct sigv4_output *out,
               struct err *e);

/*
 * Presigns with query parameters: in->query gets X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-Security-Token (only
 * when session_token is not NULL) and X-Amz-SignedHeaders added before
 * signing; in->query must not hold any of them already. S3 presigned URLs
 * pass payload_hash "UNSIGNED-PAYLOAD" and the host header alone. expires_secs
 * is 1..SIGV4_MAX_EXPIRES. Returns 0/-1 as sigv4_sign; the URL's query is
 * out->presigned_query.
 */
int sigv4_presign(const struct sigv4_input *in, const char *session_token,
                  int expires_secs, struct sigv4_output *out, struct err *e);

/*
 * Signs one chunk of an aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
 * upload: prev_signature is the request's signature for the first chunk and
 * the previous chunk's after that; the final chunk is empty. Uses region,
 * service, when and the credentials from in. string_to_sign, when not NULL,
 * receives a heap copy the caller frees. Returns 0/-1.
 */
int sigv4_sign_chunk(const struct sigv4_input *in, const char *prev_signature,
                     const void *data, size_t len, char signature[65],
                     char **string_to_sign, struct err *e);

/* Frees the heap strings and zeroes out; safe on a zeroed or half-filled
 * output and when called twice. */
void sigv4_output_cleanup(struct sigv4_output *out);

/* Formats when as YYYYMMDDTHHMMSSZ; "" when the year is outside 1..9999. */
void sigv4_amz_date(time_t when, char out[17]);

/* Lowercase hex SHA-256 of p[0..n); "" if the digest fails. The second
 * form uses c's algorithms (NULL: as the first). */
void sigv4_sha256_hex(const void *p, size_t n, char out[65]);
void sigv4_cache_sha256_hex(struct sigv4_cache *c, const void *p, size_t n,
                            char out[65]);

/*
 * Appends s[0..n) URI-encoded per SigV4: A-Za-z0-9 and "-._~" are kept,
 * every other byte becomes %XX (uppercase hex); '/' is kept iff keep_slash.
 * Returns 0, or -1 once b has failed.
 */
int sigv4_uri_encode(struct buf *b, const char *s, size_t n, int keep_slash);

#endif
