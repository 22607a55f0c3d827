/*
 * creds_core: the provider's life and how a resolution ends, below every
 * other file of the chain. creds.c runs the chain, creds_container.c and
 * creds_imds.c are its network steps and creds_http.c sends their requests;
 * each of them ends a resolution through here (creds_core_finish and the
 * two ways of failing), and guards its entries from outside with
 * creds_core_enter and _leave. Nothing here calls them back.
 *
 * The provider is freed here too, whatever file allocated a part of it: a
 * waiter's callback may free the provider from inside any of the files,
 * and the outermost creds_core_leave, wherever it runs, does the freeing.
 */
#include "creds_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
creds_core_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

void
creds_core_free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
creds_core_destroy(struct creds_provider *p)
{
	size_t i;

	loop_timer_free(p->step.timer);
	p->step.timer = NULL;
	creds_core_free_secret(p->step.auth);
	p->step.auth = NULL;
	for (i = 0; i < p->step.nhdrs; i++)
		creds_core_free_secret(p->step.hdr_store[i]);
	creds_core_free_secret(p->step.body);
	free(p->region);
	free(p->access_key_id);
	creds_core_free_secret(p->secret_access_key);
	creds_core_free_secret(p->session_token);
	free(p->profile);
	free(p->waiters);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

void
creds_core_enter(struct creds_provider *p)
{
	p->depth++;
}

void
creds_core_leave(struct creds_provider *p)
{
	if (--p->depth == 0 && p->free_pending)
		creds_core_destroy(p);
}

static void
creds_core_format_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%s", "?");
}

static void
creds_core_expired(const struct creds *c, struct err *e)
{
	char when[32];

	creds_core_format_time(c->expiration, when, sizeof(when));
	err_set(e, ERR_CREDS, "%s credentials expired already (Expiration %s)",
	        c->source, when);
}

void
creds_core_finish(struct creds_provider *p, const struct creds *c,
                  const struct err *e)
{
	struct creds_waiter *w;
	struct creds copy;
	struct err ecopy;
	size_t n, i;

	if (!p->resolving)
		return;
	p->resolving = 0;
	/* Whatever request was in flight is forgotten, its deadline off. */
	p->step.xfer = NULL;
	if (p->step.timer != NULL)
		loop_timer_set(p->step.timer, -1);
	err_clear(&ecopy);
	if (c != NULL && c->expiration != 0 && c->expiration <= time(NULL)) {
		creds_core_expired(c, &ecopy);
		c = NULL;
	} else if (c == NULL) {
		ecopy = *e;
	}
	if (c != NULL) {
		copy = *c;
		p->cached = copy;
		p->have = 1;
		p->got_at = time(NULL);
	}
	w = p->waiters;
	n = p->nwaiters;
	p->waiters = NULL;
	p->nwaiters = p->capwaiters = 0;
	/* The callbacks may start a new resolution or free the provider. */
	for (i = 0; i < n; i++)
		w[i].cb(c != NULL ? &copy : NULL, c != NULL ? NULL : &ecopy,
		        w[i].arg);
	free(w);
	if (c != NULL)
		explicit_bzero(&copy, sizeof(copy));
}

void
creds_core_cancelled(struct creds_provider *p)
{
	struct err e;

	err_clear(&e);
	err_set(&e, ERR_CANCEL, "credential provider freed");
	creds_core_finish(p, NULL, &e);
}

void
creds_core_nothing(struct creds_provider *p)
{
	struct err e;

	err_clear(&e);
	err_set(
	    &e, ERR_CREDS,
	    "no AWS credentials found (tried config, environment, shared files "
	    "[%s, %s], container, instance metadata%s%s)",
	    p->cred_path[0] != '\0' ? p->cred_path : "(no HOME)",
	    p->config_path[0] != '\0' ? p->config_path : "(no HOME)",
	    p->note[0] != '\0' ? ": " : "", p->note);
	creds_core_finish(p, NULL, &e);
}
