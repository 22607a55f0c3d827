/*
 * creds: the credential chain (the order and its rules are in creds.h).
 *
 * This file runs the chain: the steps that need no network (explicit keys,
 * the environment; the shared files' profile, and which of the others it
 * asks for, is creds_profile.c), the callers waiting on a resolution,
 * the cached credentials and their refresh ahead of expiry. The steps that
 * ask a server or a program are creds_sts.c (roles), creds_sso.c,
 * creds_process.c, creds_container.c and creds_imds.c, and creds_http.c
 * sends their requests; a resolution ends, and the provider is freed, in
 * creds_core.c. A role's source is a provider of its own, made and
 * resolved through the struct creds_chain this file lends creds_sts.c.
 * They share the provider through creds_impl.h. This file is the top: it
 * calls the others, and none of them calls it.
 */
#include "creds_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsconfig.h"

#define CREDS_REFRESH_AHEAD_DEFAULT 300
#define CREDS_REFRESH_MIN_INTERVAL_MS 10000u
#define CREDS_PROCESS_TIMEOUT_DEFAULT_MS 30000

/*
 * The synchronous steps: 1 found (c filled in), 0 nothing, -1 error.
 */
static int
creds_step_config(const struct creds_provider *p, struct creds *c)
{
	if (p->access_key_id == NULL)
		return 0;
	/* Lengths were checked by creds_provider_new. */
	creds_core_copy(c->access_key_id, sizeof(c->access_key_id),
	                p->access_key_id);
	creds_core_copy(c->secret_access_key, sizeof(c->secret_access_key),
	                p->secret_access_key);
	if (p->session_token != NULL)
		creds_core_copy(c->session_token, sizeof(c->session_token),
		                p->session_token);
	snprintf(c->source, sizeof(c->source), "%s", "config");
	return 1;
}

static int
creds_step_env(struct creds *c, struct err *e)
{
	const char *id = awsconfig_env("AWS_ACCESS_KEY_ID");
	const char *secret = awsconfig_env("AWS_SECRET_ACCESS_KEY");
	const char *token = awsconfig_env("AWS_SESSION_TOKEN");

	if (id == NULL || secret == NULL)
		return 0;
	if (creds_core_copy(c->access_key_id, sizeof(c->access_key_id), id) ==
	    -1) {
		err_set(e, ERR_CREDS, "AWS_ACCESS_KEY_ID is too long");
		return -1;
	}
	if (creds_core_copy(c->secret_access_key, sizeof(c->secret_access_key),
	                    secret) == -1) {
		err_set(e, ERR_CREDS, "AWS_SECRET_ACCESS_KEY is too long");
		return -1;
	}
	if (token != NULL &&
	    creds_core_copy(c->session_token, sizeof(c->session_token),
	                    token) == -1) {
		err_set(e, ERR_CREDS, "AWS_SESSION_TOKEN is too long");
		return -1;
	}
	snprintf(c->source, sizeof(c->source), "%s", "env");
	return 1;
}

/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN. */
static int
creds_step_env_web_identity(struct creds_provider *p, struct err *e)
{
	const char *file = awsconfig_env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = awsconfig_env("AWS_ROLE_ARN");
	const char *name = awsconfig_env("AWS_ROLE_SESSION_NAME");
	struct creds_role *r = &p->role;

	if (file == NULL || arn == NULL)
		return 0;
	memset(r, 0, sizeof(*r));
	r->web_identity = 1;
	if (creds_core_copy(r->token_file, sizeof(r->token_file), file) == -1 ||
	    creds_core_copy(r->role_arn, sizeof(r->role_arn), arn) == -1 ||
	    (name != NULL &&
	     creds_core_copy(r->session_name, sizeof(r->session_name), name) ==
	         -1)) {
		err_set(e, ERR_CREDS,
		        "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN or "
		        "AWS_ROLE_SESSION_NAME is too long");
		return -1;
	}
	return creds_sts_start(p, e) == -1 ? -1 : CREDS_STARTED;
}

/*
 * The steps that ask a server, in the chain's order: 1 one started (the
 * chain ends from its callback), 0 nothing to try (p->note says why), -1 e
 * says why the chain ends.
 */
static int
creds_step_network(struct creds_provider *p, struct err *e)
{
	int rc;

	rc = creds_container_start(p, e);
	if (rc == 0)
		rc = creds_imds_start(p);
	return rc == 1 ? CREDS_STARTED : rc;
}

/* A role's source provider: only its own kind of step. */
static int
creds_chain_only(struct creds_provider *p, struct creds *c, struct err *e)
{
	int rc;

	switch (p->only) {
	case CREDS_ONLY_PROFILE:
		return creds_profile_step(p, c, e);
	case CREDS_ONLY_ENV:
		rc = creds_step_env(c, e);
		if (rc == 0)
			err_set(
			    e, ERR_CREDS,
			    "credential_source Environment: "
			    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are "
			    "not both set");
		return rc == 0 ? -1 : rc;
	case CREDS_ONLY_CONTAINER:
		rc = creds_container_start(p, e);
		if (rc == 0)
			err_set(e, ERR_CREDS,
			        "credential_source EcsContainer: "
			        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or "
			        "_FULL_URI is not set");
		return rc == 0 ? -1 : CREDS_STARTED;
	case CREDS_ONLY_IMDS:
		rc = creds_imds_start(p);
		if (rc == 0)
			err_set(e, ERR_CREDS,
			        "credential_source Ec2InstanceMetadata: %s",
			        p->note[0] ? p->note : "no instance metadata");
		return rc == 0 ? -1 : CREDS_STARTED;
	default:
		return 0;
	}
}

static void
creds_chain_start(struct creds_provider *p)
{
	struct creds c;
	struct err e;
	int rc;

	p->resolving = 1;
	p->note[0] = '\0';
	awsconfig_credentials_path(p->cred_path, sizeof(p->cred_path));
	awsconfig_config_path(p->config_path, sizeof(p->config_path));
	memset(&c, 0, sizeof(c));
	err_clear(&e);
	if (p->only != CREDS_ALL) {
		rc = creds_chain_only(p, &c, &e);
	} else {
		rc = creds_step_config(p, &c);
		/* A profile named in the configuration negates the
		 * environment's keys, as an explicit profile does in the
		 * SDKs (its role may take them: credential_source). */
		if (rc == 0 && p->profile == NULL)
			rc = creds_step_env(&c, &e);
		if (rc == 0)
			rc = creds_step_env_web_identity(p, &e);
		if (rc == 0)
			rc = creds_profile_step(p, &c, &e);
		if (rc == 0)
			rc = creds_step_network(p, &e);
	}
	if (rc == 1)
		creds_core_finish(p, &c, NULL);
	else if (rc == -1)
		creds_core_finish(p, NULL, &e);
	else if (rc == 0)
		creds_core_nothing(p);
	explicit_bzero(&c, sizeof(c));
}

/*
 * The public API.
 */
static int
creds_dup_opt(char **dst, const char *src, size_t max, const char *name,
              struct err *e)
{
	if (src == NULL || *src == '\0')
		return 0;
	if (strlen(src) >= max) {
		err_set(e, ERR_CONFIG, "credentials: %s is too long (max %zu)",
		        name, max - 1);
		return -1;
	}
	*dst = strdup(src);
	if (*dst == NULL) {
		err_sys(e, "credentials: strdup");
		return -1;
	}
	return 0;
}

static const struct creds_chain creds_chain_table;

/* What every provider has besides its keys and profile. */
static int
creds_provider_setup(struct creds_provider *p, struct loop *l,
                     const char *region, int process_timeout_ms, struct err *e)
{
	p->loop = l;
	p->chain = &creds_chain_table;
	p->proc.out_fd = p->proc.err_fd = -1;
	p->process_timeout_ms = process_timeout_ms > 0
	                            ? process_timeout_ms
	                            : CREDS_PROCESS_TIMEOUT_DEFAULT_MS;
	if (region != NULL && *region != '\0' &&
	    (p->region = strdup(region)) == NULL) {
		err_sys(e, "credentials: strdup");
		return -1;
	}
	return creds_http_init(p, l, e);
}

struct creds_provider *
creds_provider_new(const struct creds_opts *opts, struct http *http,
                   struct err *e)
{
	static const struct creds_opts defaults;
	struct creds_provider *p;
	struct creds *c;

	if (opts == NULL)
		opts = &defaults;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		err_sys(e, "credentials: calloc");
		return NULL;
	}
	c = &p->cached;
	p->http = http;
	p->refresh_ahead_secs = opts->refresh_ahead_secs > 0
	                            ? opts->refresh_ahead_secs
	                            : CREDS_REFRESH_AHEAD_DEFAULT;
	if (creds_dup_opt(&p->access_key_id, opts->access_key_id,
	                  sizeof(c->access_key_id), "access_key_id", e) == -1 ||
	    creds_dup_opt(&p->secret_access_key, opts->secret_access_key,
	                  sizeof(c->secret_access_key), "secret_access_key",
	                  e) == -1 ||
	    creds_dup_opt(&p->session_token, opts->session_token,
	                  sizeof(c->session_token), "session_token", e) == -1 ||
	    creds_dup_opt(&p->profile, opts->profile, 256, "profile", e) == -1)
		goto fail;
	if ((p->access_key_id == NULL) != (p->secret_access_key == NULL)) {
		err_set(e, ERR_CONFIG, "credentials: %s is set but %s is not",
		        p->access_key_id != NULL ? "access_key_id"
		                                 : "secret_access_key",
		        p->access_key_id != NULL ? "secret_access_key"
		                                 : "access_key_id");
		goto fail;
	}
	if (p->session_token != NULL && p->access_key_id == NULL) {
		err_set(e, ERR_CONFIG,
		        "credentials: session_token is set "
		        "without access_key_id");
		goto fail;
	}
	if (creds_provider_setup(p, opts->loop, opts->region,
	                         opts->process_timeout_ms, e) == -1)
		goto fail;
	return p;
fail:
	creds_core_destroy(p);
	return NULL;
}

/* A role's source: a provider of only that kind, one deeper, on the
 * parent's http, loop and region. */
static struct creds_provider *
creds_provider_new_source(struct creds_provider *parent, enum creds_only only,
                          const char *profile, struct err *e)
{
	struct creds_provider *p;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		err_sys(e, "credentials: calloc");
		return NULL;
	}
	p->http = parent->http;
	p->refresh_ahead_secs = parent->refresh_ahead_secs;
	p->only = only;
	p->nesting = parent->nesting + 1;
	p->self_source = only == CREDS_ONLY_PROFILE &&
	                 strcmp(profile, parent->role.profile) == 0;
	if ((only == CREDS_ONLY_PROFILE &&
	     creds_dup_opt(&p->profile, profile, 256, "source_profile", e) ==
	         -1) ||
	    creds_provider_setup(p, parent->loop, parent->region,
	                         parent->process_timeout_ms, e) == -1) {
		creds_core_destroy(p);
		return NULL;
	}
	return p;
}

void
creds_provider_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	p->free_pending = 1;
	if (p->closing)
		return; /* called again from a callback we are firing */
	p->closing = 1;
	creds_core_enter(p);
	creds_sts_free(p);
	creds_process_stop(p);
	creds_http_cancel(p); /* its callback fires the waiters */
	creds_core_cancelled(p);
	creds_core_leave(p);
}

int
creds_provider_get(struct creds_provider *p, struct creds *out)
{
	time_t now = time(NULL), ahead;
	uint64_t now_ms;
	int valid;

	if (!p->have)
		return -1;
	valid = p->cached.expiration == 0 || now < p->cached.expiration;
	if (valid)
		*out = p->cached;
	/* Ahead: refresh_ahead_secs, or a third of a shorter lifetime. */
	ahead = p->refresh_ahead_secs;
	if (p->cached.expiration > p->got_at &&
	    (p->cached.expiration - p->got_at) / 3 < ahead)
		ahead = (p->cached.expiration - p->got_at) / 3;
	if (p->cached.expiration == 0 || p->resolving || p->closing ||
	    now < p->cached.expiration - ahead)
		return valid ? 0 : -1;
	now_ms = loop_now_ms();
	if (p->last_refresh_ms != 0 &&
	    now_ms - p->last_refresh_ms < CREDS_REFRESH_MIN_INTERVAL_MS)
		return valid ? 0 : -1;
	p->last_refresh_ms = now_ms;
	creds_core_enter(p);
	creds_chain_start(p);
	creds_core_leave(p);
	return valid ? 0 : -1;
}

static int
creds_add_waiter(struct creds_provider *p, creds_done_cb cb, void *arg,
                 struct err *e)
{
	struct creds_waiter *w;

	if (p->nwaiters == p->capwaiters) {
		size_t cap = p->capwaiters != 0 ? p->capwaiters * 2 : 4;

		w = reallocarray(p->waiters, cap, sizeof(*w));
		if (w == NULL) {
			err_sys(e, "credentials: realloc");
			return -1;
		}
		p->waiters = w;
		p->capwaiters = cap;
	}
	p->waiters[p->nwaiters].cb = cb;
	p->waiters[p->nwaiters].arg = arg;
	p->nwaiters++;
	return 0;
}

int
creds_provider_resolve(struct creds_provider *p, creds_done_cb cb, void *arg,
                       struct err *e)
{
	if (cb == NULL) {
		err_set(e, ERR_INVALID, "credentials: no callback");
		return -1;
	}
	if (p->closing) {
		err_set(e, ERR_CANCEL, "credential provider freed");
		return -1;
	}
	if (creds_add_waiter(p, cb, arg, e) == -1)
		return -1;
	if (p->resolving)
		return 0;
	creds_core_enter(p);
	creds_chain_start(p);
	creds_core_leave(p);
	return 0;
}

static const struct creds_chain creds_chain_table = {
    .new_source = creds_provider_new_source,
    .resolve = creds_provider_resolve,
    .free = creds_provider_free,
};
