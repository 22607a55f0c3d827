/*
 * checkremote_impl: what the rooms of --check-remote share, private to
 * them. checkremote.c runs the probes one step at a time and owns the
 * flow: it starts each step's call with its own callback, and when the
 * answer comes back hands it to the service's file to judge, then moves
 * on; checkremote_s3.c and checkremote_ddb.c make each service's calls
 * and judge their answers, never moving the run on themselves;
 * checkremote_report.c prints a line per check and the summary;
 * checkremote_explain.c says what a failure means for the set-up (from
 * lib/errclass). Calls go one way: run -> probes -> report -> explain.
 */
#ifndef IMGSYNC_CHECKREMOTE_IMPL_H
#define IMGSYNC_CHECKREMOTE_IMPL_H

#include "buf.h"
#include "checkremote.h"

/* The probes, in order. The deletes also run after a failure in between
 * whenever there is something of ours to remove. */
enum cr_step {
	CR_S3_PUT,
	CR_S3_GET,
	CR_S3_COPY,
	CR_S3_DEL_COPY,
	CR_S3_MULTIPART,
	CR_S3_DEL_IFMATCH,
	CR_S3_DEL,
	CR_S3_ABORT,
	CR_S3_VERSIONING,
	CR_S3_KMS,
	CR_DDB_DESCRIBE,
	CR_DDB_PUT,
	CR_DDB_GET,
	CR_DDB_SCAN,
	CR_DDB_UPDATE, /* only with thumbnails */
	CR_DDB_DEL,
	CR_THUMB_HELPER, /* only with thumbnails: not a call, a child */
	CR_CLOCK,
	CR_DONE,
};

/* One run of the checks. */
struct cr {
	const struct config *cfg;
	struct s3 *s3;
	struct dynamo *ddb;
	struct aws_client *kms; /* NULL unless s3.sse = aws:kms */
	s3_done_cb s3_done;     /* the run's S3 callback, for KMS's answer */
	int mp_fd;              /* the multipart probe's body; -1 */
	const char *source;
	FILE *out;
	struct checkremote_target s3t, ddbt;
	const char *partition;
	struct buf key, copy_key, obj_arn, copy_arn, missing;
	char table_arn[512];
	enum cr_step step;
	int pending;   /* a call is in flight */
	int abandoned; /* timed out: the pending callback frees */
	int done;
	char s3_stop[256]; /* why the remaining S3 probes are pointless */
	char ddb_stop[256];
	int put_ok, get_denied, copy_ok, obj_left, copy_left;
	unsigned put_notes; /* S3_NOTE_* of the probe PutObject */
	int item_made, item_left;
	unsigned checks, failed, skipped;
	int answered; /* some server answered: the clock could be judged */
	unsigned s3_calls, s3_denied, ddb_calls, ddb_denied;
	enum checkremote_problem worst;
	struct err first;
};

/* checkremote_s3.c, checkremote_ddb.c: start c->step's call with done
 * (the run's callback; arg is c). 1 when it is in flight, 0 when there is
 * nothing to call (skipped), -1 when it could not start (e says why). */
int checkremote_s3_start(struct cr *c, s3_done_cb done, struct err *e);
int checkremote_ddb_start(struct cr *c, dynamo_done_cb done, struct err *e);
/* The answer to c->step's call (e NULL: it succeeded): its line, and what
 * it tells the later steps. The run then moves on. */
void checkremote_s3_answer(struct cr *c, const struct s3_result *r,
                           const struct err *e);
void checkremote_ddb_answer(struct cr *c, json_t *resp, const struct err *e);
/* The IAM action a step's call needs, as its line names it. */
const char *checkremote_s3_action(enum cr_step step);
const char *checkremote_ddb_action(enum cr_step step);

/* checkremote_thumb.c: the thumbnail helper enters its sandbox
 * (imgsync-thumb --check), reported; nothing without thumbnails. */
void checkremote_thumb_check(struct cr *c);

/* checkremote_explain.c */
int checkremote_is_s3(const struct checkremote_target *t);

/* checkremote_report.c */
void checkremote_report_line(struct cr *c, const char *status,
                             const char *action, const char *resource,
                             const char *detail);
void checkremote_report_ok(struct cr *c, const char *action,
                           const char *resource, const char *note);
void checkremote_report_skip(struct cr *c, const char *action,
                             const char *resource, const char *why);
void checkremote_report_problem(struct cr *c, enum checkremote_problem p,
                                const char *action, const char *resource,
                                const char *msg, const struct err *e);
/* The outcome of a call to t: ok (e NULL), or a failure explained. A
 * problem that makes the service's remaining probes pointless stops
 * them. Returns the problem. */
enum checkremote_problem
checkremote_report_check(struct cr *c, const struct checkremote_target *t,
                         const char *action, const char *resource,
                         const char *note, const struct err *e);
/* The leftovers, the notes and the result lines. */
void checkremote_report_summary(struct cr *c);

#endif
