/*
 * aws_impl.h: what the aws module's files share, and nobody else
 * includes. From the top down: aws.c holds the client and starts a call
 * (copied in, queued, started from the loop, cancelled); aws_attempt.c one
 * attempt of it (headers, signature, the http request) and what its answer
 * leads to; aws_call.c how a call ends (exactly once) and how it waits for
 * credentials. Each file calls only the ones below it.
 */
#ifndef IMGSYNC_AWS_IMPL_H
#define IMGSYNC_AWS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "aws.h"

/* A credential resolution in progress; outlives the client if need be. */
struct aws_creds_wait {
	struct aws_client *client; /* NULL once the client is gone */
};

struct aws_client {
	struct loop *loop;
	struct http *http;
	struct creds_provider *creds;
	char *service;
	char *region;
	char *scheme; /* "http" or "https" */
	char *host;   /* host[:port] as sent in Host */
	char *origin; /* scheme://host */
	enum sigv4_mode mode;
	aws_error_parser parse_error;
	struct sigv4_cache *signer; /* this client's keys and algorithms */
	unsigned max_attempts;
	struct retry_policy retry;
	aws_retry_cb on_retry;
	void *on_retry_arg;
	int64_t skew;
	uint64_t rng;
	struct aws_stats stats;
	struct aws_call *calls;
	struct aws_creds_wait *creds_wait;
};

struct aws_call {
	struct aws_client *client;
	struct aws_call *prev, *next;
	aws_done_cb cb;
	void *arg;
	char *method;
	char *path;
	char *host_prefix;
	struct sigv4_kv *query;
	size_t nquery;
	struct sigv4_kv *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
	int body_fd;
	uint64_t fd_offset;
	uint64_t fd_len;
	char payload_hash[72];
	size_t max_response;
	unsigned attempt;
	unsigned skew_fixes;
	unsigned creds_refreshes;
	int waiting_creds;
	struct http_xfer *xfer;
	struct loop_timer *timer;
	uint64_t sent_us; /* when the attempt left */
};

/*
 * aws_call.c
 */
/* Frees a call that is on no list (its callback never fires). */
void aws_call_free(struct aws_call *call);
/* Takes the call off the client's list, fires its callback once and frees
 * it. */
void aws_call_finish(struct aws_call *call, struct http_response *resp,
                     const struct err *e);
/* Parks the call until the credential chain answers; then its timer
 * attempts it again, or it is finished with the chain's error. */
void aws_call_wait_creds(struct aws_call *call);

/*
 * aws_attempt.c
 */
/* Signs and sends the call once, with the credentials at hand (else waits
 * for them); its answer finishes the call or schedules the next attempt. */
void aws_attempt(struct aws_call *call);

#endif
