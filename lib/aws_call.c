/*
 * aws_call: how a call ends, and how it waits for credentials. A call
 * finishes exactly once (aws_call_finish: off the client's list, its
 * callback fired, freed), whether it succeeded, failed for good, was
 * cancelled or its client freed. A call without usable credentials is
 * parked until the chain answers; one resolution serves every call of the
 * client that waits, and each is then attempted again from the loop (its
 * timer, aws.c's) or finished with the chain's error.
 *
 * Below aws.c (the client, aws_send) and aws_attempt.c (an attempt), which
 * both end calls through here; nothing here calls them back.
 */
#include "aws_impl.h"

#include <stdlib.h>

void
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

void
aws_call_finish(struct aws_call *call, struct http_response *resp,
                const struct err *e)
{
	aws_call_unlink(call);
	call->cb(resp, e, call->arg);
	call->xfer = NULL;
	aws_call_free(call);
}

static void
aws_call_on_creds(const struct creds *cr, const struct err *e, void *arg)
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
		aws_call_finish(call, NULL, &fail);
	}
}

void
aws_call_wait_creds(struct aws_call *call)
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
		aws_call_finish(call, NULL, &e);
		return;
	}
	w->client = c;
	c->creds_wait = w;
	if (creds_provider_resolve(c->creds, aws_call_on_creds, w, &e) == -1) {
		c->creds_wait = NULL;
		free(w);
		call->waiting_creds = 0;
		aws_call_finish(call, NULL, &e);
	}
}
