/*
 * control_listener: one HTTP server (libmicrohttpd) driven from the
 * daemon's event loop: MHD's epoll fd is one more fd of the loop and its
 * timeout one more timer, so every handler runs on the loop's thread. MHD's
 * calls become the listener's operations (struct control_listener_ops:
 * the control socket's in control.c, the gallery's in control_web.c): the
 * first call of a request, its body, its answer; and the answer of a
 * request resumed from a callback, sent here for both.
 */
#include "control_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"

#define CTL_IDLE_TIMEOUT_S 10 /* a silent or half-sent request is closed */
#define CTL_MAX_CONNS 1000
#define CTL_CONN_MEMORY 32768 /* MHD's buffer per connection */

static enum MHD_Result
control_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                   const char *method, const char *version,
                   const char *upload_data, size_t *upload_data_size,
                   void **con_cls)
{
	struct control_listener *l = cls;
	struct control_conn *k = *con_cls;
	char *body;
	size_t n;

	(void)version;
	if (k == NULL) {
		k = control_conn_new(l, mc, method);
		if (k == NULL)
			return MHD_NO;
		*con_cls = k;
		k->path = url;
		return l->ops->begin(k, url);
	}
	if (*upload_data_size > 0) {
		n = *upload_data_size;
		*upload_data_size = 0;
		return l->ops->body(k, upload_data, n);
	}
	if (k->reply_body != NULL) { /* resumed with a callback's answer */
		body = k->reply_body;
		k->reply_body = NULL;
		return control_conn_send(k, k->reply_status, body,
		                         "application/json");
	}
	if (k->pending)
		return MHD_YES;
	return l->ops->answer(k);
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
control_run(struct control_listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(l->mhd);
	if (MHD_get_timeout(l->mhd, &ms) == MHD_YES)
		loop_timer_set(l->timer, ms > 60000 ? 60000 : (int64_t)ms);
	else
		loop_timer_set(l->timer, -1);
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

int
control_listener_start(struct control *c, struct control_listener *l, int fd,
                       const char *tls_cert, const char *tls_key, struct err *e)
{
	const union MHD_DaemonInfo *di;
	struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
	unsigned flags =
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	l->c = c;
	if (tls_cert != NULL) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
		                                 (void *)tls_cert};
		tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
		                                 (void *)tls_key};
		tls[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	}
	l->timer = loop_timer_new(c->d.loop, control_on_timer, l, e);
	if (l->timer == NULL) {
		close(fd);
		return -1;
	}
	l->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, control_on_request, l,
	    MHD_OPTION_EXTERNAL_LOGGER, control_on_mhd_log, c,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
	    control_on_completed, c, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)CTL_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)CTL_MAX_CONNS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)CTL_CONN_MEMORY, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (l->mhd == NULL) {
		err_set(e, ERR_SYS, "%s: libmicrohttpd did not start%s",
		        l->web ? "web" : "control",
		        tls_cert != NULL ? " (is the TLS key that of the "
		                           "certificate?)"
		                         : "");
		close(fd);
		return -1;
	}
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		err_set(e, ERR_SYS, "control: no epoll fd from libmicrohttpd");
		return -1;
	}
	l->epfd = di->epoll_fd;
	if (loop_add_fd(c->d.loop, l->epfd, EPOLLIN, control_on_fd, l, e) ==
	    -1) {
		l->epfd = -1;
		return -1;
	}
	control_run(l);
	return 0;
}

/* Answers the suspended requests of l with 503 and stops it. */
void
control_listener_stop(struct control_listener *l)
{
	struct control_conn *k;

	if (l->mhd != NULL) {
		/* MHD must not be stopped with suspended connections. */
		for (k = l->c->conns; k != NULL; k = k->next)
			if (k->suspended && k->l == l) {
				k->timed_out = 1; /* the callback only frees */
				control_conn_resume(
				    k, 503,
				    control_api_error_body(
				        "imgsyncd is stopping"));
			}
		MHD_run(l->mhd);
		if (l->epfd != -1)
			loop_del_fd(l->c->d.loop, l->epfd);
		MHD_stop_daemon(l->mhd);
		l->mhd = NULL;
	}
	loop_timer_free(l->timer);
	l->timer = NULL;
}
