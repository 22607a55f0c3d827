#include "creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CREDS_REFRESH_AHEAD_DEFAULT 300
#define CREDS_REFRESH_MIN_INTERVAL_MS 10000u
#define CREDS_ATTEMPTS 2
#define CREDS_CONTAINER_ATTEMPT_MS 2000
#define CREDS_IMDS_ATTEMPT_MS 1000
#define CREDS_MAX_RESPONSE (64u * 1024u)
#define CREDS_MAX_TOKEN_FILE (16 * 1024)

#define CREDS_ECS_HOST "http://169.254.170.2"
#define CREDS_IMDS_HOST "http://169.254.169.254"
#define CREDS_IMDS_HOST6 "http://[fd00:ec2::254]"
#define CREDS_IMDS_TOKEN_PATH "/latest/api/token"
#define CREDS_IMDS_ROLE_PATH "/latest/meta-data/iam/security-credentials/"

enum creds_stage {
	STAGE_CONTAINER,
	STAGE_IMDS_TOKEN,
	STAGE_IMDS_ROLE,
	STAGE_IMDS_CREDS,
};

struct creds_waiter {
	creds_done_cb cb;
	void *arg;
};

struct creds_provider {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *profile;
	int refresh_ahead_secs;
	struct http *http;        /* borrowed */
	struct loop_timer *timer; /* per-attempt deadline; NULL without loop */

	struct creds cached;
	int have;
	uint64_t last_refresh_ms; /* last background refresh started */

	struct creds_waiter *waiters;
	size_t nwaiters;
	size_t capwaiters;
	int resolving;

	/* Re-entrancy: a callback may free the provider; the outermost entry
	 * point does the actual freeing once it unwinds. */
	int depth;
	int closing;
	int free_pending;

	/* The network step in progress. */
	enum creds_stage stage;
	int attempt;
	int timed_out;
	struct http_xfer *xfer;
	const char *method;
	const char *hdr_name;
	const char *hdr_value;
	char *auth; /* container Authorization value */
	char url[4096];
	char imds_base[1024];
	char imds_token[1024];
	long v1_because; /* the token request's status when falling back */
	char role[128];
	char note[384]; /* why instance metadata found nothing */
	char cred_path[PATH_MAX];
	char config_path[PATH_MAX];
};

static void creds_on_http(struct http_response *resp, const struct err *he,
                          void *arg);

static const char *
creds_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
creds_env_true(const char *name)
{
	const char *v = creds_env(name);

	return v != NULL && strcasecmp(v, "true") == 0;
}

static int
creds_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static void
creds_copy_trunc(char *dst, size_t dstlen, const char *src)
{
	if (dstlen > 0)
		snprintf(dst, dstlen, "%s", src);
}

static char *
creds_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

/* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, with ~/ expanded, else
 * $HOME/.aws/<name>; "" when neither is known. */
static void
creds_file_path(const char *envname, const char *name, char *out, size_t outlen)
{
	const char *v = creds_env(envname), *home = creds_env("HOME");
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

static const char *
creds_profile_name(const char *configured, int *is_explicit)
{
	const char *v;

	if (configured != NULL && *configured != '\0')
		v = configured;
	else
		v = creds_env("AWS_PROFILE");
	*is_explicit = v != NULL;
	return v != NULL ? v : "default";
}

/* ISO-8601 / RFC 3339 date-time: 2026-11-22T12:00:00[.fff](Z|+hh:mm). */
static int
creds_digits(const char **pp, int n, int *out)
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

static int
creds_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	time_t t;

	if (creds_digits(&s, 4, &y) == -1 || *s++ != '-' ||
	    creds_digits(&s, 2, &mo) == -1 || *s++ != '-' ||
	    creds_digits(&s, 2, &d) == -1)
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (creds_digits(&s, 2, &h) == -1 || *s++ != ':' ||
	    creds_digits(&s, 2, &mi) == -1 || *s++ != ':' ||
	    creds_digits(&s, 2, &sec) == -1)
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
		if (creds_digits(&s, 2, &oh) == -1)
			return -1;
		if (*s == ':')
			s++;
		if (creds_digits(&s, 2, &om) == -1 || oh > 23 || om > 59)
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

static void
creds_format_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		creds_copy_trunc(out, outlen, "?");
}

/*
 * Shared files. Both are INI files; the credentials file names sections
 * after the profile, the config file uses "[profile NAME]" and "[default]".
 * Keys are case-insensitive, indented lines continue a property (nested
 * settings such as "s3 =") and are skipped.
 */
enum creds_ini_kind {
	INI_CREDENTIALS,
	INI_CONFIG,
};

struct creds_ini {
	int found; /* the profile's section exists */
	char access_key_id[128];
	char secret_access_key[128];
	char session_token[4096];
	char region[64];
	char unsupported[32]; /* a way to get credentials we do not have */
};

static const char *const creds_unsupported_keys[] = {
    "role_arn",      "credential_process",      "sso_session",
    "sso_start_url", "web_identity_token_file",
};

static int
creds_ini_section(enum creds_ini_kind kind, char *name, const char *profile)
{
	name = creds_trim(name);
	if (kind == INI_CREDENTIALS)
		return strcmp(name, profile) == 0;
	if (strcmp(name, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(name, "profile", 7) != 0 ||
	    (name[7] != ' ' && name[7] != '\t'))
		return 0;
	return strcmp(creds_trim(name + 7), profile) == 0;
}

static int
creds_ini_set(char *dst, size_t dstlen, const char *key, const char *value,
              const char *profile, const char *path, struct err *e)
{
	if (creds_copy(dst, dstlen, value) == 0)
		return 0;
	err_set(e, ERR_CREDS, "profile \"%s\" in %s: %s is too long (max %zu)",
	        profile, path, key, dstlen - 1);
	return -1;
}

static int
creds_ini_property(struct creds_ini *ini, char *line, const char *profile,
                   const char *path, struct err *e)
{
	char *eq, *key, *value;
	size_t i;

	eq = strchr(line, '=');
	if (eq == NULL)
		return 0;
	*eq = '\0';
	key = creds_trim(line);
	value = creds_trim(eq + 1);
	if (strcasecmp(key, "aws_access_key_id") == 0)
		return creds_ini_set(ini->access_key_id,
		                     sizeof(ini->access_key_id), key, value,
		                     profile, path, e);
	if (strcasecmp(key, "aws_secret_access_key") == 0)
		return creds_ini_set(ini->secret_access_key,
		                     sizeof(ini->secret_access_key), key, value,
		                     profile, path, e);
	if (strcasecmp(key, "aws_session_token") == 0)
		return creds_ini_set(ini->session_token,
		                     sizeof(ini->session_token), key, value,
		                     profile, path, e);
	if (strcasecmp(key, "region") == 0) {
		creds_copy_trunc(ini->region, sizeof(ini->region), value);
		return 0;
	}
	for (i = 0; i < sizeof(creds_unsupported_keys) /
	                    sizeof(creds_unsupported_keys[0]);
	     i++) {
		if (strcasecmp(key, creds_unsupported_keys[i]) == 0 &&
		    *value != '\0' && ini->unsupported[0] == '\0')
			creds_copy_trunc(ini->unsupported,
			                 sizeof(ini->unsupported),
			                 creds_unsupported_keys[i]);
	}
	return 0;
}

/* A missing file is an empty one; an unreadable one is an error. */
static int
creds_ini_read(const char *path, enum creds_ini_kind kind, const char *profile,
               struct creds_ini *ini, struct err *e)
{
	FILE *f;
	char *line = NULL, *s, *rb;
	size_t cap = 0;
	ssize_t n;
	int in_section = 0, had_property = 0, indented, rc = -1;

	memset(ini, 0, sizeof(*ini));
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
		s = creds_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			rb = strchr(s, ']');
			if (rb != NULL)
				*rb = '\0';
			in_section = rb != NULL &&
			             creds_ini_section(kind, s + 1, profile);
			if (in_section)
				ini->found = 1;
			had_property = 0;
			continue;
		}
		if (!in_section || (indented && had_property))
			continue;
		had_property = 1;
		if (creds_ini_property(ini, s, profile, path, e) == -1)
			goto out;
	}
	if (ferror(f)) {
		err_sys(e, "cannot read %s", path);
		e->kind = ERR_CREDS;
		goto out;
	}
	rc = 0;
out:
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return rc;
}

/*
 * The synchronous steps: 1 found (c filled in), 0 nothing, -1 error.
 */
static int
creds_step_config(const struct creds_provider *p, struct creds *c)
{
	if (p->access_key_id == NULL)
		return 0;
	/* Lengths were checked by creds_provider_new. */
	creds_copy(c->access_key_id, sizeof(c->access_key_id),
	           p->access_key_id);
	creds_copy(c->secret_access_key, sizeof(c->secret_access_key),
	           p->secret_access_key);
	if (p->session_token != NULL)
		creds_copy(c->session_token, sizeof(c->session_token),
		           p->session_token);
	creds_copy_trunc(c->source, sizeof(c->source), "config");
	return 1;
}

static int
creds_step_env(struct creds *c, struct err *e)
{
	const char *id = creds_env("AWS_ACCESS_KEY_ID");
	const char *secret = creds_env("AWS_SECRET_ACCESS_KEY");
	const char *token = creds_env("AWS_SESSION_TOKEN");

	if (id == NULL || secret == NULL)
		return 0;
	if (creds_copy(c->access_key_id, sizeof(c->access_key_id), id) == -1) {
		err_set(e, ERR_CREDS, "AWS_ACCESS_KEY_ID is too long");
		return -1;
	}
	if (creds_copy(c->secret_access_key, sizeof(c->secret_access_key),
	               secret) == -1) {
		err_set(e, ERR_CREDS, "AWS_SECRET_ACCESS_KEY is too long");
		return -1;
	}
	if (token != NULL &&
	    creds_copy(c->session_token, sizeof(c->session_token), token) ==
	        -1) {
		err_set(e, ERR_CREDS, "AWS_SESSION_TOKEN is too long");
		return -1;
	}
	creds_copy_trunc(c->source, sizeof(c->source), "env");
	return 1;
}

/* One file's view of the profile: keys it has, or why they are unusable. */
static int
creds_profile_keys(const struct creds_ini *ini, const char *profile,
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
	creds_copy_trunc(c->source, sizeof(c->source), "profile");
	return 1;
}

static int
creds_step_profile(const struct creds_provider *p, struct creds *c,
                   struct err *e)
{
	struct creds_ini cred, conf;
	const char *profile, *path;
	int is_explicit, rc;

	profile = creds_profile_name(p->profile, &is_explicit);
	memset(&conf, 0, sizeof(conf));
	rc = creds_ini_read(p->cred_path, INI_CREDENTIALS, profile, &cred, e);
	if (rc == 0)
		rc = creds_ini_read(p->config_path, INI_CONFIG, profile, &conf,
		                    e);
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
 * The JSON both the container endpoint and instance metadata answer with.
 */
static int
creds_json_string(json_t *root, const char *key, int required, char *dst,
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

static int
creds_from_json(const struct buf *body, int imds, const char *what,
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
	if (imds && creds_json_string(root, "Code", 0, code, sizeof(code), what,
	                              e) == -1)
		goto out;
	if (code[0] != '\0' && strcmp(code, "Success") != 0) {
		err_set(e, ERR_CREDS, "%s: Code is \"%s\", not \"Success\"",
		        what, code);
		goto out;
	}
	if (creds_json_string(root, "AccessKeyId", 1, c->access_key_id,
	                      sizeof(c->access_key_id), what, e) == -1 ||
	    creds_json_string(root, "SecretAccessKey", 1, c->secret_access_key,
	                      sizeof(c->secret_access_key), what, e) == -1 ||
	    creds_json_string(root, "Token", 0, c->session_token,
	                      sizeof(c->session_token), what, e) == -1 ||
	    creds_json_string(root, "Expiration", 0, expiration,
	                      sizeof(expiration), what, e) == -1)
		goto out;
	if (expiration[0] != '\0' &&
	    creds_parse_time(expiration, &c->expiration) == -1) {
		err_set(e, ERR_CREDS,
		        "%s: Expiration \"%s\" is not an ISO-8601 time", what,
		        expiration);
		goto out;
	}
	creds_copy_trunc(c->source, sizeof(c->source),
	                 imds ? "imds" : "container");
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/*
 * Resolution bookkeeping.
 */
static void
creds_destroy(struct creds_provider *p)
{
	loop_timer_free(p->timer);
	free(p->access_key_id);
	if (p->secret_access_key != NULL)
		explicit_bzero(p->secret_access_key,
		               strlen(p->secret_access_key));
	free(p->secret_access_key);
	if (p->session_token != NULL)
		explicit_bzero(p->session_token, strlen(p->session_token));
	free(p->session_token);
	free(p->profile);
	if (p->auth != NULL)
		explicit_bzero(p->auth, strlen(p->auth));
	free(p->auth);
	free(p->waiters);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

static void
creds_expired(const struct creds *c, struct err *e)
{
	char when[32];

	creds_format_time(c->expiration, when, sizeof(when));
	err_set(e, ERR_CREDS, "%s credentials expired already (Expiration %s)",
	        c->source, when);
}

static void
creds_enter(struct creds_provider *p)
{
	p->depth++;
}

/* After this, p may be gone. */
static void
creds_leave(struct creds_provider *p)
{
	if (--p->depth == 0 && p->free_pending)
		creds_destroy(p);
}

/* Ends the resolution: caches c (when set) and fires every waiter once. */
static void
creds_finish(struct creds_provider *p, const struct creds *c,
             const struct err *e)
{
	struct creds_waiter *w;
	struct creds copy;
	struct err ecopy;
	size_t n, i;

	if (!p->resolving)
		return;
	p->resolving = 0;
	p->xfer = NULL;
	if (p->timer != NULL)
		loop_timer_set(p->timer, -1);
	err_clear(&ecopy);
	if (c != NULL && c->expiration != 0 && c->expiration <= time(NULL)) {
		creds_expired(c, &ecopy);
		c = NULL;
	} else if (c == NULL) {
		ecopy = *e;
	}
	if (c != NULL) {
		copy = *c;
		p->cached = copy;
		p->have = 1;
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

static void
creds_cancelled(struct creds_provider *p)
{
	struct err e;

	err_clear(&e);
	err_set(&e, ERR_CANCEL, "credential provider freed");
	creds_finish(p, NULL, &e);
}

static void
creds_nothing(struct creds_provider *p)
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
	creds_finish(p, NULL, &e);
}

/*
 * The network steps: one request at a time, CREDS_ATTEMPTS tries on a
 * transport error, a timeout or a 5xx.
 */
static int
creds_send(struct creds_provider *p, struct err *e)
{
	struct http_request req;
	struct http_header h;

	memset(&req, 0, sizeof(req));
	req.method = p->method;
	req.url = p->url;
	req.body_fd = -1;
	req.max_response = CREDS_MAX_RESPONSE;
	if (p->hdr_name != NULL) {
		h.name = p->hdr_name;
		h.value = p->hdr_value;
		req.headers = &h;
		req.nheaders = 1;
	}
	p->timed_out = 0;
	p->xfer = http_send(p->http, &req, creds_on_http, p, e);
	if (p->xfer == NULL)
		return -1;
	if (p->timer != NULL)
		loop_timer_set(p->timer, p->stage == STAGE_CONTAINER
		                             ? CREDS_CONTAINER_ATTEMPT_MS
		                             : CREDS_IMDS_ATTEMPT_MS);
	return 0;
}

/* The container step failed (why == NULL: with cause's HTTP status); that
 * ends the chain, as in the SDKs. */
static void
creds_container_failed(struct creds_provider *p, const struct err *cause,
                       const char *why)
{
	struct err e;

	err_clear(&e);
	if (cause != NULL) {
		e.curl_code = cause->curl_code;
		e.http_status = cause->http_status;
	}
	if (why != NULL)
		err_set(&e, ERR_CREDS, "container credentials from %s: %s",
		        p->url, why);
	else
		err_set(&e, ERR_CREDS,
		        "container credentials from %s: HTTP %ld", p->url,
		        e.http_status);
	creds_finish(p, NULL, &e);
}

/* Instance metadata found nothing: say why and end the chain. */
static void
creds_imds_nothing(struct creds_provider *p, const char *why)
{
	/* 53 characters at most (a 20-character %ld): small enough that url,
	 * why and v1 at their precisions always fit in note (384). */
	char v1[56] = "";

	if (p->v1_because != 0 && p->stage != STAGE_IMDS_TOKEN)
		snprintf(v1, sizeof(v1), " (IMDSv1: the token request got %ld)",
		         p->v1_because);
	snprintf(p->note, sizeof(p->note), "%.200s: %.120s%s", p->url, why, v1);
	creds_nothing(p);
}

static void
creds_imds_status(struct creds_provider *p, const char *what, long status)
{
	char why[64];

	snprintf(why, sizeof(why), "%s request answered HTTP %ld", what,
	         status);
	creds_imds_nothing(p, why);
}

static void
creds_imds_request(struct creds_provider *p, enum creds_stage stage,
                   const char *method, const char *path)
{
	struct err e;
	int n;

	p->stage = stage;
	p->attempt = 1;
	p->method = method;
	if (stage == STAGE_IMDS_TOKEN) {
		p->hdr_name = "X-aws-ec2-metadata-token-ttl-seconds";
		p->hdr_value = "21600";
	} else if (p->imds_token[0] != '\0') {
		p->hdr_name = "X-aws-ec2-metadata-token";
		p->hdr_value = p->imds_token;
	} else {
		p->hdr_name = p->hdr_value = NULL;
	}
	n = snprintf(p->url, sizeof(p->url), "%s%s%s", p->imds_base, path,
	             stage == STAGE_IMDS_CREDS ? p->role : "");
	err_clear(&e);
	if (n < 0 || (size_t)n >= sizeof(p->url))
		creds_imds_nothing(p, "URL too long");
	else if (creds_send(p, &e) == -1)
		creds_imds_nothing(p, e.message);
}

static void
creds_imds_token(struct creds_provider *p, struct http_response *resp)
{
	char *tok;
	size_t i;

	if (resp->status == 403 || resp->status == 404 || resp->status == 405) {
		/* No IMDSv2 here: the SDKs fall back to IMDSv1. */
		if (creds_env_true("AWS_EC2_METADATA_V1_DISABLED")) {
			creds_imds_nothing(
			    p, "the token request was refused and "
			       "AWS_EC2_METADATA_V1_DISABLED is set");
			return;
		}
		p->imds_token[0] = '\0';
		p->v1_because = resp->status;
		creds_imds_request(p, STAGE_IMDS_ROLE, "GET",
		                   CREDS_IMDS_ROLE_PATH);
		return;
	}
	if (resp->status != 200) {
		creds_imds_status(p, "token", resp->status);
		return;
	}
	tok = resp->body.data != NULL ? creds_trim(resp->body.data) : "";
	for (i = 0; tok[i] != '\0'; i++)
		if (iscntrl((unsigned char)tok[i]))
			break;
	if (*tok == '\0' || tok[i] != '\0' ||
	    creds_copy(p->imds_token, sizeof(p->imds_token), tok) == -1) {
		creds_imds_nothing(p, "malformed session token");
		return;
	}
	creds_imds_request(p, STAGE_IMDS_ROLE, "GET", CREDS_IMDS_ROLE_PATH);
}

static void
creds_imds_role(struct creds_provider *p, struct http_response *resp)
{
	char *role, *nl;
	size_t n;

	if (resp->status == 404) {
		creds_imds_nothing(p, "no IAM role attached to the instance");
		return;
	}
	if (resp->status != 200) {
		creds_imds_status(p, "role", resp->status);
		return;
	}
	/* An empty answer has no buffer: no role (and nothing to trim in
	 * place: a string literal is read-only). */
	if (resp->body.data == NULL) {
		creds_imds_nothing(p, "no IAM role attached to the instance");
		return;
	}
	role = resp->body.data;
	nl = strchr(role, '\n');
	if (nl != NULL)
		*nl = '\0';
	role = creds_trim(role);
	n = strspn(role, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789+=,.@_-");
	if (*role == '\0') {
		creds_imds_nothing(p, "no IAM role attached to the instance");
		return;
	}
	if (role[n] != '\0' ||
	    creds_copy(p->role, sizeof(p->role), role) == -1) {
		creds_imds_nothing(p, "malformed IAM role name");
		return;
	}
	creds_imds_request(p, STAGE_IMDS_CREDS, "GET", CREDS_IMDS_ROLE_PATH);
}

static void
creds_imds_creds(struct creds_provider *p, struct http_response *resp)
{
	struct creds c;
	struct err e;
	char what[192];

	if (resp->status != 200) {
		creds_imds_status(p, "credentials", resp->status);
		return;
	}
	memset(&c, 0, sizeof(c));
	err_clear(&e);
	snprintf(what, sizeof(what), "instance metadata role \"%s\"", p->role);
	if (creds_from_json(&resp->body, 1, what, &c, &e) == 0)
		creds_finish(p, &c, NULL);
	else
		creds_finish(p, NULL, &e);
	explicit_bzero(&c, sizeof(c));
}

static void
creds_container_response(struct creds_provider *p, struct http_response *resp)
{
	struct creds c;
	struct err e;
	char what[sizeof(p->url) + 32];

	err_clear(&e);
	if (resp->status != 200) {
		e.http_status = resp->status;
		creds_container_failed(p, &e, NULL);
		return;
	}
	memset(&c, 0, sizeof(c));
	snprintf(what, sizeof(what), "container credentials from %s", p->url);
	if (creds_from_json(&resp->body, 0, what, &c, &e) == 0)
		creds_finish(p, &c, NULL);
	else
		creds_finish(p, NULL, &e);
	explicit_bzero(&c, sizeof(c));
}

/* A transport error or timeout that is out of attempts. */
static void
creds_step_failed(struct creds_provider *p, const struct err *he)
{
	char why[sizeof(he->message) + 32];

	if (p->timed_out)
		snprintf(why, sizeof(why), "timed out after %d ms",
		         p->stage == STAGE_CONTAINER
		             ? CREDS_CONTAINER_ATTEMPT_MS
		             : CREDS_IMDS_ATTEMPT_MS);
	else
		snprintf(why, sizeof(why), "%s", he->message);
	if (p->stage == STAGE_CONTAINER)
		creds_container_failed(p, he, why);
	else
		creds_imds_nothing(p, why);
}

static void
creds_retry(struct creds_provider *p)
{
	struct err e;

	p->attempt++;
	err_clear(&e);
	if (creds_send(p, &e) == -1)
		creds_step_failed(p, &e);
}

static void
creds_on_http(struct http_response *resp, const struct err *he, void *arg)
{
	struct creds_provider *p = arg;
	char why[64];

	creds_enter(p);
	p->xfer = NULL;
	if (p->timer != NULL)
		loop_timer_set(p->timer, -1);
	if (p->closing || !p->resolving) {
		creds_cancelled(p);
		goto out;
	}
	if (he != NULL && he->kind == ERR_CANCEL && !p->timed_out) {
		creds_finish(p, NULL, he); /* the http client went away */
		goto out;
	}
	if (he != NULL || resp->status >= 500) {
		if (p->attempt < CREDS_ATTEMPTS) {
			creds_retry(p);
			goto out;
		}
		if (he != NULL) {
			creds_step_failed(p, he);
			goto out;
		}
	}
	if (resp->status >= 500 && p->stage != STAGE_CONTAINER) {
		snprintf(why, sizeof(why), "HTTP %ld", resp->status);
		creds_imds_nothing(p, why);
		goto out;
	}
	switch (p->stage) {
	case STAGE_CONTAINER:
		creds_container_response(p, resp);
		break;
	case STAGE_IMDS_TOKEN:
		creds_imds_token(p, resp);
		break;
	case STAGE_IMDS_ROLE:
		creds_imds_role(p, resp);
		break;
	case STAGE_IMDS_CREDS:
		creds_imds_creds(p, resp);
		break;
	}
out:
	creds_leave(p);
}

static void
creds_on_timer(void *arg)
{
	struct creds_provider *p = arg;
	struct http_xfer *x = p->xfer;

	if (x == NULL)
		return;
	creds_enter(p);
	p->timed_out = 1;
	http_cancel(x); /* creds_on_http retries or moves on */
	creds_leave(p);
}

/*
 * Only plain http to the link-local ECS/EKS agents or loopback, as the SDKs
 * allow; any host over https. Host names other than localhost are refused
 * rather than resolved: resolving would block the loop.
 */
static int
creds_container_host_ok(const char *url, struct err *e)
{
	const char *h, *end;
	char host[256];
	unsigned char a[16];
	static const unsigned char eks6[16] = {
	    0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x23};
	size_t len;

	if (strncasecmp(url, "https://", 8) == 0)
		return 0;
	if (strncasecmp(url, "http://", 7) != 0) {
		err_set(e, ERR_CREDS,
		        "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http or "
		        "https URL");
		return -1;
	}
	h = url + 7;
	end = h + strcspn(h, "/?#");
	for (const char *at = h; at < end; at++)
		if (*at == '@')
			h = at + 1;
	if (*h == '[') {
		h++;
		len = strcspn(h, "]");
	} else {
		len = strcspn(h, ":/?#");
	}
	if (len == 0 || len >= sizeof(host) || h + len > end)
		goto bad;
	memcpy(host, h, len);
	host[len] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 0;
	if (inet_pton(AF_INET, host, a) == 1) {
		if (a[0] == 127 || (a[0] == 169 && a[1] == 254 && a[2] == 170 &&
		                    (a[3] == 2 || a[3] == 23)))
			return 0;
		goto bad;
	}
	if (inet_pton(AF_INET6, host, a) == 1) {
		if (memcmp(a, eks6, 16) == 0 ||
		    memcmp(a, &in6addr_loopback, 16) == 0)
			return 0;
	}
bad:
	err_set(
	    e, ERR_CREDS,
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI: host \"%.*s\" is not allowed "
	    "over http (only loopback, 169.254.170.2, 169.254.170.23 and "
	    "fd00:ec2::23; use https for other hosts)",
	    (int)(end - h > 64 ? 64 : end - h), h);
	return -1;
}

static int
creds_container_token(struct creds_provider *p, struct err *e)
{
	const char *path = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char buf[CREDS_MAX_TOKEN_FILE + 1], *t;
	FILE *f;
	size_t n, i;

	buf[0] = '\0';
	if (path != NULL) {
		/* Read every time: EKS Pod Identity rotates the file. */
		f = fopen(path, "re");
		if (f == NULL) {
			err_sys(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
			        path);
			e->kind = ERR_CREDS;
			return -1;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		if (ferror(f)) {
			err_sys(e, "reading %s", path);
			e->kind = ERR_CREDS;
			fclose(f);
			goto fail;
		}
		fclose(f);
		if (n == sizeof(buf) - 1) {
			err_set(e, ERR_CREDS, "%s: token too long", path);
			goto fail;
		}
		if (memchr(buf, '\0', n) != NULL) {
			err_set(e, ERR_CREDS, "%s: token has a NUL byte", path);
			goto fail;
		}
		t = creds_trim(buf);
		tok = t;
	}
	if (tok == NULL)
		return 0;
	for (i = 0; tok[i] != '\0'; i++) {
		if (tok[i] == '\r' || tok[i] == '\n') {
			err_set(
			    e, ERR_CREDS,
			    "the container authorization token is not a legal "
			    "header value");
			goto fail;
		}
	}
	p->auth = strdup(tok);
	if (p->auth == NULL) {
		err_sys(e, "strdup");
		goto fail;
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
fail:
	explicit_bzero(buf, sizeof(buf));
	return -1;
}

/* 1 started, 0 not configured, -1 error. */
static int
creds_container_start(struct creds_provider *p, struct err *e)
{
	const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct err se;
	int n;

	/* The relative URI wins, as in every SDK. */
	if (rel != NULL)
		n = snprintf(p->url, sizeof(p->url), "%s%s%s", CREDS_ECS_HOST,
		             *rel == '/' ? "" : "/", rel);
	else if (full != NULL)
		n = snprintf(p->url, sizeof(p->url), "%s", full);
	else
		return 0;
	if (n < 0 || (size_t)n >= sizeof(p->url)) {
		err_set(e, ERR_CREDS,
		        "the container credentials URI is too "
		        "long");
		return -1;
	}
	if (rel == NULL && creds_container_host_ok(full, e) == -1)
		return -1;
	if (p->http == NULL) {
		err_set(e, ERR_CREDS,
		        "container credentials from %s: no HTTP client",
		        p->url);
		return -1;
	}
	if (p->auth != NULL) {
		explicit_bzero(p->auth, strlen(p->auth));
		free(p->auth);
		p->auth = NULL;
	}
	if (creds_container_token(p, e) == -1)
		return -1;
	p->stage = STAGE_CONTAINER;
	p->attempt = 1;
	p->method = "GET";
	p->hdr_name = p->auth != NULL ? "Authorization" : NULL;
	p->hdr_value = p->auth;
	err_clear(&se);
	if (creds_send(p, &se) == -1) {
		*e = se;
		err_set(e, ERR_CREDS, "container credentials from %s: %s",
		        p->url, se.message);
		return -1;
	}
	return 1;
}

/* 1 started, 0 nothing to try (p->note says why). */
static int
creds_imds_start(struct creds_provider *p)
{
	const char *ep = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	size_t n;

	if (creds_env_true("AWS_EC2_METADATA_DISABLED")) {
		creds_copy_trunc(p->note, sizeof(p->note),
		                 "disabled by AWS_EC2_METADATA_DISABLED");
		return 0;
	}
	if (p->http == NULL) {
		creds_copy_trunc(p->note, sizeof(p->note), "no HTTP client");
		return 0;
	}
	if (ep == NULL)
		ep = mode != NULL && strcasecmp(mode, "IPv6") == 0
		         ? CREDS_IMDS_HOST6
		         : CREDS_IMDS_HOST;
	if (creds_copy(p->imds_base, sizeof(p->imds_base), ep) == -1) {
		creds_copy_trunc(
		    p->note, sizeof(p->note),
		    "AWS_EC2_METADATA_SERVICE_ENDPOINT is too long");
		return 0;
	}
	n = strlen(p->imds_base);
	while (n > 0 && p->imds_base[n - 1] == '/')
		p->imds_base[--n] = '\0';
	p->imds_token[0] = '\0';
	p->v1_because = 0;
	p->role[0] = '\0';
	/* creds_imds_request ends the chain itself when it cannot send. */
	creds_imds_request(p, STAGE_IMDS_TOKEN, "PUT", CREDS_IMDS_TOKEN_PATH);
	return 1;
}

static void
creds_chain_start(struct creds_provider *p)
{
	struct creds c;
	struct err e;
	int rc;

	p->resolving = 1;
	p->note[0] = '\0';
	creds_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials",
	                p->cred_path, sizeof(p->cred_path));
	creds_file_path("AWS_CONFIG_FILE", "config", p->config_path,
	                sizeof(p->config_path));
	memset(&c, 0, sizeof(c));
	err_clear(&e);
	rc = creds_step_config(p, &c);
	if (rc == 0)
		rc = creds_step_env(&c, &e);
	if (rc == 0)
		rc = creds_step_profile(p, &c, &e);
	if (rc == 1)
		creds_finish(p, &c, NULL);
	else if (rc == -1)
		creds_finish(p, NULL, &e);
	else if ((rc = creds_container_start(p, &e)) == -1)
		creds_finish(p, NULL, &e);
	else if (rc == 0 && creds_imds_start(p) == 0)
		creds_nothing(p);
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
	if (opts->loop != NULL) {
		p->timer = loop_timer_new(opts->loop, creds_on_timer, p, e);
		if (p->timer == NULL)
			goto fail;
	}
	return p;
fail:
	creds_destroy(p);
	return NULL;
}

void
creds_provider_free(struct creds_provider *p)
{
	struct http_xfer *x;

	if (p == NULL)
		return;
	p->free_pending = 1;
	if (p->closing)
		return; /* called again from a callback we are firing */
	p->closing = 1;
	creds_enter(p);
	x = p->xfer;
	if (x != NULL) {
		p->xfer = NULL;
		http_cancel(x); /* creds_on_http fires the waiters */
	}
	creds_cancelled(p);
	creds_leave(p);
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
	creds_enter(p);
	creds_chain_start(p);
	creds_leave(p);
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
	creds_enter(p);
	creds_chain_start(p);
	creds_leave(p);
	return 0;
}

void
creds_region_profile(const char *configured, const char *profile, char *out,
                     size_t outlen)
{
	struct creds_ini ini;
	struct err e;
	char path[PATH_MAX];
	const char *v;
	int is_explicit;

	if (outlen == 0)
		return;
	if (configured != NULL && *configured != '\0') {
		creds_copy_trunc(out, outlen, configured);
		return;
	}
	v = creds_env("AWS_REGION");
	if (v == NULL)
		v = creds_env("AWS_DEFAULT_REGION");
	if (v != NULL) {
		creds_copy_trunc(out, outlen, v);
		return;
	}
	creds_file_path("AWS_CONFIG_FILE", "config", path, sizeof(path));
	err_clear(&e);
	if (creds_ini_read(path, INI_CONFIG,
	                   creds_profile_name(profile, &is_explicit), &ini,
	                   &e) == 0 &&
	    ini.region[0] != '\0')
		creds_copy_trunc(out, outlen, ini.region);
	else
		creds_copy_trunc(out, outlen, "us-east-1");
	explicit_bzero(&ini, sizeof(ini));
}

void
creds_region(const char *configured, char *out, size_t outlen)
{
	creds_region_profile(configured, NULL, out, outlen);
}

/* AWS_ENDPOINT_URL_<service id, upper case, other characters as '_'>. */
static const char *
creds_service_endpoint(const char *service)
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
	return creds_env(name);
}

void
creds_endpoint(const char *service, const char *configured, char *out,
               size_t outlen)
{
	const char *v = NULL;

	if (outlen == 0)
		return;
	if (configured != NULL && *configured != '\0') {
		creds_copy_trunc(out, outlen, configured);
		return;
	}
	if (!creds_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		if (service != NULL && *service != '\0')
			v = creds_service_endpoint(service);
		if (v == NULL)
			v = creds_env("AWS_ENDPOINT_URL");
	}
	creds_copy_trunc(out, outlen, v != NULL ? v : "");
}
