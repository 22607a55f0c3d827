/*
 * aws: the client (service, region, endpoint, retry policy, signer cache,
 * counters) and the start of a call: copied in by aws_send, started from
 * the loop (its timer, which also starts every later attempt), cancelled.
 * An attempt is aws_attempt.c's; how a call ends, and how it waits for
 * credentials, aws_call.c's.
 */
#include "aws_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	c->mode = SIGV4_GENERIC;
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
	c->signer = sigv4_cache_new(e);
	if (c->signer == NULL)
		goto fail;
	if (aws_parse_endpoint(c, opts->endpoint, e) == -1)
		goto fail;
	return c;
fail:
	aws_client_free(c);
	return NULL;
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
	aws_call_finish(call, NULL, &e);
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
	sigv4_cache_free(c->signer);
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
		sigv4_cache_sha256_hex(c->signer,
		                       req->body != NULL ? req->body : "",
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

void
aws_client_set_protocol(struct aws_client *c, enum sigv4_mode mode,
                        aws_error_parser parse_error)
{
	c->mode = mode;
	c->parse_error = parse_error;
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
