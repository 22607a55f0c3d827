/*
 * control_impl.h: what the control socket's files share, private to them.
 *
 *   control.c          life cycle; the socket's requests
 *   control_listener.c one libmicrohttpd server on the loop
 *   control_route.c    a parsed request to the file of its route
 *   control_socket.c   making the socket file safely (directory, stale
 *                      socket, mode, group)
 *   control_conn.c     one request: its answer, suspending it while
 *                      DynamoDB answers, the log lines of who asked
 *   control_status.c   /status and /metrics, and the rate they show
 *   control_items.c    /getall, /getitem, /delete, /upload: the items
 *   control_engine.c   /rescan, /pause, /resume, /retry, /failed,
 *                      /deletions, /verify: the rest the engine is asked
 *   control_url.c      /url: a presigned link to one synced file
 *   control_web.c      the gallery's listener: login, session and CSRF
 *                      checks, its pages and the routes it shares
 *   control_web_login.c  POST /web/login on the socket: a one-time link
 *   control_web_listen.c  its TCP socket and TLS files
 *   control_web_list.c    GET /api/list: a folder's newest images
 *   control_web_upload.c  PUT /api/upload: a file into the watch root
 *   control_api.c      parsing requests (pure; its own header)
 *
 * Every handler runs on the loop's thread, so the engine and the state
 * database are read without locks.
 */
#ifndef IMGSYNC_CONTROL_IMPL_H
#define IMGSYNC_CONTROL_IMPL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "buf.h"
#include "control.h"
#include "control_api.h"
#include "web_session.h"

#define CTL_RATE_WINDOW 10  /* seconds /status's rate is taken over */
#define CTL_MAX_WAITING 256 /* connections waiting on DynamoDB at once */

struct control_conn;
struct control_web_upload;

/* What a listener does with MHD's calls of one request: the first
 * (route, size and access checks before a body is read), each piece of the
 * body, the answer once the body is all there; and the headers every
 * answer of the listener carries (NULL: none). */
struct control_listener_ops {
	enum MHD_Result (*begin)(struct control_conn *k, const char *url);
	enum MHD_Result (*body)(struct control_conn *k, const char *data,
	                        size_t len);
	enum MHD_Result (*answer)(struct control_conn *k);
	void (*headers)(const struct control_conn *k,
	                struct MHD_Response *resp);
};

/* One HTTP server on the loop: the control socket, or the gallery. */
struct control_listener {
	struct control *c;
	const struct control_listener_ops *ops;
	struct MHD_Daemon *mhd;
	struct loop_timer *timer; /* MHD's own timeouts */
	int epfd;
	int web; /* the gallery: sessions, CSRF, its own routes */
};

/* Files done and bytes sent, one sample a second, for /status's rates. */
struct control_rate {
	struct loop_timer *tick;
	uint64_t done[CTL_RATE_WINDOW + 1];
	uint64_t bytes[CTL_RATE_WINDOW + 1];
	unsigned ndone;
};

struct control {
	struct control_deps d; /* d.cfg: the latest control_reconfigure's */
	struct verify *verify; /* the running or last verification */
	struct control_listener sock;
	struct control_listener web; /* web.mhd NULL: no gallery */
	struct web_sessions *sessions;
	char *web_url;   /* the gallery's base URL, ending in '/' */
	char *s3_origin; /* where presigned links point (the CSP) */
	char *tls_cert;  /* PEM, while the gallery listens */
	char *tls_key;
	int web_secure;      /* cookies only over HTTPS */
	int web_trust_proxy; /* the client is in X-Forwarded-For */
	uint64_t max_upload; /* web.max_upload_mb, in bytes */
	struct control_rate rate;
	char *socket_path;
	char *trash;
	char *prefix;
	char *root;
	char *bucket;
	char *table;
	size_t max_body;
	unsigned timeout_ms; /* a DynamoDB wait is answered 504 after it */
	uint64_t started_ms;
	struct control_conn *conns;
	unsigned nwaiting; /* suspended connections */
};

/*
 * One request. It lives until MHD is done with the connection and no
 * callback holds it; a callback that outlives the server (shutdown) finds
 * c NULL and only frees it.
 */
struct control_conn {
	struct control *c;
	struct control_listener *l;
	struct control_conn *prev, *next;
	struct MHD_Connection *mc;
	const char *method;
	unsigned status; /* of the route: 200, 404, 405, 413 */
	enum ctl_route route;
	const char *allow;
	struct buf body;
	int too_big;
	int suspended;
	int pending;   /* a callback will still come */
	int timed_out; /* answered 504 before the callback came */
	struct loop_timer *deadline;
	int done; /* MHD finished the connection */
	struct ctl_request req;
	unsigned reply_status;
	char *reply_body;
	json_t *images; /* /getall: the page being gathered */
	json_t *start_key;
	unsigned scans;
	long uid;
	long pid;
	/* the gallery's: the session, the caller's address */
	uint64_t session;
	int web_kind; /* control_web.c's route kind */
	char peer[64];
	const char *path; /* the URL's path (MHD's) */
	struct control_web_upload *up;
	void (*cleanup)(struct control_conn *k); /* when freed, if set */
};

/* control_socket.c: the listening socket's fd (non-blocking, close-on-exec)
 * at cfg->control.socket, or -1. */
int control_socket_open(const struct config *cfg, struct err *e);

/* control_listener.c: starts l (MHD on the loop) on the listening socket fd,
 * which it takes, with TLS when tls_cert (PEM) is not NULL; stops it, answering
 * its waiting requests 503. */
int control_listener_start(struct control *c, struct control_listener *l,
                           int fd, const char *tls_cert, const char *tls_key,
                           struct err *e);
void control_listener_stop(struct control_listener *l);
/* control_route.c: a parsed request (k->route, k->body) answered by the file
 * of its route. */
enum MHD_Result control_dispatch(struct control_conn *k);

/* control_conn.c */
struct control_conn *control_conn_new(struct control_listener *l,
                                      struct MHD_Connection *mc,
                                      const char *method);
void control_conn_free(struct control_conn *k);
/* A query argument, or NULL. */
const char *control_conn_query(const struct control_conn *k, const char *name);
/* Whether a query argument is "1" or "true". */
int control_conn_query_true(const struct control_conn *k, const char *name);
/* Answers now. Take body (doc): NULL (out of memory) closes the
 * connection. */
enum MHD_Result control_conn_send(struct control_conn *k, unsigned status,
                                  char *body, const char *type);
enum MHD_Result control_conn_json(struct control_conn *k, unsigned status,
                                  json_t *doc);
enum MHD_Result control_conn_error(struct control_conn *k, unsigned status,
                                   const char *message);
/* 503: too many requests wait on DynamoDB already. */
enum MHD_Result control_conn_busy(struct control_conn *k);
/* The request waits for a callback; 0, or -1 when too many do already
 * (answer control_conn_busy). */
int control_conn_suspend(struct control_conn *k);
/* The answer of a suspended request, from its callback: always call it
 * once (status 0 and body NULL when the callback found it answered or
 * gone). Take body (doc). */
void control_conn_answer(struct control_conn *k, unsigned status, char *body);
void control_conn_answer_json(struct control_conn *k, unsigned status,
                              json_t *doc);
/* The answer of a suspended request, kept for the handler, which MHD calls
 * again once the connection is resumed (shutdown uses it). Takes body. */
void control_conn_resume(struct control_conn *k, unsigned status, char *body);
/* Who is asking, for the log: "uid 1000 (pid 42)", or on the gallery
 * "web session 3 (uid 1000, 127.0.0.1)". */
const char *control_conn_who(const struct control_conn *k, char *buf,
                             size_t size);
/* Who asked for a change (logged with the caller's uid) and who was
 * refused one. */
void control_conn_log(const struct control_conn *k);
void control_conn_log_refused(const struct control_conn *k, const char *url,
                              unsigned status, const char *why);

/* control_status.c */
int control_status_init(struct control *c, struct err *e);
void control_status_cleanup(struct control *c);
/* GET /status, GET /metrics. */
enum MHD_Result control_status_answer(struct control_conn *k);

/* control_items.c */
enum MHD_Result control_items_answer(struct control_conn *k);
/* A state row's FileName (the key, or s3.prefix + path for a row without
 * one), as a JSON string even when the bytes are not UTF-8. */
json_t *control_items_name(const struct control *c, const struct state_file *f);

/* control_url.c: POST /url. */
enum MHD_Result control_url_answer(struct control_conn *k);

/* control_web.c: the gallery's life cycle (its requests are its
 * listener's operations). */
int control_web_start(struct control *c, const struct config *cfg,
                      struct err *e);
void control_web_reconfigure(struct control *c, const struct config *cfg);
void control_web_stop(struct control *c);

/* control_web_login.c: POST /web/login on the control socket. */
enum MHD_Result control_web_login_answer(struct control_conn *k);

/* control_web_listen.c: the gallery's listening socket (non-blocking,
 * close-on-exec) on cfg->web.listen, or -1; *tls_key and *tls_cert the
 * PEM files' contents (NULL without TLS; the caller frees them). */
int control_web_listen(const struct config *cfg, char **tls_cert,
                       char **tls_key, struct err *e);

/* control_web_list.c: GET /api/list. */
enum MHD_Result control_web_list_answer(struct control_conn *k);

/* control_web_upload.c: PUT /api/upload, begun (checks, the temporary
 * file), fed, finished (type check, rename into place), freed (a
 * temporary file left is removed). */
enum MHD_Result control_web_upload_begin(struct control_conn *k);
int control_web_upload_feed(struct control_conn *k, const char *data,
                            size_t len);
enum MHD_Result control_web_upload_finish(struct control_conn *k);

/* control_engine.c */
enum MHD_Result control_engine_answer(struct control_conn *k);

#endif
