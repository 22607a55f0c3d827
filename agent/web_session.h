/*
 * web_session: who may use the gallery. An operator on the machine asks
 * the control socket for a login (imgsyncctl web-login); the answer is a
 * one-time token, good for WEB_LOGIN_TTL seconds, that a browser trades
 * once for a session: a random id (the cookie) with its own CSRF token,
 * until web.session runs out. Held in memory only: a restart logs every
 * browser out. Ids and tokens are 256 random bits, compared in constant
 * time. No I/O here; the caller gives the time.
 */
#ifndef IMGSYNC_WEB_SESSION_H
#define IMGSYNC_WEB_SESSION_H

#include <stdint.h>
#include <time.h>

#include "err.h"

#define WEB_TOKEN_LEN 43     /* 32 bytes, base64url, no padding */
#define WEB_LOGIN_TTL 600    /* seconds a login link works */
#define WEB_MAX_LOGINS 16    /* unused links kept (the oldest goes) */
#define WEB_MAX_SESSIONS 256 /* sessions kept (the oldest goes) */

struct web_session {
	char id[WEB_TOKEN_LEN + 1];   /* the cookie's value */
	char csrf[WEB_TOKEN_LEN + 1]; /* what mutating requests must send */
	uint64_t serial;              /* "session 3" in the log */
	long uid;                     /* who asked for the login */
	time_t expires;
};

struct web_sessions;

struct web_sessions *web_sessions_new(long ttl_secs, struct err *e);
void web_sessions_free(struct web_sessions *w);
/* A session's lifetime from now on (web.session on reload); those open
 * keep theirs. */
void web_sessions_set_ttl(struct web_sessions *w, long ttl_secs);
/* A new one-time login token for uid, into out; 0, or -1 (no randomness). */
int web_sessions_login(struct web_sessions *w, long uid, time_t now,
                       char out[WEB_TOKEN_LEN + 1], struct err *e);
/* Trades a login token, once, for a new session; NULL when the token is
 * unknown, used or expired (or no randomness: e says). The session is
 * valid until the next call that changes w. */
const struct web_session *web_sessions_open(struct web_sessions *w,
                                            const char *token, time_t now,
                                            struct err *e);
/* The live session with that id, or NULL (unknown or expired). */
const struct web_session *web_sessions_find(struct web_sessions *w,
                                            const char *id, time_t now);
/* Ends a session (logout); unknown ids are ignored. */
void web_sessions_close(struct web_sessions *w, const char *id);
/* Whether token is the session's CSRF token (constant time). */
int web_session_csrf_ok(const struct web_session *s, const char *token);

#endif
