/*
 * creds_http: how the credential chain asks a server, over the daemon's
 * http client and without blocking the loop. The steps that do are
 * creds_container.c and creds_imds.c; this file sends their requests and
 * reads the answer both servers give.
 *
 * One request at a time (struct creds_http_step), with a deadline per
 * attempt when the provider has a loop (2 s for the container, 1 s for
 * instance metadata, as the SDKs), tried CREDS_ATTEMPTS times on a transport
 * error, a timeout or a 5xx. Both servers answer with the same JSON
 * (AccessKeyId, SecretAccessKey, Token, Expiration).
 *
 * The step that sent a request hands its struct creds_http_ops with it:
 * the answer, or the failure once the attempts are spent, goes there. This
 * file names no step, and ends a resolution itself only through
 * creds_core.c (the provider freed or the http client gone).
 */
#include "creds_impl.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CREDS_MAX_RESPONSE (64u * 1024u)

/*
 * The answer both servers give.
 */

/* ISO-8601 / RFC 3339 date-time: 2026-11-22T12:00:00[.fff](Z|+hh:mm). */
static int
creds_http_digits(const char **pp, int n, int *out)
{
	const char *p = *pp;
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return 0;
}

int
creds_http_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	time_t t;

	if (creds_http_digits(&s, 4, &y) == -1 || *s++ != '-' ||
	    creds_http_digits(&s, 2, &mo) == -1 || *s++ != '-' ||
	    creds_http_digits(&s, 2, &d) == -1)
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (creds_http_digits(&s, 2, &h) == -1 || *s++ != ':' ||
	    creds_http_digits(&s, 2, &mi) == -1 || *s++ != ':' ||
	    creds_http_digits(&s, 2, &sec) == -1)
		return -1;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (creds_http_digits(&s, 2, &oh) == -1)
			return -1;
		if (*s == ':')
			s++;
		if (creds_http_digits(&s, 2, &om) == -1 || oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = t - (time_t)sign * (oh * 3600 + om * 60);
	return 0;
}

static int
creds_http_json_string(json_t *root, const char *key, int required, char *dst,
                       size_t dstlen, const char *what, struct err *e)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		err_set(e, ERR_CREDS, "%s: response lacks %s", what, key);
		return -1;
	}
	if (!json_is_string(v)) {
		err_set(e, ERR_CREDS, "%s: %s is not a string", what, key);
		return -1;
	}
	if (required && json_string_length(v) == 0) {
		err_set(e, ERR_CREDS, "%s: %s is empty", what, key);
		return -1;
	}
	if (json_string_length(v) >= dstlen ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		err_set(e, ERR_CREDS, "%s: %s is too long or has a NUL", what,
		        key);
		return -1;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int
creds_http_from_json(const struct buf *body, int imds, const char *what,
                     struct creds *c, struct err *e)
{
	json_error_t jerr;
	json_t *root;
	char code[64], expiration[64];
	int rc = -1;

	/* jerr.text may quote the document (and so a secret): not shown. */
	root = json_loadb(body->data != NULL ? body->data : "", body->len, 0,
	                  &jerr);
	if (root == NULL || !json_is_object(root)) {
		err_set(e, ERR_CREDS, "%s: response is not a JSON object",
		        what);
		goto out;
	}
	code[0] = expiration[0] = '\0';
	if (imds && creds_http_json_string(root, "Code", 0, code, sizeof(code),
	                                   what, e) == -1)
		goto out;
	if (code[0] != '\0' && strcmp(code, "Success") != 0) {
		err_set(e, ERR_CREDS, "%s: Code is \"%s\", not \"Success\"",
		        what, code);
		goto out;
	}
	if (creds_http_json_string(root, "AccessKeyId", 1, c->access_key_id,
	                           sizeof(c->access_key_id), what, e) == -1 ||
	    creds_http_json_string(
	        root, "SecretAccessKey", 1, c->secret_access_key,
	        sizeof(c->secret_access_key), what, e) == -1 ||
	    creds_http_json_string(root, "Token", 0, c->session_token,
	                           sizeof(c->session_token), what, e) == -1 ||
	    creds_http_json_string(root, "Expiration", 0, expiration,
	                           sizeof(expiration), what, e) == -1)
		goto out;
	if (expiration[0] != '\0' &&
	    creds_http_parse_time(expiration, &c->expiration) == -1) {
		err_set(e, ERR_CREDS,
		        "%s: Expiration \"%s\" is not an ISO-8601 time", what,
		        expiration);
		goto out;
	}
	snprintf(c->source, sizeof(c->source), "%s",
	         imds ? "imds" : "container");
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/*
 * One request at a time.
 */
static void creds_http_on_response(struct http_response *resp,
                                   const struct err *he, void *arg);

int
creds_http_send(struct creds_provider *p, const struct creds_http_ops *ops,
                struct err *e)
{
	struct creds_http_step *s = &p->step;
	struct http_request req;
	struct http_header h;

	s->ops = ops;
	memset(&req, 0, sizeof(req));
	req.method = s->method;
	req.url = s->url;
	req.body_fd = -1;
	req.max_response = CREDS_MAX_RESPONSE;
	if (s->body != NULL) {
		req.body = s->body;
		req.body_len = strlen(s->body);
	}
	if (s->nhdrs > 0) {
		req.headers = s->hdrs;
		req.nheaders = s->nhdrs;
	} else if (s->hdr_name != NULL) {
		h.name = s->hdr_name;
		h.value = s->hdr_value;
		req.headers = &h;
		req.nheaders = 1;
	}
	s->timed_out = 0;
	s->xfer = http_send(p->http, &req, creds_http_on_response, p, e);
	if (s->xfer == NULL)
		return -1;
	if (s->timer != NULL)
		loop_timer_set(s->timer, ops->attempt_ms);
	return 0;
}

/* A transport error or timeout that is out of attempts. */
static void
creds_http_step_failed(struct creds_provider *p, const struct err *he)
{
	char why[sizeof(he->message) + 32];

	if (p->step.timed_out)
		snprintf(why, sizeof(why), "timed out after %d ms",
		         p->step.ops->attempt_ms);
	else
		snprintf(why, sizeof(why), "%s", he->message);
	p->step.ops->failed(p, he, why);
}

static void
creds_http_retry(struct creds_provider *p)
{
	struct err e;

	p->step.attempt++;
	err_clear(&e);
	if (creds_http_send(p, p->step.ops, &e) == -1)
		creds_http_step_failed(p, &e);
}

static void
creds_http_on_response(struct http_response *resp, const struct err *he,
                       void *arg)
{
	struct creds_provider *p = arg;
	struct creds_http_step *s = &p->step;

	creds_core_enter(p);
	s->xfer = NULL;
	if (s->timer != NULL)
		loop_timer_set(s->timer, -1);
	if (p->closing || !p->resolving) {
		creds_core_cancelled(p);
		goto out;
	}
	if (he != NULL && he->kind == ERR_CANCEL && !s->timed_out) {
		creds_core_finish(p, NULL, he); /* the http client went away */
		goto out;
	}
	if (he != NULL || resp->status >= 500) {
		if (s->attempt < CREDS_ATTEMPTS) {
			creds_http_retry(p);
			goto out;
		}
		if (he != NULL) {
			creds_http_step_failed(p, he);
			goto out;
		}
	}
	s->ops->response(p, resp); /* a 5xx too, once out of attempts */
out:
	creds_core_leave(p);
}

static void
creds_http_on_timer(void *arg)
{
	struct creds_provider *p = arg;
	struct http_xfer *x = p->step.xfer;

	if (x == NULL)
		return;
	creds_core_enter(p);
	p->step.timed_out = 1;
	http_cancel(x); /* creds_http_on_response retries or moves on */
	creds_core_leave(p);
}

/*
 * What creds.c asks of this file. The timer is freed with the provider, by
 * creds_core_destroy.
 */
int
creds_http_init(struct creds_provider *p, struct loop *l, struct err *e)
{
	if (l == NULL)
		return 0;
	p->step.timer = loop_timer_new(l, creds_http_on_timer, p, e);
	return p->step.timer == NULL ? -1 : 0;
}

void
creds_http_clear_extra(struct creds_provider *p)
{
	struct creds_http_step *s = &p->step;
	size_t i;

	for (i = 0; i < s->nhdrs; i++) {
		creds_core_free_secret(s->hdr_store[i]);
		s->hdr_store[i] = NULL;
	}
	s->nhdrs = 0;
	creds_core_free_secret(s->body);
	s->body = NULL;
}

void
creds_http_cancel(struct creds_provider *p)
{
	struct http_xfer *x = p->step.xfer;

	if (x != NULL) {
		p->step.xfer = NULL;
		http_cancel(x); /* creds_http_on_response ends the chain */
	}
}
