/*
 * creds_profile: the chain's step over the shared files' profile (read by
 * awsconfig.c; the credentials file's value of a key wins), and which of
 * the other steps it asks for, in botocore's order: a role (role_arn, with
 * source_profile, credential_source or web_identity_token_file:
 * creds_sts.c), SSO (creds_sso.c), the credentials file's keys,
 * credential_process (creds_process.c), the config file's keys. As a
 * role's source (CREDS_ONLY_PROFILE) a profile must give something.
 */
#include "creds_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsconfig.h"

#define CREDS_MAX_NESTING 8

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

/* A key of the merged profile: the credentials file's value wins. */
static const char *
creds_pick(const char *cred, const char *conf)
{
	return cred[0] != '\0' ? cred : conf;
}

static int
creds_role_source(struct creds_provider *p, const char *profile,
                  const char *source_profile, const char *credential_source,
                  struct err *e)
{
	struct creds_role *r = &p->role;

	if (source_profile[0] != '\0') {
		r->source_kind = CREDS_ONLY_PROFILE;
		snprintf(r->source_profile, sizeof(r->source_profile), "%s",
		         source_profile);
		return 0;
	}
	if (strcmp(credential_source, "Environment") == 0)
		r->source_kind = CREDS_ONLY_ENV;
	else if (strcmp(credential_source, "Ec2InstanceMetadata") == 0)
		r->source_kind = CREDS_ONLY_IMDS;
	else if (strcmp(credential_source, "EcsContainer") == 0)
		r->source_kind = CREDS_ONLY_CONTAINER;
	else if (credential_source[0] != '\0') {
		err_set(
		    e, ERR_CREDS,
		    "profile \"%s\": credential_source \"%s\" is not one of "
		    "Environment, Ec2InstanceMetadata, EcsContainer",
		    profile, credential_source);
		return -1;
	} else {
		err_set(e, ERR_CREDS,
		        "profile \"%s\" has role_arn but no source_profile, "
		        "credential_source or web_identity_token_file",
		        profile);
		return -1;
	}
	return 0;
}

/* The profile's role (role_arn): p->role filled in. */
static int
creds_profile_role(struct creds_provider *p, const char *profile,
                   const struct awsconfig_profile *cred,
                   const struct awsconfig_profile *conf, struct err *e)
{
	struct creds_role *r = &p->role;
	const char *v;
	char *end;
	long d;

	if (p->nesting >= CREDS_MAX_NESTING) {
		err_set(e, ERR_CREDS,
		        "profile \"%s\": more than %d roles in a row through "
		        "source_profile (a loop?)",
		        profile, CREDS_MAX_NESTING);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	snprintf(r->profile, sizeof(r->profile), "%s", profile);
	snprintf(r->role_arn, sizeof(r->role_arn), "%s",
	         creds_pick(cred->role_arn, conf->role_arn));
	snprintf(r->session_name, sizeof(r->session_name), "%s",
	         creds_pick(cred->role_session_name, conf->role_session_name));
	snprintf(r->external_id, sizeof(r->external_id), "%s",
	         creds_pick(cred->external_id, conf->external_id));
	v = creds_pick(cred->duration_seconds, conf->duration_seconds);
	if (*v != '\0') {
		d = strtol(v, &end, 10);
		if (*end != '\0' || d < 1 || d > 43200) {
			err_set(
			    e, ERR_CREDS,
			    "profile \"%s\": duration_seconds \"%s\" is not "
			    "a number of seconds up to 43200",
			    profile, v);
			return -1;
		}
		r->duration = (int)d;
	}
	v = creds_pick(cred->web_identity_token_file,
	               conf->web_identity_token_file);
	if (*v != '\0') {
		r->web_identity = 1;
		snprintf(r->token_file, sizeof(r->token_file), "%s", v);
		return 0;
	}
	return creds_role_source(
	    p, profile, creds_pick(cred->source_profile, conf->source_profile),
	    creds_pick(cred->credential_source, conf->credential_source), e);
}

/* The profile's SSO settings (sso_session, or the legacy form). */
static int
creds_profile_sso(struct creds_provider *p, const char *profile,
                  const struct awsconfig_profile *conf, struct err *e)
{
	struct creds_sso_plan *o = &p->sso;
	struct awsconfig_profile sess;
	int rc;

	memset(o, 0, sizeof(*o));
	snprintf(o->profile, sizeof(o->profile), "%s", profile);
	snprintf(o->account_id, sizeof(o->account_id), "%s",
	         conf->sso_account_id);
	snprintf(o->role_name, sizeof(o->role_name), "%s", conf->sso_role_name);
	if (conf->sso_session[0] != '\0') {
		rc = awsconfig_read_profile(p->config_path,
		                            AWSCONFIG_SSO_SESSION,
		                            conf->sso_session, &sess, e);
		if (rc == 0 && !sess.found) {
			err_set(e, ERR_CREDS,
			        "profile \"%s\": no [sso-session %s] in %s",
			        profile, conf->sso_session, p->config_path);
			rc = -1;
		}
		snprintf(o->cache_key, sizeof(o->cache_key), "%s",
		         conf->sso_session);
		snprintf(o->region, sizeof(o->region), "%s", sess.sso_region);
		explicit_bzero(&sess, sizeof(sess));
		if (rc == -1)
			return -1;
	} else {
		snprintf(o->cache_key, sizeof(o->cache_key), "%s",
		         conf->sso_start_url);
		snprintf(o->region, sizeof(o->region), "%s", conf->sso_region);
	}
	if (o->region[0] == '\0' || o->account_id[0] == '\0' ||
	    o->role_name[0] == '\0') {
		err_set(e, ERR_CREDS,
		        "profile \"%s\": SSO needs sso_region, sso_account_id "
		        "and sso_role_name",
		        profile);
		return -1;
	}
	return 0;
}

/* What the profile asks for, in botocore's order: 1 keys in c, 0 nothing,
 * -1 e says why, CREDS_STARTED a step is running. */
static int
creds_profile_kind(struct creds_provider *p, const char *profile,
                   const struct awsconfig_profile *cred,
                   const struct awsconfig_profile *conf, struct creds *c,
                   struct err *e)
{
	const char *process;
	int rc;

	if (p->only == CREDS_ONLY_PROFILE && p->self_source) {
		/* A profile that is its own source: its keys. */
		rc = creds_profile_keys(cred, profile, p->cred_path, c, e);
		if (rc == 0)
			rc = creds_profile_keys(conf, profile, p->config_path,
			                        c, e);
		return rc;
	}
	if (creds_pick(cred->role_arn, conf->role_arn)[0] != '\0') {
		if (creds_profile_role(p, profile, cred, conf, e) == -1)
			return -1;
		return creds_sts_start(p, e) == -1 ? -1 : CREDS_STARTED;
	}
	if (conf->sso_session[0] != '\0' || conf->sso_start_url[0] != '\0') {
		if (creds_profile_sso(p, profile, conf, e) == -1)
			return -1;
		return creds_sso_start(p, e) == -1 ? -1 : CREDS_STARTED;
	}
	rc = creds_profile_keys(cred, profile, p->cred_path, c, e);
	if (rc != 0)
		return rc;
	process =
	    creds_pick(cred->credential_process, conf->credential_process);
	if (*process != '\0')
		return creds_process_start(p, process, profile, e) == -1
		           ? -1
		           : CREDS_STARTED;
	return creds_profile_keys(conf, profile, p->config_path, c, e);
}

int
creds_profile_step(struct creds_provider *p, struct creds *c, struct err *e)
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
	if (rc != 0)
		goto out;
	if (cred.unsupported[0] != '\0' || conf.unsupported[0] != '\0') {
		path =
		    cred.unsupported[0] != '\0' ? p->cred_path : p->config_path;
		err_set(e, ERR_CREDS,
		        "profile \"%s\" in %s uses %s, which imgsync does not "
		        "support (it runs unattended: no one can type an MFA "
		        "code); give the role a source without MFA",
		        profile, path,
		        cred.unsupported[0] != '\0' ? cred.unsupported
		                                    : conf.unsupported);
		rc = -1;
		goto out;
	}
	rc = creds_profile_kind(p, profile, &cred, &conf, c, e);
	if (rc == 0 && (is_explicit || p->only == CREDS_ONLY_PROFILE) &&
	    !cred.found && !conf.found && strcmp(profile, "default") != 0) {
		err_set(e, ERR_CREDS, "profile \"%s\" not found in %s or %s",
		        profile, p->cred_path[0] ? p->cred_path : "(no HOME)",
		        p->config_path[0] ? p->config_path : "(no HOME)");
		rc = -1;
	} else if (rc == 0 && p->only == CREDS_ONLY_PROFILE) {
		err_set(e, ERR_CREDS,
		        "source_profile \"%s\" gives no credentials", profile);
		rc = -1;
	}
out:
	explicit_bzero(&cred, sizeof(cred));
	explicit_bzero(&conf, sizeof(conf));
	return rc;
}
