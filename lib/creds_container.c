/*
 * creds_container: the chain's container step, for ECS task roles and EKS
 * Pod Identity: one GET of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 * 169.254.170.2), else of _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN
 * or the contents of _TOKEN_FILE as its Authorization header. Any failure
 * of it ends the chain, as in the SDKs: a container that is configured and
 * does not answer is a fault to report, not a reason to try the instance.
 * The request itself (deadline, retries) is creds_http.c's; its outcome
 * comes back through creds_container_ops.
 */
#include "creds_impl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "awsconfig.h"
#include "text.h"

#define CREDS_MAX_TOKEN_FILE (16 * 1024)
#define CREDS_ECS_HOST "http://169.254.170.2"

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
		        p->step.url, why);
	else
		err_set(&e, ERR_CREDS,
		        "container credentials from %s: HTTP %ld", p->step.url,
		        e.http_status);
	creds_core_finish(p, NULL, &e);
}

static void
creds_container_response(struct creds_provider *p, struct http_response *resp)
{
	struct creds c;
	struct err e;
	char what[sizeof(p->step.url) + 32];

	err_clear(&e);
	if (resp->status != 200) {
		e.http_status = resp->status;
		creds_container_failed(p, &e, NULL);
		return;
	}
	memset(&c, 0, sizeof(c));
	snprintf(what, sizeof(what), "container credentials from %s",
	         p->step.url);
	if (creds_http_from_json(&resp->body, 0, what, &c, &e) == 0)
		creds_core_finish(p, &c, NULL);
	else
		creds_core_finish(p, NULL, &e);
	explicit_bzero(&c, sizeof(c));
}

/* Where creds_http.c sends the outcome of the container request. */
static const struct creds_http_ops creds_container_ops = {
    .attempt_ms = CREDS_CONTAINER_ATTEMPT_MS,
    .response = creds_container_response,
    .failed = creds_container_failed,
};

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
	const char *path =
	    awsconfig_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = awsconfig_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
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
		t = text_trim(buf);
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
	p->step.auth = strdup(tok);
	if (p->step.auth == NULL) {
		err_sys(e, "strdup");
		goto fail;
	}
	explicit_bzero(buf, sizeof(buf));
	return 0;
fail:
	explicit_bzero(buf, sizeof(buf));
	return -1;
}

int
creds_container_start(struct creds_provider *p, struct err *e)
{
	const char *rel =
	    awsconfig_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = awsconfig_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct creds_http_step *s = &p->step;
	struct err se;
	int n;

	/* The relative URI wins, as in every SDK. */
	if (rel != NULL)
		n = snprintf(s->url, sizeof(s->url), "%s%s%s", CREDS_ECS_HOST,
		             *rel == '/' ? "" : "/", rel);
	else if (full != NULL)
		n = snprintf(s->url, sizeof(s->url), "%s", full);
	else
		return 0;
	if (n < 0 || (size_t)n >= sizeof(s->url)) {
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
		        s->url);
		return -1;
	}
	creds_core_free_secret(s->auth);
	s->auth = NULL;
	if (creds_container_token(p, e) == -1)
		return -1;
	s->stage = STAGE_CONTAINER;
	s->attempt = 1;
	s->method = "GET";
	s->hdr_name = s->auth != NULL ? "Authorization" : NULL;
	s->hdr_value = s->auth;
	err_clear(&se);
	if (creds_http_send(p, &creds_container_ops, &se) == -1) {
		*e = se;
		err_set(e, ERR_CREDS, "container credentials from %s: %s",
		        s->url, se.message);
		return -1;
	}
	return 1;
}
