/*
 * checkremote_s3: the S3 half of --check-remote. On a probe key
 * "<prefix>.imgsync-probe-<host>-<pid>": PutObject, HeadObject (as
 * s3:GetObject), CopyObject to "<key>.copy" as a rename does, a small
 * multipart upload completed on the probe key (a store that cannot is
 * known before the first big file), a delete with an If-Match that does
 * not match (which a store must refuse: the daemon's deletes count on
 * it), both deletes, and an
 * AbortMultipartUpload of an upload that does not exist; then, as advice
 * only, whether the bucket keeps versions; and with SSE-KMS, whether the
 * role may use the key (kms:GenerateDataKey). Every write carries the
 * configured options (the s3 client sends them). Starts each call with the
 * run's callback and judges the answer it is handed back.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkremote_impl.h"
#include "errclass.h"
#include "kms.h"
#include "s3.h"

#define CR_BODY "imgsyncd --check-remote probe: safe to delete\n"
/* No upload has this id: a permitted abort answers NoSuchUpload. */
#define CR_UPLOAD_ID "imgsync-check-remote-no-such-upload"

/* Versioning is advice, not a permission the daemon needs: with it every
 * delete (ours or a mistaken one) can be undone. Never a failure. */
static void
cr_versioning(struct cr *c, const struct s3_result *r, const struct err *e)
{
	char arn[300], msg[800];

	snprintf(arn, sizeof(arn), "arn:%s:s3:::%s", c->partition,
	         c->cfg->s3.bucket);
	if (e != NULL)
		snprintf(
		    msg, sizeof(msg),
		    "cannot tell (%s; s3:GetBucketVersioning on the bucket "
		    "is not needed by the daemon, only to see this)",
		    e->code[0] != '\0' ? e->code : e->message);
	else if (strcmp(r->versioning, "Enabled") == 0)
		snprintf(msg, sizeof(msg),
		         "on: every delete and overwrite can be undone");
	else
		snprintf(
		    msg, sizeof(msg),
		    "%s: a delete cannot be undone; turn versioning on, "
		    "with a lifecycle rule that expires noncurrent versions "
		    "(see the README)",
		    r->versioning[0] != '\0' ? r->versioning : "off");
	checkremote_report_line(
	    c,
	    e == NULL && strcmp(r->versioning, "Enabled") == 0 ? "info"
	                                                       : "note",
	    "s3 versioning", arn, msg);
}

/* What the store did differently, from an answer's notes. */
static void
cr_store_notes(struct cr *c, unsigned notes, const char *what)
{
	char arn[300];

	snprintf(arn, sizeof(arn), "arn:%s:s3:::%s", c->partition,
	         c->cfg->s3.bucket);
	if (notes & S3_NOTE_ETAG_BY_HEAD)
		checkremote_report_line(
		    c, "note", "s3 store", arn,
		    "it answered CompleteMultipartUpload with an empty ETag "
		    "(as Ceph RGW 16.2 does); the object is whole and the "
		    "daemon takes its ETag from HeadObject");
	if (notes & S3_NOTE_NO_CHECKSUM) {
		char msg[300];

		snprintf(msg, sizeof(msg),
		         "it did not confirm the SHA-256 checksum of %s: it "
		         "keeps none, so verify --checksums cannot read one "
		         "back (s3.checksum = \"none\" stops sending it)",
		         what);
		checkremote_report_line(c, "note", "s3 checksum", arn, msg);
	}
}

/* The key S3 encrypts with, as the lines name it. */
static void
cr_kms_resource(const struct cr *c, char *out, size_t outlen)
{
	const char *id = c->cfg->s3.sse_kms_key_id;

	if (strncmp(id, "arn:", 4) == 0)
		snprintf(out, outlen, "%s", id);
	else if (strncmp(id, "alias/", 6) == 0)
		snprintf(out, outlen, "arn:%s:kms:%s:*:%s", c->partition,
		         c->s3t.region, id);
	else
		snprintf(out, outlen, "arn:%s:kms:%s:*:key/%s", c->partition,
		         c->s3t.region, id);
}

/* A PutObject refused for the key: S3's message names the KMS action. */
static void
cr_put_kms(struct cr *c, const struct err *e)
{
	char key[600];

	if (e == NULL || err_classify(e) != ERRC_ACCESS ||
	    strstr(e->message, "kms:") == NULL)
		return;
	cr_kms_resource(c, key, sizeof(key));
	buf_printf(&c->missing, ", kms:GenerateDataKey on %s", key);
}

static void
cr_kms_answer(struct cr *c, const struct err *e)
{
	char key[600], msg[900];

	cr_kms_resource(c, key, sizeof(key));
	if (e == NULL || err_classify(e) != ERRC_ACCESS) {
		checkremote_report_check(c, &c->s3t, "kms:GenerateDataKey", key,
		                         "(S3 asks it for every upload under "
		                         "SSE-KMS)",
		                         e);
		return;
	}
	snprintf(msg, sizeof(msg),
	         "refused (%.200s): S3 asks KMS for a data key with the "
	         "uploader's permissions, so every upload under this key "
	         "fails; allow kms:GenerateDataKey (and kms:Decrypt, for "
	         "multipart uploads) on the key to the role, in its policy "
	         "or the key's",
	         e->message);
	if (c->put_ok) {
		/* S3 used the key for the probe object all the same: the key
		 * policy may allow it only through S3 (kms:ViaService). */
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
		         "; yet S3 accepted the probe upload under the key "
		         "(a key policy with kms:ViaService allows it through "
		         "S3 only; or the store does not check KMS)");
		checkremote_report_line(c, "WARN", "kms:GenerateDataKey", key,
		                        msg);
		return;
	}
	checkremote_report_problem(c, CHECKREMOTE_DENIED, "kms:GenerateDataKey",
	                           key, msg, e);
	if (c->missing.len > 0)
		buf_puts(&c->missing, ", ");
	buf_printf(&c->missing, "kms:GenerateDataKey on %s", key);
}

/* The multipart probe's answer: a store that cannot complete one fails
 * every file past the threshold. */
static void
cr_multipart_answer(struct cr *c, const struct s3_result *r,
                    const struct err *e)
{
	const char *obj = c->obj_arn.data;
	char msg[900];

	if (c->mp_fd != -1) {
		close(c->mp_fd);
		c->mp_fd = -1;
	}
	if (e == NULL) {
		checkremote_report_check(
		    c, &c->s3t, "s3:PutObject", obj,
		    "(a multipart upload, completed: as files of "
		    "s3.multipart_threshold_mb and more are)",
		    NULL);
		cr_store_notes(c, r->notes, "a multipart upload");
		return;
	}
	if (e->kind != ERR_HTTP || err_classify(e) == ERRC_ACCESS ||
	    err_classify(e) == ERRC_AUTH) {
		checkremote_report_check(c, &c->s3t, "s3:PutObject", obj,
		                         "(a multipart upload)", e);
		return;
	}
	snprintf(msg, sizeof(msg),
	         "the store cannot complete a multipart upload (%.300s): "
	         "every file of s3.multipart_threshold_mb (%d MB) and more "
	         "would fail; raise s3.multipart_threshold_mb (up to 5120) "
	         "or use a store that can",
	         e->message, c->cfg->s3.multipart_threshold_mb);
	checkremote_report_problem(c, CHECKREMOTE_OTHER, "s3 multipart upload",
	                           obj, msg, e);
}

/* A delete whose If-Match names another ETag must be refused (412): the
 * daemon deletes an object only in the version it knows, so that one
 * written since by another writer stays. */
static void
cr_ifmatch_answer(struct cr *c, const struct err *e)
{
	char arn[300];

	snprintf(arn, sizeof(arn), "arn:%s:s3:::%s", c->partition,
	         c->cfg->s3.bucket);
	if (e != NULL && e->http_status == 412) {
		checkremote_report_line(c, "info", "s3 conditional delete", arn,
		                        "If-Match is honoured: an object "
		                        "written since the daemon looked is "
		                        "never deleted");
		return;
	}
	if (e != NULL)
		return; /* the plain delete that follows says why */
	c->obj_left = 0;
	checkremote_report_line(
	    c, "note", "s3 conditional delete", arn,
	    "the store ignores If-Match on DeleteObject (as Ceph RGW 16.2 "
	    "does): an object another writer puts at the same key between "
	    "the daemon's look and its delete is deleted too; let one "
	    "imgsyncd alone write each prefix");
}

/* KMS's answer, handed to the run's S3 callback. */
static void
cr_on_kms(const struct err *e, void *arg)
{
	struct cr *c = arg;

	c->s3_done(NULL, e, c);
}

/* The multipart probe's body: a few bytes in a memory file. */
static int
cr_multipart_start(struct cr *c, s3_done_cb done, struct err *e)
{
	struct s3_body body;

	c->mp_fd = memfd_create("imgsync-probe", MFD_CLOEXEC);
	if (c->mp_fd == -1 || write(c->mp_fd, CR_BODY, strlen(CR_BODY)) !=
	                          (ssize_t)strlen(CR_BODY)) {
		err_sys(e, "check-remote: the multipart probe's body");
		return -1;
	}
	memset(&body, 0, sizeof(body));
	body.fd = c->mp_fd;
	body.len = strlen(CR_BODY);
	return s3_upload_multipart(c->s3, c->key.data, &body, "text/plain",
	                           NULL, 0, done, c, e);
}

void
checkremote_s3_answer(struct cr *c, const struct s3_result *r,
                      const struct err *e)
{
	const char *obj = c->obj_arn.data, *copy = c->copy_arn.data;
	char note[600];

	switch (c->step) {
	case CR_S3_PUT:
		c->put_ok = e == NULL;
		c->obj_left = e == NULL;
		checkremote_report_check(c, &c->s3t, "s3:PutObject", obj, NULL,
		                         e);
		cr_put_kms(c, e);
		if (e == NULL)
			cr_store_notes(c, r->notes, "a PutObject");
		break;
	case CR_S3_GET:
		c->get_denied = checkremote_report_check(
		                    c, &c->s3t, "s3:GetObject", obj,
		                    "(HeadObject)", e) == CHECKREMOTE_DENIED;
		break;
	case CR_S3_COPY:
		c->copy_ok = e == NULL;
		c->copy_left = e == NULL;
		snprintf(note, sizeof(note),
		         "(CopyObject, as a rename does; it also needs "
		         "s3:GetObject on %s)",
		         obj);
		if (checkremote_report_check(c, &c->s3t, "s3:PutObject", copy,
		                             note, e) == CHECKREMOTE_DENIED &&
		    !c->get_denied) {
			/* Either half of the copy may be the one refused. */
			buf_printf(&c->missing, " (or s3:GetObject on %s)",
			           obj);
		}
		break;
	case CR_S3_DEL_COPY:
		c->copy_left = e != NULL;
		checkremote_report_check(c, &c->s3t, "s3:DeleteObject", copy,
		                         NULL, e);
		break;
	case CR_S3_DEL:
		c->obj_left = c->obj_left && e != NULL;
		checkremote_report_check(c, &c->s3t, "s3:DeleteObject", obj,
		                         NULL, e);
		break;
	case CR_S3_VERSIONING:
		cr_versioning(c, r, e);
		break;
	case CR_S3_MULTIPART:
		cr_multipart_answer(c, r, e);
		break;
	case CR_S3_DEL_IFMATCH:
		cr_ifmatch_answer(c, e);
		break;
	case CR_S3_KMS:
		cr_kms_answer(c, e);
		break;
	case CR_S3_ABORT:
		/* Past the permission check, the made-up upload is unknown
		 * (NoSuchUpload). */
		if (err_classify(e) == ERRC_GONE)
			e = NULL;
		checkremote_report_check(
		    c, &c->s3t, "s3:AbortMultipartUpload", obj,
		    "(of a multipart upload that failed)", e);
		break;
	default:
		break;
	}
}

const char *
checkremote_s3_action(enum cr_step step)
{
	switch (step) {
	case CR_S3_PUT:
	case CR_S3_COPY:
		return "s3:PutObject";
	case CR_S3_GET:
		return "s3:GetObject";
	case CR_S3_DEL_COPY:
	case CR_S3_DEL_IFMATCH:
	case CR_S3_DEL:
		return "s3:DeleteObject";
	case CR_S3_ABORT:
		return "s3:AbortMultipartUpload";
	case CR_S3_MULTIPART:
		return "s3:PutObject";
	case CR_S3_KMS:
		return "kms:GenerateDataKey";
	default:
		return "s3:GetBucketVersioning";
	}
}

int
checkremote_s3_start(struct cr *c, s3_done_cb done, struct err *e)
{
	const char *obj = c->obj_arn.data, *copy = c->copy_arn.data;
	struct s3_body body;
	char arn[300];
	int rc = -1;

	switch (c->step) {
	case CR_S3_PUT:
		if (c->s3_stop[0] != '\0') {
			checkremote_report_skip(c, "s3:PutObject", obj,
			                        c->s3_stop);
			return 0;
		}
		memset(&body, 0, sizeof(body));
		body.data = CR_BODY;
		body.fd = -1;
		body.len = strlen(CR_BODY);
		rc = s3_put_object(c->s3, c->key.data, &body, "text/plain",
		                   NULL, 0, done, c, e);
		break;
	case CR_S3_GET:
	case CR_S3_COPY:
		if (c->s3_stop[0] != '\0' || !c->put_ok) {
			checkremote_report_skip(
			    c,
			    c->step == CR_S3_GET ? "s3:GetObject"
			                         : "s3:PutObject",
			    c->step == CR_S3_GET ? obj : copy,
			    c->s3_stop[0] ? c->s3_stop
			                  : "not checked: needs the probe "
			                    "object, which s3:PutObject could "
			                    "not write");
			return 0;
		}
		rc = c->step == CR_S3_GET
		         ? s3_head_object(c->s3, c->key.data, done, c, e)
		         : s3_copy_object(c->s3, c->key.data, c->copy_key.data,
		                          done, c, e);
		break;
	case CR_S3_DEL_COPY:
		if (!c->copy_ok)
			return 0;
		rc =
		    s3_delete_object(c->s3, c->copy_key.data, NULL, done, c, e);
		break;
	case CR_S3_DEL_IFMATCH:
		if (c->s3_stop[0] != '\0' || !c->obj_left)
			return 0;
		rc = s3_delete_object(c->s3, c->key.data,
		                      "\"imgsync-check-remote-no-such-etag\"",
		                      done, c, e);
		break;
	case CR_S3_DEL:
		/* Deleting a missing key is permitted or not all the same. */
		if (c->s3_stop[0] != '\0' && !c->put_ok) {
			checkremote_report_skip(c, "s3:DeleteObject", obj,
			                        c->s3_stop);
			return 0;
		}
		rc = s3_delete_object(c->s3, c->key.data, NULL, done, c, e);
		break;
	case CR_S3_ABORT:
		if (c->s3_stop[0] != '\0') {
			checkremote_report_skip(c, "s3:AbortMultipartUpload",
			                        obj, c->s3_stop);
			return 0;
		}
		rc = s3_abort_multipart(c->s3, c->key.data, CR_UPLOAD_ID, done,
		                        c, e);
		break;
	case CR_S3_VERSIONING:
		if (c->s3_stop[0] != '\0')
			return 0;
		rc = s3_get_versioning(c->s3, done, c, e);
		break;
	case CR_S3_MULTIPART:
		if (c->s3_stop[0] != '\0' || !c->put_ok) {
			checkremote_report_skip(
			    c, "s3 multipart upload", obj,
			    c->s3_stop[0] ? c->s3_stop
			                  : "not checked: s3:PutObject is "
			                    "refused");
			return 0;
		}
		rc = cr_multipart_start(c, done, e);
		break;
	case CR_S3_KMS:
		if (c->kms == NULL)
			return 0;
		if (c->cfg->s3.sse_kms_key_id[0] == '\0') {
			checkremote_report_skip(
			    c, "kms:GenerateDataKey", "alias/aws/s3",
			    "not checked: the AWS managed key serves every "
			    "principal of the account, through S3 only");
			return 0;
		}
		/* S3's encryption context: the bucket's ARN with a Bucket
		 * Key, else the object's. */
		snprintf(arn, sizeof(arn), "arn:%s:s3:::%s", c->partition,
		         c->cfg->s3.bucket);
		rc = kms_generate_data_key(
		    c->kms, c->cfg->s3.sse_kms_key_id,
		    c->cfg->s3.sse_bucket_key ? arn : obj, cr_on_kms, c, e);
		break;
	default:
		return 0;
	}
	return rc == 0 ? 1 : -1;
}
