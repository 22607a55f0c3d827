/*
 * s3_impl.h: what the S3 module's files share, and nobody else includes.
 * s3.c holds the object, the error parser and the calls' plumbing; above
 * it, s3_checksum.c the checksums, s3_object.c the one-request calls,
 * s3_list.c ListObjectsV2, s3_parts.c the parts' digests and s3_upload.c the
 * upload of a file (one PUT or multipart). Every call is a struct s3_op that
 * finishes exactly once with s3_op_finish.
 */
#ifndef IMGSYNC_S3_IMPL_H
#define IMGSYNC_S3_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "s3.h"
#include "xml.h"

#define S3_MIB (1024u * 1024u)
#define S3_MAX_PARTS 10000u
#define S3_MAX_PART (5ull << 30) /* bytes in one part, at most */

struct s3 {
	struct aws_client *client;
	char *bucket;
	int path_style;
	int forced_path_style; /* asked for virtual-hosted, which cannot work */
	uint64_t threshold;
	uint64_t part_size;
	unsigned parts_in_flight;
	char *storage_class; /* NULL: not sent; likewise below */
	char *sse;
	char *sse_kms_key_id;
	int sse_bucket_key;
	int checksum;
	char *expected_bucket_owner;
};

/* The most headers s3_write_headers adds. */
#define S3_WRITE_HEADERS 4

struct s3_op;

struct s3_part {
	struct s3_op *op;
	unsigned number; /* 1-based */
	char etag[80];
	char checksum[48]; /* base64 SHA-256, when checksums are on */
};

struct s3_op {
	struct s3 *s;
	s3_done_cb cb;
	void *arg;
	struct s3_result r;
	struct buf path;
	/* multipart */
	struct s3_body body;
	char *upload_id;
	struct s3_part *parts;
	unsigned nparts;
	uint64_t part_size; /* s3_part_size of the body's length */
	unsigned next_part;
	unsigned parts_done;
	unsigned inflight;
	int failed;
	struct err first_err;
	struct buf xml;
};

/*
 * s3.c
 */
/* A call on key (its path: /bucket/key or /key, as the bucket is
 * addressed); NULL with e set. */
struct s3_op *s3_op_new(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
                        struct err *e);
/* Frees without calling back (the call never started). */
void s3_op_free(struct s3_op *op);
/* Calls back (with op->r when e is NULL) and frees. */
void s3_op_finish(struct s3_op *op, const struct err *e);
/* text[0..len) into dst, cut to fit. */
void s3_copy_text(char *dst, size_t dstlen, const char *text, size_t len);
/* An ETag into dst with its quotes, as S3 gives it (Ceph RGW 16.2 answers
 * CopyObject's without): the same object's ETag reads the same from every
 * answer, so the item's and the listing's compare equal. */
void s3_copy_etag(char *dst, size_t dstlen, const char *text, size_t len);
/* Fills the request's common fields: method, bucket host, no body;
 * host_prefix is the buffer for "bucket.". */
void s3_req_init(struct s3 *s, struct aws_request *req, const char *method,
                 char *host_prefix, size_t hplen);
/* Content-Type and x-amz-meta-* into h from index n, their names kept in
 * names; returns the new count. */
size_t s3_meta_headers(struct sigv4_kv *h, size_t n, const char *content_type,
                       const struct s3_meta *meta, size_t nmeta,
                       struct buf *names);
/* The write options' headers (storage class, encryption: at most
 * S3_WRITE_HEADERS) into h from index n; returns the new count. */
size_t s3_write_headers(const struct s3 *s, struct sigv4_kv *h, size_t n);
/* Sends req on op's path with the headers every request carries; cb gets
 * arg. */
int s3_send_arg(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
                void *arg, struct err *e);
/* Sends req on op's path; cb gets op. */
int s3_send(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
            struct err *e);
int s3_start(struct s3_op *op, const struct aws_request *req, aws_done_cb cb,
             struct err *e);
/*
 * s3_checksum.c
 */
/* base64 of the SHA-256 of data into out (45 bytes with its NUL). */
void s3_checksum_of(const void *data, size_t len, char *out);
/* The SHA-256 of len bytes of fd from off (read with pread), as lowercase
 * hex and as base64 into b64 (45 bytes). */
int s3_checksum_part(int fd, uint64_t off, uint64_t len, char hex[65],
                     char *b64, struct err *e);

/*
 * s3_parts.c
 */
/* Part i's (0-based) digest, as lowercase hex and base64, when p cut the
 * file in parts of part_size and has been fed all of part i; else -1. */
int s3_parts_digest(const struct s3_parts *p, uint64_t part_size, unsigned i,
                    char hex[65], char b64[48]);

/*
 * s3_object.c, for s3_upload.c (and the fuzz target)
 */
/* An XML answer with an ETag (and a checksum) into op->r: 0, or -1 when op
 * was finished with the transport's or the parser's error. */
int s3_xml_etag_answer(struct s3_op *op, struct http_response *resp,
                       const struct err *e);
/* An answer with an ETag in XML (CopyObject, CompleteMultipartUpload):
 * finishes op. */
void s3_on_xml_etag(struct http_response *resp, const struct err *e, void *arg);

#endif
