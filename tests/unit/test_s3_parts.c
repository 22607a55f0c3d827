/*
 * s3_parts: the part size an upload is cut in, and the parts' digests
 * computed in the pass that hashes the whole file.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "creds.h"
#include "http.h"
#include "loop.h"
#include "s3_impl.h"

TestSuite(s3_parts);

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* Up to 10,000 parts of the configured size, the configured size. */
Test(s3_parts, configured_size_while_within_10000_parts)
{
	cr_assert_eq(s3_part_size(8 * MIB, 0), 8 * MIB);
	cr_assert_eq(s3_part_size(8 * MIB, 1 * GIB), 8 * MIB);
	cr_assert_eq(s3_part_size(8 * MIB, 10000 * 8 * MIB), 8 * MIB);
	cr_assert_eq(s3_part_size(64 * MIB, 100 * GIB), 64 * MIB);
}

/* Past them, the least whole MiB that keeps within 10,000 parts: the
 * upload no longer fails for a file of more than 78 GiB. */
Test(s3_parts, grows_with_the_file)
{
	uint64_t len, size;

	cr_assert_eq(s3_part_size(8 * MIB, 10000 * 8 * MIB + 1), 9 * MIB);
	len = 100 * GIB;
	size = s3_part_size(8 * MIB, len);
	cr_assert_eq(size % MIB, 0);
	cr_assert_leq((len + size - 1) / size, 10000);
	cr_assert_gt((len + size - MIB - 1) / (size - MIB), 10000,
	             "one MiB less would need more parts");
	len = 5000 * GIB; /* S3's largest object */
	size = s3_part_size(5 * MIB, len);
	cr_assert_leq((len + size - 1) / size, 10000);
	cr_assert_leq(size, 5 * GIB);
}

/* --- the parts' digests ------------------------------------------------ */

struct env {
	struct loop *loop;
	struct http *http;
	struct creds_provider *creds;
	struct aws_client *client;
	struct s3 *s3;
};

/* An s3 that cuts parts of 5 MiB past 5 MiB; it never sends anything. */
static void
env_init(struct env *v)
{
	struct aws_client_opts o;
	struct creds_opts co;
	struct s3_opts so;
	struct err e;

	err_clear(&e);
	memset(v, 0, sizeof(*v));
	v->loop = loop_new(&e);
	cr_assert_not_null(v->loop, "%s", e.message);
	v->http = http_new(v->loop, NULL, &e);
	cr_assert_not_null(v->http, "%s", e.message);
	memset(&co, 0, sizeof(co));
	co.access_key_id = "AKIDEXAMPLE";
	co.secret_access_key = "secret";
	co.loop = v->loop;
	v->creds = creds_provider_new(&co, v->http, &e);
	cr_assert_not_null(v->creds, "%s", e.message);
	memset(&o, 0, sizeof(o));
	o.service = "s3";
	o.region = "us-east-1";
	o.endpoint = "http://127.0.0.1:9";
	v->client = aws_client_new(v->loop, v->http, v->creds, &o, &e);
	cr_assert_not_null(v->client, "%s", e.message);
	memset(&so, 0, sizeof(so));
	so.bucket = "b";
	so.path_style = 1;
	so.multipart_threshold = 5 * MIB;
	so.part_size = 5 * MIB;
	so.checksum = 1;
	v->s3 = s3_new(v->client, &so, &e);
	cr_assert_not_null(v->s3, "%s", e.message);
}

static void
env_free(struct env *v)
{
	s3_free(v->s3);
	aws_client_free(v->client);
	creds_provider_free(v->creds);
	http_free(v->http);
	loop_free(v->loop);
}

/* Fed in pieces that straddle the parts' edges (a prime number of bytes
 * at a time), each part's digest is the SHA-256 of exactly its bytes, as
 * hex and as base64; the last, short part too. */
Test(s3_parts, digests_are_each_parts_own)
{
	const size_t len = 12 * MIB + 123, step = 999983;
	unsigned char *data = malloc(len), want[32];
	char hex[65], b64[48], whex[65], wb64[48];
	struct s3_parts *p;
	struct env v;
	struct err e;
	size_t i, off;
	unsigned k;

	cr_assert_not_null(data);
	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	env_init(&v);
	err_clear(&e);
	p = s3_parts_new(v.s3, len, &e);
	cr_assert_not_null(p, "%s", e.message);
	for (off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		cr_assert_eq(s3_parts_update(p, data + off, n), 0);
		if (off + n < 5 * MIB)
			cr_assert_eq(s3_parts_digest(p, 5 * MIB, 0, hex, b64),
			             -1, "part 1 is not all fed yet");
	}
	for (k = 0; k < 3; k++) {
		size_t from = (size_t)k * 5 * MIB;
		size_t n = len - from < 5 * MIB ? len - from : 5 * MIB;

		SHA256(data + from, n, want);
		for (i = 0; i < 32; i++)
			snprintf(whex + 2 * i, 3, "%02x", want[i]);
		EVP_EncodeBlock((unsigned char *)wb64, want, 32);
		cr_assert_eq(s3_parts_digest(p, 5 * MIB, k, hex, b64), 0);
		cr_assert_str_eq(hex, whex, "part %u", k + 1);
		cr_assert_str_eq(b64, wb64, "part %u", k + 1);
	}
	cr_assert_eq(s3_parts_digest(p, 5 * MIB, 3, hex, b64), -1,
	             "there are 3 parts");
	cr_assert_eq(s3_parts_digest(p, 6 * MIB, 0, hex, b64), -1,
	             "cut at another size: the upload reads them itself");
	cr_assert_eq(s3_parts_update(p, data, 1), -1, "past the length");
	s3_parts_free(p);
	env_free(&v);
	free(data);
}

/* A file under the threshold goes as one PUT: no parts, no error. */
Test(s3_parts, none_for_one_put)
{
	struct env v;
	struct err e;

	env_init(&v);
	err_clear(&e);
	cr_assert_null(s3_parts_new(v.s3, 5 * MIB - 1, &e));
	cr_assert_eq(e.kind, ERR_NONE);
	s3_parts_free(NULL);
	env_free(&v);
}
