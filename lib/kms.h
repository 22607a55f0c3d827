/*
 * kms: the one AWS KMS call imgsync makes. S3 calls kms:GenerateDataKey on
 * the uploader's behalf for every object written under SSE-KMS, with the
 * uploader's permissions; imgsyncd --check-remote asks for a data key itself
 * to learn, before the first upload, whether the role may use the key.
 */
#ifndef IMGSYNC_KMS_H
#define IMGSYNC_KMS_H

#include "aws.h"
#include "err.h"

/* Fires exactly once: e NULL when KMS gave a data key (which is wiped, not
 * kept: only the permission matters). */
typedef void (*kms_done_cb)(const struct err *e, void *arg);

/* GenerateDataKey (AES_256) with key_id (an ID, ARN or alias) and the
 * encryption context S3 uses, {"aws:s3:arn": context_arn}, on client (an
 * aws_client for the "kms" service; its protocol is set here: generic
 * signing, JSON errors). */
int kms_generate_data_key(struct aws_client *client, const char *key_id,
                          const char *context_arn, kms_done_cb cb, void *arg,
                          struct err *e);

#endif
