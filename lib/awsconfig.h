/*
 * awsconfig: the settings the AWS SDKs read outside the program's own
 * configuration, read the way they read them: the environment, the shared
 * credentials and config files (INI; the credentials file names sections
 * after the profile, the config file uses "[profile NAME]" and
 * "[default]"), the profile, the region and the service endpoints. It reads
 * and never decides: the credential chain (creds.c) says what a profile's
 * keys mean, the daemon says which region and endpoint to use.
 */
#ifndef IMGSYNC_AWSCONFIG_H
#define IMGSYNC_AWSCONFIG_H

#include <stddef.h>

#include "err.h"

/* A variable of the environment, NULL when unset or empty (the SDKs treat
 * both alike). */
const char *awsconfig_env(const char *name);
/* Whether a variable says "true" (in any case). */
int awsconfig_env_true(const char *name);

/* The shared files: AWS_SHARED_CREDENTIALS_FILE (awsconfig_credentials_path)
 * or AWS_CONFIG_FILE (awsconfig_config_path), with a leading "~/" expanded,
 * else $HOME/.aws/credentials or $HOME/.aws/config; "" when neither is
 * known or the path does not fit. */
void awsconfig_credentials_path(char *out, size_t outlen);
void awsconfig_config_path(char *out, size_t outlen);

/* The profile to read: configured (not NULL or ""), else $AWS_PROFILE, else
 * "default". *is_explicit says whether one of the first two named it. The
 * result is configured or points into the environment. */
const char *awsconfig_profile_name(const char *configured, int *is_explicit);

enum awsconfig_file {
	AWSCONFIG_CREDENTIALS, /* sections named after the profile */
	AWSCONFIG_CONFIG,      /* "[profile NAME]" and "[default]" */
	AWSCONFIG_SSO_SESSION, /* the config file's "[sso-session NAME]" */
};

/* One file's view of one profile (or sso-session section): each key as
 * written, "" when absent. */
struct awsconfig_profile {
	int found; /* the profile's section exists */
	char access_key_id[128];
	char secret_access_key[128];
	char session_token[4096];
	char region[64];
	/* assume role */
	char role_arn[256];
	char source_profile[128];
	char credential_source[32];
	char external_id[1280];
	char role_session_name[128];
	char duration_seconds[16];
	/* web identity; credential_process */
	char web_identity_token_file[1024];
	char credential_process[2048];
	/* SSO: the profile's, or the sso-session section's */
	char sso_session[128];
	char sso_start_url[512];
	char sso_region[64];
	char sso_account_id[32];
	char sso_role_name[128];
	char unsupported[32]; /* the first key naming a way to get credentials
	                         imgsync does not have: "mfa_serial" */
};

/* Reads profile's section of path (for AWSCONFIG_SSO_SESSION, the section
 * "[sso-session PROFILE]"). Keys are case-insensitive; indented
 * lines continue a property (nested settings such as "s3 =") and are
 * skipped. A missing file (or path "") is an empty one. Fails with
 * ERR_CREDS when the file cannot be read or a key is longer than its field.
 * out holds secrets: the caller wipes it. */
int awsconfig_read_profile(const char *path, enum awsconfig_file kind,
                           const char *profile, struct awsconfig_profile *out,
                           struct err *e);

/* Region and endpoints. Each returns the value in out (possibly "") and
 * never fails. service is the endpoint's service id: "s3", "dynamodb".
 * awsconfig_region: configured, else AWS_REGION, else AWS_DEFAULT_REGION,
 * else region= of the profile ($AWS_PROFILE or "default") in the config
 * file, else "us-east-1". awsconfig_region_profile reads the given profile
 * instead (NULL or "": as awsconfig_region). awsconfig_endpoint: configured,
 * else AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL (both ignored when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else "" (AWS's own). */
void awsconfig_region(const char *configured, char *out, size_t outlen);
void awsconfig_region_profile(const char *configured, const char *profile,
                              char *out, size_t outlen);
void awsconfig_endpoint(const char *service, const char *configured, char *out,
                        size_t outlen);

#endif
