/*
 * aws: one signed AWS request, sent and retried. Shared by the s3 and dynamo
 * modules: builds the URL, adds x-amz-date / content hash / session token,
 * signs with SigV4 at every attempt (so a retry after a clock-skew correction
 * or a credential refresh is signed afresh), parses the service's error body
 * and asks retry.c whether and when to try again.
 *
 * A client talks to one service. What differs between services, how the
 * path is signed and what an error body looks like, is set by the module
 * that speaks the service's protocol (s3_new, dynamo_new), with
 * aws_client_set_protocol; the caller names only the service, region and
 * endpoint. Each client keeps its own signer cache (sigv4.h).
 */
#ifndef IMGSYNC_AWS_H
#define IMGSYNC_AWS_H

#include <stddef.h>
#include <stdint.h>

#include "creds.h"
#include "err.h"
#include "http.h"
#include "loop.h"
#include "retry.h"
#include "sigv4.h"

struct aws_client;
struct aws_call;

/* Fills e (kind ERR_HTTP, http_status, code, message, request_id) from an
 * error response; also used on a 2xx whose body is an error (S3's
 * CopyObject and CompleteMultipartUpload can do that): returns 1 if the
 * response is an error, 0 if not. */
typedef int (*aws_error_parser)(const struct http_response *resp,
                                struct err *e);

/* Told of each retry, for logs and counters. */
typedef void (*aws_retry_cb)(const struct err *e, enum retry_class c,
                             uint64_t delay_ms, void *arg);

struct aws_client_opts {
	const char *service; /* signing name: "s3", "dynamodb" */
	const char *region;
	const char *endpoint;  /* "http[s]://host[:port]"; "" = AWS's own */
	unsigned max_attempts; /* 0: retry forever */
	struct retry_policy retry;
	aws_retry_cb on_retry;
	void *on_retry_arg;
};

/* Upper bounds, in milliseconds, of the latency histogram's buckets (the
 * last bucket, +Inf, is implied). */
#define AWS_LATENCY_BUCKETS 11
extern const unsigned aws_latency_bounds_ms[AWS_LATENCY_BUCKETS];

struct aws_stats {
	uint64_t requests; /* attempts sent */
	uint64_t retries;
	uint64_t throttled;
	uint64_t skew_fixes;
	/* Attempts that got an answer (any status), by latency: counts per
	 * bucket (not cumulative; [AWS_LATENCY_BUCKETS] is over the last
	 * bound), and their sum. */
	uint64_t latency[AWS_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_us;
};

struct aws_request {
	const char *method;
	const char *path;        /* raw, unencoded: "/bucket/key" */
	const char *host_prefix; /* "bucket." for virtual-hosted S3, or NULL */
	const struct sigv4_kv *query;
	size_t nquery;
	const struct sigv4_kv *headers; /* extra headers, all signed */
	size_t nheaders;
	const void *body; /* memory body, borrowed until the callback */
	size_t body_len;
	int body_fd; /* file body instead: -1 when none */
	uint64_t fd_offset;
	uint64_t fd_len;
	const char *payload_hash; /* needed for a file body; NULL otherwise */
	int unsigned_payload;     /* send UNSIGNED-PAYLOAD instead */
	size_t max_response;
};

/* Called exactly once per successful aws_send: with resp (2xx) and e NULL,
 * or with e saying what failed for good; resp is then the server's error
 * answer (for details a caller parses, e.g. a transaction's reasons), or
 * NULL when there was none (network, cancellation). */
typedef void (*aws_done_cb)(struct http_response *resp, const struct err *e,
                            void *arg);

/* l, h and creds are borrowed and must outlive the client. */
struct aws_client *aws_client_new(struct loop *l, struct http *h,
                                  struct creds_provider *creds,
                                  const struct aws_client_opts *opts,
                                  struct err *e);
/* Cancels every call still running (their callbacks fire) and frees. */
void aws_client_free(struct aws_client *c);

/* The service's protocol: how its paths are signed (SIGV4_S3 also sends
 * x-amz-content-sha256) and how its error bodies read (NULL: by status
 * alone). A new client signs SIGV4_GENERIC and parses no body. Called by
 * the service's module when it takes the client, before any call. */
void aws_client_set_protocol(struct aws_client *c, enum sigv4_mode mode,
                             aws_error_parser parse_error);

/* Everything in req is copied except the body. */
struct aws_call *aws_send(struct aws_client *c, const struct aws_request *req,
                          aws_done_cb cb, void *arg, struct err *e);
void aws_cancel(struct aws_call *call);

const struct aws_stats *aws_client_stats(const struct aws_client *c);
/* Seconds added to the local clock when signing (learnt from the server). */
int64_t aws_client_skew(const struct aws_client *c);
void aws_client_set_skew(struct aws_client *c, int64_t skew);
/* A presigned request (aws_presign); the strings are borrowed. */
struct aws_presign_req {
	const char *method;      /* "GET" */
	const char *path;        /* as aws_request's */
	const char *host_prefix; /* as aws_request's; NULL: none */
	int expires_secs;        /* 1..SIGV4_MAX_EXPIRES */
};

struct aws_presigned {
	int expires_secs;  /* as asked, or less: see capped */
	time_t expires_at; /* on the local clock */
	/* 1: the credentials expire before the time asked for, and the link
	 * with them: expires_secs is cut to what they have left. */
	int capped;
};

/*
 * A URL for req that anyone holding it may use until it expires (SigV4
 * query signing, UNSIGNED-PAYLOAD, only the host signed), signed now (the
 * client's clock skew applied) with the credentials at hand; nothing is
 * sent. Returns a malloc'd URL with out filled, or NULL with e set:
 * ERR_INVALID for expires_secs outside 1..SIGV4_MAX_EXPIRES, ERR_CREDS
 * when no valid credentials are at hand or they expire within a minute.
 */
char *aws_presign(struct aws_client *c, const struct aws_presign_req *req,
                  struct aws_presigned *out, struct err *e);

/* The endpoint's origin, "http[s]://host[:port]" (for messages). */
const char *aws_client_endpoint(const struct aws_client *c);
const char *aws_client_region(const struct aws_client *c);

#endif
