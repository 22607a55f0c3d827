/*
 * aws_attempt: one attempt of a call. Takes the credentials at hand (or
 * waits for the chain), builds the signed headers (host, x-amz-date, the
 * payload hash for S3, the session token, then the caller's), signs with
 * the client's signer cache and hands the request to http. Its answer is
 * judged here: the service's error parser says what a failure is,
 * retry.c whether and when to try again; a skewed clock is corrected from
 * the server's Date and expired credentials are fetched again, a few times
 * at most. A call ends, or waits for credentials, through aws_call.c.
 */
#include "aws_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWS_MAX_SKEW_FIXES 3

/* aws.h's: the latency histogram is filled here. */
const unsigned aws_latency_bounds_ms[AWS_LATENCY_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static uint64_t
aws_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
aws_note_latency(struct aws_client *c, uint64_t sent_us)
{
	uint64_t us = aws_now_us() - sent_us;
	unsigned i = 0;

	while (i < AWS_LATENCY_BUCKETS && us > aws_latency_bounds_ms[i] * 1000u)
		i++;
	c->stats.latency[i]++;
	c->stats.latency_sum_us += us;
}

static void aws_on_http(struct http_response *resp, const struct err *he,
                        void *arg);

/* The headers that are signed: ours first, then the caller's. */
static int
aws_build_headers(struct aws_call *call, const struct creds *cr,
                  const char *amz_date, struct buf *hostbuf,
                  struct sigv4_kv **out, size_t *nout)
{
	struct aws_client *c = call->client;
	struct sigv4_kv *h;
	size_t n = 0, i;

	h = calloc(call->nheaders + 4, sizeof(*h));
	if (h == NULL)
		return -1;
	buf_printf(hostbuf, "%s%s", call->host_prefix, c->host);
	if (buf_cstr(hostbuf) == NULL) {
		free(h);
		return -1;
	}
	h[n].name = "host";
	h[n++].value = hostbuf->data;
	h[n].name = "x-amz-date";
	h[n++].value = amz_date;
	if (c->mode == SIGV4_S3) {
		h[n].name = "x-amz-content-sha256";
		h[n++].value = call->payload_hash;
	}
	if (cr->session_token[0] != '\0') {
		h[n].name = "x-amz-security-token";
		h[n++].value = cr->session_token;
	}
	for (i = 0; i < call->nheaders; i++)
		h[n++] = call->headers[i];
	*out = h;
	*nout = n;
	return 0;
}

static int
aws_sign_and_send(struct aws_call *call, const struct creds *cr, struct err *e)
{
	struct aws_client *c = call->client;
	struct sigv4_input in;
	struct sigv4_output out;
	struct http_request req;
	struct http_header *hh = NULL;
	struct sigv4_kv *sh = NULL;
	struct buf host, url;
	char amz_date[17];
	size_t nsh = 0, i;
	time_t now;
	int rc = -1;

	memset(&out, 0, sizeof(out));
	buf_init(&host, 0);
	buf_init(&url, 0);
	now = time(NULL) + (time_t)c->skew;
	sigv4_amz_date(now, amz_date);
	if (aws_build_headers(call, cr, amz_date, &host, &sh, &nsh) == -1) {
		err_sys(e, "aws: out of memory");
		goto done;
	}
	memset(&in, 0, sizeof(in));
	in.mode = c->mode;
	in.method = call->method;
	in.path = call->path;
	in.query = call->query;
	in.nquery = call->nquery;
	in.headers = sh;
	in.nheaders = nsh;
	in.payload_hash = call->payload_hash;
	in.region = c->region;
	in.service = c->service;
	in.when = now;
	in.access_key_id = cr->access_key_id;
	in.secret_access_key = cr->secret_access_key;
	in.cache = c->signer;
	if (sigv4_sign(&in, &out, e) == -1)
		goto done;

	buf_printf(&url, "%s://%s%s", c->scheme, host.data, out.canonical_uri);
	if (out.canonical_query[0] != '\0')
		buf_printf(&url, "?%s", out.canonical_query);
	hh = calloc(nsh + 1, sizeof(*hh));
	if (hh == NULL || buf_cstr(&url) == NULL) {
		err_sys(e, "aws: out of memory");
		goto done;
	}
	/* curl writes Host itself from the URL, identically. */
	for (i = 1; i < nsh; i++) {
		hh[i - 1].name = sh[i].name;
		hh[i - 1].value = sh[i].value;
	}
	hh[nsh - 1].name = "Authorization";
	hh[nsh - 1].value = out.authorization;

	memset(&req, 0, sizeof(req));
	req.method = call->method;
	req.url = url.data;
	req.headers = hh;
	req.nheaders = nsh;
	req.body = call->body;
	req.body_fd = call->body_fd;
	req.body_offset = call->fd_offset;
	req.body_len = call->body_fd >= 0 ? call->fd_len : call->body_len;
	req.max_response = call->max_response;
	call->xfer = http_send(c->http, &req, aws_on_http, call, e);
	if (call->xfer == NULL)
		goto done;
	c->stats.requests++;
	call->sent_us = aws_now_us();
	rc = 0;
done:
	free(hh);
	free(sh);
	buf_cleanup(&host);
	buf_cleanup(&url);
	sigv4_output_cleanup(&out);
	return rc;
}

void
aws_attempt(struct aws_call *call)
{
	struct creds cr;
	struct err e;

	if (creds_provider_get(call->client->creds, &cr) == -1) {
		aws_call_wait_creds(call);
		return;
	}
	err_clear(&e);
	if (aws_sign_and_send(call, &cr, &e) == -1)
		aws_call_finish(call, NULL, &e);
	explicit_bzero(&cr, sizeof(cr));
}

/* The error a non-2xx response (or a 2xx carrying an error) stands for. */
static int
aws_response_error(struct aws_call *call, struct http_response *resp,
                   struct err *e)
{
	struct aws_client *c = call->client;
	int is_err;

	err_clear(e);
	is_err = c->parse_error != NULL ? c->parse_error(resp, e) : 0;
	if (resp->status >= 200 && resp->status < 300 && !is_err)
		return 0;
	if (e->kind == ERR_NONE)
		e->kind = ERR_HTTP;
	if (e->http_status == 0)
		e->http_status = resp->status;
	if (e->message[0] == '\0')
		snprintf(e->message, sizeof(e->message), "HTTP %ld%s%s",
		         resp->status, e->code[0] ? " " : "", e->code);
	return 1;
}

/* Decides what a failure leads to; returns 1 if the call was rescheduled. */
static int
aws_maybe_retry(struct aws_call *call, struct http_response *resp,
                const struct err *e)
{
	struct aws_client *c = call->client;
	enum retry_class rc = retry_classify(e);
	char date[128];
	int64_t skew;
	uint64_t delay;
	unsigned n = call->attempt;

	if (rc == RETRY_NO)
		return 0;
	if (rc == RETRY_CREDS) {
		if (call->creds_refreshes++ >= AWS_MAX_SKEW_FIXES)
			return 0;
		c->stats.retries++;
		if (c->on_retry != NULL)
			c->on_retry(e, rc, 0, c->on_retry_arg);
		aws_call_wait_creds(call);
		return 1;
	}
	if (rc == RETRY_SKEW) {
		if (resp == NULL || call->skew_fixes >= AWS_MAX_SKEW_FIXES ||
		    http_response_header(resp, "Date", date, sizeof(date)) ==
		        -1 ||
		    retry_skew_from_date(date, time(NULL), &skew) == -1)
			return 0;
		call->skew_fixes++;
		c->skew = skew;
		c->stats.skew_fixes++;
	} else if (c->max_attempts != 0 &&
	           call->attempt + 1 >= c->max_attempts) {
		return 0;
	}
	if (rc == RETRY_TRANSIENT || rc == RETRY_THROTTLE)
		call->attempt++;
	if (rc == RETRY_THROTTLE)
		c->stats.throttled++;
	c->stats.retries++;
	delay = retry_backoff_ms(&c->retry, rc, n, &c->rng);
	if (c->on_retry != NULL)
		c->on_retry(e, rc, delay, c->on_retry_arg);
	loop_timer_set(call->timer, (int64_t)delay);
	return 1;
}

static void
aws_on_http(struct http_response *resp, const struct err *he, void *arg)
{
	struct aws_call *call = arg;
	struct err e;

	call->xfer = NULL;
	if (resp != NULL)
		aws_note_latency(call->client, call->sent_us);
	if (he != NULL) {
		e = *he;
		if (he->kind != ERR_CANCEL && aws_maybe_retry(call, NULL, &e))
			return;
		aws_call_finish(call, NULL, &e);
		return;
	}
	if (!aws_response_error(call, resp, &e)) {
		aws_call_finish(call, resp, NULL);
		return;
	}
	if (aws_maybe_retry(call, resp, &e))
		return;
	aws_call_finish(call, resp, &e); /* the error's body, for its details */
}
