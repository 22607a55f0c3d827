/*
 * creds_imds: the chain's last step, EC2 instance metadata.
 *
 * IMDSv2, as the SDKs run it: PUT /latest/api/token (a session token with
 * a TTL), GET the role name from /latest/meta-data/iam/security-credentials/,
 * then GET that role's credentials, each request carrying the token. A
 * token request answered 403, 404 or 405 falls back to IMDSv1 (the same
 * requests without a token) unless AWS_EC2_METADATA_V1_DISABLED is set.
 * AWS_EC2_METADATA_DISABLED=true skips the step;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, or _ENDPOINT_MODE=IPv6, picks the
 * address.
 *
 * Off EC2 this step finds nothing rather than failing: its "why" goes into
 * the chain's "no AWS credentials found" message. The requests themselves
 * (deadline, retries) are creds_http.c's; their outcome comes back through
 * creds_imds_ops.
 */
#include "creds_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "awsconfig.h"
#include "text.h"

#define CREDS_IMDS_HOST "http://169.254.169.254"
#define CREDS_IMDS_HOST6 "http://[fd00:ec2::254]"
#define CREDS_IMDS_TOKEN_PATH "/latest/api/token"
#define CREDS_IMDS_ROLE_PATH "/latest/meta-data/iam/security-credentials/"

static void
creds_imds_nothing(struct creds_provider *p, const char *why)
{
	/* 53 characters at most (a 20-character %ld): small enough that url,
	 * why and v1 at their precisions always fit in note (384). */
	char v1[56] = "";

	if (p->step.v1_because != 0 && p->step.stage != STAGE_IMDS_TOKEN)
		snprintf(v1, sizeof(v1), " (IMDSv1: the token request got %ld)",
		         p->step.v1_because);
	snprintf(p->note, sizeof(p->note), "%.200s: %.120s%s", p->step.url, why,
	         v1);
	creds_core_nothing(p);
}

static void
creds_imds_status(struct creds_provider *p, const char *what, long status)
{
	char why[64];

	snprintf(why, sizeof(why), "%s request answered HTTP %ld", what,
	         status);
	creds_imds_nothing(p, why);
}

static void creds_imds_response(struct creds_provider *p,
                                struct http_response *resp);

/* No answer once the attempts are spent: this step finds nothing. */
static void
creds_imds_failed(struct creds_provider *p, const struct err *cause,
                  const char *why)
{
	(void)cause;
	creds_imds_nothing(p, why);
}

/* Where creds_http.c sends the outcome of each request of this step. */
static const struct creds_http_ops creds_imds_ops = {
    .attempt_ms = CREDS_IMDS_ATTEMPT_MS,
    .response = creds_imds_response,
    .failed = creds_imds_failed,
};

static void
creds_imds_request(struct creds_provider *p, enum creds_stage stage,
                   const char *method, const char *path)
{
	struct creds_http_step *s = &p->step;
	struct err e;
	int n;

	s->stage = stage;
	s->attempt = 1;
	s->method = method;
	if (stage == STAGE_IMDS_TOKEN) {
		s->hdr_name = "X-aws-ec2-metadata-token-ttl-seconds";
		s->hdr_value = "21600";
	} else if (s->imds_token[0] != '\0') {
		s->hdr_name = "X-aws-ec2-metadata-token";
		s->hdr_value = s->imds_token;
	} else {
		s->hdr_name = s->hdr_value = NULL;
	}
	n = snprintf(s->url, sizeof(s->url), "%s%s%s", s->imds_base, path,
	             stage == STAGE_IMDS_CREDS ? s->role : "");
	err_clear(&e);
	if (n < 0 || (size_t)n >= sizeof(s->url))
		creds_imds_nothing(p, "URL too long");
	else if (creds_http_send(p, &creds_imds_ops, &e) == -1)
		creds_imds_nothing(p, e.message);
}

static void
creds_imds_token(struct creds_provider *p, struct http_response *resp)
{
	struct creds_http_step *s = &p->step;
	char *tok;
	size_t i;

	if (resp->status == 403 || resp->status == 404 || resp->status == 405) {
		/* No IMDSv2 here: the SDKs fall back to IMDSv1. */
		if (awsconfig_env_true("AWS_EC2_METADATA_V1_DISABLED")) {
			creds_imds_nothing(
			    p, "the token request was refused and "
			       "AWS_EC2_METADATA_V1_DISABLED is set");
			return;
		}
		s->imds_token[0] = '\0';
		s->v1_because = resp->status;
		creds_imds_request(p, STAGE_IMDS_ROLE, "GET",
		                   CREDS_IMDS_ROLE_PATH);
		return;
	}
	if (resp->status != 200) {
		creds_imds_status(p, "token", resp->status);
		return;
	}
	tok = resp->body.data != NULL ? text_trim(resp->body.data) : "";
	for (i = 0; tok[i] != '\0'; i++)
		if (iscntrl((unsigned char)tok[i]))
			break;
	if (*tok == '\0' || tok[i] != '\0' ||
	    creds_core_copy(s->imds_token, sizeof(s->imds_token), tok) == -1) {
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
	role = text_trim(role);
	n = strspn(role, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789+=,.@_-");
	if (*role == '\0') {
		creds_imds_nothing(p, "no IAM role attached to the instance");
		return;
	}
	if (role[n] != '\0' ||
	    creds_core_copy(p->step.role, sizeof(p->step.role), role) == -1) {
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
	snprintf(what, sizeof(what), "instance metadata role \"%s\"",
	         p->step.role);
	if (creds_http_from_json(&resp->body, 1, what, &c, &e) == 0)
		creds_core_finish(p, &c, NULL);
	else
		creds_core_finish(p, NULL, &e);
	explicit_bzero(&c, sizeof(c));
}

static void
creds_imds_response(struct creds_provider *p, struct http_response *resp)
{
	char why[64];

	if (resp->status >= 500) { /* out of attempts */
		snprintf(why, sizeof(why), "HTTP %ld", resp->status);
		creds_imds_nothing(p, why);
		return;
	}
	switch (p->step.stage) {
	case STAGE_IMDS_TOKEN:
		creds_imds_token(p, resp);
		break;
	case STAGE_IMDS_ROLE:
		creds_imds_role(p, resp);
		break;
	case STAGE_IMDS_CREDS:
		creds_imds_creds(p, resp);
		break;
	case STAGE_CONTAINER:
	case STAGE_STS:
	case STAGE_SSO:
		break; /* the other steps' */
	}
}

int
creds_imds_start(struct creds_provider *p)
{
	const char *ep = awsconfig_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode =
	    awsconfig_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	struct creds_http_step *s = &p->step;
	size_t n;

	if (awsconfig_env_true("AWS_EC2_METADATA_DISABLED")) {
		snprintf(p->note, sizeof(p->note), "%s",
		         "disabled by AWS_EC2_METADATA_DISABLED");
		return 0;
	}
	if (p->http == NULL) {
		snprintf(p->note, sizeof(p->note), "%s", "no HTTP client");
		return 0;
	}
	if (ep == NULL)
		ep = mode != NULL && strcasecmp(mode, "IPv6") == 0
		         ? CREDS_IMDS_HOST6
		         : CREDS_IMDS_HOST;
	if (creds_core_copy(s->imds_base, sizeof(s->imds_base), ep) == -1) {
		snprintf(p->note, sizeof(p->note), "%s",
		         "AWS_EC2_METADATA_SERVICE_ENDPOINT is too long");
		return 0;
	}
	n = strlen(s->imds_base);
	while (n > 0 && s->imds_base[n - 1] == '/')
		s->imds_base[--n] = '\0';
	s->imds_token[0] = '\0';
	s->v1_because = 0;
	s->role[0] = '\0';
	/* creds_imds_request ends the chain itself when it cannot send. */
	creds_imds_request(p, STAGE_IMDS_TOKEN, "PUT", CREDS_IMDS_TOKEN_PATH);
	return 1;
}
