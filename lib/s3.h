/*
 * s3: the S3 calls imgsync makes, asynchronous, on an aws_client.
 * Keys are raw (unencoded) strings; the signer encodes each byte once.
 */
#ifndef IMGSYNC_S3_H
#define IMGSYNC_S3_H

#include <stddef.h>
#include <stdint.h>

#include "aws.h"
#include "err.h"

struct s3;
struct s3_parts;

struct s3_opts {
	const char *bucket;
	int path_style; /* else virtual-hosted: bucket.host (unless it cannot
	                   work: s3_forced_path_style) */
	uint64_t multipart_threshold; /* bytes; 0: 16 MiB */
	uint64_t part_size;       /* bytes; 0: 8 MiB; at least 5 MiB (more for a
	                           * file of over 10,000 parts: s3_part_size) */
	unsigned parts_in_flight; /* 0: 4 */
	/* Write options, sent with every request that makes an object
	 * (PutObject, CreateMultipartUpload, CopyObject); NULL or "": not
	 * sent, the bucket's default applies. */
	const char *storage_class;  /* x-amz-storage-class */
	const char *sse;            /* "AES256" or "aws:kms" */
	const char *sse_kms_key_id; /* aws:kms: the key; "": AWS's own */
	int sse_bucket_key;         /* aws:kms: an S3 Bucket Key */
	/* A SHA-256 checksum with every upload: the whole object's for one
	 * PUT, each part's and the composite of the parts' for multipart. */
	int checksum;
	/* x-amz-expected-bucket-owner on every request: the account ID the
	 * bucket must belong to, else S3 refuses with 403. */
	const char *expected_bucket_owner;
};

/* What to upload: a memory buffer, or len bytes of a file read with pread
 * (from offset 0). sha256 is the content's lowercase hex digest; required
 * for a file, computed for memory when NULL. Both are borrowed until the
 * callback. */
struct s3_body {
	const void *data;
	int fd; /* -1 for memory */
	uint64_t len;
	const char *sha256;
	/* Optional (NULL): told the UploadId as soon as a multipart upload is
	 * created, before any part is sent, so that the caller can record it
	 * and abort the upload after a crash. */
	void (*started)(const char *upload_id, void *arg);
	void *started_arg;
	/* Optional (NULL): the digests of the parts, fed the file's bytes as
	 * it was hashed (s3_parts_update). Without them each part is read
	 * once more, before it is sent, to sign it. */
	const struct s3_parts *parts;
};

struct s3_meta {
	const char *name; /* without the x-amz-meta- prefix */
	const char *value;
};

struct s3_object {
	char *key;
	uint64_t size;
	char etag[80];
};

/* What a store did differently from S3, told in s3_result.notes so that
 * the caller can say so (once) in its log. */
#define S3_NOTE_ETAG_BY_HEAD 0x1 /* answered an empty ETag: HeadObject's */
#define S3_NOTE_NO_CHECKSUM 0x2  /* did not confirm the checksum sent */

struct s3_result {
	long status;
	char etag[80]; /* quotes kept, as S3 gives it */
	/* The checksum S3 confirmed (PutObject, CompleteMultipartUpload) or
	 * keeps (s3_head_checksum): base64 of the SHA-256, for multipart of
	 * the parts' SHA-256s, then "-<parts>" (not every store adds it). */
	char checksum_sha256[80];
	unsigned notes;         /* S3_NOTE_* */
	uint64_t size;          /* HeadObject */
	char content_type[128]; /* HeadObject */
	char sha256_meta[72];   /* HeadObject: x-amz-meta-sha256 */
	int multipart;          /* upload went through multipart */
	unsigned parts;
	struct s3_object *objects; /* ListObjectsV2 */
	size_t nobjects;
	char *next_token;    /* ListObjectsV2: NULL when done */
	char versioning[16]; /* GetBucketVersioning: "Enabled", "Suspended",
	                        or "" (never turned on) */
};

/* Fires exactly once; r is valid only during the call. */
typedef void (*s3_done_cb)(const struct s3_result *r, const struct err *e,
                           void *arg);

/* client (an aws_client for the "s3" service) is borrowed; s3_new sets its
 * protocol: S3's path signing and s3_parse_error. */
struct s3 *s3_new(struct aws_client *client, const struct s3_opts *opts,
                  struct err *e);
/* Cancels what is running (callbacks fire) and frees. */
void s3_free(struct s3 *s);

/* PutObject, or multipart upload past the threshold (aborted on failure). */
int s3_upload(struct s3 *s, const char *key, const struct s3_body *body,
              const char *content_type, const struct s3_meta *meta,
              size_t nmeta, s3_done_cb cb, void *arg, struct err *e);
int s3_put_object(struct s3 *s, const char *key, const struct s3_body *body,
                  const char *content_type, const struct s3_meta *meta,
                  size_t nmeta, s3_done_cb cb, void *arg, struct err *e);
int s3_upload_multipart(struct s3 *s, const char *key,
                        const struct s3_body *body, const char *content_type,
                        const struct s3_meta *meta, size_t nmeta, s3_done_cb cb,
                        void *arg, struct err *e);
/* Server-side copy within the bucket; metadata and type are kept. */
int s3_copy_object(struct s3 *s, const char *src_key, const char *dst_key,
                   s3_done_cb cb, void *arg, struct err *e);
/* Deleting a missing key succeeds, as in S3. With if_match (an ETag, or
 * NULL/"" for none) only that version is deleted: another fails with
 * http_status 412, code "PreconditionFailed". */
int s3_delete_object(struct s3 *s, const char *key, const char *if_match,
                     s3_done_cb cb, void *arg, struct err *e);
/* A missing key fails with http_status 404 and code "NotFound". */
int s3_head_object(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
                   struct err *e);
/* HeadObject asking for the object's checksum (x-amz-checksum-mode:
 * ENABLED; for an object under SSE-KMS it needs kms:Decrypt): r->etag,
 * r->size and r->checksum_sha256 ("" when the object has none). */
int s3_head_checksum(struct s3 *s, const char *key, s3_done_cb cb, void *arg,
                     struct err *e);
/* The checksum this client sends for a whole object with the SHA-256 sha256
 * (lowercase hex): its base64, into out (at least 45 bytes). -1 when sha256
 * is not 64 hex digits. */
int s3_checksum_from_hex(const char *sha256, char *out, size_t outlen);
/* Whether an upload of len bytes from a file goes in parts. */
int s3_multipart(const struct s3 *s, uint64_t len);
/* The part size an upload of len bytes is cut in: the configured one, or
 * for a file it would cut in more than S3's 10,000 parts, the least whole
 * MiB that keeps within them. */
uint64_t s3_part_size(uint64_t configured, uint64_t len);
/* The checksum an upload of len bytes of fd by this client carries (one
 * PUT's, or the composite of its parts as they are cut now), as
 * r->checksum_sha256 gives it, with the "-<parts>"; read with pread.
 * -1 with e set when the file cannot be read or shrank. */
int s3_checksum_file(const struct s3 *s, int fd, uint64_t len, char *out,
                     size_t outlen, struct err *e);
/* The SHA-256 of each part of a file of len bytes as an upload of it by s
 * cuts it, computed from the file's bytes fed in order by s3_parts_update
 * (the pass that hashes the whole file feeds them too), so that the upload
 * reads each part once, as it sends it. NULL when len goes as one
 * PutObject (or no upload could take it); NULL with e set when out of
 * memory. */
struct s3_parts *s3_parts_new(const struct s3 *s, uint64_t len, struct err *e);
/* The next n bytes of the file. -1 past len bytes or when SHA-256 fails:
 * the parts are then no use (s3_upload reads them itself). */
int s3_parts_update(struct s3_parts *p, const void *data, size_t n);
/* s3_parts_free(NULL) is a no-op. */
void s3_parts_free(struct s3_parts *p);
/* GetBucketVersioning: r->versioning. */
int s3_get_versioning(struct s3 *s, s3_done_cb cb, void *arg, struct err *e);
/* One page; pass r->next_token back for the next. max_keys 0: 1000. */
int s3_list_objects(struct s3 *s, const char *prefix, const char *token,
                    unsigned max_keys, s3_done_cb cb, void *arg, struct err *e);

/* AbortMultipartUpload of one upload of key. An unknown upload_id fails
 * with http_status 404 and code "NoSuchUpload" (after the permission check,
 * which is what imgsyncd --check-remote relies on). */
int s3_abort_multipart(struct s3 *s, const char *key, const char *upload_id,
                       s3_done_cb cb, void *arg, struct err *e);

/* A presigned GET of key (aws_presign: the client's credentials, clock and
 * addressing style): a malloc'd URL, or NULL with e set. */
char *s3_presign_get(struct s3 *s, const char *key, int expires_secs,
                     struct aws_presigned *out, struct err *e);

/* The aws_error_parser for S3: <Error><Code>..</Code>..</Error>. */
int s3_parse_error(const struct http_response *resp, struct err *e);

/* Whether s3_new took path style though virtual-hosted was asked for,
 * since no "bucket.host" can reach the endpoint: an IP address or
 * localhost, or a bucket with a dot over https. */
int s3_forced_path_style(const struct s3 *s);

/* The client the calls go through (borrowed): for its skew and endpoint. */
struct aws_client *s3_client(const struct s3 *s);

#endif
