/*
 * checkremote_s3: the S3 half of --check-remote. On a probe key
 * "<prefix>.imgsync-probe-<host>-<pid>": PutObject, HeadObject (as
 * s3:GetObject), CopyObject to "<key>.copy" as a rename does, both
 * deletes, and an AbortMultipartUpload of an upload that does not exist;
 * then, as advice only, whether the bucket keeps versions. Starts each
 * call with the run's callback and judges the answer it is handed back.
 */
#include <stdio.h>
#include <string.h>

#include "checkremote_impl.h"
#include "errclass.h"
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
	case CR_S3_DEL:
		return "s3:DeleteObject";
	case CR_S3_ABORT:
		return "s3:AbortMultipartUpload";
	default:
		return "s3:GetBucketVersioning";
	}
}

int
checkremote_s3_start(struct cr *c, s3_done_cb done, struct err *e)
{
	const char *obj = c->obj_arn.data, *copy = c->copy_arn.data;
	struct s3_body body;
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
	default:
		return 0;
	}
	return rc == 0 ? 1 : -1;
}
