/*
 * creds_sso: a profile signed in with IAM Identity Center (SSO). `aws sso
 * login` leaves a token in ~/.aws/sso/cache/<SHA-1 of the sso_session's
 * name, or of the legacy sso_start_url>.json (accessToken, expiresAt); with
 * it, SSO's GetRoleCredentials (GET /federation/credentials, header
 * x-amz-sso_bearer_token) at https://portal.sso.<sso_region>.amazonaws.com,
 * or AWS_ENDPOINT_URL_SSO, gives the role's keys. An expired or missing
 * token is the operator's to renew (`aws sso login`): the SDKs' refresh of
 * the token itself is not done here. Neither the token nor the keys ever
 * appear in a message.
 */
#include "creds_impl.h"

#include <openssl/evp.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awsconfig.h"
#include "sigv4.h"

static void
creds_sso_fail(struct creds_provider *p, const struct err *cause,
               const char *why)
{
	struct err e;

	err_clear(&e);
	if (cause != NULL) {
		e.http_status = cause->http_status;
		e.curl_code = cause->curl_code;
	}
	err_set(&e, ERR_CREDS,
	        "SSO credentials of profile \"%s\" (account %s, "
	        "role %s): %s",
	        p->sso.profile, p->sso.account_id, p->sso.role_name, why);
	creds_http_clear_extra(p);
	creds_core_finish(p, NULL, &e);
}

static int
creds_sso_str(json_t *o, const char *key, char *dst, size_t dstlen)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= dstlen)
		return -1;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static void
creds_sso_response(struct creds_provider *p, struct http_response *resp)
{
	json_error_t je;
	json_t *root, *rc, *exp;
	struct creds c;
	char why[128];

	creds_http_clear_extra(p);
	if (resp->status != 200) {
		snprintf(
		    why, sizeof(why), "GetRoleCredentials answered HTTP %ld%s",
		    resp->status,
		    resp->status == 401 || resp->status == 403
		        ? ": the token is no longer good; run aws sso login"
		        : "");
		creds_sso_fail(p, NULL, why);
		return;
	}
	memset(&c, 0, sizeof(c));
	root = json_loadb(resp->body.data != NULL ? resp->body.data : "",
	                  resp->body.len, 0, &je);
	rc = json_object_get(root, "roleCredentials");
	exp = json_object_get(rc, "expiration");
	if (!json_is_object(rc) ||
	    creds_sso_str(rc, "accessKeyId", c.access_key_id,
	                  sizeof(c.access_key_id)) == -1 ||
	    creds_sso_str(rc, "secretAccessKey", c.secret_access_key,
	                  sizeof(c.secret_access_key)) == -1 ||
	    creds_sso_str(rc, "sessionToken", c.session_token,
	                  sizeof(c.session_token)) == -1 ||
	    !json_is_integer(exp) || json_integer_value(exp) <= 0) {
		json_decref(root);
		explicit_bzero(&c, sizeof(c));
		creds_sso_fail(p, NULL,
		               "GetRoleCredentials' answer has no usable "
		               "roleCredentials");
		return;
	}
	c.expiration = (time_t)(json_integer_value(exp) / 1000);
	json_decref(root);
	snprintf(c.source, sizeof(c.source), "%s", "sso");
	creds_core_finish(p, &c, NULL);
	explicit_bzero(&c, sizeof(c));
}

static void
creds_sso_failed(struct creds_provider *p, const struct err *cause,
                 const char *why)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "SSO did not answer: %s", why);
	creds_sso_fail(p, cause, msg);
}

static const struct creds_http_ops creds_sso_ops = {
    .attempt_ms = 10000,
    .response = creds_sso_response,
    .failed = creds_sso_failed,
};

/* ~/.aws/sso/cache/<sha1 hex of key>.json */
static int
creds_sso_cache_path(const char *key, char *out, size_t outlen)
{
	const char *home = awsconfig_env("HOME");
	unsigned char md[20];
	unsigned int mdlen = 0;
	char hex[41];
	unsigned i;

	if (home == NULL ||
	    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return -1;
	for (i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return snprintf(out, outlen, "%s/.aws/sso/cache/%s.json", home, hex) <
	               (int)outlen
	           ? 0
	           : -1;
}

/* The cached token into token: 0, or -1 with why. */
static int
creds_sso_token(const struct creds_provider *p, char *token, size_t toklen,
                char *why, size_t whylen)
{
	char path[4096], when[64];
	json_error_t je;
	json_t *root;
	time_t exp;
	int rc = -1;

	if (creds_sso_cache_path(p->sso.cache_key, path, sizeof(path)) == -1) {
		snprintf(why, whylen, "no HOME for ~/.aws/sso/cache");
		return -1;
	}
	root = json_load_file(path, 0, &je);
	if (root == NULL) {
		snprintf(why, whylen,
		         "no cached token %.300s (run aws sso login "
		         "--profile %.128s)",
		         path, p->sso.profile);
		return -1;
	}
	if (creds_sso_str(root, "accessToken", token, toklen) == -1 ||
	    creds_sso_str(root, "expiresAt", when, sizeof(when)) == -1 ||
	    creds_http_parse_time(when, &exp) == -1)
		snprintf(why, whylen,
		         "the cached token %.300s has no accessToken and "
		         "expiresAt",
		         path);
	else if (exp <= time(NULL))
		snprintf(why, whylen,
		         "the cached token expired at %s (run aws sso login "
		         "--profile %s)",
		         when, p->sso.profile);
	else
		rc = 0;
	json_decref(root);
	return rc;
}

int
creds_sso_start(struct creds_provider *p, struct err *e)
{
	struct creds_http_step *s = &p->step;
	char token[8192], why[600], ep[1024];
	struct buf url;
	int rc = -1;

	if (p->http == NULL) {
		err_set(
		    e, ERR_CREDS,
		    "SSO credentials of profile \"%s\": SSO cannot be asked "
		    "without an http client",
		    p->sso.profile);
		return -1;
	}
	if (creds_sso_token(p, token, sizeof(token), why, sizeof(why)) == -1) {
		err_set(e, ERR_CREDS, "SSO credentials of profile \"%s\": %s",
		        p->sso.profile, why);
		explicit_bzero(token, sizeof(token));
		return -1;
	}
	awsconfig_endpoint("sso", NULL, ep, sizeof(ep));
	buf_init(&url, sizeof(s->url) - 1);
	if (ep[0] != '\0')
		buf_puts(&url, ep);
	else
		buf_printf(&url, "https://portal.sso.%s.amazonaws.com",
		           p->sso.region);
	while (url.len > 0 && url.data[url.len - 1] == '/')
		url.len--;
	buf_puts(&url, "/federation/credentials?account_id=");
	sigv4_uri_encode(&url, p->sso.account_id, strlen(p->sso.account_id), 0);
	buf_puts(&url, "&role_name=");
	sigv4_uri_encode(&url, p->sso.role_name, strlen(p->sso.role_name), 0);
	if (buf_cstr(&url) == NULL) {
		err_set(e, ERR_CREDS,
		        "SSO credentials of profile \"%s\": the "
		        "URL is too long",
		        p->sso.profile);
		goto done;
	}
	snprintf(s->url, sizeof(s->url), "%s", url.data);
	s->method = "GET";
	s->hdr_name = NULL;
	s->nhdrs = 0;
	s->hdr_store[0] = strdup(token);
	if (s->hdr_store[0] == NULL) {
		err_sys(e, "credentials: strdup");
		goto done;
	}
	s->hdrs[0].name = "x-amz-sso_bearer_token";
	s->hdrs[0].value = s->hdr_store[0];
	s->nhdrs = 1;
	s->stage = STAGE_SSO;
	s->attempt = 1;
	rc = creds_http_send(p, &creds_sso_ops, e) == -1 ? -1 : 1;
	if (rc == -1)
		creds_http_clear_extra(p);
done:
	explicit_bzero(token, sizeof(token));
	buf_cleanup(&url);
	return rc;
}
