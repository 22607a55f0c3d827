/*
 * control_web_login: POST /web/login on the control socket (imgsyncctl
 * web-login), a one-time link into the gallery for whoever may use the
 * socket: web_session's token under the gallery's base URL (web.url, else
 * its listen address). Logged with the caller's uid, as every change.
 */
#include "control_impl.h"

#include <time.h>

/* POST /web/login: a one-time link into the gallery for the caller. */
enum MHD_Result
control_web_login_answer(struct control_conn *k)
{
	struct control *c = k->c;
	char token[WEB_TOKEN_LEN + 1];
	struct buf url;
	struct err e;
	json_t *doc;

	if (c->web.mhd == NULL)
		return control_conn_error(k, 409,
		                          "the gallery is off: set web.listen "
		                          "and restart imgsyncd");
	err_clear(&e);
	if (web_sessions_login(c->sessions, k->uid, time(NULL), token, &e) ==
	    -1)
		return control_conn_error(k, 500, e.message);
	buf_init(&url, 0);
	buf_printf(&url, "%slogin?token=%s", c->web_url, token);
	doc = buf_cstr(&url) != NULL ? json_pack("{s:s,s:i}", "url", url.data,
	                                         "expires_in", WEB_LOGIN_TTL)
	                             : NULL;
	buf_cleanup(&url);
	return control_conn_json(k, 200, doc);
}
