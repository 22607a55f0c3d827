/*
 * creds_impl.h: what the credential chain's files share, and nobody else
 * includes. From the top down, each calling only the files below it:
 *   creds.c            runs the chain (its synchronous steps, the waiters,
 *                      the cache and its refresh), the public API
 *   creds_profile.c    the shared files' profile, and the step it asks for
 *   creds_sts.c        assume role (its source first: a provider of its
 *                      own) and web identity, over STS
 *   creds_process.c    credential_process, a program run without a shell
 *   creds_sso.c        SSO: the cached token, then GetRoleCredentials
 *   creds_container.c  the steps that ask a server (and the three above);
 *   creds_imds.c       each hands creds_http.c its struct creds_http_ops
 *                      with a request
 *   creds_http.c       sends those requests, one at a time in the
 *                      provider's struct creds_http_step, and hands the
 *                      outcome to the ops of the step that sent it
 *   creds_core.c       ends a resolution, guards re-entry, frees the
 *                      provider
 */
#ifndef IMGSYNC_CREDS_IMPL_H
#define IMGSYNC_CREDS_IMPL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "creds.h"

/* Each network request is tried this often, with this deadline per
 * attempt (when the provider has a loop), as the SDKs do. */
#define CREDS_ATTEMPTS 2
#define CREDS_CONTAINER_ATTEMPT_MS 2000
#define CREDS_IMDS_ATTEMPT_MS 1000

enum creds_stage {
	STAGE_CONTAINER,
	STAGE_IMDS_TOKEN,
	STAGE_IMDS_ROLE,
	STAGE_IMDS_CREDS,
	STAGE_STS,
	STAGE_SSO,
};

/* What a provider resolves: the whole chain, or one source of a role
 * (creds_sts.c makes such a provider for the role's source). */
enum creds_only {
	CREDS_ALL,
	CREDS_ONLY_PROFILE,   /* source_profile: that profile, nothing else */
	CREDS_ONLY_ENV,       /* credential_source = Environment */
	CREDS_ONLY_IMDS,      /* credential_source = Ec2InstanceMetadata */
	CREDS_ONLY_CONTAINER, /* credential_source = EcsContainer */
};

/* A role to assume (creds_sts.c), found by creds.c in the environment or a
 * profile. */
struct creds_role {
	int web_identity; /* AssumeRoleWithWebIdentity, token_file's */
	char role_arn[256];
	char session_name[128]; /* "" : imgsync-<time> */
	char external_id[1280];
	int duration; /* seconds; 0: STS's default (3600) */
	char token_file[1024];
	char profile[128]; /* the profile it comes from; "" : env */
	/* the source (assume role only) */
	enum creds_only source_kind;
	char source_profile[128];
};

/* SSO's settings of a profile (creds_sso.c). */
struct creds_sso_plan {
	char cache_key[512]; /* the session name, or the legacy start URL */
	char region[64];
	char account_id[32];
	char role_name[128];
	char profile[128];
};

/* A running credential_process (creds_process.c). */
struct creds_proc {
	int pid;
	int out_fd, err_fd;
	struct buf out, err;
	struct loop_timer *timer; /* the deadline, then the wait for exit */
	uint64_t deadline_ms;
	int timed_out;
	char first_word[128]; /* for messages: never the arguments */
	char profile[128];
};

struct creds_provider;

/* A step that asks a server, as creds_http.c sees it: how long one attempt
 * may take, and where the outcome goes. Each step (creds_container.c,
 * creds_imds.c) keeps its own, and hands it over with each request. */
struct creds_http_ops {
	int attempt_ms;
	/* The answer: any status (a 5xx once out of attempts). */
	void (*response)(struct creds_provider *p, struct http_response *resp);
	/* No answer once out of attempts (a transport error, a timeout, a
	 * retry that could not be sent): why says what happened, cause is
	 * the transport's error. */
	void (*failed)(struct creds_provider *p, const struct err *cause,
	               const char *why);
};

/* The network request in progress: creds_http.c sends it, the step that
 * asked (creds_container.c, creds_imds.c) reads its answer; creds.c reaches
 * it only through creds_http_*, and creds_core.c forgets it when the
 * resolution ends and frees the timer with the provider. */
struct creds_http_step {
	const struct creds_http_ops *ops; /* of the step that sent it */
	struct loop_timer *timer; /* per-attempt deadline; NULL without loop */
	enum creds_stage stage;
	int attempt;
	int timed_out;
	struct http_xfer *xfer;
	const char *method;
	const char *hdr_name;
	const char *hdr_value;
	char *auth; /* container Authorization value */
	/* STS: a body and signed headers instead of the one header */
	char *body;
	struct http_header hdrs[6];
	size_t nhdrs;
	char *hdr_store[6]; /* their values, owned */
	char url[4096];
	char imds_base[1024];
	char imds_token[1024];
	long v1_because; /* the token request's status when falling back */
	char role[128];
};

struct creds_waiter {
	creds_done_cb cb;
	void *arg;
};

struct creds_provider {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *profile;
	int refresh_ahead_secs;
	struct http *http; /* borrowed */
	struct loop *loop; /* borrowed; NULL: no deadlines, no process */
	char *region;      /* STS's; NULL: the profile's or us-east-1 */
	int process_timeout_ms;
	enum creds_only only;
	int nesting;     /* a role's source is one deeper: a loop ends at 8 */
	int self_source; /* the profile is its role's own source: its keys */

	struct creds cached;
	int have;
	time_t got_at; /* when cached was resolved */

	/* assume role and web identity: the role, its source provider */
	struct creds_role role;
	struct creds_provider *source;
	const struct creds_chain *chain; /* creds.c's */
	struct creds_sso_plan sso;
	struct creds_proc proc;
	uint64_t last_refresh_ms; /* last background refresh started */

	struct creds_waiter *waiters;
	size_t nwaiters;
	size_t capwaiters;
	int resolving;

	/* Re-entrancy: a callback may free the provider; the outermost entry
	 * point does the actual freeing once it unwinds. */
	int depth;
	int closing;
	int free_pending;

	struct creds_http_step step;
	char note[384]; /* why instance metadata found nothing */
	char cred_path[PATH_MAX];
	char config_path[PATH_MAX];
};

/*
 * creds_core.c, for all the others.
 */
/* Copies src whole into dst; -1 (dst untouched) when it does not fit. */
int creds_core_copy(char *dst, size_t dstlen, const char *src);
/* Wipes and frees a string that holds a secret; NULL is a no-op. */
void creds_core_free_secret(char *s);
/* Frees the provider and all it holds (the timer too): at once when it
 * never started, else from the outermost creds_core_leave. */
void creds_core_destroy(struct creds_provider *p);
/* Around every entry from outside (a callback, a timer, the public API):
 * after creds_core_leave, p may be gone. */
void creds_core_enter(struct creds_provider *p);
void creds_core_leave(struct creds_provider *p);
/* Ends the resolution: forgets the request in flight, caches c (when set,
 * else e is the failure) and fires every waiter once. */
void creds_core_finish(struct creds_provider *p, const struct creds *c,
                       const struct err *e);
/* Ends it with ERR_CANCEL: the provider is being freed. */
void creds_core_cancelled(struct creds_provider *p);
/* Ends it with "no AWS credentials found", naming what was tried and
 * p->note. */
void creds_core_nothing(struct creds_provider *p);

/*
 * creds_http.c, for creds.c.
 */
/* Creates the per-attempt timer (l may be NULL: no deadline). */
int creds_http_init(struct creds_provider *p, struct loop *l, struct err *e);
/* Cancels the transfer in flight, if any; its callback fires. */
void creds_http_cancel(struct creds_provider *p);

/*
 * creds_http.c, for the steps.
 */
/* Sends p->step's request (method, url, the one header); its outcome goes
 * to ops. -1 when it could not be sent (ops is not called). */
int creds_http_send(struct creds_provider *p, const struct creds_http_ops *ops,
                    struct err *e);
/* The credentials JSON both servers answer with (imds: it has a Code that
 * must be "Success"); what names the source in messages, which never
 * quote the body. */
int creds_http_from_json(const struct buf *body, int imds, const char *what,
                         struct creds *c, struct err *e);
/* ISO 8601 / RFC 3339 date-time into *out; -1 when it is not one. */
int creds_http_parse_time(const char *s, time_t *out);
/* Forgets the STS request's body and header values (wiped). */
void creds_http_clear_extra(struct creds_provider *p);

/*
 * The steps, for creds.c: 1 started (the chain ends from a callback), 0
 * nothing to try, -1 e says why the chain ends.
 */
/* 0: not configured. */
int creds_container_start(struct creds_provider *p, struct err *e);
/* 0: p->note says why; never -1 (a failure to send ends the chain from
 * inside, with the note). */
int creds_imds_start(struct creds_provider *p);
/* The shared files' profile (creds_profile.c): 1 keys in c, 0 nothing,
 * -1 e says why, CREDS_STARTED a step (a role, SSO, a process) runs. */
#define CREDS_STARTED 2
int creds_profile_step(struct creds_provider *p, struct creds *c,
                       struct err *e);
/* p->role filled in: 1 started, -1 e says why. */
int creds_sts_start(struct creds_provider *p, struct err *e);
/* Frees the role's source provider, if any. */
void creds_sts_free(struct creds_provider *p);
/* cmd (a profile's credential_process): 1 started, -1 e says why. */
int creds_process_start(struct creds_provider *p, const char *cmd,
                        const char *profile, struct err *e);
/* Kills and reaps a process still running; frees its buffers. */
void creds_process_stop(struct creds_provider *p);
/* p->sso filled in: 1 started, -1 e says why. */
int creds_sso_start(struct creds_provider *p, struct err *e);

/*
 * What creds.c lends creds_sts.c for a role's source, a provider of its
 * own (a table, so that calls go down only: creds.c starts the steps).
 */
struct creds_chain {
	struct creds_provider *(*new_source)(struct creds_provider *parent,
	                                     enum creds_only only,
	                                     const char *profile,
	                                     struct err *e);
	int (*resolve)(struct creds_provider *p, creds_done_cb cb, void *arg,
	               struct err *e);
	void (*free)(struct creds_provider *p);
};

#endif
