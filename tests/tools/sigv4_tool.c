/*
 * sigv4_tool: drives lib/sigv4 for the Python differential tests.
 *
 * Reads one JSON object per line on stdin:
 *   {"mode": "s3"|"generic", "method", "path", "query": [[k, v], ...],
 *    "headers": [[k, v], ...], "payload_hash" (optional: null or absent
 *    hashes "body"), "body" (optional string), "region", "service",
 *    "when": <unix seconds>, "akid", "secret",
 *    "presign_expires" (optional: presign instead of signing),
 *    "session_token" (optional, presign only)}
 * and writes one JSON object per line on stdout:
 *   {"canonical_request", "string_to_sign", "signature", "authorization"}
 * (presigning gives "presigned_query" instead of "authorization"), or
 *   {"error": "..."} for a line that could not be signed.
 * Exits 0 once stdin is exhausted, 1 on an I/O failure. All lines are signed
 * through one signer cache, as the daemon's clients sign: a line whose
 * secret, date, region and service match the last one reuses its key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "sigv4.h"

struct tool_req {
	struct sigv4_input in;
	struct sigv4_kv *query;
	struct sigv4_kv *headers;
	const char *session_token;
	int presign_expires;
};

static const char *
tool_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* [[k, v], ...] into a kv array borrowing the JSON strings. */
static int
tool_pairs(json_t *arr, struct sigv4_kv **out, size_t *n, const char **why)
{
	json_t *pair;
	size_t i;

	*out = NULL;
	*n = 0;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		*why = "query/headers must be arrays";
		return -1;
	}
	*out = calloc(json_array_size(arr) + 1, sizeof(**out));
	if (*out == NULL) {
		*why = "out of memory";
		return -1;
	}
	json_array_foreach(arr, i, pair)
	{
		const char *k = json_string_value(json_array_get(pair, 0));
		const char *v = json_string_value(json_array_get(pair, 1));

		if (k == NULL || v == NULL || json_array_size(pair) != 2) {
			*why = "each pair must be [string, string]";
			return -1;
		}
		(*out)[i].name = k;
		(*out)[i].value = v;
	}
	*n = json_array_size(arr);
	return 0;
}

static int
tool_parse(json_t *o, struct tool_req *r, const char **why)
{
	const char *mode = tool_str(o, "mode");
	json_t *body = json_object_get(o, "body");
	json_t *exp = json_object_get(o, "presign_expires");

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o)) {
		*why = "not a JSON object";
		return -1;
	}
	if (mode != NULL && strcmp(mode, "s3") == 0) {
		r->in.mode = SIGV4_S3;
	} else if (mode != NULL && strcmp(mode, "generic") == 0) {
		r->in.mode = SIGV4_GENERIC;
	} else {
		*why = "mode must be \"s3\" or \"generic\"";
		return -1;
	}
	r->in.method = tool_str(o, "method");
	r->in.path = tool_str(o, "path");
	r->in.payload_hash = tool_str(o, "payload_hash");
	r->in.region = tool_str(o, "region");
	r->in.service = tool_str(o, "service");
	r->in.access_key_id = tool_str(o, "akid");
	r->in.secret_access_key = tool_str(o, "secret");
	if (!json_is_integer(json_object_get(o, "when"))) {
		*why = "when must be an integer";
		return -1;
	}
	r->in.when = (time_t)json_integer_value(json_object_get(o, "when"));
	if (json_is_string(body)) {
		r->in.body = json_string_value(body);
		r->in.body_len = json_string_length(body);
	}
	if (json_is_integer(exp)) {
		r->presign_expires = (int)json_integer_value(exp);
		r->session_token = tool_str(o, "session_token");
	}
	if (tool_pairs(json_object_get(o, "query"), &r->query, &r->in.nquery,
	               why) == -1 ||
	    tool_pairs(json_object_get(o, "headers"), &r->headers,
	               &r->in.nheaders, why) == -1)
		return -1;
	r->in.query = r->query;
	r->in.headers = r->headers;
	return 0;
}

static int
tool_set(json_t *res, const char *key, const char *val)
{
	json_t *s;

	if (val == NULL)
		return 0;
	s = json_string(val);
	if (s == NULL)
		return -1;
	return json_object_set_new(res, key, s);
}

static json_t *
tool_sign(json_t *o, struct sigv4_cache *cache)
{
	struct tool_req r;
	struct sigv4_output out;
	struct err e;
	json_t *res = json_object();
	const char *why = NULL;
	int rc;

	err_clear(&e);
	memset(&out, 0, sizeof(out));
	if (res == NULL)
		return NULL;
	if (tool_parse(o, &r, &why) == -1) {
		tool_set(res, "error", why);
		goto done;
	}
	r.in.cache = cache;
	if (r.presign_expires != 0)
		rc = sigv4_presign(&r.in, r.session_token, r.presign_expires,
		                   &out, &e);
	else
		rc = sigv4_sign(&r.in, &out, &e);
	if (rc == -1) {
		tool_set(res, "error", e.message);
		goto done;
	}
	if (tool_set(res, "canonical_request", out.canonical_request) == -1 ||
	    tool_set(res, "string_to_sign", out.string_to_sign) == -1 ||
	    tool_set(res, "signature", out.signature) == -1 ||
	    tool_set(res, "authorization", out.authorization) == -1 ||
	    tool_set(res, "presigned_query", out.presigned_query) == -1) {
		json_object_clear(res);
		tool_set(res, "error", "output is not valid UTF-8");
	}
done:
	sigv4_output_cleanup(&out);
	free(r.query);
	free(r.headers);
	return res;
}

int
main(void)
{
	char *line = NULL, *text;
	size_t cap = 0;
	ssize_t n;
	json_error_t jerr;
	json_t *o, *res;
	struct sigv4_cache *cache;
	struct err e;
	int rc = 0;

	err_clear(&e);
	cache = sigv4_cache_new(&e);
	if (cache == NULL) {
		fprintf(stderr, "sigv4_tool: %s\n", e.message);
		return 1;
	}
	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (n == 0 || line[0] == '\n')
			continue;
		o = json_loads(line, 0, &jerr);
		if (o == NULL) {
			res = json_pack("{s:s}", "error", jerr.text);
		} else {
			res = tool_sign(o, cache);
			json_decref(o);
		}
		text = res != NULL ? json_dumps(res, JSON_COMPACT) : NULL;
		json_decref(res);
		if (text == NULL) {
			fprintf(stderr, "sigv4_tool: out of memory\n");
			rc = 1;
			break;
		}
		if (puts(text) == EOF) {
			free(text);
			rc = 1;
			break;
		}
		free(text);
	}
	free(line);
	sigv4_cache_free(cache);
	if (fflush(stdout) == EOF || ferror(stdin))
		rc = 1;
	return rc;
}
