#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#define HTTP_DEFAULT_MAX_RESPONSE (16u * 1024u * 1024u)
#define HTTP_MAX_HEADERS (64u * 1024u)
/* Finished easy handles kept for the next requests (curl_easy_reset keeps
 * what curl_easy_init would allocate again). */
#define HTTP_POOL_MAX 32u
#define HTTP_UPLOAD_BUFFER                                                     \
	(16L * 1024L) /* libcurl's least; for bodies under 1 MiB */
/* libcurl's receive buffer (default 16 KB) for every transfer: AWS's
 * answers here are small (headers, a JSON or XML document) and a large one
 * is read in more turns; with 128 transfers in flight it is 1.5 MB. */
#define HTTP_RECV_BUFFER (4L * 1024L)

struct http {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer *timer;
	struct http_xfer *xfers; /* doubly linked list of live transfers */
	size_t nactive;
	char *ca_bundle;
	char *user_agent;
	char *unix_socket;
	CURL *pool[HTTP_POOL_MAX];
	size_t npool;
	long connect_timeout_ms;
	long timeout_ms;
	long low_speed_secs;
};

struct http_xfer {
	struct http *http;
	struct http_xfer *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	http_done_cb cb;
	void *arg;
	const unsigned char *body;
	int body_fd;
	uint64_t body_offset;
	uint64_t body_len;
	uint64_t body_pos;
	struct http_response resp;
	char errbuf[CURL_ERROR_SIZE];
};

/* What a socket registered with the loop is currently waiting for. */
static uint32_t
http_events(int what)
{
	switch (what) {
	case CURL_POLL_IN:
		return EPOLLIN;
	case CURL_POLL_OUT:
		return EPOLLOUT;
	case CURL_POLL_INOUT:
		return EPOLLIN | EPOLLOUT;
	default:
		return 0;
	}
}

static void http_check_done(struct http *h);

static void
http_on_socket(int fd, uint32_t events, void *arg)
{
	struct http *h = arg;
	int flags = 0, running;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	http_check_done(h);
}

static void
http_on_timer(void *arg)
{
	struct http *h = arg;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(h);
}

static int
http_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
               void *socketp)
{
	struct http *h = userp;
	uint32_t ev;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		loop_del_fd(h->loop, s);
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	ev = http_events(what);
	if (socketp == NULL) {
		if (loop_add_fd(h->loop, s, ev, http_on_socket, h, NULL) == -1)
			return -1;
		/* Any non-NULL marker: this socket is registered. */
		curl_multi_assign(h->multi, s, h);
		return 0;
	}
	return loop_mod_fd(h->loop, s, ev, NULL);
}

static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	(void)multi;
	return loop_timer_set(h->timer, timeout_ms);
}

struct http *
http_new(struct loop *l, const struct http_opts *opts, struct err *e)
{
	static const struct http_opts defaults;
	struct http *h;
	const char *ca;

	if (opts == NULL)
		opts = &defaults;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		err_sys(e, "http: calloc");
		return NULL;
	}
	h->loop = l;
	ca =
	    opts->ca_bundle != NULL ? opts->ca_bundle : getenv("AWS_CA_BUNDLE");
	if (ca != NULL && *ca != '\0' && (h->ca_bundle = strdup(ca)) == NULL)
		goto nomem;
	h->user_agent =
	    strdup(opts->user_agent != NULL ? opts->user_agent
	                                    : "imgsync/" IMGSYNC_VERSION);
	if (h->user_agent == NULL)
		goto nomem;
	if (opts->unix_socket != NULL &&
	    (h->unix_socket = strdup(opts->unix_socket)) == NULL)
		goto nomem;
	h->connect_timeout_ms =
	    opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
	h->timeout_ms = opts->timeout_ms;
	h->low_speed_secs =
	    opts->low_speed_secs > 0 ? opts->low_speed_secs : 60;

	h->timer = loop_timer_new(l, http_on_timer, h, e);
	if (h->timer == NULL)
		goto fail;
	h->multi = curl_multi_init();
	if (h->multi == NULL) {
		err_set(e, ERR_SYS, "http: curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	if (opts->max_host_connections > 0) {
		curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		                  opts->max_host_connections);
		/* Room to keep every host's idle connections (S3, DynamoDB,
		 * credentials): the default cache, 4 x the transfers in flight
		 * at the moment, closed reusable connections after each burst
		 * (283 connects for 4,000 requests on a keep-alive server, 32
		 * with this). */
		curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
		                  4L * opts->max_host_connections);
	}
	return h;
nomem:
	err_sys(e, "http: strdup");
fail:
	http_free(h);
	return NULL;
}

static void
http_xfer_unlink(struct http_xfer *x)
{
	struct http *h = x->http;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	h->nactive--;
}

/* Back to the pool, or freed when the pool is full. */
static void
http_easy_put(struct http *h, CURL *c)
{
	if (h->npool < HTTP_POOL_MAX) {
		curl_easy_reset(c);
		h->pool[h->npool++] = c;
	} else {
		curl_easy_cleanup(c);
	}
}

static CURL *
http_easy_get(struct http *h)
{
	if (h->npool > 0)
		return h->pool[--h->npool];
	return curl_easy_init();
}

static void
http_xfer_free(struct http_xfer *x)
{
	if (x->easy != NULL) {
		curl_multi_remove_handle(x->http->multi, x->easy);
		http_easy_put(x->http, x->easy);
	}
	curl_slist_free_all(x->headers);
	buf_cleanup(&x->resp.body);
	buf_cleanup(&x->resp.headers);
	free(x);
}

/* Unlinks, fires the callback once, frees. */
static void
http_xfer_finish(struct http_xfer *x, const struct err *e)
{
	http_xfer_unlink(x);
	if (e == NULL)
		x->cb(&x->resp, NULL, x->arg);
	else
		x->cb(NULL, e, x->arg);
	http_xfer_free(x);
}

void
http_cancel(struct http_xfer *x)
{
	struct err e;

	err_clear(&e);
	err_set(&e, ERR_CANCEL, "http: transfer cancelled");
	http_xfer_finish(x, &e);
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	while (h->xfers != NULL)
		http_cancel(h->xfers);
	while (h->npool > 0)
		curl_easy_cleanup(h->pool[--h->npool]);
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	loop_timer_free(h->timer);
	free(h->ca_bundle);
	free(h->user_agent);
	free(h->unix_socket);
	free(h);
}

size_t
http_active(const struct http *h)
{
	return h->nactive;
}

static void
http_xfer_done(struct http_xfer *x, CURLcode rc)
{
	struct err e;

	if (rc == CURLE_OK) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE,
		                  &x->resp.status);
		curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME,
		                  &x->resp.total_secs);
		if (x->resp.body.failed) {
			err_clear(&e);
			err_set(&e, ERR_PARSE,
			        "http: response body larger than %zu bytes",
			        x->resp.body.max);
			http_xfer_finish(x, &e);
			return;
		}
		http_xfer_finish(x, NULL);
		return;
	}
	err_clear(&e);
	e.curl_code = (int)rc;
	err_set(&e, ERR_NET, "%s",
	        x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
	if (rc == CURLE_WRITE_ERROR && x->resp.body.failed) {
		e.kind = ERR_PARSE;
		snprintf(e.message, sizeof(e.message),
		         "http: response body larger than %zu bytes",
		         x->resp.body.max);
	}
	http_xfer_finish(x, &e);
}

static void
http_check_done(struct http *h)
{
	struct http_xfer *x;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		if (x != NULL)
			http_xfer_done(x, msg->data.result);
	}
}

static size_t
http_write_cb(char *p, size_t size, size_t n, void *userp)
{
	struct http_xfer *x = userp;

	if (buf_append(&x->resp.body, p, size * n) == -1)
		return 0;
	return size * n;
}

static size_t
http_header_cb(char *p, size_t size, size_t n, void *userp)
{
	struct http_xfer *x = userp;
	size_t len = size * n;

	/* A new status line (after 100 Continue or a redirect) starts over. */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
		buf_reset(&x->resp.headers);
	if (buf_append(&x->resp.headers, p, len) == -1)
		return 0;
	return len;
}

static size_t
http_read_cb(char *p, size_t size, size_t n, void *userp)
{
	struct http_xfer *x = userp;
	uint64_t left = x->body_len - x->body_pos;
	size_t want = size * n;
	ssize_t got;

	if ((uint64_t)want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (x->body_fd < 0) {
		memcpy(p, x->body + x->body_pos, want);
		x->body_pos += want;
		return want;
	}
	got = pread(x->body_fd, p, want, (off_t)(x->body_offset + x->body_pos));
	if (got <= 0) {
		snprintf(x->errbuf, sizeof(x->errbuf),
		         "http: reading the request body: %s",
		         got == 0 ? "file shrank" : strerror(errno));
		return CURL_READFUNC_ABORT;
	}
	x->body_pos += (uint64_t)got;
	return (size_t)got;
}

static int
http_seek_cb(void *userp, curl_off_t offset, int origin)
{
	struct http_xfer *x = userp;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int
http_add_header(struct http_xfer *x, const char *name, const char *value)
{
	struct curl_slist *l;
	size_t nl = strlen(name), vl = strlen(value);
	char stack[512], *line;

	line = nl + vl + 3 > sizeof(stack) ? malloc(nl + vl + 3) : stack;
	if (line == NULL)
		return -1;
	memcpy(line, name, nl);
	/* "Name;" sends an empty value; "Name:" would remove the header. */
	if (vl == 0) {
		line[nl] = ';';
		line[nl + 1] = '\0';
	} else {
		line[nl] = ':';
		line[nl + 1] = ' ';
		memcpy(line + nl + 2, value, vl + 1);
	}
	l = curl_slist_append(x->headers, line);
	if (line != stack)
		free(line);
	if (l == NULL)
		return -1;
	x->headers = l;
	return 0;
}

/* "Name:" tells curl not to send a header it would add by itself. */
static int
http_remove_header(struct http_xfer *x, const char *name)
{
	struct curl_slist *l;
	char line[64];

	snprintf(line, sizeof(line), "%s:", name);
	l = curl_slist_append(x->headers, line);
	if (l == NULL)
		return -1;
	x->headers = l;
	return 0;
}

static int
http_setup_body(struct http_xfer *x, const struct http_request *req)
{
	CURL *c = x->easy;
	int has_body = req->body != NULL || req->body_fd >= 0;

	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		return 0;
	}
	if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	if (!has_body && strcmp(req->method, "PUT") != 0 &&
	    strcmp(req->method, "POST") != 0)
		return 0;
	x->body = req->body;
	x->body_fd = req->body_fd;
	x->body_offset = req->body_offset;
	x->body_len = has_body ? req->body_len : 0;
	/* libcurl's default upload buffer is 64 KB per transfer: with many
	 * small files in flight that is most of the daemon's memory. */
	if (x->body_len < (1u << 20))
		curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE,
		                 (long)HTTP_UPLOAD_BUFFER);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, http_read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, x);
	curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, http_seek_cb);
	curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
	if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)x->body_len);
	} else {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)x->body_len);
	}
	/* The server's answer to 100-continue costs a round trip (and moto is
	 * slow to give it); our bodies are signed, so send them at once. */
	return http_remove_header(x, "Expect");
}

static int
http_setup(struct http_xfer *x, const struct http_request *req)
{
	struct http *h = x->http;
	CURL *c = x->easy;
	size_t i;

	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_bundle != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_bundle);
	if (h->unix_socket != NULL)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->unix_socket);
	curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	if (h->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->low_speed_secs);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	if (http_setup_body(x, req) == -1)
		return -1;
	for (i = 0; i < req->nheaders; i++)
		if (http_add_header(x, req->headers[i].name,
		                    req->headers[i].value) == -1)
			return -1;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
	return 0;
}

struct http_xfer *
http_send(struct http *h, const struct http_request *req, http_done_cb cb,
          void *arg, struct err *e)
{
	struct http_xfer *x;
	CURLMcode mc;

	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		err_sys(e, "http: calloc");
		return NULL;
	}
	x->http = h;
	x->cb = cb;
	x->arg = arg;
	x->body_fd = -1;
	buf_init(&x->resp.body, req->max_response ? req->max_response
	                                          : HTTP_DEFAULT_MAX_RESPONSE);
	buf_init(&x->resp.headers, HTTP_MAX_HEADERS);
	x->easy = http_easy_get(h);
	if (x->easy == NULL) {
		err_set(e, ERR_SYS, "http: curl_easy_init failed");
		goto fail;
	}
	if (http_setup(x, req) == -1) {
		err_set(e, ERR_SYS, "http: out of memory building the request");
		goto fail;
	}
	mc = curl_multi_add_handle(h->multi, x->easy);
	if (mc != CURLM_OK) {
		err_set(e, ERR_SYS, "http: %s", curl_multi_strerror(mc));
		goto fail;
	}
	x->next = h->xfers;
	if (h->xfers != NULL)
		h->xfers->prev = x;
	h->xfers = x;
	h->nactive++;
	return x;
fail:
	http_xfer_free(x);
	return NULL;
}

int
http_response_header(const struct http_response *resp, const char *name,
                     char *out, size_t outlen)
{
	const char *p, *end, *colon, *v, *ve;
	size_t nlen = strlen(name), vlen;

	if (resp->headers.data == NULL || outlen == 0)
		return -1;
	p = resp->headers.data;
	end = p + resp->headers.len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon != NULL && (size_t)(colon - p) == nlen &&
		    strncasecmp(p, name, nlen) == 0) {
			v = colon + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' ||
			                  ve[-1] == '\t'))
				ve--;
			vlen = (size_t)(ve - v);
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = eol + 1;
	}
	return -1;
}
