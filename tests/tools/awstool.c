/*
 * awstool: a command-line driver over lib/ (s3, dynamo, creds, aws) for the
 * integration tests, which read back what it wrote with boto3.
 *
 *   awstool [options] s3 put KEY FILE [TYPE]   (multipart past the threshold)
 *   awstool [options] s3 put-many JSONL        ({"key":..,"file":..} lines)
 *   awstool [options] s3 copy SRC DST | delete KEY | head KEY | list [PREFIX]
 *   awstool [options] ddb put TABLE ITEM_JSON [COND [NAMES [VALUES]]]
 *   awstool [options] ddb get TABLE KEY_JSON | delete TABLE KEY_JSON
 *   awstool [options] ddb scan TABLE [PAGE_LIMIT]
 *   awstool [options] ddb batch-put TABLE JSONL   (items, 25 per batch)
 * options: --bucket B --path-style --max-attempts N --threshold-mb N
 *   --part-mb N --concurrency N --skew SECS (pretend the clock is off)
 *   --checksum (SHA-256 checksums on uploads: s3_opts.checksum)
 * Endpoint and region come from the environment (awsconfig.c), credentials
 * from the chain (creds.c).
 * Results go to stdout as JSON lines; on failure a JSON line
 * {"error":{kind,code,status,message,retry}} and exit 1. The client's
 * counters go to stderr as a last JSON line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws.h"
#include "awsconfig.h"
#include "creds.h"
#include "dynamo.h"
#include "http.h"
#include "imagemeta.h"
#include "loop.h"
#include "retry.h"
#include "s3.h"

struct tool {
	struct loop *loop;
	struct http *http;
	struct creds_provider *creds;
	struct aws_client *client;
	struct s3 *s3;
	struct dynamo *ddb;
	const char *bucket;
	int path_style;
	int checksum;
	unsigned max_attempts;
	uint64_t threshold;
	uint64_t part_size;
	unsigned concurrency;
	int64_t skew;
	/* progress of the current command */
	int done;
	int failed;
	unsigned inflight;
	size_t ok;
	FILE *many_in;
	unsigned pages;
	char *list_token;
	const char *list_prefix;
	json_t *scan_key;
	const char *table;
	unsigned scan_limit;
};

static void
print_error(const struct err *e)
{
	json_t *j = json_pack("{s:{s:s, s:s, s:i, s:s, s:s, s:s}}", "error",
	                      "kind", err_kind_name(e->kind), "code", e->code,
	                      "status", (int)e->http_status, "message",
	                      e->message, "request_id", e->request_id, "retry",
	                      retry_class_name(retry_classify(e)));

	if (j != NULL) {
		json_dumpf(j, stdout, JSON_COMPACT);
		json_decref(j);
	}
	printf("\n");
}

static void
print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT);
	printf("\n");
}

/* One S3 upload: the file stays open until the callback. */
struct upload {
	struct tool *t;
	int fd;
	char sha[65];
	char *key;
};

static void
on_upload(const struct s3_result *r, const struct err *e, void *arg)
{
	struct upload *u = arg;
	struct tool *t = u->t;
	json_t *j;

	if (e != NULL) {
		t->failed = 1;
		print_error(e);
	} else {
		j = json_pack("{s:s, s:s, s:b, s:i, s:s, s:i}", "key", u->key,
		              "etag", r->etag, "multipart", r->multipart,
		              "parts", r->parts, "checksum", r->checksum_sha256,
		              "notes", (int)r->notes);
		print_json(j);
		json_decref(j);
		t->ok++;
	}
	close(u->fd);
	free(u->key);
	free(u);
	t->inflight--;
}

static int
start_upload(struct tool *t, const char *key, const char *path,
             const char *type)
{
	struct s3_meta meta[1];
	struct s3_body body;
	struct upload *u;
	struct stat st;
	struct err e;

	err_clear(&e);
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -1;
	u->t = t;
	u->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (u->fd == -1 || fstat(u->fd, &st) == -1 ||
	    imagemeta_sha256_fd(u->fd, u->sha, NULL, NULL) == -1) {
		fprintf(stderr, "awstool: %s: %s\n", path, strerror(errno));
		if (u->fd != -1)
			close(u->fd);
		free(u);
		return -1;
	}
	u->key = strdup(key);
	meta[0].name = "sha256";
	meta[0].value = u->sha;
	memset(&body, 0, sizeof(body));
	body.data = NULL;
	body.fd = u->fd;
	body.len = (uint64_t)st.st_size;
	body.sha256 = u->sha;
	t->inflight++;
	if (s3_upload(t->s3, key, &body, type, meta, 1, on_upload, u, &e) ==
	    -1) {
		t->inflight--;
		print_error(&e);
		close(u->fd);
		free(u->key);
		free(u);
		return -1;
	}
	return 0;
}

static int
run_until(struct tool *t, int (*idle)(struct tool *))
{
	struct err e;

	err_clear(&e);
	for (;;) {
		if (idle != NULL && idle(t) == -1)
			t->failed = 1;
		if (t->inflight == 0 && (idle == NULL || t->done))
			break;
		if (loop_run_once(t->loop, 1000, &e) == -1) {
			print_error(&e);
			return -1;
		}
	}
	return t->failed ? -1 : 0;
}

/* put-many: feeds uploads from a JSON-lines file, concurrency at a time. */

static int
many_feed(struct tool *t)
{
	char *line = NULL;
	size_t cap = 0;
	json_t *j;
	json_error_t je;

	while (!t->done && t->inflight < t->concurrency) {
		if (getline(&line, &cap, t->many_in) == -1) {
			t->done = 1;
			break;
		}
		j = json_loads(line, 0, &je);
		if (j == NULL ||
		    start_upload(
		        t, json_string_value(json_object_get(j, "key")),
		        json_string_value(json_object_get(j, "file")),
		        json_string_value(json_object_get(j, "type"))) == -1) {
			json_decref(j);
			free(line);
			return -1;
		}
		json_decref(j);
	}
	free(line);
	return 0;
}

static void
on_s3_simple(const struct s3_result *r, const struct err *e, void *arg)
{
	struct tool *t = arg;
	json_t *j;

	t->inflight--;
	if (e != NULL) {
		t->failed = 1;
		print_error(e);
		return;
	}
	j = json_pack("{s:i, s:s, s:I, s:s, s:s}", "status", (int)r->status,
	              "etag", r->etag, "size", (json_int_t)r->size,
	              "content_type", r->content_type, "sha256",
	              r->sha256_meta);
	print_json(j);
	json_decref(j);
}

/* list: every page, each key a JSON line; then {"pages":N,"keys":M}. */

static void
on_list(const struct s3_result *r, const struct err *e, void *arg)
{
	struct tool *t = arg;
	size_t i;
	json_t *j;

	t->inflight--;
	free(t->list_token);
	t->list_token = NULL;
	if (e != NULL) {
		t->failed = 1;
		t->done = 1;
		print_error(e);
		return;
	}
	t->pages++;
	for (i = 0; i < r->nobjects; i++) {
		j = json_pack("{s:s, s:I}", "key", r->objects[i].key, "size",
		              (json_int_t)r->objects[i].size);
		print_json(j);
		json_decref(j);
		t->ok++;
	}
	if (r->next_token == NULL)
		t->done = 1;
	else
		t->list_token = strdup(r->next_token);
}

static int
list_next(struct tool *t)
{
	struct err e;

	if (t->done || t->inflight > 0)
		return 0;
	err_clear(&e);
	t->inflight++;
	if (s3_list_objects(t->s3, t->list_prefix, t->list_token, 0, on_list, t,
	                    &e) == -1) {
		t->inflight--;
		t->done = 1;
		print_error(&e);
		return -1;
	}
	return 0;
}

static int
cmd_s3(struct tool *t, int argc, char **argv)
{
	struct err e;
	int rc = -1;

	err_clear(&e);
	if (argc >= 3 && strcmp(argv[0], "put") == 0) {
		if (start_upload(t, argv[1], argv[2],
		                 argc > 3 ? argv[3] : NULL))
			return -1;
		return run_until(t, NULL);
	}
	if (argc == 2 && strcmp(argv[0], "put-many") == 0) {
		t->many_in = fopen(argv[1], "r");
		if (t->many_in == NULL)
			return -1;
		rc = run_until(t, many_feed);
		fclose(t->many_in);
		printf("{\"uploaded\":%zu}\n", t->ok);
		return rc;
	}
	if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		t->list_prefix = argc > 1 ? argv[1] : NULL;
		rc = run_until(t, list_next);
		printf("{\"pages\":%u,\"keys\":%zu}\n", t->pages, t->ok);
		return rc;
	}
	t->inflight++;
	if (argc == 3 && strcmp(argv[0], "copy") == 0)
		rc = s3_copy_object(t->s3, argv[1], argv[2], on_s3_simple, t,
		                    &e);
	else if (argc == 2 && strcmp(argv[0], "delete") == 0)
		rc =
		    s3_delete_object(t->s3, argv[1], NULL, on_s3_simple, t, &e);
	else if (argc == 2 && strcmp(argv[0], "head") == 0)
		rc = s3_head_object(t->s3, argv[1], on_s3_simple, t, &e);
	else {
		fprintf(stderr, "awstool: unknown s3 command\n");
		exit(2);
	}
	if (rc == -1) {
		print_error(&e);
		return -1;
	}
	return run_until(t, NULL);
}

static void
on_ddb(json_t *resp, const struct err *e, void *arg)
{
	struct tool *t = arg;

	t->inflight--;
	if (e != NULL) {
		t->failed = 1;
		print_error(e);
		return;
	}
	print_json(resp);
}

/* scan: every page; prints each item, then {"pages":N,"items":M}. */

static void
on_scan(json_t *resp, const struct err *e, void *arg)
{
	struct tool *t = arg;
	json_t *items, *item;
	size_t i;

	t->inflight--;
	json_decref(t->scan_key);
	t->scan_key = NULL;
	if (e != NULL) {
		t->failed = 1;
		t->done = 1;
		print_error(e);
		return;
	}
	t->pages++;
	items = json_object_get(resp, "Items");
	json_array_foreach(items, i, item)
	{
		print_json(item);
		t->ok++;
	}
	t->scan_key = json_incref(json_object_get(resp, "LastEvaluatedKey"));
	if (t->scan_key == NULL)
		t->done = 1;
}

static int
scan_next(struct tool *t)
{
	struct err e;

	if (t->done || t->inflight > 0)
		return 0;
	err_clear(&e);
	t->inflight++;
	if (dynamo_scan(t->ddb, t->table, t->scan_key, t->scan_limit, on_scan,
	                t, &e) == -1) {
		t->inflight--;
		t->done = 1;
		print_error(&e);
		return -1;
	}
	return 0;
}

/* batch-put: items from a JSON-lines file, 25 to a batch. */
static void
on_batch(json_t *resp, const struct err *e, void *arg)
{
	struct tool *t = arg;

	(void)resp;
	t->inflight--;
	if (e != NULL) {
		t->failed = 1;
		print_error(e);
		return;
	}
	t->ok++;
}

static int
batch_feed(struct tool *t)
{
	char *line = NULL;
	size_t cap = 0;
	json_t *reqs, *item;
	json_error_t je;
	struct err e;
	int rc = 0;

	while (!t->done && t->inflight < t->concurrency) {
		reqs = json_array();
		while (json_array_size(reqs) < 25 &&
		       getline(&line, &cap, t->many_in) != -1) {
			item = json_loads(line, 0, &je);
			if (item == NULL) {
				fprintf(stderr, "awstool: bad item: %s\n",
				        je.text);
				rc = -1;
				break;
			}
			json_array_append_new(
			    reqs,
			    json_pack("{s:{s:o}}", "PutRequest", "Item", item));
		}
		if (json_array_size(reqs) < 25)
			t->done = 1;
		err_clear(&e);
		if (rc == 0 && json_array_size(reqs) > 0) {
			t->inflight++;
			if (dynamo_batch_write(t->ddb, t->table, reqs, on_batch,
			                       t, &e) == -1) {
				t->inflight--;
				print_error(&e);
				rc = -1;
			}
		}
		json_decref(reqs);
		if (rc == -1)
			break;
	}
	free(line);
	return rc;
}

static json_t *
arg_json(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &je);

	if (j == NULL) {
		fprintf(stderr, "awstool: bad JSON argument: %s\n", je.text);
		exit(2);
	}
	return j;
}

static int
cmd_ddb(struct tool *t, int argc, char **argv)
{
	json_t *a = NULL, *names = NULL, *values = NULL;
	struct err e;
	int rc = -1;

	err_clear(&e);
	if (argc < 2) {
		fprintf(stderr, "awstool: ddb needs a command and a table\n");
		exit(2);
	}
	t->table = argv[1];
	if (strcmp(argv[0], "scan") == 0) {
		t->scan_limit = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
		rc = run_until(t, scan_next);
		printf("{\"pages\":%u,\"items\":%zu}\n", t->pages, t->ok);
		return rc;
	}
	if (strcmp(argv[0], "batch-put") == 0 && argc == 3) {
		t->many_in = fopen(argv[2], "r");
		if (t->many_in == NULL)
			return -1;
		rc = run_until(t, batch_feed);
		fclose(t->many_in);
		printf("{\"batches\":%zu}\n", t->ok);
		return rc;
	}
	if (argc < 3) {
		fprintf(stderr, "awstool: ddb %s needs JSON\n", argv[0]);
		exit(2);
	}
	a = arg_json(argv[2]);
	if (argc > 4)
		names = arg_json(argv[4]);
	if (argc > 5)
		values = arg_json(argv[5]);
	t->inflight++;
	if (strcmp(argv[0], "put") == 0)
		rc = dynamo_put_item(t->ddb, argv[1], a,
		                     argc > 3 ? argv[3] : NULL, names, values,
		                     on_ddb, t, &e);
	else if (strcmp(argv[0], "get") == 0)
		rc = dynamo_get_item(t->ddb, argv[1], a, 1, on_ddb, t, &e);
	else if (strcmp(argv[0], "delete") == 0)
		rc = dynamo_delete_item(t->ddb, argv[1], a,
		                        argc > 3 ? argv[3] : NULL, names,
		                        values, on_ddb, t, &e);
	else {
		fprintf(stderr, "awstool: unknown ddb command\n");
		exit(2);
	}
	json_decref(a);
	json_decref(names);
	json_decref(values);
	if (rc == -1) {
		t->inflight--;
		print_error(&e);
		return -1;
	}
	return run_until(t, NULL);
}

/* A client for S3 (is_s3) or DynamoDB; s3_new or dynamo_new wires it. */
static int
setup(struct tool *t, int is_s3, struct err *e)
{
	const char *service = is_s3 ? "s3" : "dynamodb";
	struct aws_client_opts o;
	struct creds_opts co;
	struct s3_opts so;
	char region[64], endpoint[512];

	memset(&co, 0, sizeof(co));
	memset(&o, 0, sizeof(o));
	t->loop = loop_new(e);
	if (t->loop == NULL)
		return -1;
	t->http = http_new(t->loop, NULL, e);
	if (t->http == NULL)
		return -1;
	co.loop = t->loop;
	t->creds = creds_provider_new(&co, t->http, e);
	if (t->creds == NULL)
		return -1;
	awsconfig_region(NULL, region, sizeof(region));
	awsconfig_endpoint(service, NULL, endpoint, sizeof(endpoint));
	o.service = service;
	o.region = region;
	o.endpoint = endpoint;
	o.max_attempts = t->max_attempts;
	o.retry.base_ms = 20;
	o.retry.throttle_base_ms = 50;
	o.retry.max_ms = 1000;
	t->client = aws_client_new(t->loop, t->http, t->creds, &o, e);
	if (t->client == NULL)
		return -1;
	aws_client_set_skew(t->client, t->skew);
	if (is_s3) {
		memset(&so, 0, sizeof(so));
		so.bucket = t->bucket;
		so.path_style = t->path_style;
		so.checksum = t->checksum;
		so.multipart_threshold = t->threshold;
		so.part_size = t->part_size;
		t->s3 = s3_new(t->client, &so, e);
		return t->s3 != NULL ? 0 : -1;
	}
	t->ddb = dynamo_new(t->loop, t->client, e);
	return t->ddb != NULL ? 0 : -1;
}

static void
teardown(struct tool *t)
{
	if (t->client != NULL) {
		const struct aws_stats *st = aws_client_stats(t->client);

		fprintf(stderr,
		        "{\"requests\":%" PRIu64 ",\"retries\":%" PRIu64
		        ",\"throttled\":%" PRIu64 ",\"skew_fixes\":%" PRIu64
		        ",\"skew\":%" PRId64 "}\n",
		        st->requests, st->retries, st->throttled,
		        st->skew_fixes, aws_client_skew(t->client));
	}
	aws_client_free(t->client);
	s3_free(t->s3);
	dynamo_free(t->ddb);
	creds_provider_free(t->creds);
	http_free(t->http);
	loop_free(t->loop);
	json_decref(t->scan_key);
	free(t->list_token);
}

int
main(int argc, char **argv)
{
	struct tool t;
	struct err e;
	int i = 1, rc;

	memset(&t, 0, sizeof(t));
	t.concurrency = 16;
	t.path_style = 0;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--path-style") == 0)
			t.path_style = 1;
		else if (strcmp(argv[i], "--checksum") == 0)
			t.checksum = 1;
		else if (i + 1 >= argc)
			break;
		else if (strcmp(argv[i], "--bucket") == 0)
			t.bucket = argv[++i];
		else if (strcmp(argv[i], "--max-attempts") == 0)
			t.max_attempts = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--threshold-mb") == 0)
			t.threshold = strtoull(argv[++i], NULL, 10) << 20;
		else if (strcmp(argv[i], "--part-mb") == 0)
			t.part_size = strtoull(argv[++i], NULL, 10) << 20;
		else if (strcmp(argv[i], "--concurrency") == 0)
			t.concurrency = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--skew") == 0)
			t.skew = strtoll(argv[++i], NULL, 10);
		else
			break;
	}
	if (argc - i < 1 ||
	    (strcmp(argv[i], "s3") != 0 && strcmp(argv[i], "ddb") != 0)) {
		fprintf(stderr,
		        "usage: awstool [options] s3|ddb COMMAND ...\n");
		return 2;
	}
	if (strcmp(argv[i], "s3") == 0 && t.bucket == NULL) {
		fprintf(stderr, "awstool: s3 needs --bucket\n");
		return 2;
	}
	err_clear(&e);
	if (setup(&t, strcmp(argv[i], "s3") == 0, &e) == -1) {
		print_error(&e);
		teardown(&t);
		return 1;
	}
	if (strcmp(argv[i], "s3") == 0)
		rc = cmd_s3(&t, argc - i - 1, argv + i + 1);
	else
		rc = cmd_ddb(&t, argc - i - 1, argv + i + 1);
	teardown(&t);
	return rc == 0 ? 0 : 1;
}
