#include "aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWS_MAX_SKEW_FIXES 3

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

const unsigned aws_latency_bounds_ms[AWS_LATENCY_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
aws_note_latency(struct aws_client *c, uint64_t sent_us)
{
	uint64_t us = now_us() - sent_us;
	unsigned i = 0;

	while (i < AWS_LATENCY_BUCKETS && us > aws_latency_bounds_ms[i] * 1000u)
		i++;
	c->stats.latency[i]++;
	c->stats.latency_sum_us += us;
}

static void aws_attempt(struct aws_call *call);

/* Splits "scheme://host[:port][/]" into its parts. */
static int
aws_parse_endpoint(struct aws_client *c, const char *endpoint, struct err *e)
{
	const char *p, *host, *end;
	char def[256];

	if (endpoint == NULL || *endpoint == '\0') {
		snprintf(def, sizeof(def), "https://%s.%s.amazonaws.com",
		         c->service, c->region);
		endpoint = def;
	}
	p = strstr(endpoint, "://");
	if (p == NULL || (strncmp(endpoint, "http://", 7) != 0 &&
	                  strncmp(endpoint, "https://", 8) != 0)) {
		err_set(e, ERR_CONFIG,
		        "endpoint \"%s\" must start with http:// or https://",
		        endpoint);
		return -1;
	}
	host = p + 3;
	end = strchr(host, '/');
	if (end != NULL && end[1] != '\0') {
		err_set(e, ERR_CONFIG, "endpoint \"%s\" must not have a path",
		        endpoint);
		return -1;
	}
	if (end == NULL)
		end = host + strlen(host);
	if (end == host) {
		err_set(e, ERR_CONFIG, "endpoint \"%s\" has no host", endpoint);
		return -1;
	}
	c->scheme = strndup(endpoint, (size_t)(p - endpoint));
	c->host = strndup(host, (size_t)(end - host));
	c->origin = strndup(endpoint, (size_t)(end - endpoint));
	if (c->scheme == NULL || c->host == NULL || c->origin == NULL) {
		err_sys(e, "aws: strndup");
		return -1;
	}
	return 0;
}

struct aws_client *
aws_client_new(struct loop *l, struct http *h, struct creds_provider *creds,
               const struct aws_client_opts *opts, struct err *e)
{
	struct aws_client *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_sys(e, "aws: calloc");
		return NULL;
	}
	c->loop = l;
	c->http = h;
	c->creds = creds;
	c->mode = opts->mode;
	c->parse_error = opts->parse_error;
	c->max_attempts = opts->max_attempts;
	c->retry = opts->retry;
	c->on_retry = opts->on_retry;
	c->on_retry_arg = opts->on_retry_arg;
	c->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
	c->service = strdup(opts->service);
	c->region =
	    strdup(opts->region != NULL && *opts->region != '\0' ? opts->region
	                                                         : "us-east-1");
	if (c->service == NULL || c->region == NULL) {
		err_sys(e, "aws: strdup");
		goto fail;
	}
	if (aws_parse_endpoint(c, opts->endpoint, e) == -1)
		goto fail;
	return c;
fail:
	aws_client_free(c);
	return NULL;
}

static void
aws_call_free(struct aws_call *call)
{
	size_t i;

	loop_timer_free(call->timer);
	for (i = 0; i < call->nquery; i++) {
		free((char *)call->query[i].name);
		free((char *)call->query[i].value);
	}
	for (i = 0; i < call->nheaders; i++) {
		free((char *)call->headers[i].name);
		free((char *)call->headers[i].value);
	}
	free(call->query);
	free(call->headers);
	free(call->method);
	free(call->path);
	free(call->host_prefix);
	free(call);
}

static void
aws_call_unlink(struct aws_call *call)
{
	struct aws_client *c = call->client;

	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
}

/* Fires the callback once and frees the call. */
static void
aws_finish(struct aws_call *call, struct http_response *resp,
           const struct err *e)
{
	aws_call_unlink(call);
	call->cb(resp, e, call->arg);
	call->xfer = NULL;
	aws_call_free(call);
}

void
aws_cancel(struct aws_call *call)
{
	struct err e;

	if (call->xfer != NULL) {
		/* Our http callback finishes the call. */
		http_cancel(call->xfer);
		return;
	}
	err_clear(&e);
	err_set(&e, ERR_CANCEL, "%s %s: cancelled", call->method, call->path);
	aws_finish(call, NULL, &e);
}

void
aws_client_free(struct aws_client *c)
{
	if (c == NULL)
		return;
	while (c->calls != NULL)
		aws_cancel(c->calls);
	if (c->creds_wait != NULL)
		c->creds_wait->client = NULL;
	free(c->service);
	free(c->region);
	free(c->scheme);
	free(c->host);
	free(c->origin);
	free(c);
}

static int
aws_copy_kv(struct sigv4_kv **out, const struct sigv4_kv *in, size_t n)
{
	size_t i;

	*out = NULL;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (*out == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		(*out)[i].name = strdup(in[i].name);
		(*out)[i].value =
		    strdup(in[i].value != NULL ? in[i].value : "");
		if ((*out)[i].name == NULL || (*out)[i].value == NULL)
			return -1;
	}
	return 0;
}

static void
aws_on_timer(void *arg)
{
	aws_attempt(arg);
}

struct aws_call *
aws_send(struct aws_client *c, const struct aws_request *req, aws_done_cb cb,
         void *arg, struct err *e)
{
	struct aws_call *call;

	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		err_sys(e, "aws: calloc");
		return NULL;
	}
	call->client = c;
	call->cb = cb;
	call->arg = arg;
	call->body = req->body;
	call->body_len = req->body_len;
	call->body_fd = req->body_fd;
	call->fd_offset = req->fd_offset;
	call->fd_len = req->fd_len;
	call->max_response = req->max_response;
	call->method = strdup(req->method);
	call->path = strdup(req->path != NULL ? req->path : "/");
	call->host_prefix = strdup(req->host_prefix ? req->host_prefix : "");
	if (call->method == NULL || call->path == NULL ||
	    call->host_prefix == NULL ||
	    aws_copy_kv(&call->query, req->query, req->nquery) == -1 ||
	    aws_copy_kv(&call->headers, req->headers, req->nheaders) == -1) {
		call->nquery = req->nquery;
		call->nheaders = req->nheaders;
		err_sys(e, "aws: out of memory");
		goto fail;
	}
	call->nquery = req->nquery;
	call->nheaders = req->nheaders;
	if (req->unsigned_payload) {
		strcpy(call->payload_hash, "UNSIGNED-PAYLOAD");
	} else if (req->payload_hash != NULL) {
		snprintf(call->payload_hash, sizeof(call->payload_hash), "%s",
		         req->payload_hash);
	} else if (req->body_fd >= 0) {
		err_set(e, ERR_INVALID, "aws: a file body needs its hash");
		goto fail;
	} else {
		sigv4_sha256_hex(req->body != NULL ? req->body : "",
		                 req->body_len, call->payload_hash);
	}
	call->timer = loop_timer_new(c->loop, aws_on_timer, call, e);
	if (call->timer == NULL)
		goto fail;
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	/* Start from the loop, so the callback never runs inside aws_send. */
	loop_timer_set(call->timer, 0);
	return call;
fail:
	aws_call_free(call);
	return NULL;
}

static void
aws_on_creds(const struct creds *cr, const struct err *e, void *arg)
{
	struct aws_creds_wait *w = arg;
	struct aws_client *c = w->client;
	struct aws_call *call, *next;
	struct err fail;

	(void)cr;
	free(w);
	if (c == NULL)
		return;
	c->creds_wait = NULL;
	for (call = c->calls; call != NULL; call = next) {
		next = call->next;
		if (!call->waiting_creds)
			continue;
		call->waiting_creds = 0;
		if (e == NULL) {
			loop_timer_set(call->timer, 0);
			continue;
		}
		fail = *e;
		aws_finish(call, NULL, &fail);
	}
}

/* Parks the call until the credential chain answers. */
static void
aws_wait_creds(struct aws_call *call)
{
	struct aws_client *c = call->client;
	struct aws_creds_wait *w;
	struct err e;

	call->waiting_creds = 1;
	if (c->creds_wait != NULL)
		return;
	err_clear(&e);
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		err_sys(&e, "aws: calloc");
		call->waiting_creds = 0;
		aws_finish(call, NULL, &e);
		return;
	}
	w->client = c;
	c->creds_wait = w;
	if (creds_provider_resolve(c->creds, aws_on_creds, w, &e) == -1) {
		c->creds_wait = NULL;
		free(w);
		call->waiting_creds = 0;
		aws_finish(call, NULL, &e);
	}
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
	call->sent_us = now_us();
	rc = 0;
done:
	free(hh);
	free(sh);
	buf_cleanup(&host);
	buf_cleanup(&url);
	sigv4_output_cleanup(&out);
	return rc;
}

static void
aws_attempt(struct aws_call *call)
{
	struct creds cr;
	struct err e;

	if (creds_provider_get(call->client->creds, &cr) == -1) {
		aws_wait_creds(call);
		return;
	}
	err_clear(&e);
	if (aws_sign_and_send(call, &cr, &e) == -1)
		aws_finish(call, NULL, &e);
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
		aws_wait_creds(call);
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
		aws_finish(call, NULL, &e);
		return;
	}
	if (!aws_response_error(call, resp, &e)) {
		aws_finish(call, resp, NULL);
		return;
	}
	if (aws_maybe_retry(call, resp, &e))
		return;
	aws_finish(call, NULL, &e);
}

const struct aws_stats *
aws_client_stats(const struct aws_client *c)
{
	return &c->stats;
}

int64_t
aws_client_skew(const struct aws_client *c)
{
	return c->skew;
}

void
aws_client_set_skew(struct aws_client *c, int64_t skew)
{
	c->skew = skew;
}

const char *
aws_client_endpoint(const struct aws_client *c)
{
	return c->origin;
}

const char *
aws_client_region(const struct aws_client *c)
{
	return c->region;
}
