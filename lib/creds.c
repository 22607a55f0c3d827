/*
 * creds: the credential chain (the order and its rules are in creds.h).
 *
 * This file runs the chain: the steps that need no network (explicit keys,
 * the environment, the shared files' profile, read by awsconfig.c), the
 * callers waiting on a resolution, the cached credentials and their
 * refresh ahead of expiry. The container and instance metadata steps are
 * creds_container.c and creds_imds.c, and creds_http.c sends their
 * requests; a resolution ends, and the provider is freed, in creds_core.c.
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

/* One file's view of the profile: keys it has, or why they are unusable. */
static int
creds_profile_keys(const struct awsconfig_profile *ini, const char *profile,
                   const char *path, struct creds *c, struct err *e)
{
	int has_id = ini->access_key_id[0] != '\0';
	int has_secret = ini->secret_access_key[0] != '\0';

	if (!has_id && !has_secret)
		return 0;
	if (!has_id || !has_secret) {
		err_set(e, ERR_CREDS, "profile \"%s\" in %s has %s but no %s",
		        profile, path,
		        has_id ? "aws_access_key_id" : "aws_secret_access_key",
		        has_id ? "aws_secret_access_key" : "aws_access_key_id");
		return -1;
	}
	memcpy(c->access_key_id, ini->access_key_id, sizeof(c->access_key_id));
	memcpy(c->secret_access_key, ini->secret_access_key,
	       sizeof(c->secret_access_key));
	memcpy(c->session_token, ini->session_token, sizeof(c->session_token));
	snprintf(c->source, sizeof(c->source), "%s", "profile");
	return 1;
}

static int
creds_step_profile(const struct creds_provider *p, struct creds *c,
                   struct err *e)
{
	struct awsconfig_profile cred, conf;
	const char *profile, *path;
	int is_explicit, rc;

	profile = awsconfig_profile_name(p->profile, &is_explicit);
	memset(&conf, 0, sizeof(conf));
	rc = awsconfig_read_profile(p->cred_path, AWSCONFIG_CREDENTIALS,
	                            profile, &cred, e);
	if (rc == 0)
		rc = awsconfig_read_profile(p->config_path, AWSCONFIG_CONFIG,
		                            profile, &conf, e);
	/* The credentials file wins over the config file, as in botocore. */
	if (rc == 0)
		rc = creds_profile_keys(&cred, profile, p->cred_path, c, e);
	if (rc == 0)
		rc = creds_profile_keys(&conf, profile, p->config_path, c, e);
	if (rc != 0)
		goto out;
	if (cred.unsupported[0] != '\0' || conf.unsupported[0] != '\0') {
		path =
		    cred.unsupported[0] != '\0' ? p->cred_path : p->config_path;
		err_set(e, ERR_CREDS,
		        "profile \"%s\" in %s uses %s, which imgsync does not "
		        "support; give the profile aws_access_key_id and "
		        "aws_secret_access_key, or use the environment, a "
		        "container or instance role",
		        profile, path,
		        cred.unsupported[0] != '\0' ? cred.unsupported
		                                    : conf.unsupported);
		rc = -1;
	} else if (is_explicit && !cred.found && !conf.found &&
	           strcmp(profile, "default") != 0) {
		err_set(e, ERR_CREDS, "profile \"%s\" not found in %s or %s",
		        profile, p->cred_path[0] ? p->cred_path : "(no HOME)",
		        p->config_path[0] ? p->config_path : "(no HOME)");
		rc = -1;
	}
out:
	explicit_bzero(&cred, sizeof(cred));
	explicit_bzero(&conf, sizeof(conf));
	return rc;
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
	if (rc != 0)
		return rc;
	return creds_imds_start(p);
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
	rc = creds_step_config(p, &c);
	if (rc == 0)
		rc = creds_step_env(&c, &e);
	if (rc == 0)
		rc = creds_step_profile(p, &c, &e);
	if (rc == 1)
		creds_core_finish(p, &c, NULL);
	else if (rc == -1)
		creds_core_finish(p, NULL, &e);
	else if ((rc = creds_step_network(p, &e)) == -1)
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
	if (creds_http_init(p, opts->loop, e) == -1)
		goto fail;
	return p;
fail:
	creds_core_destroy(p);
	return NULL;
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
	creds_http_cancel(p); /* its callback fires the waiters */
	creds_core_cancelled(p);
	creds_core_leave(p);
}

int
creds_provider_get(struct creds_provider *p, struct creds *out)
{
	time_t now = time(NULL);
	uint64_t now_ms;
	int valid;

	if (!p->have)
		return -1;
	valid = p->cached.expiration == 0 || now < p->cached.expiration;
	if (valid)
		*out = p->cached;
	if (p->cached.expiration == 0 || p->resolving || p->closing ||
	    now < p->cached.expiration - p->refresh_ahead_secs)
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
