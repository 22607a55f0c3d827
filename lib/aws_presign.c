/*
 * aws_presign: a URL anyone holding it may use until it expires (SigV4
 * query signing), made from the client's endpoint, clock and credentials.
 * Nothing is sent: the link is for someone else (a browser, curl, a
 * colleague), and it works only as long as the credentials that signed it.
 */
#include "aws_impl.h"

#include <stdlib.h>
#include <string.h>

/* Credentials closer than this to their end sign no link: it would die at
 * once. */
#define AWS_PRESIGN_MIN_SECS 60

char *
aws_presign(struct aws_client *c, const struct aws_presign_req *req,
            struct aws_presigned *out, struct err *e)
{
	struct sigv4_input in;
	struct sigv4_output so;
	struct sigv4_kv host;
	struct creds cr;
	struct buf hb, url;
	time_t now;
	int secs = req->expires_secs, ok = 0;

	memset(out, 0, sizeof(*out));
	if (secs < 1 || secs > SIGV4_MAX_EXPIRES) {
		err_set(e, ERR_INVALID,
		        "a link lasts from 1 second to %d (seven days)",
		        SIGV4_MAX_EXPIRES);
		return NULL;
	}
	if (creds_provider_get(c->creds, &cr) == -1) {
		err_set(e, ERR_CREDS,
		        "no valid credentials at hand to sign with (being "
		        "fetched, or expired); try again");
		return NULL;
	}
	now = time(NULL) + (time_t)c->skew;
	if (cr.expiration != 0) {
		if (cr.expiration - now < AWS_PRESIGN_MIN_SECS) {
			explicit_bzero(&cr, sizeof(cr));
			err_set(e, ERR_CREDS,
			        "the credentials expire within %d seconds; "
			        "try again once they are renewed",
			        AWS_PRESIGN_MIN_SECS);
			return NULL;
		}
		if (cr.expiration - now < secs) {
			secs = (int)(cr.expiration - now);
			out->capped = 1;
		}
	}
	buf_init(&hb, 0);
	buf_init(&url, 0);
	buf_printf(&hb, "%s%s",
	           req->host_prefix != NULL ? req->host_prefix : "", c->host);
	host.name = "host";
	host.value = buf_cstr(&hb);
	memset(&in, 0, sizeof(in));
	memset(&so, 0, sizeof(so));
	in.mode = c->mode;
	in.method = req->method;
	in.path = req->path;
	in.headers = &host;
	in.nheaders = 1;
	in.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	in.region = c->region;
	in.service = c->service;
	in.when = now;
	in.access_key_id = cr.access_key_id;
	in.secret_access_key = cr.secret_access_key;
	in.cache = c->signer;
	if (host.value == NULL)
		err_sys(e, "aws: out of memory");
	else if (sigv4_presign(
	             &in, cr.session_token[0] != '\0' ? cr.session_token : NULL,
	             secs, &so, e) == 0) {
		buf_printf(&url, "%s://%s%s?%s", c->scheme, host.value,
		           so.canonical_uri, so.presigned_query);
		ok = buf_cstr(&url) != NULL;
		if (!ok)
			err_sys(e, "aws: out of memory");
	}
	explicit_bzero(&cr, sizeof(cr));
	sigv4_output_cleanup(&so);
	buf_cleanup(&hb);
	if (!ok) {
		buf_cleanup(&url);
		return NULL;
	}
	out->expires_secs = secs;
	/* on this machine's clock, which the operator reads */
	out->expires_at = time(NULL) + secs;
	return url.data;
}
