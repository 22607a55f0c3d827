/*
 * web_session: one-time login tokens and the sessions they open, in two
 * small arrays (WEB_MAX_LOGINS, WEB_MAX_SESSIONS): the oldest entry makes
 * room for a new one, expired ones are dropped as they are met.
 */
#include "web_session.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

struct web_login {
	char token[WEB_TOKEN_LEN + 1];
	long uid;
	time_t expires;
};

struct web_sessions {
	long ttl;
	uint64_t serial;
	struct web_login logins[WEB_MAX_LOGINS];
	unsigned nlogins;
	struct web_session sessions[WEB_MAX_SESSIONS];
	unsigned nsessions;
};

static int
web_token_new(char out[WEB_TOKEN_LEN + 1], struct err *e)
{
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                             "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[32];
	unsigned i, bits = 0, nbits = 0, n = 0;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		err_set(e, ERR_SYS, "web: no random bytes from OpenSSL");
		return -1;
	}
	for (i = 0; i < sizeof(r); i++) {
		bits = (bits << 8) | r[i];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			out[n++] = b64url[(bits >> nbits) & 63];
		}
	}
	out[n++] = b64url[(bits << (6 - nbits)) & 63];
	out[n] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return 0;
}

/* Whether a (NUL-terminated, any length) equals the token b. */
static int
web_token_eq(const char *a, const char *b)
{
	return a != NULL && strlen(a) == WEB_TOKEN_LEN &&
	       CRYPTO_memcmp(a, b, WEB_TOKEN_LEN) == 0;
}

struct web_sessions *
web_sessions_new(long ttl_secs, struct err *e)
{
	struct web_sessions *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		err_sys(e, "web: calloc");
		return NULL;
	}
	w->ttl = ttl_secs;
	return w;
}

void
web_sessions_free(struct web_sessions *w)
{
	if (w == NULL)
		return;
	OPENSSL_cleanse(w, sizeof(*w));
	free(w);
}

void
web_sessions_set_ttl(struct web_sessions *w, long ttl_secs)
{
	w->ttl = ttl_secs;
}

int
web_sessions_login(struct web_sessions *w, long uid, time_t now,
                   char out[WEB_TOKEN_LEN + 1], struct err *e)
{
	struct web_login *l;

	if (w->nlogins == WEB_MAX_LOGINS) {
		memmove(&w->logins[0], &w->logins[1],
		        (WEB_MAX_LOGINS - 1) * sizeof(w->logins[0]));
		w->nlogins--;
	}
	l = &w->logins[w->nlogins];
	if (web_token_new(l->token, e) == -1)
		return -1;
	l->uid = uid;
	l->expires = now + WEB_LOGIN_TTL;
	w->nlogins++;
	memcpy(out, l->token, sizeof(l->token));
	return 0;
}

static void
web_login_drop(struct web_sessions *w, unsigned i)
{
	OPENSSL_cleanse(&w->logins[i], sizeof(w->logins[i]));
	memmove(&w->logins[i], &w->logins[i + 1],
	        (w->nlogins - i - 1) * sizeof(w->logins[0]));
	w->nlogins--;
}

static void
web_session_drop(struct web_sessions *w, unsigned i)
{
	OPENSSL_cleanse(&w->sessions[i], sizeof(w->sessions[i]));
	memmove(&w->sessions[i], &w->sessions[i + 1],
	        (w->nsessions - i - 1) * sizeof(w->sessions[0]));
	w->nsessions--;
}

const struct web_session *
web_sessions_open(struct web_sessions *w, const char *token, time_t now,
                  struct err *e)
{
	struct web_session *s;
	unsigned i;
	long uid;

	for (i = 0; i < w->nlogins; i++)
		if (web_token_eq(token, w->logins[i].token))
			break;
	if (i == w->nlogins)
		return NULL;
	uid = w->logins[i].uid;
	if (w->logins[i].expires <= now) {
		web_login_drop(w, i);
		return NULL;
	}
	web_login_drop(w, i); /* once only, whatever comes next */
	if (w->nsessions == WEB_MAX_SESSIONS)
		web_session_drop(w, 0);
	s = &w->sessions[w->nsessions];
	if (web_token_new(s->id, e) == -1 || web_token_new(s->csrf, e) == -1)
		return NULL;
	s->serial = ++w->serial;
	s->uid = uid;
	s->expires = now + w->ttl;
	w->nsessions++;
	return s;
}

const struct web_session *
web_sessions_find(struct web_sessions *w, const char *id, time_t now)
{
	unsigned i;

	for (i = 0; i < w->nsessions; i++) {
		if (!web_token_eq(id, w->sessions[i].id))
			continue;
		if (w->sessions[i].expires <= now) {
			web_session_drop(w, i);
			return NULL;
		}
		return &w->sessions[i];
	}
	return NULL;
}

void
web_sessions_close(struct web_sessions *w, const char *id)
{
	unsigned i;

	for (i = 0; i < w->nsessions; i++)
		if (web_token_eq(id, w->sessions[i].id)) {
			web_session_drop(w, i);
			return;
		}
}

int
web_session_csrf_ok(const struct web_session *s, const char *token)
{
	return web_token_eq(token, s->csrf);
}
