/*
 * item: building the item from a state row, its key, reading it back, its
 * plain JSON; and the conditional write and the prefix Scan against a
 * DynamoDB stand-in on 127.0.0.1 (libmicrohttpd in a thread) that keeps
 * the last request.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "creds.h"
#include "http.h"
#include "item.h"
#include "loop.h"

TestSuite(item);

/* A synced row: a.jpg, 1234 bytes, 10x20, mtime 2026-11-21T10:00:00.5. */
static void
row(struct state_file *f)
{
	memset(f, 0, sizeof(*f));
	f->path = "a.jpg";
	f->path_len = 5;
	f->key = "img/a.jpg";
	f->size = 1234;
	f->mtime_ns = INT64_C(1795255200500000000);
	memset(f->sha256, 'a', 64);
	snprintf(f->etag, sizeof(f->etag), "\"abc\"");
	snprintf(f->type, sizeof(f->type), "image/jpeg");
	f->width = 10;
	f->height = 20;
	snprintf(f->synced_at, sizeof(f->synced_at),
	         "2026-11-21T10:00:01.000Z");
}

static void
expect_json(json_t *j, const char *want)
{
	char *s;

	cr_assert_not_null(j);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_str_eq(s, want);
	free(s);
	json_decref(j);
}

/* --- building ------------------------------------------------------------ */

Test(item, from_file)
{
	struct state_file f;
	char sha[65];

	row(&f);
	memset(sha, 'a', 64);
	sha[64] = '\0';
	expect_json(
	    item_from_file(&f, "images", "host1", "2026-11-21T10:00:02.000Z"),
	    "{\"Bucket\":{\"S\":\"images\"},\"ETag\":{\"S\":\"\\\"abc\\\"\"},"
	    "\"FileName\":{\"S\":\"img/a.jpg\"},\"Height\":{\"N\":\"20\"},"
	    "\"MTime\":{\"S\":\"2026-11-21T10:00:00.500000000Z\"},"
	    "\"SHA256\":{\"S\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "a\"},"
	    "\"Size\":{\"N\":\"1234\"},\"Source\":{\"S\":\"host1\"},"
	    "\"Timestamp\":{\"S\":\"2026-11-21T10:00:02.000Z\"},"
	    "\"Type\":{\"S\":\"image/jpeg\"},\"Width\":{\"N\":\"10\"}}");
}

/* Width and Height come together or not at all. */
Test(item, from_file_dimensions_only_when_both)
{
	struct state_file f;
	json_t *it;

	row(&f);
	f.height = 0;
	it = item_from_file(&f, "b", "s", "t");
	cr_assert_not_null(it);
	cr_assert_null(json_object_get(it, ITEM_WIDTH));
	cr_assert_null(json_object_get(it, ITEM_HEIGHT));
	json_decref(it);
	it = item_plain_from_file(&f, "img/a.jpg", "b");
	cr_assert_not_null(it);
	cr_assert_null(json_object_get(it, ITEM_WIDTH));
	cr_assert_null(json_object_get(it, ITEM_HEIGHT));
	json_decref(it);
}

/* Orientation only when the file has one (1-8), typed and plain, and
 * read back. */
Test(item, orientation_only_when_the_file_has_one)
{
	struct item_view v;
	struct state_file f;
	json_t *it;

	row(&f);
	it = item_from_file(&f, "b", "s", "t");
	cr_assert_null(json_object_get(it, ITEM_ORIENTATION));
	json_decref(it);
	f.orientation = 9;
	it = item_from_file(&f, "b", "s", "t");
	cr_assert_null(json_object_get(it, ITEM_ORIENTATION));
	json_decref(it);
	f.orientation = 6;
	it = item_from_file(&f, "b", "s", "t");
	cr_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(it, ITEM_ORIENTATION), "N")),
	                 "6");
	cr_assert_eq(item_read(it, &v), 0);
	cr_assert_eq(v.orientation, 6);
	json_decref(it);
	it = item_plain_from_file(&f, "img/a.jpg", "b");
	cr_assert_eq(json_integer_value(json_object_get(it, ITEM_ORIENTATION)),
	             6);
	json_decref(it);
}

/* Before 1970 the nanoseconds still count up from the second below. */
Test(item, mtime_before_1970)
{
	struct state_file f;
	json_t *it;

	row(&f);
	f.mtime_ns = -1;
	it = item_from_file(&f, "b", "s", "t");
	cr_assert_not_null(it);
	cr_assert_str_eq(dynamo_get_s(it, ITEM_MTIME),
	                 "1969-12-31T23:59:59.999999999Z");
	json_decref(it);
	f.mtime_ns = -INT64_C(1500000000);
	it = item_plain_from_file(&f, "a", "b");
	cr_assert_str_eq(json_string_value(json_object_get(it, ITEM_MTIME)),
	                 "1969-12-31T23:59:58.500000000Z");
	json_decref(it);
	f.mtime_ns = 0;
	it = item_plain_from_file(&f, "a", "b");
	cr_assert_str_eq(json_string_value(json_object_get(it, ITEM_MTIME)),
	                 "1970-01-01T00:00:00.000000000Z");
	json_decref(it);
}

/* Past 2262 the row's nanoseconds saturate; the stat's time does not. */
Test(item, mtime_from_stat)
{
	struct timespec ts = {.tv_sec = 10000000000, .tv_nsec = 0};
	struct state_file f;
	json_t *it;

	row(&f);
	f.mtime_ns = INT64_MAX;
	it = item_from_file_mtime(&f, &ts, "b", "s", "t");
	cr_assert_not_null(it);
	cr_assert_str_eq(dynamo_get_s(it, ITEM_MTIME),
	                 "2286-11-20T17:46:40.000000000Z");
	json_decref(it);
	it = item_from_file_mtime(&f, NULL, "b", "s", "t");
	cr_assert_str_eq(dynamo_get_s(it, ITEM_MTIME),
	                 "2262-04-11T23:47:16.854775807Z");
	json_decref(it);
}

Test(item, plain_from_file)
{
	struct state_file f;
	char sha[65];

	row(&f);
	memset(sha, 'a', 64);
	sha[64] = '\0';
	expect_json(
	    item_plain_from_file(&f, "img/a.jpg", "images"),
	    "{\"Bucket\":\"images\",\"ETag\":\"\\\"abc\\\"\","
	    "\"FileName\":\"img/a.jpg\",\"Height\":20,"
	    "\"MTime\":\"2026-11-21T10:00:00.500000000Z\","
	    "\"SHA256\":"
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "a\",\"Size\":1234,"
	    "\"Timestamp\":\"2026-11-21T10:00:01.000Z\","
	    "\"Type\":\"image/jpeg\",\"Width\":10}");
}

/* The typed item, made plain, is the plain one but for Source and the
 * Timestamp (the row's, not the write's). */
Test(item, typed_and_plain_agree)
{
	struct state_file f;
	json_t *typed, *plain, *direct;

	row(&f);
	typed = item_from_file(&f, "images", "host1", f.synced_at);
	plain = item_plain(typed);
	direct = item_plain_from_file(&f, f.key, "images");
	cr_assert_not_null(plain);
	cr_assert_not_null(direct);
	cr_assert_eq(json_object_del(plain, ITEM_SOURCE), 0);
	cr_assert(json_equal(plain, direct));
	json_decref(typed);
	json_decref(plain);
	json_decref(direct);
}

Test(item, not_utf8_is_null)
{
	struct state_file f;

	row(&f);
	f.key = "bad\xff";
	cr_assert_null(item_from_file(&f, "b", "s", "t"));
	cr_assert_null(item_plain_from_file(&f, "bad\xff", "b"));
	cr_assert_null(item_key("bad\xff"));
}

Test(item, attributes_in_the_cli_order)
{
	static const char *const want[] = {
	    "FileName", "Bucket", "Source",    "Timestamp",   "Size",
	    "Type",     "Width",  "Height",    "Orientation", "SHA256",
	    "ETag",     "MTime",  "Thumbnail",
	};
	size_t i;

	cr_assert_eq(item_nattributes, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < item_nattributes; i++)
		cr_assert_str_eq(item_attributes[i], want[i]);
}

/* --- keys and reading back ----------------------------------------------- */

Test(item, key_and_key_of)
{
	json_t *k = item_key("img/a b.jpg"), *s;

	expect_json(json_incref(k), "{\"FileName\":{\"S\":\"img/a b.jpg\"}}");
	cr_assert_str_eq(item_key_of(k), "img/a b.jpg");
	json_decref(k);
	cr_assert_null(item_key_of(NULL));
	s = json_pack("{s:{s:s}}", "FileName", "N", "1");
	cr_assert_null(item_key_of(s), "a key is a string");
	json_decref(s);
}

Test(item, read_back)
{
	struct state_file f;
	struct item_view v;
	json_t *it;

	row(&f);
	it = item_from_file(&f, "images", "host1", "2026-11-21T10:00:02.000Z");
	cr_assert_eq(item_read(it, &v), 0);
	cr_assert_str_eq(v.key, "img/a.jpg");
	cr_assert_str_eq(v.bucket, "images");
	cr_assert_str_eq(v.source, "host1");
	cr_assert_str_eq(v.timestamp, "2026-11-21T10:00:02.000Z");
	cr_assert_str_eq(v.type, "image/jpeg");
	cr_assert_str_eq(v.sha256, f.sha256);
	cr_assert_str_eq(v.etag, "\"abc\"");
	cr_assert_str_eq(v.mtime, "2026-11-21T10:00:00.500000000Z");
	cr_assert_eq(v.size, 1234);
	cr_assert(v.has_size);
	cr_assert_eq(v.width, 10);
	cr_assert_eq(v.height, 20);
	json_decref(it);
}

Test(item, read_back_missing)
{
	struct item_view v;
	json_t *it = item_key("k"), *a = json_array();

	cr_assert_eq(item_read(it, &v), 0);
	cr_assert_str_eq(v.key, "k");
	cr_assert_null(v.bucket);
	cr_assert_null(v.sha256);
	cr_assert_null(v.mtime);
	cr_assert_eq(v.size, 0);
	cr_assert_not(v.has_size);
	cr_assert_eq(v.width, 0);
	json_decref(it);
	it = json_pack("{s:{s:s}}", "Size", "N", "12");
	cr_assert_eq(item_read(it, &v), -1, "no FileName");
	cr_assert_eq(item_read(a, &v), -1);
	cr_assert_eq(item_read(NULL, &v), -1);
	json_decref(it);
	json_decref(a);
}

/* --- plain JSON (moved with item_plain from control_api) ---------------- */

static void
expect_plain(const char *item, const char *want)
{
	json_error_t je;
	json_t *in = json_loads(item, 0, &je), *out;
	char *s;

	cr_assert_not_null(in, "fixture %s: %s", item, je.text);
	out = item_plain(in);
	cr_assert_not_null(out, "%s", item);
	s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_str_eq(s, want, "%s", item);
	free(s);
	json_decref(out);
	json_decref(in);
}

Test(item, plain_scalars)
{
	expect_plain("{}", "{}");
	expect_plain("{\"FileName\":{\"S\":\"a/b.png\"}}",
	             "{\"FileName\":\"a/b.png\"}");
	expect_plain("{\"Size\":{\"N\":\"1234\"}}", "{\"Size\":1234}");
	expect_plain("{\"n\":{\"N\":\"-7\"}}", "{\"n\":-7}");
	expect_plain("{\"n\":{\"N\":\"0\"}}", "{\"n\":0}");
	expect_plain("{\"n\":{\"N\":\"1.5\"}}", "{\"n\":1.5}");
	expect_plain("{\"n\":{\"N\":\"-0.25\"}}", "{\"n\":-0.25}");
	expect_plain("{\"n\":{\"N\":\"9223372036854775807\"}}",
	             "{\"n\":9223372036854775807}");
	expect_plain("{\"n\":{\"N\":\"123456789012345678901234\"}}",
	             "{\"n\":1.2345678901234569e23}");
	expect_plain("{\"n\":{\"N\":\"1E3\"}}", "{\"n\":1000.0}");
	expect_plain("{\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false}}",
	             "{\"f\":false,\"t\":true}");
	expect_plain("{\"z\":{\"NULL\":true}}", "{\"z\":null}");
	expect_plain("{\"b\":{\"B\":\"AAEC\"}}", "{\"b\":\"AAEC\"}");
}

Test(item, plain_containers)
{
	expect_plain(
	    "{\"m\":{\"M\":{\"x\":{\"S\":\"y\"},\"n\":{\"N\":\"2\"}}}}",
	    "{\"m\":{\"n\":2,\"x\":\"y\"}}");
	expect_plain("{\"m\":{\"M\":{}}}", "{\"m\":{}}");
	expect_plain("{\"l\":{\"L\":[{\"S\":\"a\"},{\"N\":\"1\"},{\"BOOL\":"
	             "false},{\"L\":[{\"NULL\":true}]},{\"M\":{\"k\":{\"S\":"
	             "\"v\"}}}]}}",
	             "{\"l\":[\"a\",1,false,[null],{\"k\":\"v\"}]}");
	expect_plain("{\"l\":{\"L\":[]}}", "{\"l\":[]}");
	expect_plain("{\"ss\":{\"SS\":[\"a\",\"b\"]}}",
	             "{\"ss\":[\"a\",\"b\"]}");
}

Test(item, plain_a_full_row)
{
	expect_plain(
	    "{\"FileName\":{\"S\":\"a/b.png\"},\"Bucket\":{\"S\":\"images\"},"
	    "\"Size\":{\"N\":\"1234\"},\"Type\":{\"S\":\"image/png\"},"
	    "\"Width\":{\"N\":\"10\"},\"Height\":{\"N\":\"20\"},"
	    "\"ETag\":{\"S\":\"\\\"abc\\\"\"}}",
	    "{\"Bucket\":\"images\",\"ETag\":\"\\\"abc\\\"\","
	    "\"FileName\":\"a/b.png\",\"Height\":20,\"Size\":1234,"
	    "\"Type\":\"image/png\",\"Width\":10}");
}

Test(item, plain_odd_attributes)
{
	/* Two types, none, an unknown one, a non-object: null. */
	expect_plain("{\"x\":{\"S\":\"a\",\"N\":\"1\"}}", "{\"x\":null}");
	expect_plain("{\"x\":{}}", "{\"x\":null}");
	expect_plain("{\"x\":{\"Q\":\"a\"}}", "{\"x\":null}");
	expect_plain("{\"x\":\"plain\"}", "{\"x\":null}");
	expect_plain("{\"x\":[1]}", "{\"x\":null}");
	expect_plain("{\"x\":{\"S\":1}}", "{\"x\":null}");
}

Test(item, plain_not_an_object)
{
	json_t *a = json_array(), *s = json_string("x");

	cr_assert_null(item_plain(a));
	cr_assert_null(item_plain(s));
	cr_assert_null(item_plain(NULL));
	json_decref(a);
	json_decref(s);
}

/* --- the write and the Scan, against a stand-in -------------------------- */

struct server {
	struct MHD_Daemon *d;
	unsigned short port;
	pthread_mutex_t mu;
	char target[128]; /* x-amz-target of the last request */
	char *body;       /* its body */
	const char *answer;
};

static struct server srv;

struct upload {
	char *data;
	size_t len;
};

static enum MHD_Result
srv_handler(void *cls, struct MHD_Connection *c, const char *url,
            const char *method, const char *version, const char *data,
            size_t *size, void **state)
{
	struct server *s = cls;
	struct upload *u = *state;
	struct MHD_Response *r;
	const char *t;
	enum MHD_Result rc;

	(void)url;
	(void)method;
	(void)version;
	if (u == NULL) {
		*state = calloc(1, sizeof(*u));
		return *state != NULL ? MHD_YES : MHD_NO;
	}
	if (*size > 0) {
		char *n = realloc(u->data, u->len + *size + 1);

		if (n == NULL)
			return MHD_NO;
		memcpy(n + u->len, data, *size);
		u->data = n;
		u->len += *size;
		u->data[u->len] = '\0';
		*size = 0;
		return MHD_YES;
	}
	t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-amz-target");
	pthread_mutex_lock(&s->mu);
	snprintf(s->target, sizeof(s->target), "%s", t != NULL ? t : "");
	free(s->body);
	s->body = u->data;
	u->data = NULL;
	pthread_mutex_unlock(&s->mu);
	r = MHD_create_response_from_buffer(
	    strlen(s->answer), (void *)s->answer, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type",
	                        "application/x-amz-json-1.0");
	rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

static void
srv_completed(void *cls, struct MHD_Connection *c, void **state,
              enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *state;

	(void)cls;
	(void)c;
	(void)toe;
	if (u != NULL)
		free(u->data);
	free(u);
	*state = NULL;
}

static void
srv_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.mu, NULL);
	srv.answer = "{}";
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
	    NULL, NULL, srv_handler, &srv, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_NOTIFY_COMPLETED, srv_completed, &srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	cr_assert_not_null(srv.d);
	info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	srv.port = info->port;
}

static void
srv_stop(void)
{
	MHD_stop_daemon(srv.d);
	free(srv.body);
	pthread_mutex_destroy(&srv.mu);
}

struct env {
	struct loop *loop;
	struct http *http;
	struct creds_provider *creds;
	struct aws_client *client;
	struct dynamo *ddb;
};

static void
env_init(struct env *v)
{
	struct aws_client_opts o;
	struct creds_opts co;
	char endpoint[64];
	struct err e;

	err_clear(&e);
	memset(v, 0, sizeof(*v));
	v->loop = loop_new(&e);
	cr_assert_not_null(v->loop, "%s", e.message);
	v->http = http_new(v->loop, NULL, &e);
	cr_assert_not_null(v->http, "%s", e.message);
	memset(&co, 0, sizeof(co));
	co.access_key_id = "AKIDEXAMPLE";
	co.secret_access_key = "secret";
	co.loop = v->loop;
	v->creds = creds_provider_new(&co, v->http, &e);
	cr_assert_not_null(v->creds, "%s", e.message);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", srv.port);
	memset(&o, 0, sizeof(o));
	o.service = "dynamodb";
	o.region = "us-east-1";
	o.endpoint = endpoint;
	o.max_attempts = 1;
	v->client = aws_client_new(v->loop, v->http, v->creds, &o, &e);
	cr_assert_not_null(v->client, "%s", e.message);
	v->ddb = dynamo_new(v->loop, v->client, &e);
	cr_assert_not_null(v->ddb, "%s", e.message);
}

static void
env_free(struct env *v)
{
	aws_client_free(v->client);
	dynamo_free(v->ddb);
	creds_provider_free(v->creds);
	http_free(v->http);
	loop_free(v->loop);
}

struct result {
	int calls;
	int failed;
};

static void
on_done(json_t *resp, const struct err *e, void *arg)
{
	struct result *r = arg;

	(void)resp;
	r->calls++;
	r->failed = e != NULL;
}

static void
wait_for(struct env *v, struct result *r)
{
	uint64_t deadline = loop_now_ms() + 10000;
	struct err e;

	while (r->calls == 0) {
		cr_assert_lt(loop_now_ms(), deadline, "timed out");
		cr_assert_eq(loop_run_once(v->loop, 100, &e), 0);
	}
	cr_assert_eq(r->calls, 1);
	cr_assert_not(r->failed);
}

/* The last request's body, parsed. */
static json_t *
srv_request(const char *target)
{
	json_t *j;

	pthread_mutex_lock(&srv.mu);
	cr_assert_str_eq(srv.target, target);
	j = json_loads(srv.body != NULL ? srv.body : "", 0, NULL);
	pthread_mutex_unlock(&srv.mu);
	cr_assert_not_null(j);
	return j;
}

/* Invariant 2: the write is refused when the table's item is newer. */
Test(item, put_is_conditional_on_the_timestamp, .init = srv_start,
     .fini = srv_stop)
{
	struct result r = {0};
	struct state_file f;
	struct env v;
	json_t *it, *req;
	struct err e;

	env_init(&v);
	row(&f);
	it = item_from_file(&f, "images", "host1", "2026-11-21T10:00:02.000Z");
	err_clear(&e);
	cr_assert_eq(item_put(v.ddb, "tbl", it, on_done, &r, &e), 0, "%s",
	             e.message);
	wait_for(&v, &r);
	req = srv_request("DynamoDB_20120810.PutItem");
	cr_assert_str_eq(
	    json_string_value(json_object_get(req, "ConditionExpression")),
	    "attribute_not_exists(FileName) OR #t <= :t");
	expect_json(
	    json_incref(json_object_get(req, "ExpressionAttributeNames")),
	    "{\"#t\":\"Timestamp\"}");
	expect_json(
	    json_incref(json_object_get(req, "ExpressionAttributeValues")),
	    "{\":t\":{\"S\":\"2026-11-21T10:00:02.000Z\"}}");
	cr_assert_str_eq(json_string_value(json_object_get(req, "TableName")),
	                 "tbl");
	cr_assert(json_equal(json_object_get(req, "Item"), it));
	json_decref(req);
	json_decref(it);
	env_free(&v);
}

Test(item, put_needs_a_timestamp, .init = srv_start, .fini = srv_stop)
{
	struct result r = {0};
	struct env v;
	json_t *it = item_key("k");
	struct err e;

	env_init(&v);
	err_clear(&e);
	cr_assert_eq(item_put(v.ddb, "tbl", it, on_done, &r, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	err_clear(&e);
	cr_assert_eq(item_put(v.ddb, "tbl", NULL, on_done, &r, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	cr_assert_eq(r.calls, 0, "no callback when it did not start");
	json_decref(it);
	env_free(&v);
}

Test(item, scan_by_prefix, .init = srv_start, .fini = srv_stop)
{
	struct result r = {0};
	struct env v;
	json_t *start = item_key("img/b.jpg"), *req;
	struct err e;

	env_init(&v);
	err_clear(&e);
	cr_assert_eq(item_scan(v.ddb, "tbl", "img/", start, 7, on_done, &r, &e),
	             0, "%s", e.message);
	wait_for(&v, &r);
	req = srv_request("DynamoDB_20120810.Scan");
	expect_json(
	    req, "{\"ExclusiveStartKey\":{\"FileName\":{\"S\":\"img/b.jpg\"}},"
	         "\"ExpressionAttributeNames\":{\"#f\":\"FileName\"},"
	         "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"img/\"}},"
	         "\"FilterExpression\":\"begins_with(#f, :p)\",\"Limit\":7,"
	         "\"TableName\":\"tbl\"}");
	/* No prefix, no start: the whole table from the first page. */
	memset(&r, 0, sizeof(r));
	cr_assert_eq(item_scan(v.ddb, "tbl", "", NULL, 1000, on_done, &r, &e),
	             0, "%s", e.message);
	wait_for(&v, &r);
	expect_json(srv_request("DynamoDB_20120810.Scan"),
	            "{\"Limit\":1000,\"TableName\":\"tbl\"}");
	json_decref(start);
	env_free(&v);
}
