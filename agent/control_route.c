/*
 * control_route: a parsed request to the file of its route. The control
 * socket's requests and the gallery's shared ones (/status, /getitem,
 * /url, /delete) come here once their route and body are known; the
 * request is parsed (control_api), logged when it changes something, and
 * answered by control_items, control_status, control_url, control_engine
 * or control_web_login.
 */
#include "control_impl.h"

#include "sync.h"

/* A request that could not be parsed for want of memory or of the state
 * database is the server's failure (500), not the client's (400). */
static int
control_server_fault(const struct err *e)
{
	return e->kind == ERR_SYS || e->kind == ERR_DB;
}

enum MHD_Result
control_dispatch(struct control_conn *k)
{
	struct control *c = k->c;
	struct ctl_query q;
	struct err e;

	q.prefix = control_conn_query(k, "prefix");
	q.limit = control_conn_query(k, "limit");
	q.cursor = control_conn_query(k, "cursor");
	q.local = control_conn_query(k, "local");
	err_clear(&e);
	if (control_api_parse(&k->req, k->route, &q, k->body.data, k->body.len,
	                      c->prefix, &e) == -1) {
		if (!control_server_fault(&e))
			control_conn_log_refused(
			    k, control_api_route_name(k->route), 400,
			    e.message);
		return control_conn_error(
		    k, control_server_fault(&e) ? 500 : 400, e.message);
	}
	control_conn_log(k);
	if (sync_stopping(c->d.sync) && control_api_route_mutates(k->route))
		return control_conn_error(k, 503, "imgsyncd is stopping");
	switch (k->route) {
	case CTL_GETALL:
	case CTL_GETITEM:
	case CTL_DELETE:
	case CTL_UPLOAD:
		return control_items_answer(k);
	case CTL_STATUS:
	case CTL_METRICS:
		return control_status_answer(k);
	case CTL_URL:
		return control_url_answer(k);
	case CTL_WEB_LOGIN:
		return control_web_login_answer(k);
	default:
		return control_engine_answer(k);
	}
}
