/*
 * kms: GenerateDataKey, the JSON 1.1 protocol (X-Amz-Target
 * "TrentService.<op>"); errors have DynamoDB's shape ({"__type", "message"}),
 * so dynamo_parse_error reads them.
 */
#include "kms.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dynamo.h"

struct kms_call {
	kms_done_cb cb;
	void *arg;
	char *body; /* the request's, borrowed by the client until now */
};

static void
kms_on_resp(struct http_response *resp, const struct err *e, void *arg)
{
	struct kms_call *k = arg;

	/* The answer holds a plaintext data key: wiped unread. */
	if (resp != NULL && resp->body.data != NULL)
		explicit_bzero(resp->body.data, resp->body.len);
	k->cb(e, k->arg);
	free(k->body);
	free(k);
}

int
kms_generate_data_key(struct aws_client *client, const char *key_id,
                      const char *context_arn, kms_done_cb cb, void *arg,
                      struct err *e)
{
	struct sigv4_kv h[2] = {
	    {"content-type", "application/x-amz-json-1.1"},
	    {"x-amz-target", "TrentService.GenerateDataKey"},
	};
	struct aws_request req;
	struct kms_call *k;
	json_t *body;
	char *text;

	aws_client_set_protocol(client, SIGV4_GENERIC, dynamo_parse_error);
	body = json_pack("{s:s, s:s, s:{s:s}}", "KeyId", key_id, "KeySpec",
	                 "AES_256", "EncryptionContext", "aws:s3:arn",
	                 context_arn);
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	k = calloc(1, sizeof(*k));
	if (text == NULL || k == NULL) {
		err_sys(e, "kms: out of memory");
		goto done;
	}
	k->cb = cb;
	k->arg = arg;
	k->body = text;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/";
	req.headers = h;
	req.nheaders = 2;
	req.body = text;
	req.body_len = strlen(text);
	req.body_fd = -1;
	req.max_response = 64 * 1024;
	if (aws_send(client, &req, kms_on_resp, k, e) != NULL)
		return 0;
done:
	free(k);
	free(text);
	return -1;
}
