/*
 * awsconfig: the environment, the shared credentials and config files, the
 * profile, region and endpoints, as the AWS SDKs read them (botocore's
 * order and spelling). Nothing here holds state between calls: the files
 * are read again each time, so an edit to ~/.aws takes effect at the next
 * credential resolution.
 */
#include "awsconfig.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "text.h"

static const char *const awsconfig_unsupported_keys[] = {
    "mfa_serial",
};

#define AWSCONFIG_FIELD(f)                                                     \
	{                                                                      \
#f, offsetof(struct awsconfig_profile, f),                     \
		    sizeof(((struct awsconfig_profile *)0)->f)                 \
	}

/* The keys read, each into the field of its name. */
static const struct {
	const char *key;
	size_t off, len;
} awsconfig_fields[] = {
    {"aws_access_key_id", offsetof(struct awsconfig_profile, access_key_id),
     sizeof(((struct awsconfig_profile *)0)->access_key_id)},
    {"aws_secret_access_key",
     offsetof(struct awsconfig_profile, secret_access_key),
     sizeof(((struct awsconfig_profile *)0)->secret_access_key)},
    {"aws_session_token", offsetof(struct awsconfig_profile, session_token),
     sizeof(((struct awsconfig_profile *)0)->session_token)},
    AWSCONFIG_FIELD(region),
    AWSCONFIG_FIELD(role_arn),
    AWSCONFIG_FIELD(source_profile),
    AWSCONFIG_FIELD(credential_source),
    AWSCONFIG_FIELD(external_id),
    AWSCONFIG_FIELD(role_session_name),
    AWSCONFIG_FIELD(duration_seconds),
    AWSCONFIG_FIELD(web_identity_token_file),
    AWSCONFIG_FIELD(credential_process),
    AWSCONFIG_FIELD(sso_session),
    AWSCONFIG_FIELD(sso_start_url),
    AWSCONFIG_FIELD(sso_region),
    AWSCONFIG_FIELD(sso_account_id),
    AWSCONFIG_FIELD(sso_role_name),
};

const char *
awsconfig_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

int
awsconfig_env_true(const char *name)
{
	const char *v = awsconfig_env(name);

	return v != NULL && strcasecmp(v, "true") == 0;
}

static void
awsconfig_file_path(const char *envname, const char *name, char *out,
                    size_t outlen)
{
	const char *v = awsconfig_env(envname), *home = awsconfig_env("HOME");
	int n;

	if (v != NULL && strncmp(v, "~/", 2) == 0 && home != NULL)
		n = snprintf(out, outlen, "%s%s", home, v + 1);
	else if (v != NULL)
		n = snprintf(out, outlen, "%s", v);
	else if (home != NULL)
		n = snprintf(out, outlen, "%s/.aws/%s", home, name);
	else
		n = snprintf(out, outlen, "%s", "");
	if (n < 0 || (size_t)n >= outlen)
		out[0] = '\0';
}

void
awsconfig_credentials_path(char *out, size_t outlen)
{
	awsconfig_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", out,
	                    outlen);
}

void
awsconfig_config_path(char *out, size_t outlen)
{
	awsconfig_file_path("AWS_CONFIG_FILE", "config", out, outlen);
}

const char *
awsconfig_profile_name(const char *configured, int *is_explicit)
{
	const char *v;

	if (configured != NULL && *configured != '\0')
		v = configured;
	else
		v = awsconfig_env("AWS_PROFILE");
	*is_explicit = v != NULL;
	return v != NULL ? v : "default";
}

/*
 * The INI reader.
 */
static int
awsconfig_is_section(enum awsconfig_file kind, char *name, const char *profile)
{
	name = text_trim(name);
	if (kind == AWSCONFIG_CREDENTIALS)
		return strcmp(name, profile) == 0;
	if (kind == AWSCONFIG_SSO_SESSION)
		return strncmp(name, "sso-session", 11) == 0 &&
		       (name[11] == ' ' || name[11] == '\t') &&
		       strcmp(text_trim(name + 11), profile) == 0;
	if (strcmp(name, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(name, "profile", 7) != 0 ||
	    (name[7] != ' ' && name[7] != '\t'))
		return 0;
	return strcmp(text_trim(name + 7), profile) == 0;
}

static int
awsconfig_set(char *dst, size_t dstlen, const char *key, const char *value,
              const char *profile, const char *path, struct err *e)
{
	size_t n = strlen(value);

	if (n < dstlen) {
		memcpy(dst, value, n + 1);
		return 0;
	}
	err_set(e, ERR_CREDS, "profile \"%s\" in %s: %s is too long (max %zu)",
	        profile, path, key, dstlen - 1);
	return -1;
}

static int
awsconfig_property(struct awsconfig_profile *prof, char *line,
                   const char *profile, const char *path, struct err *e)
{
	char *eq, *key, *value;
	size_t i;

	eq = strchr(line, '=');
	if (eq == NULL)
		return 0;
	*eq = '\0';
	key = text_trim(line);
	value = text_trim(eq + 1);
	for (i = 0; i < sizeof(awsconfig_fields) / sizeof(awsconfig_fields[0]);
	     i++) {
		if (strcasecmp(key, awsconfig_fields[i].key) == 0)
			return awsconfig_set((char *)prof +
			                         awsconfig_fields[i].off,
			                     awsconfig_fields[i].len, key,
			                     value, profile, path, e);
	}
	for (i = 0; i < sizeof(awsconfig_unsupported_keys) /
	                    sizeof(awsconfig_unsupported_keys[0]);
	     i++) {
		if (strcasecmp(key, awsconfig_unsupported_keys[i]) == 0 &&
		    *value != '\0' && prof->unsupported[0] == '\0')
			snprintf(prof->unsupported, sizeof(prof->unsupported),
			         "%s", awsconfig_unsupported_keys[i]);
	}
	return 0;
}

int
awsconfig_read_profile(const char *path, enum awsconfig_file kind,
                       const char *profile, struct awsconfig_profile *out,
                       struct err *e)
{
	FILE *f;
	char *line = NULL, *s, *rb;
	size_t cap = 0;
	ssize_t n;
	int in_section = 0, had_property = 0, indented, rc = -1;

	memset(out, 0, sizeof(*out));
	if (*path == '\0')
		return 0;
	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		err_sys(e, "cannot open %s", path);
		e->kind = ERR_CREDS;
		return -1;
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		indented = line[0] == ' ' || line[0] == '\t';
		s = text_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			rb = strchr(s, ']');
			if (rb != NULL)
				*rb = '\0';
			in_section = rb != NULL &&
			             awsconfig_is_section(kind, s + 1, profile);
			if (in_section)
				out->found = 1;
			had_property = 0;
			continue;
		}
		if (!in_section || (indented && had_property))
			continue;
		had_property = 1;
		if (awsconfig_property(out, s, profile, path, e) == -1)
			goto out;
	}
	if (ferror(f)) {
		err_sys(e, "cannot read %s", path);
		e->kind = ERR_CREDS;
		goto out;
	}
	rc = 0;
out:
	/* The line may hold a secret. */
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return rc;
}

/*
 * Region and endpoints.
 */
void
awsconfig_region_profile(const char *configured, const char *profile, char *out,
                         size_t outlen)
{
	struct awsconfig_profile prof;
	struct err e;
	char path[PATH_MAX];
	const char *v;
	int is_explicit;

	if (outlen == 0)
		return;
	if (configured != NULL && *configured != '\0') {
		snprintf(out, outlen, "%s", configured);
		return;
	}
	v = awsconfig_env("AWS_REGION");
	if (v == NULL)
		v = awsconfig_env("AWS_DEFAULT_REGION");
	if (v != NULL) {
		snprintf(out, outlen, "%s", v);
		return;
	}
	awsconfig_config_path(path, sizeof(path));
	err_clear(&e);
	if (awsconfig_read_profile(
	        path, AWSCONFIG_CONFIG,
	        awsconfig_profile_name(profile, &is_explicit), &prof,
	        &e) == 0 &&
	    prof.region[0] != '\0')
		snprintf(out, outlen, "%s", prof.region);
	else
		snprintf(out, outlen, "%s", "us-east-1");
	explicit_bzero(&prof, sizeof(prof));
}

void
awsconfig_region(const char *configured, char *out, size_t outlen)
{
	awsconfig_region_profile(configured, NULL, out, outlen);
}

/* AWS_ENDPOINT_URL_<service id, upper case, other characters as '_'>. */
static const char *
awsconfig_service_endpoint(const char *service)
{
	char name[64];
	size_t i, n;

	n = (size_t)snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s",
	                     service);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	for (i = sizeof("AWS_ENDPOINT_URL_") - 1; i < n; i++)
		name[i] = isalnum((unsigned char)name[i])
		              ? (char)toupper((unsigned char)name[i])
		              : '_';
	return awsconfig_env(name);
}

void
awsconfig_endpoint(const char *service, const char *configured, char *out,
                   size_t outlen)
{
	const char *v = NULL;

	if (outlen == 0)
		return;
	if (configured != NULL && *configured != '\0') {
		snprintf(out, outlen, "%s", configured);
		return;
	}
	if (!awsconfig_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		if (service != NULL && *service != '\0')
			v = awsconfig_service_endpoint(service);
		if (v == NULL)
			v = awsconfig_env("AWS_ENDPOINT_URL");
	}
	snprintf(out, outlen, "%s", v != NULL ? v : "");
}
