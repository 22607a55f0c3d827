/*
 * control: the control socket's server, an HTTP/1.1 server on a Unix
 * socket (control_listener.c runs it on the loop), and the gallery's
 * beside it when web.listen is set (control_web.c). Here: the life cycle
 * of both, and the socket's requests: the route and the body cap before a
 * body is read, the body, the answer (control_route.c dispatches it to the
 * file of its role; control_impl.h lists them).
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_impl.h"
#include "log.h"
#include "verify.h"

/* --- the socket's requests (struct control_listener_ops) ---------------- */

/* The first call: route and size checks before any body is read. */
static enum MHD_Result
control_sock_begin(struct control_conn *k, const char *url)
{
	struct control *c = k->c;
	const char *cl;
	char *end;
	unsigned long long n;

	k->status =
	    control_api_route_find(k->method, url, &k->route, &k->allow);
	if (k->status == 404 || k->status == 405)
		control_conn_log_refused(
		    k, url, k->status,
		    k->status == 404 ? "Not found" : "Method not allowed");
	cl = MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND,
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
control_sock_body(struct control_conn *k, const char *data, size_t len)
{
	if (!k->too_big && buf_append(&k->body, data, len) == -1)
		k->too_big = 1;
	/* A body over the cap without a Content-Length (chunked): no answer
	 * can be sent before it is all read, so the connection is closed. */
	if (k->too_big)
		log_warnx("control: uid %ld: closed a connection whose body "
		          "went past control.max_body_kb",
		          k->uid);
	return k->too_big ? MHD_NO : MHD_YES;
}

static enum MHD_Result
control_sock_answer(struct control_conn *k)
{
	if (k->status == 404)
		return control_conn_error(k, 404, "Not found");
	if (k->status == 405)
		return control_conn_error(k, 405, "Method not allowed");
	return control_dispatch(k);
}

static const struct control_listener_ops control_sock_ops = {
    control_sock_begin,
    control_sock_body,
    control_sock_answer,
    NULL,
};

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
	control_web_reconfigure(c, cfg);
}

struct control *
control_new(const struct config *cfg, const struct control_deps *deps,
            struct err *e)
{
	struct control *c;
	int fd;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err_sys(e, "control: calloc");
		return NULL;
	}
	c->sock.epfd = c->web.epfd = -1;
	c->web.web = 1;
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
	if (control_status_init(c, e) == -1)
		goto fail;
	fd = control_socket_open(cfg, e);
	if (fd == -1)
		goto fail;
	c->sock.ops = &control_sock_ops;
	if (control_listener_start(c, &c->sock, fd, NULL, NULL, e) == -1) {
		unlink(c->socket_path);
		goto fail;
	}
	log_info("control: listening on %s", c->socket_path);
	if (control_web_start(c, cfg, e) == -1)
		goto fail;
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
	control_web_stop(c);
	if (c->sock.mhd != NULL) {
		control_listener_stop(&c->sock);
		unlink(c->socket_path);
	}
	loop_timer_free(c->sock.timer);
	verify_free(c->verify);
	/* Left: requests a callback still holds; it frees them. */
	for (k = c->conns; k != NULL; k = next) {
		next = k->next;
		k->c = NULL;
		k->l = NULL;
		k->prev = k->next = NULL;
		if (!k->pending)
			control_conn_free(k);
	}
	control_status_cleanup(c);
	free(c->socket_path);
	free(c->trash);
	free(c->prefix);
	free(c->root);
	free(c->bucket);
	free(c->table);
	free(c);
}
