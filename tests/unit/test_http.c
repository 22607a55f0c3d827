/*
 * http against a real HTTP server on 127.0.0.1 (libmicrohttpd in a thread
 * of this process), driven by the epoll loop as the daemon drives it.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

TestSuite(http);

struct server {
	struct MHD_Daemon *d;
	unsigned short port;
	atomic_int connections;
	atomic_int requests;
	atomic_int saw_expect;
	atomic_long last_body_len;
};

struct upload {
	size_t len;
	unsigned long sum;
};

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	MHD_add_response_header(r, "X-Test", "  yes  ");
	MHD_add_response_header(r, "Date", "Sun, 22 Nov 2026 10:30:00 GMT");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
        const char *method, const char *version, const char *data, size_t *size,
        void **state)
{
	struct server *s = cls;
	struct upload *u = *state;
	char tmp[128];
	size_t i;

	(void)version;
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		*state = u;
		if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect"))
			s->saw_expect++;
		return MHD_YES;
	}
	if (*size > 0) {
		for (i = 0; i < *size; i++)
			u->sum += (unsigned char)data[i];
		u->len += *size;
		*size = 0;
		return MHD_YES;
	}
	s->requests++;
	s->last_body_len = (long)u->len;
	if (strcmp(url, "/slow") == 0)
		sleep(3);
	if (strcmp(url, "/big") == 0) {
		char *big = malloc(200000);
		struct MHD_Response *r;
		enum MHD_Result rc;

		memset(big, 'b', 200000);
		r = MHD_create_response_from_buffer(200000, big,
		                                    MHD_RESPMEM_MUST_FREE);
		rc = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		return rc;
	}
	if (strcmp(url, "/status/503") == 0)
		return reply(c, 503, "busy");
	snprintf(tmp, sizeof(tmp), "%s %s len=%zu sum=%lu", method, url, u->len,
	         u->sum);
	return reply(c, 200, tmp);
}

static void
completed(void *cls, struct MHD_Connection *c, void **state,
          enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*state);
	*state = NULL;
}

static void
notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
            enum MHD_ConnectionNotificationCode toe)
{
	struct server *s = cls;

	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		s->connections++;
}

static struct server srv;

static void
server_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&srv, 0, sizeof(srv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
	    NULL, NULL, handler, &srv, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, &srv,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_conn, &srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	cr_assert_not_null(srv.d);
	info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	srv.port = info->port;
}

static void
server_stop(void)
{
	MHD_stop_daemon(srv.d);
}

struct result {
	int calls;
	long status;
	enum err_kind kind;
	int curl_code;
	char body[512];
	char hdr[64];
	size_t body_len;
};

static void
on_done(struct http_response *resp, const struct err *e, void *arg)
{
	struct result *r = arg;

	r->calls++;
	if (e != NULL) {
		r->kind = e->kind;
		r->curl_code = e->curl_code;
		cr_assert_null(resp);
		return;
	}
	r->status = resp->status;
	r->body_len = resp->body.len;
	snprintf(r->body, sizeof(r->body), "%s",
	         resp->body.data ? resp->body.data : "");
	(void)http_response_header(resp, "x-test", r->hdr, sizeof(r->hdr));
}

struct env {
	struct loop *loop;
	struct http *http;
};

static void
env_init(struct env *v, const struct http_opts *o)
{
	struct err e;

	err_clear(&e);
	v->loop = loop_new(&e);
	cr_assert_not_null(v->loop, "%s", e.message);
	v->http = http_new(v->loop, o, &e);
	cr_assert_not_null(v->http, "%s", e.message);
}

static void
env_free(struct env *v)
{
	http_free(v->http);
	loop_free(v->loop);
}

/* Runs the loop until every result has its callback, 10 s at most. */
static void
wait_all(struct env *v, struct result *r, size_t n)
{
	uint64_t deadline = loop_now_ms() + 10000;
	struct err e;
	size_t i, done;

	for (;;) {
		for (i = done = 0; i < n; i++)
			done += r[i].calls > 0;
		if (done == n)
			return;
		cr_assert_lt(loop_now_ms(), deadline, "timed out");
		cr_assert_eq(loop_run_once(v->loop, 100, &e), 0);
	}
}

static void
url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%u%s", srv.port, path);
}

Test(http, get_and_header_lookup, .init = server_start, .fini = server_stop)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r = {0};
	struct env v;
	char u[128];

	env_init(&v, NULL);
	url(u, sizeof(u), "/hello");
	req.url = u;
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	cr_assert_eq(http_active(v.http), 1);
	wait_all(&v, &r, 1);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "GET /hello len=0 sum=0");
	cr_assert_str_eq(r.hdr, "yes");
	cr_assert_eq(http_active(v.http), 0);
	env_free(&v);
}

Test(http, keep_alive_reuses_one_connection, .init = server_start,
     .fini = server_stop)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r[20];
	struct env v;
	char u[128];
	int i;

	env_init(&v, NULL);
	url(u, sizeof(u), "/again");
	req.url = u;
	memset(r, 0, sizeof(r));
	for (i = 0; i < 20; i++) {
		cr_assert_not_null(
		    http_send(v.http, &req, on_done, &r[i], NULL));
		wait_all(&v, &r[i], 1);
		cr_assert_eq(r[i].status, 200);
	}
	cr_assert_eq(srv.requests, 20);
	cr_assert_eq(srv.connections, 1, "%d connections",
	             (int)srv.connections);
	env_free(&v);
}

Test(http, put_from_memory_without_expect, .init = server_start,
     .fini = server_stop)
{
	struct http_header h[] = {{"Content-Type", "image/jpeg"}};
	struct http_request req = {.method = "PUT", .body_fd = -1};
	size_t n = 3u * 1024 * 1024, i;
	unsigned long sum = 0;
	unsigned char *body = malloc(n);
	struct result r = {0};
	struct env v;
	char u[128], want[128];

	for (i = 0; i < n; i++) {
		body[i] = (unsigned char)(i * 7);
		sum += body[i];
	}
	env_init(&v, NULL);
	url(u, sizeof(u), "/put");
	req.url = u;
	req.headers = h;
	req.nheaders = 1;
	req.body = body;
	req.body_len = n;
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	snprintf(want, sizeof(want), "PUT /put len=%zu sum=%lu", n, sum);
	cr_assert_str_eq(r.body, want);
	cr_assert_eq(srv.saw_expect, 0, "Expect: 100-continue was sent");
	env_free(&v);
	free(body);
}

Test(http, post_range_of_a_file, .init = server_start, .fini = server_stop)
{
	struct http_request req = {.method = "POST"};
	char path[] = "/tmp/imgsync-http-XXXXXX";
	struct result r = {0};
	struct env v;
	char u[128];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef", 16), 16);
	env_init(&v, NULL);
	url(u, sizeof(u), "/part");
	req.url = u;
	req.body_fd = fd;
	req.body_offset = 10;
	req.body_len = 4; /* "abcd" */
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	cr_assert_str_eq(r.body, "POST /part len=4 sum=394");
	env_free(&v);
	close(fd);
	unlink(path);
}

Test(http, response_cap_is_an_error, .init = server_start, .fini = server_stop)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r = {0}, ok = {0};
	struct env v;
	char u[128];

	env_init(&v, NULL);
	url(u, sizeof(u), "/big");
	req.url = u;
	req.max_response = 1000;
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.kind, ERR_PARSE);
	req.max_response = 0;
	cr_assert_not_null(http_send(v.http, &req, on_done, &ok, NULL));
	wait_all(&v, &ok, 1);
	cr_assert_eq(ok.body_len, 200000);
	env_free(&v);
}

Test(http, error_status_is_a_response, .init = server_start,
     .fini = server_stop)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r = {0};
	struct env v;
	char u[128];

	env_init(&v, NULL);
	url(u, sizeof(u), "/status/503");
	req.url = u;
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	cr_assert_eq(r.kind, ERR_NONE);
	cr_assert_eq(r.status, 503);
	env_free(&v);
}

Test(http, connection_refused)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r = {0};
	struct env v;

	env_init(&v, NULL);
	/* Port 1 on loopback: nothing listens there. */
	req.url = "http://127.0.0.1:1/";
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.kind, ERR_NET);
	cr_assert_eq(r.curl_code, 7);
	env_free(&v);
}

Test(http, timeout, .init = server_start, .fini = server_stop)
{
	struct http_opts o = {.timeout_ms = 300};
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r = {0};
	struct env v;
	char u[128];

	env_init(&v, &o);
	url(u, sizeof(u), "/slow");
	req.url = u;
	cr_assert_not_null(http_send(v.http, &req, on_done, &r, NULL));
	wait_all(&v, &r, 1);
	cr_assert_eq(r.kind, ERR_NET);
	cr_assert_eq(r.curl_code, 28);
	env_free(&v);
}

Test(http, cancel_and_free_fire_callbacks_once, .init = server_start,
     .fini = server_stop)
{
	struct http_request req = {.method = "GET", .body_fd = -1};
	struct result r[3];
	struct http_xfer *x;
	struct env v;
	char u[128];

	memset(r, 0, sizeof(r));
	env_init(&v, NULL);
	url(u, sizeof(u), "/slow");
	req.url = u;
	x = http_send(v.http, &req, on_done, &r[0], NULL);
	cr_assert_not_null(x);
	cr_assert_not_null(http_send(v.http, &req, on_done, &r[1], NULL));
	cr_assert_not_null(http_send(v.http, &req, on_done, &r[2], NULL));
	(void)loop_run_once(v.loop, 50, NULL);
	http_cancel(x);
	cr_assert_eq(r[0].calls, 1);
	cr_assert_eq(r[0].kind, ERR_CANCEL);
	cr_assert_eq(http_active(v.http), 2);
	http_free(v.http);
	cr_assert_eq(r[1].calls, 1);
	cr_assert_eq(r[2].calls, 1);
	cr_assert_eq(r[1].kind, ERR_CANCEL);
	loop_free(v.loop);
}
