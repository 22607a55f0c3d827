/*
 * checkremote: imgsyncd --check-remote. With the daemon's own clients and
 * credentials, makes every call the daemon makes on a probe object and a
 * probe item (and reads the table's key schema), one line per check, and
 * says for each failure which IAM action on which resource is missing, or
 * which setting (endpoint, credentials, region, bucket, table, clock) is
 * wrong. The probe object and item are removed again.
 */
#ifndef IMGSYNC_CHECKREMOTE_H
#define IMGSYNC_CHECKREMOTE_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "dynamo.h"
#include "err.h"
#include "loop.h"
#include "s3.h"

/* Every check is done within this time, whatever the clients' settings. */
#ifndef CHECKREMOTE_TIMEOUT_MS
#define CHECKREMOTE_TIMEOUT_MS 120000
#endif

/* What a failed call says about the set-up, most fundamental first. */
enum checkremote_problem {
	CHECKREMOTE_OK = 0,
	CHECKREMOTE_ENDPOINT, /* unreachable, or not S3/DynamoDB */
	CHECKREMOTE_CREDS,    /* no credentials, or the server rejects them */
	CHECKREMOTE_REGION,
	CHECKREMOTE_BUCKET,
	CHECKREMOTE_TABLE,
	CHECKREMOTE_SCHEMA, /* the table's key is not FileName (S) alone */
	CHECKREMOTE_CLOCK,
	CHECKREMOTE_DENIED, /* the IAM action is not allowed */
	CHECKREMOTE_OTHER,
};

/* The service a call went to, for messages. All borrowed. */
struct checkremote_target {
	const char *service;  /* "s3" or "dynamodb": names the config keys */
	const char *name;     /* the bucket or the table */
	const char *endpoint; /* "http[s]://host[:port]" */
	const char *region;
};

/* What e (a failed call to t), as err_classify() sorts it, says about the
 * set-up; a sentence for the operator into msg: what is wrong and which
 * setting to look at. */
enum checkremote_problem checkremote_explain(const struct checkremote_target *t,
                                             const struct err *e, char *msg,
                                             size_t msglen);

/*
 * Probes every permission the daemon needs with the configured clients:
 * s3:PutObject, s3:GetObject, s3:DeleteObject, s3:AbortMultipartUpload on a
 * probe key "<prefix>.imgsync-probe-<host>-<pid>" (and CopyObject, as a
 * rename does, and a small multipart upload completed, as files past the
 * threshold are), all with the configured write options (storage class,
 * encryption, checksum, expected bucket owner); with s3.sse = aws:kms and a
 * key, kms:GenerateDataKey on that key (kms: NULL skips it);
 * dynamodb:DescribeTable (the key schema), PutItem, GetItem, Scan and
 * DeleteItem on a probe item. Prints one line per check to out
 * ("ok   s3:PutObject  arn:aws:s3:::bucket/key", "FAIL ... : why",
 * "skip ... : why"), then a summary naming every missing action.
 *
 * Returns 0 when everything passed; 1 when something is missing or
 * misconfigured, e then saying the most fundamental problem (kind ERR_NET:
 * unreachable; ERR_CREDS: credentials; ERR_CONFIG: region, bucket, table,
 * key schema or clock; ERR_HTTP with code "AccessDenied": IAM actions
 * missing); -1 on a local error. Runs the loop (otherwise idle) until every
 * probe has finished, at most CHECKREMOTE_TIMEOUT_MS. Removes the probe
 * object and item even after a failure in between, and names any that it
 * could not remove. All pointers are borrowed; source is the item's Source.
 */
int checkremote_run(const struct config *cfg, struct loop *loop, struct s3 *s3,
                    struct dynamo *ddb, struct aws_client *kms,
                    const char *source, FILE *out, struct err *e);

/* The exit status for checkremote_run's result (sysexits.h): 0, 69
 * EX_UNAVAILABLE (unreachable), 77 EX_NOPERM (credentials rejected or IAM
 * actions missing), 78 EX_CONFIG (region, bucket, table, key schema,
 * clock), 71 EX_OSERR (local error), 1 anything else. */
int checkremote_exit_code(int rc, const struct err *e);

#endif
