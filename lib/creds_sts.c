/*
 * creds_sts: the chain's steps that ask AWS STS for a role's temporary
 * credentials.
 *
 *   assume role   a profile's role_arn, with source_profile (whatever that
 *                 profile gives: keys, another role, a process...) or
 *                 credential_source (Environment, Ec2InstanceMetadata,
 *                 EcsContainer). The source comes first, from a provider
 *                 of its own (creds.c lends it through struct creds_chain),
 *                 then AssumeRole, signed with the source's keys.
 *   web identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or a
 *                 profile's web_identity_token_file + role_arn:
 *                 AssumeRoleWithWebIdentity, unsigned, with the token read
 *                 from the file at each refresh (EKS rotates it).
 *
 * STS's regional endpoint, https://sts.<region>.amazonaws.com, unless
 * AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL) says otherwise. The query
 * protocol: a form body, an XML answer; an error names the role, the
 * source and STS's code and message, never a key or the token.
 */
#include "creds_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awsconfig.h"
#include "sigv4.h"
#include "xml.h"

#define CREDS_STS_MAX_TOKEN (64 * 1024)

/* The answer's fields, read from the XML. */
struct creds_sts_answer {
	struct creds c;
	char expiration[64];
	char code[64];
	char message[512];
	int too_long;
};

static int
creds_sts_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct creds_sts_answer *a = arg;
	const char *leaf = strrchr(path, '/');
	char *dst = NULL;
	size_t dstlen = 0;

	leaf = leaf != NULL ? leaf + 1 : path;
	if (strstr(path, "/Credentials/") != NULL) {
		if (strcmp(leaf, "AccessKeyId") == 0) {
			dst = a->c.access_key_id;
			dstlen = sizeof(a->c.access_key_id);
		} else if (strcmp(leaf, "SecretAccessKey") == 0) {
			dst = a->c.secret_access_key;
			dstlen = sizeof(a->c.secret_access_key);
		} else if (strcmp(leaf, "SessionToken") == 0) {
			dst = a->c.session_token;
			dstlen = sizeof(a->c.session_token);
		} else if (strcmp(leaf, "Expiration") == 0) {
			dst = a->expiration;
			dstlen = sizeof(a->expiration);
		}
	} else if (strstr(path, "Error/") != NULL) {
		if (strcmp(leaf, "Code") == 0) {
			dst = a->code;
			dstlen = sizeof(a->code);
		} else if (strcmp(leaf, "Message") == 0) {
			/* cut to fit: only a message */
			if (len >= sizeof(a->message))
				len = sizeof(a->message) - 1;
			dst = a->message;
			dstlen = sizeof(a->message);
		}
	}
	if (dst == NULL)
		return 0;
	if (len >= dstlen) {
		a->too_long = 1;
		return 0;
	}
	memcpy(dst, text, len);
	dst[len] = '\0';
	return 0;
}

/* What the role and its source are, for messages. */
static void
creds_sts_what(const struct creds_provider *p, char *out, size_t outlen)
{
	const struct creds_role *r = &p->role;
	const char *src;

	if (r->web_identity) {
		snprintf(out, outlen,
		         "web identity (AssumeRoleWithWebIdentity) of %.256s "
		         "with the token in %.300s%s%.128s%s",
		         r->role_arn, r->token_file,
		         r->profile[0] ? " (profile \"" : " (environment",
		         r->profile, r->profile[0] ? "\")" : ")");
		return;
	}
	switch (r->source_kind) {
	case CREDS_ONLY_ENV:
		src = "the environment's keys";
		break;
	case CREDS_ONLY_IMDS:
		src = "the instance's role";
		break;
	case CREDS_ONLY_CONTAINER:
		src = "the container's role";
		break;
	default:
		src = NULL;
		break;
	}
	if (src != NULL)
		snprintf(out, outlen,
		         "assuming %.256s (profile \"%.128s\", "
		         "credential_source: %s)",
		         r->role_arn, r->profile, src);
	else
		snprintf(out, outlen,
		         "assuming %.256s (profile \"%.128s\", source_profile "
		         "\"%.128s\")",
		         r->role_arn, r->profile, r->source_profile);
}

static void
creds_sts_fail(struct creds_provider *p, const struct err *cause,
               const char *lead, const char *detail)
{
	char what[1024];
	struct err e;

	creds_sts_what(p, what, sizeof(what));
	err_clear(&e);
	if (cause != NULL) {
		e.http_status = cause->http_status;
		e.curl_code = cause->curl_code;
		snprintf(e.code, sizeof(e.code), "%s", cause->code);
	}
	err_set(&e, ERR_CREDS, "%s: %s%s", what, lead, detail);
	creds_http_clear_extra(p);
	creds_core_finish(p, NULL, &e);
}

static void
creds_sts_response(struct creds_provider *p, struct http_response *resp)
{
	struct creds_sts_answer a;
	struct err perr, cause;
	char detail[700];

	memset(&a, 0, sizeof(a));
	err_clear(&perr);
	creds_http_clear_extra(p);
	if (xml_parse(resp->body.data != NULL ? resp->body.data : "",
	              resp->body.len, creds_sts_elem, &a, &perr) == -1)
		a.code[0] = '\0';
	if (resp->status != 200) {
		err_clear(&cause);
		cause.http_status = resp->status;
		snprintf(cause.code, sizeof(cause.code), "%s", a.code);
		snprintf(detail, sizeof(detail), "STS answered HTTP %ld %s%s%s",
		         resp->status, a.code[0] ? a.code : "(no code)",
		         a.message[0] ? ": " : "", a.message);
		creds_sts_fail(p, &cause, "refused: ", detail);
		goto out;
	}
	if (a.too_long || a.c.access_key_id[0] == '\0' ||
	    a.c.secret_access_key[0] == '\0' || a.c.session_token[0] == '\0' ||
	    creds_http_parse_time(a.expiration, &a.c.expiration) == -1) {
		creds_sts_fail(p, NULL, "",
		               "STS's answer has no usable Credentials");
		goto out;
	}
	snprintf(a.c.source, sizeof(a.c.source), "%s",
	         p->role.web_identity ? "web-identity" : "assume-role");
	creds_core_finish(p, &a.c, NULL);
out:
	explicit_bzero(&a, sizeof(a));
}

static void
creds_sts_failed(struct creds_provider *p, const struct err *cause,
                 const char *why)
{
	creds_sts_fail(p, cause, "STS did not answer: ", why);
}

static const struct creds_http_ops creds_sts_ops = {
    .attempt_ms = 10000,
    .response = creds_sts_response,
    .failed = creds_sts_failed,
};

/* The STS endpoint's URL (no trailing slash) and host. */
static int
creds_sts_endpoint(struct creds_provider *p, char *url, size_t urllen,
                   char *region, size_t reglen)
{
	char ep[1024];

	if (p->region != NULL)
		snprintf(region, reglen, "%s", p->region);
	else
		awsconfig_region_profile(NULL, p->role.profile, region, reglen);
	awsconfig_endpoint("sts", NULL, ep, sizeof(ep));
	if (ep[0] == '\0')
		snprintf(ep, sizeof(ep), "https://sts.%s.amazonaws.com",
		         region);
	if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
		return -1;
	if (snprintf(url, urllen, "%s", ep) >= (int)urllen)
		return -1;
	while (url[0] != '\0' && url[strlen(url) - 1] == '/')
		url[strlen(url) - 1] = '\0';
	/* Signed as "/": an endpoint with a path would not match. */
	if (strchr(strstr(url, "://") + 3, '/') != NULL)
		return -1;
	return 0;
}

/* name=value& into the form body, URI-encoded. */
static void
creds_sts_param(struct buf *b, const char *name, const char *value)
{
	if (b->len > 0)
		buf_putc(b, '&');
	buf_puts(b, name);
	buf_putc(b, '=');
	sigv4_uri_encode(b, value, strlen(value), 0);
}

/* The session's name: the profile's, else "imgsync-<unix time>". */
static void
creds_sts_session(const struct creds_provider *p, char *out, size_t outlen)
{
	if (p->role.session_name[0] != '\0')
		snprintf(out, outlen, "%s", p->role.session_name);
	else
		snprintf(out, outlen, "imgsync-%lld", (long long)time(NULL));
}

/* Keeps a header value for the request (freed by creds_http_clear_extra). */
static int
creds_sts_header(struct creds_provider *p, const char *name, const char *value)
{
	struct creds_http_step *s = &p->step;

	if (s->nhdrs >= sizeof(s->hdrs) / sizeof(s->hdrs[0]))
		return -1;
	s->hdr_store[s->nhdrs] = strdup(value);
	if (s->hdr_store[s->nhdrs] == NULL)
		return -1;
	s->hdrs[s->nhdrs].name = name;
	s->hdrs[s->nhdrs].value = s->hdr_store[s->nhdrs];
	s->nhdrs++;
	return 0;
}

/* Reads the web identity token (it may rotate between refreshes). */
static int
creds_sts_token(struct creds_provider *p, struct buf *tok, struct err *e)
{
	FILE *f = fopen(p->role.token_file, "re");
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		err_sys(e, "web identity token file %s", p->role.token_file);
		e->kind = ERR_CREDS;
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(tok, chunk, n);
		if (tok->len > CREDS_STS_MAX_TOKEN)
			break;
	}
	fclose(f);
	explicit_bzero(chunk, sizeof(chunk));
	while (tok->len > 0 && (tok->data[tok->len - 1] == '\n' ||
	                        tok->data[tok->len - 1] == '\r' ||
	                        tok->data[tok->len - 1] == ' '))
		tok->len--;
	if (buf_cstr(tok) == NULL || tok->len == 0 ||
	    tok->len > CREDS_STS_MAX_TOKEN) {
		err_set(e, ERR_CREDS,
		        "web identity token file %s is empty or too large",
		        p->role.token_file);
		return -1;
	}
	return 0;
}

/* Builds and sends the request: signed with src (assume role), or not
 * (web identity). */
static int
creds_sts_send(struct creds_provider *p, const struct creds *src, struct err *e)
{
	struct creds_http_step *s = &p->step;
	struct sigv4_kv h[4];
	struct sigv4_input in;
	struct sigv4_output out;
	struct buf body, tok;
	char region[64], session[128], num[16], date[17];
	const char *host;
	size_t nh = 0;
	int rc = -1;

	buf_init(&body, 0);
	buf_init(&tok, 0);
	memset(&out, 0, sizeof(out));
	if (p->http == NULL) {
		err_set(e, ERR_CREDS,
		        "STS cannot be asked without an http "
		        "client");
		goto done;
	}
	if (creds_sts_endpoint(p, s->url, sizeof(s->url), region,
	                       sizeof(region)) == -1) {
		err_set(e, ERR_CREDS,
		        "the STS endpoint is not an http(s) URL without a "
		        "path");
		goto done;
	}
	creds_sts_session(p, session, sizeof(session));
	creds_sts_param(&body, "Action",
	                p->role.web_identity ? "AssumeRoleWithWebIdentity"
	                                     : "AssumeRole");
	creds_sts_param(&body, "Version", "2011-06-15");
	creds_sts_param(&body, "RoleArn", p->role.role_arn);
	creds_sts_param(&body, "RoleSessionName", session);
	if (p->role.duration > 0) {
		snprintf(num, sizeof(num), "%d", p->role.duration);
		creds_sts_param(&body, "DurationSeconds", num);
	}
	if (p->role.external_id[0] != '\0')
		creds_sts_param(&body, "ExternalId", p->role.external_id);
	if (p->role.web_identity) {
		if (creds_sts_token(p, &tok, e) == -1)
			goto done;
		creds_sts_param(&body, "WebIdentityToken", tok.data);
	}
	if (buf_cstr(&body) == NULL) {
		err_sys(e, "credentials: out of memory");
		goto done;
	}
	s->method = "POST";
	s->hdr_name = NULL;
	s->nhdrs = 0;
	if (creds_sts_header(p, "Content-Type",
	                     "application/x-www-form-urlencoded; "
	                     "charset=utf-8") == -1)
		goto nomem;
	if (src != NULL) {
		host = strstr(s->url, "://") + 3;
		sigv4_amz_date(time(NULL), date);
		h[nh].name = "host";
		h[nh++].value = host;
		h[nh].name = "content-type";
		h[nh++].value = s->hdrs[0].value;
		h[nh].name = "x-amz-date";
		h[nh++].value = date;
		if (src->session_token[0] != '\0') {
			h[nh].name = "x-amz-security-token";
			h[nh++].value = src->session_token;
		}
		memset(&in, 0, sizeof(in));
		in.mode = SIGV4_GENERIC;
		in.method = "POST";
		in.path = "/";
		in.headers = h;
		in.nheaders = nh;
		in.body = body.data;
		in.body_len = body.len;
		in.region = region;
		in.service = "sts";
		in.when = time(NULL);
		in.access_key_id = src->access_key_id;
		in.secret_access_key = src->secret_access_key;
		if (sigv4_sign(&in, &out, e) == -1) {
			e->kind = ERR_CREDS;
			goto done;
		}
		if (creds_sts_header(p, "X-Amz-Date", date) == -1 ||
		    creds_sts_header(p, "Authorization", out.authorization) ==
		        -1 ||
		    (src->session_token[0] != '\0' &&
		     creds_sts_header(p, "X-Amz-Security-Token",
		                      src->session_token) == -1))
			goto nomem;
	}
	s->body = buf_steal(&body);
	s->stage = STAGE_STS;
	s->attempt = 1;
	rc = creds_http_send(p, &creds_sts_ops, e);
	goto done;
nomem:
	err_sys(e, "credentials: out of memory");
done:
	if (rc == -1)
		creds_http_clear_extra(p);
	sigv4_output_cleanup(&out);
	if (body.data != NULL)
		explicit_bzero(body.data, body.cap);
	buf_cleanup(&body);
	if (tok.data != NULL)
		explicit_bzero(tok.data, tok.cap);
	buf_cleanup(&tok);
	return rc;
}

/* The source's credentials came (or not): now STS. */
static void
creds_sts_on_source(const struct creds *c, const struct err *se, void *arg)
{
	struct creds_provider *p = arg;
	struct err e;

	creds_core_enter(p);
	if (p->closing || !p->resolving)
		goto out;
	if (c == NULL) {
		if (se->kind == ERR_CANCEL)
			goto out;
		if (strncmp(se->message, "assuming ", 9) == 0) {
			/* A chain of roles: the innermost failure says it. */
			creds_core_finish(p, NULL, se);
			goto out;
		}
		creds_sts_fail(p, se,
		               "its source has no credentials: ", se->message);
		goto out;
	}
	err_clear(&e);
	if (creds_sts_send(p, c, &e) == -1)
		creds_sts_fail(p, &e, "", e.message);
out:
	creds_core_leave(p);
}

int
creds_sts_start(struct creds_provider *p, struct err *e)
{
	if (p->role.web_identity)
		return creds_sts_send(p, NULL, e) == -1 ? -1 : 1;
	if (p->source == NULL) {
		p->source = p->chain->new_source(p, p->role.source_kind,
		                                 p->role.source_profile, e);
		if (p->source == NULL)
			return -1;
	}
	/* The callback may come before this returns (keys in a file). */
	if (p->chain->resolve(p->source, creds_sts_on_source, p, e) == -1)
		return -1;
	return 1;
}

void
creds_sts_free(struct creds_provider *p)
{
	struct creds_provider *src = p->source;

	p->source = NULL;
	if (src != NULL)
		p->chain->free(src);
}
