/*
 * control_web: the gallery's listener (web.listen), a second HTTP server
 * on the loop beside the control socket, sharing its requests, its
 * suspend-and-resume and the handlers of the routes both offer (/status,
 * /getitem, /url, /delete). Nobody gets in without being let in: an
 * operator asks the control socket for a one-time link (POST /web/login,
 * imgsyncctl web-login), the browser trades it for a session cookie
 * (HttpOnly, SameSite=Strict), and every request but /login needs that
 * cookie (401 otherwise) and every one that changes something also the
 * session's CSRF token in X-CSRF-Token (403 otherwise). Every answer
 * carries a strict Content-Security-Policy: scripts and styles only from
 * the daemon, images from it and from the bucket's presigned links.
 */
#include "control_impl.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "s3.h"
#include "text.h"
#include "web_assets.h"

#define WEB_COOKIE "imgsync_session"

enum web_kind {
	WEB_ASSET,
	WEB_LOGIN,   /* GET /login?token=: the one-time link */
	WEB_LOGOUT,  /* POST /logout */
	WEB_SESSION, /* GET /api/session: the CSRF token, the settings */
	WEB_LIST,    /* GET /api/list */
	WEB_UPLOAD,  /* PUT /api/upload */
	WEB_SHARED,  /* a control socket route */
};

static const struct web_route {
	const char *path;
	const char *method;
	enum web_kind kind;
	enum ctl_route route;
} web_routes[] = {
    {"/login", "GET", WEB_LOGIN, CTL_STATUS},
    {"/logout", "POST", WEB_LOGOUT, CTL_STATUS},
    {"/api/session", "GET", WEB_SESSION, CTL_STATUS},
    {"/api/list", "GET", WEB_LIST, CTL_STATUS},
    {"/api/upload", "PUT", WEB_UPLOAD, CTL_UPLOAD},
    {"/api/status", "GET", WEB_SHARED, CTL_STATUS},
    {"/api/getitem", "POST", WEB_SHARED, CTL_GETITEM},
    {"/api/url", "POST", WEB_SHARED, CTL_URL},
    {"/api/delete", "DELETE", WEB_SHARED, CTL_DELETE},
};

#define NWEB_ROUTES (sizeof(web_routes) / sizeof(web_routes[0]))

static const struct web_asset *
control_web_asset(const char *path)
{
	const struct web_asset *a;

	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (a = web_assets; a->path != NULL; a++)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

/* --- answers --------------------------------------------------------- */

/* Where the bucket's presigned links point: "https://host[:port]", for
 * the CSP's img-src. Found from a link once the credentials sign one. */
static const char *
control_web_s3_origin(struct control *c)
{
	struct aws_presigned p;
	struct err e;
	const char *host, *end;
	char *url;

	if (c->s3_origin != NULL)
		return c->s3_origin;
	err_clear(&e);
	url = s3_presign_get(c->d.s3, "origin", 60, &p, &e);
	if (url == NULL)
		return NULL;
	host = strstr(url, "://");
	end = host != NULL ? strchr(host + 3, '/') : NULL;
	if (end != NULL)
		c->s3_origin = strndup(url, (size_t)(end - url));
	free(url);
	return c->s3_origin;
}

static void
control_web_headers(const struct control_conn *k, struct MHD_Response *resp)
{
	const char *origin = control_web_s3_origin(k->c);
	char csp[768];

	snprintf(csp, sizeof(csp),
	         "default-src 'none'; script-src 'self'; style-src 'self'; "
	         "img-src 'self' data:%s%s; connect-src 'self'; "
	         "base-uri 'none'; form-action 'self'; "
	         "frame-ancestors 'none'",
	         origin != NULL ? " " : "", origin != NULL ? origin : "");
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy",
	                        "same-origin");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (k->c->web_secure)
		MHD_add_response_header(resp, "Strict-Transport-Security",
		                        "max-age=31536000");
}

/* A page or an error as a page: the browser shows it. */
static enum MHD_Result
control_web_asset_send(struct control_conn *k, unsigned status,
                       const struct web_asset *a)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(a->len, (void *)a->data,
	                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
	control_web_headers(k, resp);
	ret = MHD_queue_response(k->mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Refused: the API gets JSON, a page the page that says how to log in. */
static enum MHD_Result
control_web_refuse(struct control_conn *k, unsigned status, const char *why)
{
	const struct web_asset *denied = control_web_asset("/denied.html");

	if (status == 401 && strncmp(k->path, "/api/", 5) != 0 &&
	    denied != NULL)
		return control_web_asset_send(k, 401, denied);
	return control_conn_error(k, status, why);
}

/* An answer with no body but headers: the login's redirect, logout. */
static enum MHD_Result
control_web_cookie(struct control_conn *k, unsigned status, const char *value,
                   long max_age)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char cookie[256];

	snprintf(cookie, sizeof(cookie),
	         WEB_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; "
	                    "SameSite=Strict%s",
	         value, max_age, k->c->web_secure ? "; Secure" : "");
	resp = MHD_create_response_from_buffer(0, (void *)"",
	                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	if (status == 303)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "./");
	control_web_headers(k, resp);
	ret = MHD_queue_response(k->mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* GET /login?token=: once, within WEB_LOGIN_TTL. */
static enum MHD_Result
control_web_login(struct control_conn *k)
{
	struct control *c = k->c;
	const struct web_session *s;
	char who[128], until[40];
	struct timespec ts;
	struct err e;

	err_clear(&e);
	s = web_sessions_open(c->sessions, control_conn_query(k, "token"),
	                      time(NULL), &e);
	if (s == NULL) {
		log_warnx("%s: refused a login link (unknown, used or "
		          "expired)",
		          control_conn_who(k, who, sizeof(who)));
		return control_web_refuse(k, 401,
		                          "login link unknown, used or "
		                          "expired");
	}
	k->session = s->serial;
	k->uid = s->uid;
	ts.tv_sec = s->expires;
	ts.tv_nsec = 0;
	text_iso_time(&ts, 0, until, sizeof(until));
	log_info("%s: logged in, until %s",
	         control_conn_who(k, who, sizeof(who)), until);
	return control_web_cookie(k, 303, s->id,
	                          (long)(s->expires - time(NULL)));
}

/* GET /api/session: what the page needs to work. */
static enum MHD_Result
control_web_session(struct control_conn *k, const struct web_session *s)
{
	const struct config *cfg = k->c->d.cfg;
	json_t *doc;

	doc = json_pack(
	    "{s:s,s:I,s:I,s:s,s:s,s:s,s:b,s:I,s:I}", "csrf", s->csrf, "session",
	    (json_int_t)s->serial, "uid", (json_int_t)s->uid, "bucket",
	    k->c->bucket, "table", k->c->table, "prefix", k->c->prefix,
	    "thumbnails", cfg->thumbnails.enabled, "max_upload_bytes",
	    (json_int_t)k->c->max_upload, "expires", (json_int_t)s->expires);
	return control_conn_json(k, 200, doc);
}

/* --- MHD's calls -------------------------------------------------------- */

static const struct web_route *
control_web_route(const char *method, const char *path, unsigned *status)
{
	size_t i;
	int other = 0;

	*status = 0;
	for (i = 0; i < NWEB_ROUTES; i++) {
		if (strcmp(path, web_routes[i].path) != 0)
			continue;
		if (strcmp(method, web_routes[i].method) == 0)
			return &web_routes[i];
		other = 1;
	}
	if (!other && control_web_asset(path) != NULL)
		*status = strcmp(method, "GET") == 0 ? 0 : 405;
	else
		*status = other ? 405 : 404;
	return NULL;
}

/* Behind a proxy the peer is the proxy: the client is the last address
 * of X-Forwarded-For (the one the proxy added), if it is one. */
static void
control_web_forwarded(struct control_conn *k)
{
	const char *v = MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND,
	                                            "X-Forwarded-For");
	const char *last;
	size_t n;

	if (v == NULL)
		return;
	last = strrchr(v, ',');
	last = last != NULL ? last + 1 : v;
	last += strspn(last, " \t");
	n = strspn(last, "0123456789abcdefABCDEF.:");
	if (n == 0 || n >= sizeof(k->peer) || last[n] != '\0')
		return;
	memcpy(k->peer, last, n);
	k->peer[n] = '\0';
}

static enum MHD_Result
control_web_begin(struct control_conn *k, const char *url)
{
	struct control *c = k->c;
	const struct web_route *r;
	const struct web_session *s;
	const char *cl;
	char who[128];
	unsigned status;
	unsigned long long n;

	if (c->web_trust_proxy)
		control_web_forwarded(k);
	r = control_web_route(k->method, url, &status);
	k->web_kind = r != NULL ? (int)r->kind : (int)WEB_ASSET;
	k->route = r != NULL ? r->route : CTL_STATUS;
	if (r != NULL && r->kind == WEB_LOGIN)
		return MHD_YES;
	/* Every other door needs the session, even to say it is not
	 * there. */
	s = web_sessions_find(
	    c->sessions,
	    MHD_lookup_connection_value(k->mc, MHD_COOKIE_KIND, WEB_COOKIE),
	    time(NULL));
	if (s == NULL) {
		control_conn_log_refused(k, url, 401, "not logged in");
		return control_web_refuse(k, 401,
		                          "not logged in: run "
		                          "imgsyncctl web-login");
	}
	k->session = s->serial;
	k->uid = s->uid;
	if (status != 0)
		return control_web_refuse(k, status,
		                          status == 404 ? "Not found"
		                                        : "Method not allowed");
	if (strcmp(k->method, "GET") != 0 &&
	    !web_session_csrf_ok(
	        s, MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND,
	                                       "X-CSRF-Token"))) {
		control_conn_log_refused(k, url, 403,
		                         "CSRF token missing or wrong");
		return control_web_refuse(k, 403,
		                          "CSRF token missing or wrong");
	}
	if (k->web_kind == WEB_UPLOAD) /* its own cap: web.max_upload_mb */
		return control_web_upload_begin(k);
	cl = MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	n = cl != NULL ? strtoull(cl, NULL, 10) : 0;
	if (n > c->max_body) {
		log_warnx("%s: refused a %s-byte body",
		          control_conn_who(k, who, sizeof(who)), cl);
		return control_conn_error(k, 413, "Request body too large");
	}
	return MHD_YES;
}

static enum MHD_Result
control_web_body(struct control_conn *k, const char *data, size_t len)
{
	if (k->web_kind == WEB_UPLOAD)
		return control_web_upload_feed(k, data, len) == 0 ? MHD_YES
		                                                  : MHD_NO;
	if (!k->too_big && buf_append(&k->body, data, len) == -1)
		k->too_big = 1;
	return k->too_big ? MHD_NO : MHD_YES;
}

static enum MHD_Result
control_web_answer(struct control_conn *k)
{
	const struct web_session *s;
	char who[128];

	switch ((enum web_kind)k->web_kind) {
	case WEB_ASSET:
		return control_web_asset_send(k, 200,
		                              control_web_asset(k->path));
	case WEB_LOGIN:
		return control_web_login(k);
	case WEB_LOGOUT:
		web_sessions_close(k->c->sessions,
		                   MHD_lookup_connection_value(
		                       k->mc, MHD_COOKIE_KIND, WEB_COOKIE));
		log_info("%s: logged out",
		         control_conn_who(k, who, sizeof(who)));
		return control_web_cookie(k, 200, "", 0);
	case WEB_SESSION:
		s = web_sessions_find(k->c->sessions,
		                      MHD_lookup_connection_value(
		                          k->mc, MHD_COOKIE_KIND, WEB_COOKIE),
		                      time(NULL));
		if (s == NULL)
			return control_web_refuse(k, 401, "not logged in");
		return control_web_session(k, s);
	case WEB_LIST:
		return control_web_list_answer(k);
	case WEB_UPLOAD:
		return control_web_upload_finish(k);
	case WEB_SHARED:
	default:
		return control_dispatch(k);
	}
}

static const struct control_listener_ops control_web_ops = {
    control_web_begin,
    control_web_body,
    control_web_answer,
    control_web_headers,
};

/* --- life cycle ---------------------------------------------------------- */

/* The base URL web-login's links start with: web.url, else the listener's
 * own address. */
static char *
control_web_base(const struct config *cfg)
{
	const char *u = cfg->web.url;
	size_t n = strlen(u);
	struct buf b;

	buf_init(&b, 0);
	if (n > 0)
		buf_printf(&b, "%s%s", u, u[n - 1] == '/' ? "" : "/");
	else
		buf_printf(&b, "%s://%s/",
		           cfg->web.tls_cert[0] != '\0' ? "https" : "http",
		           cfg->web.listen);
	if (buf_cstr(&b) == NULL) {
		buf_cleanup(&b);
		return NULL;
	}
	return b.data;
}

void
control_web_reconfigure(struct control *c, const struct config *cfg)
{
	char *base = cfg->web.listen[0] != '\0' ? control_web_base(cfg) : NULL;
	long ttl;

	if ((base == NULL) != (c->web_url == NULL) ||
	    (base != NULL && strcmp(base, c->web_url) != 0))
		log_warnx("web.listen, web.url and web.tls_* changes take "
		          "effect at the next restart");
	free(base);
	if (c->sessions != NULL &&
	    text_duration_secs(cfg->web.session, WEB_SESSION_MAX_SECS, &ttl) ==
	        0)
		web_sessions_set_ttl(c->sessions, ttl);
	c->max_upload = (uint64_t)cfg->web.max_upload_mb * 1024 * 1024;
}

int
control_web_start(struct control *c, const struct config *cfg, struct err *e)
{
	char *cert = NULL, *key = NULL;
	long ttl = 43200; /* web.session's default, 12 h */
	int fd, rc;

	if (cfg->web.listen[0] == '\0')
		return 0;
	(void)text_duration_secs(cfg->web.session, WEB_SESSION_MAX_SECS, &ttl);
	c->sessions = web_sessions_new(ttl, e);
	c->web_url = control_web_base(cfg);
	if (c->sessions == NULL || c->web_url == NULL) {
		err_sys(e, "web: out of memory");
		return -1;
	}
	c->max_upload = (uint64_t)cfg->web.max_upload_mb * 1024 * 1024;
	c->web_secure = cfg->web.tls_cert[0] != '\0' || cfg->web.trust_proxy;
	c->web_trust_proxy = cfg->web.trust_proxy;
	fd = control_web_listen(cfg, &cert, &key, e);
	if (fd == -1)
		return -1;
	/* kept until the listener stops: MHD is not said to copy them */
	c->tls_cert = cert;
	c->tls_key = key;
	c->web.ops = &control_web_ops;
	rc = control_listener_start(c, &c->web, fd, cert, key, e);
	if (rc == -1)
		return -1;
	log_info("web: the gallery listens on %s%s (log in with imgsyncctl "
	         "web-login)",
	         cfg->web.listen, cfg->web.tls_cert[0] != '\0' ? " (TLS)" : "");
	return 0;
}

void
control_web_stop(struct control *c)
{
	control_listener_stop(&c->web);
	web_sessions_free(c->sessions);
	c->sessions = NULL;
	free(c->web_url);
	free(c->s3_origin);
	c->web_url = c->s3_origin = NULL;
	if (c->tls_key != NULL)
		OPENSSL_cleanse(c->tls_key, strlen(c->tls_key));
	free(c->tls_key);
	free(c->tls_cert);
	c->tls_key = c->tls_cert = NULL;
}
