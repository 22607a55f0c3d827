/*
 * control_conn: one request on the control socket, from the first call of
 * libmicrohttpd to its end. Who is asking (SO_PEERCRED), the answer sent
 * now or, for a request that waits on DynamoDB, kept until its callback
 * comes: the connection is suspended meanwhile, and answered 504 when
 * DynamoDB takes longer than control.timeout_ms (the call goes on, and its
 * callback finds the request answered). The log lines of who changed what.
 */
#include "control_impl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* The gallery's caller: its address, for the log. */
static void
control_conn_peer(struct control_conn *k)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const void *a = NULL;

	ci = MHD_get_connection_info(k->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL ||
	    inet_ntop(sa->sa_family, a, k->peer, sizeof(k->peer)) == NULL)
		k->peer[0] = '\0';
}

struct control_conn *
control_conn_new(struct control_listener *l, struct MHD_Connection *mc,
                 const char *method)
{
	struct control *c = l->c;
	struct control_conn *k = calloc(1, sizeof(*k));
	const union MHD_ConnectionInfo *ci;
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (k == NULL)
		return NULL;
	k->c = c;
	k->l = l;
	k->mc = mc;
	k->method = method;
	k->uid = -1;
	k->pid = -1;
	buf_init(&k->body, c->max_body);
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (l->web)
		control_conn_peer(k);
	else if (ci != NULL && getsockopt(ci->connect_fd, SOL_SOCKET,
	                                  SO_PEERCRED, &uc, &len) == 0) {
		k->uid = (long)uc.uid;
		k->pid = (long)uc.pid;
	}
	k->next = c->conns;
	if (c->conns != NULL)
		c->conns->prev = k;
	c->conns = k;
	return k;
}

void
control_conn_free(struct control_conn *k)
{
	if (k->c != NULL) {
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			k->c->conns = k->next;
		if (k->next != NULL)
			k->next->prev = k->prev;
	}
	loop_timer_free(k->deadline);
	if (k->cleanup != NULL)
		k->cleanup(k);
	buf_cleanup(&k->body);
	control_api_request_cleanup(&k->req);
	free(k->reply_body);
	json_decref(k->images);
	json_decref(k->start_key);
	free(k);
}

const char *
control_conn_query(const struct control_conn *k, const char *name)
{
	return MHD_lookup_connection_value(k->mc, MHD_GET_ARGUMENT_KIND, name);
}

int
control_conn_query_true(const struct control_conn *k, const char *name)
{
	const char *v = control_conn_query(k, name);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* --- answering now ------------------------------------------------------- */

enum MHD_Result
control_conn_send(struct control_conn *k, unsigned status, char *body,
                  const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (body == NULL)
		return MHD_NO; /* out of memory: MHD closes the connection */
	resp = MHD_create_response_from_buffer(strlen(body), body,
	                                       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == 405 && k->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, k->allow);
	if (k->l->ops->headers != NULL)
		k->l->ops->headers(k, resp);
	ret = MHD_queue_response(k->mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
control_conn_json(struct control_conn *k, unsigned status, json_t *doc)
{
	char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	return control_conn_send(k, status, s, "application/json");
}

enum MHD_Result
control_conn_error(struct control_conn *k, unsigned status, const char *message)
{
	return control_conn_send(k, status, control_api_error_body(message),
	                         "application/json");
}

enum MHD_Result
control_conn_busy(struct control_conn *k)
{
	return control_conn_error(k, 503,
	                          "too many requests are waiting on DynamoDB; "
	                          "try again later");
}

/* --- answering later ----------------------------------------------------- */

void
control_conn_resume(struct control_conn *k, unsigned status, char *body)
{
	k->reply_status = status;
	free(k->reply_body);
	k->reply_body = body;
	if (k->reply_body == NULL) {
		k->reply_status = 500;
		k->reply_body = control_api_error_body("out of memory");
	}
	if (!k->suspended)
		return;
	k->suspended = 0;
	k->c->nwaiting--;
	loop_timer_set(k->deadline, -1);
	MHD_resume_connection(k->mc);
	loop_timer_set(k->l->timer, 0);
}

/* DynamoDB retries without end through an outage: the client is told after
 * a while, and the call goes on (its callback finds the request
 * answered). */
static void
control_conn_on_deadline(void *arg)
{
	struct control_conn *k = arg;

	if (k->c == NULL || !k->suspended)
		return;
	k->timed_out = 1;
	control_conn_resume(
	    k, 504,
	    control_api_error_body("DynamoDB did not answer in time (it is "
	                           "retried in the background); see "
	                           "/status for the last error"));
}

int
control_conn_suspend(struct control_conn *k)
{
	struct err e;

	if (k->c->nwaiting >= CTL_MAX_WAITING)
		return -1;
	if (k->deadline == NULL) {
		err_clear(&e);
		k->deadline = loop_timer_new(k->c->d.loop,
		                             control_conn_on_deadline, k, &e);
		if (k->deadline == NULL)
			return -1;
	}
	k->pending = 1;
	k->suspended = 1;
	k->c->nwaiting++;
	loop_timer_set(k->deadline, (int64_t)k->c->timeout_ms);
	MHD_suspend_connection(k->mc);
	return 0;
}

void
control_conn_answer(struct control_conn *k, unsigned status, char *body)
{
	k->pending = 0;
	if (k->c == NULL || k->done) {
		free(body);
		control_conn_free(k);
		return;
	}
	if (k->timed_out) { /* answered already; MHD frees k */
		free(body);
		return;
	}
	control_conn_resume(k, status, body);
}

void
control_conn_answer_json(struct control_conn *k, unsigned status, json_t *doc)
{
	char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	control_conn_answer(k, status, s);
}

/* --- the log ------------------------------------------------------------- */

/* A refused request that asked for a change (any method but GET and
 * HEAD): logged with the caller's uid, as the accepted ones are. */
void
control_conn_log_refused(const struct control_conn *k, const char *url,
                         unsigned status, const char *why)
{
	char u[256], w[256], who[128];

	if (strcmp(k->method, "GET") == 0 || strcmp(k->method, "HEAD") == 0)
		return;
	log_warnx("%s: refused %s %s (%u): %s",
	          control_conn_who(k, who, sizeof(who)), k->method,
	          log_path(url, u, sizeof(u)), status,
	          log_path(why, w, sizeof(w)));
}

const char *
control_conn_who(const struct control_conn *k, char *buf, size_t size)
{
	if (k->l != NULL && k->l->web && k->session != 0)
		snprintf(buf, size, "web: session %llu (uid %ld, %s)",
		         (unsigned long long)k->session, k->uid,
		         k->peer[0] != '\0' ? k->peer : "?");
	else if (k->l != NULL && k->l->web)
		snprintf(buf, size, "web: %s",
		         k->peer[0] != '\0' ? k->peer : "?");
	else
		snprintf(buf, size, "control: uid %ld (pid %ld)", k->uid,
		         k->pid);
	return buf;
}

void
control_conn_log(const struct control_conn *k)
{
	char p[256], who[128];

	if (!control_api_route_mutates(k->req.route))
		return;
	log_info("%s: %s %s%s%s", control_conn_who(k, who, sizeof(who)),
	         k->method, control_api_route_name(k->req.route),
	         k->req.name != NULL ? " " : "",
	         k->req.name != NULL ? log_path(k->req.name, p, sizeof(p))
	                             : "");
}
