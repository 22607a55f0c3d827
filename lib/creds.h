/*
 * creds: the AWS credential chain, in the SDKs' order:
 *   1. explicit keys from the configuration
 *   2. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (skipped when opts names a profile, as an explicit profile does in
 *      the SDKs; AWS_PROFILE does not)
 *   3. web identity from the environment: AWS_WEB_IDENTITY_TOKEN_FILE +
 *      AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME): AssumeRoleWithWebIdentity
 *   4. the profile (configured, else AWS_PROFILE, else "default") of the
 *      shared files, AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config, "[profile NAME]"), the credentials
 *      file's value of a key winning:
 *        role_arn with source_profile (any profile of these kinds: role
 *          chaining, a loop ends at 8) or credential_source (Environment,
 *          Ec2InstanceMetadata, EcsContainer), external_id,
 *          role_session_name, duration_seconds: AssumeRole, signed with
 *          the source's credentials;
 *        role_arn with web_identity_token_file: AssumeRoleWithWebIdentity;
 *        sso_session (its "[sso-session NAME]": sso_region, sso_start_url)
 *          or the legacy sso_start_url + sso_region, with sso_account_id
 *          and sso_role_name: the token `aws sso login` cached under
 *          ~/.aws/sso/cache, then SSO's GetRoleCredentials;
 *        aws_access_key_id + aws_secret_access_key of the credentials file;
 *        credential_process: a program run without a shell (JSON Version 1
 *          on its stdout, a deadline);
 *        the keys of the config file;
 *   5. container: AWS_CONTAINER_CREDENTIALS_FULL_URI or
 *      _RELATIVE_URI (on 169.254.170.2), with AWS_CONTAINER_AUTHORIZATION_TOKEN
 *      or _TOKEN_FILE (EKS Pod Identity: 169.254.170.23)
 *   6. EC2 instance metadata, IMDSv2 (token PUT, then role, then keys),
 *      unless AWS_EC2_METADATA_DISABLED=true; AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      overrides the address
 * STS is asked at https://sts.<region>.amazonaws.com (the region: opts,
 * else the profile's or AWS_REGION), or AWS_ENDPOINT_URL_STS /
 * AWS_ENDPOINT_URL; SSO at portal.sso.<sso_region>, or AWS_ENDPOINT_URL_SSO.
 * Temporary credentials are refreshed in the background ahead of their
 * expiry: when less than refresh_ahead_secs, or a third of their lifetime
 * if that is shorter, remains; the cached ones serve until then.
 *
 * A step that finds nothing hands over to the next one. A step that finds
 * something it cannot use ends the chain with ERR_CREDS naming the source
 * and why: a profile with only one of its two keys, mfa_serial (not
 * supported), an explicitly named profile that exists in neither file, a
 * role STS refuses (its code and message), a process that fails, hangs or
 * prints what is not the JSON asked for (with its stderr), an expired SSO
 * token, a container endpoint that fails or answers nonsense. Only one of
 * the two environment keys set is skipped, as the SDKs do. Secrets never
 * appear in an error message.
 *
 * The region and endpoints, read from the same files and environment, are
 * awsconfig.h's: they are not credentials.
 */
#ifndef IMGSYNC_CREDS_H
#define IMGSYNC_CREDS_H

#include <stdint.h>
#include <time.h>

#include "err.h"
#include "http.h"
#include "loop.h"

struct creds {
	char access_key_id[128];
	char secret_access_key[128];
	char session_token[4096]; /* "" when none */
	time_t expiration;        /* 0: does not expire */
	char source[32];          /* "config", "env", "profile", "container",
	                             "imds", "assume-role", "web-identity",
	                             "process", "sso" */
};

struct creds_opts {
	const char *access_key_id; /* explicit keys; NULL or "" to skip */
	const char *secret_access_key;
	const char *session_token;
	const char *profile;    /* NULL or "": $AWS_PROFILE or "default" */
	int refresh_ahead_secs; /* 0: 300 */
	/* Optional, borrowed: bounds each container (2 s) and instance
	 * metadata (1 s) attempt, as the SDKs do. NULL: http's own timeouts,
	 * which makes a chain that ends off EC2 much slower to give up. */
	struct loop *loop;
	/* STS's region: NULL or "": the profile's, AWS_REGION, us-east-1. */
	const char *region;
	/* How long a credential_process may take; 0: 30 s. It needs loop. */
	int process_timeout_ms;
};

struct creds_provider;

typedef void (*creds_done_cb)(const struct creds *c, const struct err *e,
                              void *arg);

/* http (may be NULL: no container or instance look-ups) and opts->loop are
 * borrowed and must outlive the provider; opts' strings are copied. Fails
 * with ERR_CONFIG when only one of the explicit keys is given. */
struct creds_provider *creds_provider_new(const struct creds_opts *opts,
                                          struct http *http, struct err *e);
void creds_provider_free(struct creds_provider *p);

/* Copies the cached credentials into out when they are valid now (not
 * expired), and returns 0; returns -1 when there are none yet or they have
 * expired. Starts a background refresh when they expire within
 * refresh_ahead_secs (at most one every 10 s; a failed refresh keeps the
 * cached credentials until they expire). */
int creds_provider_get(struct creds_provider *p, struct creds *out);

/* Resolves the chain (again). cb fires exactly once, also on
 * creds_provider_free (ERR_CANCEL). Concurrent calls share one resolution.
 * When no network look-up is needed, cb fires before this returns. Returns
 * -1 (and cb does not fire) only for a NULL cb, out of memory, or a provider
 * being freed. c is valid only during the callback; on success it is also
 * cached for creds_provider_get. */
int creds_provider_resolve(struct creds_provider *p, creds_done_cb cb,
                           void *arg, struct err *e);

#endif
