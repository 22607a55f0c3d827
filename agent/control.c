/*
 * control: the control socket's server. An HTTP/1.1 server (libmicrohttpd)
 * on a Unix socket, driven from the daemon's event loop: MHD's epoll fd is
 * one more fd of the loop and its timeout one more timer, so every handler
 * runs on the loop's thread. Here: the life cycle, MHD's callbacks (the
 * route and the body cap before a body is read, the body, the answer of a
 * resumed request) and the dispatch of a parsed request to the file of its
 * role (control_impl.h lists them).
 */
#include "control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "control_impl.h"
#include "log.h"
#include "verify.h"

#define CTL_IDLE_TIMEOUT_S 10 /* a silent or half-sent request is closed */
#define CTL_MAX_CONNS 1000
#define CTL_CONN_MEMORY 32768 /* MHD's buffer per connection */

/* --- dispatch ------------------------------------------------------------ */

/* A request that could not be parsed for want of memory or of the state
 * database is the server's failure (500), not the client's (400). */
static int
control_server_fault(const struct err *e)
{
	return e->kind == ERR_SYS || e->kind == ERR_DB;
}

static enum MHD_Result
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
	default:
		return control_engine_answer(k);
	}
}

/* --- libmicrohttpd's callbacks -------------------------------------------- */

/* The first call: route and size checks before any body is read. */
static enum MHD_Result
control_begin(struct control *c, struct MHD_Connection *mc, const char *url,
              const char *method, void **con_cls)
{
	struct control_conn *k = control_conn_new(c, mc, method);
	const char *cl;
	char *end;
	unsigned long long n;

	if (k == NULL)
		return MHD_NO;
	*con_cls = k;
	k->status = control_api_route_find(method, url, &k->route, &k->allow);
	if (k->status == 404 || k->status == 405)
		control_conn_log_refused(
		    k, url, k->status,
		    k->status == 404 ? "Not found" : "Method not allowed");
	cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || n > c->max_body) {
			/* Answered before the body is read; MHD then closes
			 * the connection instead of reading it. */
			log_warnx("control: uid %ld: refused a %s-byte body "
			          "(control.max_body_kb is %zu)",
			          k->uid, cl, c->max_body / 1024);
			return control_conn_error(k, 413,
			                          "Request body too large");
		}
	}
	return MHD_YES;
}

static enum MHD_Result
control_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                   const char *method, const char *version,
                   const char *upload_data, size_t *upload_data_size,
                   void **con_cls)
{
	struct control *c = cls;
	struct control_conn *k = *con_cls;
	char *body;

	(void)version;
	if (k == NULL)
		return control_begin(c, mc, url, method, con_cls);
	if (*upload_data_size > 0) {
		if (!k->too_big &&
		    buf_append(&k->body, upload_data, *upload_data_size) == -1)
			k->too_big = 1;
		*upload_data_size = 0;
		/* A body over the cap without a Content-Length (chunked):
		 * no answer can be sent before it is all read, so the
		 * connection is closed. */
		if (k->too_big)
			log_warnx("control: uid %ld: closed a connection whose "
			          "body went past control.max_body_kb",
			          k->uid);
		return k->too_big ? MHD_NO : MHD_YES;
	}
	if (k->reply_body != NULL) { /* resumed with a callback's answer */
		body = k->reply_body;
		k->reply_body = NULL;
		return control_conn_send(k, k->reply_status, body,
		                         "application/json");
	}
	if (k->pending)
		return MHD_YES;
	if (k->status == 404)
		return control_conn_error(k, 404, "Not found");
	if (k->status == 405)
		return control_conn_error(k, 405, "Method not allowed");
	return control_dispatch(k);
}

static void
control_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
	struct control_conn *k = *con_cls;

	(void)cls;
	(void)mc;
	(void)toe;
	if (k == NULL)
		return;
	*con_cls = NULL;
	k->done = 1;
	if (!k->pending)
		control_conn_free(k);
}

static void
control_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("control: %s", msg);
}

/* --- the loop's side ----------------------------------------------------- */

static void
control_run(struct control *c)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(c->mhd);
	if (MHD_get_timeout(c->mhd, &ms) == MHD_YES)
		loop_timer_set(c->timer, ms > 60000 ? 60000 : (int64_t)ms);
	else
		loop_timer_set(c->timer, -1);
}

static void
control_on_fd(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	control_run(arg);
}

static void
control_on_timer(void *arg)
{
	control_run(arg);
}

/* --- life cycle ------------------------------------------------------- */

void
control_reconfigure(struct control *c, const struct config *cfg)
{
	char *trash = strdup(cfg->control.trash);

	c->d.cfg = cfg;
	if (trash == NULL)
		return;
	free(c->trash);
	c->trash = trash;
	c->max_body = (size_t)cfg->control.max_body_kb * 1024;
	c->timeout_ms = (unsigned)cfg->control.timeout_ms;
	if (strcmp(cfg->control.socket, c->socket_path) != 0)
		log_warnx("control.socket changes take effect at the next "
		          "restart");
}

struct control *
control_new(const struct config *cfg, const struct control_deps *deps,
            struct err *e)
{
	const union MHD_DaemonInfo *di;
	struct control *c;
	int fd;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_sys(e, "control: calloc");
		return NULL;
	}
	c->epfd = -1;
	c->d = *deps;
	c->started_ms = loop_now_ms();
	c->max_body = (size_t)cfg->control.max_body_kb * 1024;
	c->timeout_ms = (unsigned)cfg->control.timeout_ms;
	c->socket_path = strdup(cfg->control.socket);
	c->trash = strdup(cfg->control.trash);
	c->prefix = strdup(cfg->s3.prefix);
	c->root = strdup(cfg->watch.root);
	c->bucket = strdup(cfg->s3.bucket);
	c->table = strdup(cfg->dynamodb.table);
	if (c->socket_path == NULL || c->trash == NULL || c->prefix == NULL ||
	    c->root == NULL || c->bucket == NULL || c->table == NULL) {
		err_sys(e, "control: strdup");
		goto fail;
	}
	c->timer = loop_timer_new(c->d.loop, control_on_timer, c, e);
	if (c->timer == NULL || control_status_init(c, e) == -1)
		goto fail;
	fd = control_socket_open(cfg, e);
	if (fd == -1)
		goto fail;
	c->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, control_on_request, c, MHD_OPTION_EXTERNAL_LOGGER,
	    control_on_mhd_log, c, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, control_on_completed, c,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CTL_IDLE_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CTL_MAX_CONNS,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CTL_CONN_MEMORY,
	    MHD_OPTION_END);
	if (c->mhd == NULL) {
		err_set(e, ERR_SYS, "control: libmicrohttpd did not start");
		close(fd);
		unlink(c->socket_path);
		goto fail;
	}
	di = MHD_get_daemon_info(c->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		err_set(e, ERR_SYS, "control: no epoll fd from libmicrohttpd");
		goto fail;
	}
	c->epfd = di->epoll_fd;
	if (loop_add_fd(c->d.loop, c->epfd, EPOLLIN, control_on_fd, c, e) ==
	    -1) {
		c->epfd = -1;
		goto fail;
	}
	control_run(c);
	log_info("control: listening on %s", c->socket_path);
	return c;
fail:
	control_free(c);
	return NULL;
}

void
control_free(struct control *c)
{
	struct control_conn *k, *next;

	if (c == NULL)
		return;
	if (c->mhd != NULL) {
		/* MHD must not be stopped with suspended connections. */
		for (k = c->conns; k != NULL; k = k->next)
			if (k->suspended) {
				k->timed_out = 1; /* the callback only frees */
				control_conn_resume(
				    k, 503,
				    control_api_error_body(
				        "imgsyncd is stopping"));
			}
		MHD_run(c->mhd);
		if (c->epfd != -1)
			loop_del_fd(c->d.loop, c->epfd);
		MHD_stop_daemon(c->mhd);
		unlink(c->socket_path);
	}
	verify_free(c->verify);
	/* Left: requests a callback still holds; it frees them. */
	for (k = c->conns; k != NULL; k = next) {
		next = k->next;
		k->c = NULL;
		k->prev = k->next = NULL;
		if (!k->pending)
			control_conn_free(k);
	}
	loop_timer_free(c->timer);
	control_status_cleanup(c);
	free(c->socket_path);
	free(c->trash);
	free(c->prefix);
	free(c->root);
	free(c->bucket);
	free(c->table);
	free(c);
}
