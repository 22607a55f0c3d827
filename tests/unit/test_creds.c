/*
 * The credential chain against real files in a temporary HOME and a real
 * HTTP server on 127.0.0.1 (libmicrohttpd, its own thread) standing in for
 * the container agent and EC2 instance metadata.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "http.h"
#include "loop.h"
#include "test_aws_env.h"

#define IMDS_TOKEN "imds-token-0123456789"
#define CONTAINER_TOKEN "container-auth-token"

struct srv {
	struct MHD_Daemon *d;
	char base[64]; /* http://127.0.0.1:PORT */
	/* What to serve: set before the first request. */
	int container_status; /* 0: 200 with credentials */
	const char *container_body;
	const char *auth; /* expected Authorization; NULL: none */
	int expire_secs;  /* Expiration = now + this; 0: 3600 */
	int token_status; /* answer to the IMDS token PUT; 0: 200 */
	int allow_v1;     /* serve IMDS requests without a token */
	int no_role;
	/* What happened. */
	atomic_int container_hits;
	atomic_int token_puts;
	atomic_int role_gets;
	atomic_int cred_gets;
	atomic_int unauthorized;
	atomic_long last_expiration;
};

static struct {
	char dir[64];
	struct loop *loop;
	struct http *http;
	struct srv srv;
	int listen_fd;
} fx;

struct result {
	int done;
	int calls;
	int ok;
	struct creds c;
	struct err e;
};

/*
 * Fixture.
 */
static void
setup(void)
{
	struct err e;

	memset(&fx, 0, sizeof(fx));
	fx.listen_fd = -1;
	clear_aws_env();
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_creds.XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	/* Never the real ~/.aws of whoever runs the tests. */
	setenv("HOME", fx.dir, 1);
	err_clear(&e);
	fx.loop = loop_new(&e);
	cr_assert_not_null(fx.loop, "%s", e.message);
	fx.http = http_new(fx.loop, NULL, &e);
	cr_assert_not_null(fx.http, "%s", e.message);
}

static void
teardown(void)
{
	http_free(fx.http);
	loop_free(fx.loop);
	if (fx.srv.d != NULL)
		MHD_stop_daemon(fx.srv.d);
	if (fx.listen_fd != -1)
		close(fx.listen_fd);
	nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* cppcheck-suppress unknownMacro */
TestSuite(creds, .init = setup, .fini = teardown);

static struct creds_provider *
provider(const struct creds_opts *opts)
{
	struct creds_opts o;
	struct creds_provider *p;
	struct err e;

	memset(&o, 0, sizeof(o));
	if (opts != NULL)
		o = *opts;
	o.loop = fx.loop;
	err_clear(&e);
	p = creds_provider_new(&o, fx.http, &e);
	cr_assert_not_null(p, "%s", e.message);
	return p;
}

static void
on_done(const struct creds *c, const struct err *e, void *arg)
{
	struct result *r = arg;

	r->calls++;
	r->done = 1;
	if (c != NULL) {
		r->ok = 1;
		r->c = *c;
	} else {
		r->e = *e;
	}
}

static void
drive(const int *done)
{
	uint64_t deadline = loop_now_ms() + 5000;
	struct err e;

	err_clear(&e);
	while (!*done) {
		cr_assert(loop_now_ms() < deadline, "timed out");
		cr_assert_eq(loop_run_once(fx.loop, 50, &e), 0, "%s",
		             e.message);
	}
}

static void
resolve(struct creds_provider *p, struct result *r)
{
	struct err e;

	memset(r, 0, sizeof(*r));
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, on_done, r, &e), 0, "%s",
	             e.message);
	drive(&r->done);
	cr_assert_eq(r->calls, 1);
}

static void
assert_creds(const struct result *r, const char *id, const char *secret,
             const char *token, const char *source)
{
	cr_assert(r->ok, "resolve failed: %s", r->e.message);
	cr_assert_str_eq(r->c.access_key_id, id);
	cr_assert_str_eq(r->c.secret_access_key, secret);
	cr_assert_str_eq(r->c.session_token, token);
	cr_assert_str_eq(r->c.source, source);
}

static void
assert_error(const struct result *r, const char *needle)
{
	cr_assert(!r->ok, "resolve succeeded from %s", r->c.source);
	cr_assert_eq(r->e.kind, ERR_CREDS, "kind %s: %s",
	             err_kind_name(r->e.kind), r->e.message);
	cr_assert_not_null(strstr(r->e.message, needle), "\"%s\" not in \"%s\"",
	                   needle, r->e.message);
}

/*
 * The test server.
 */
static enum MHD_Result
srv_reply(struct MHD_Connection *conn, unsigned int status, const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
	                                       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result
srv_creds(struct srv *s, struct MHD_Connection *conn, const char *prefix, int n,
          int imds)
{
	char body[1024], when[32];
	time_t exp = time(NULL) + (s->expire_secs ? s->expire_secs : 3600);
	struct tm tm;

	gmtime_r(&exp, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	atomic_store(&s->last_expiration, (long)exp);
	snprintf(body, sizeof(body),
	         "{%s\"AccessKeyId\":\"ASIA%s%d\",\"SecretAccessKey\":\"%"
	         "ssecret%d\","
	         "\"Token\":\"%stoken%d\",\"Expiration\":\"%s\"}",
	         imds ? "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\"," : "",
	         prefix, n, prefix, n, prefix, n, when);
	return srv_reply(conn, MHD_HTTP_OK, body);
}

static int
srv_imds_authorized(struct srv *s, struct MHD_Connection *conn)
{
	const char *tok = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");

	if (tok != NULL ? strcmp(tok, IMDS_TOKEN) == 0 : s->allow_v1)
		return 1;
	atomic_fetch_add(&s->unauthorized, 1);
	return 0;
}

static enum MHD_Result
srv_handler(void *cls, struct MHD_Connection *conn, const char *url,
            const char *method, const char *version, const char *upload_data,
            size_t *upload_data_size, void **con_cls)
{
	static int marker;
	struct srv *s = cls;
	const char *v;
	int n;

	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/creds") == 0) {
		n = atomic_fetch_add(&s->container_hits, 1) + 1;
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                "Authorization");
		if (s->auth != NULL && (v == NULL || strcmp(v, s->auth) != 0))
			return srv_reply(conn, 401, "{\"message\":\"no\"}");
		if (s->container_status != 0)
			return srv_reply(conn, (unsigned)s->container_status,
			                 "internal error");
		if (s->container_body != NULL)
			return srv_reply(conn, MHD_HTTP_OK, s->container_body);
		return srv_creds(s, conn, "CONTAINER", n, 0);
	}
	if (strcmp(url, "/latest/api/token") == 0) {
		atomic_fetch_add(&s->token_puts, 1);
		if (strcmp(method, "PUT") != 0)
			return srv_reply(conn, 405, "");
		if (s->token_status != 0)
			return srv_reply(conn, (unsigned)s->token_status, "");
		v = MHD_lookup_connection_value(
		    conn, MHD_HEADER_KIND,
		    "X-aws-ec2-metadata-token-ttl-seconds");
		if (v == NULL || strcmp(v, "21600") != 0)
			return srv_reply(conn, 400, "");
		return srv_reply(conn, MHD_HTTP_OK, IMDS_TOKEN);
	}
	if (strcmp(url, "/latest/meta-data/iam/security-credentials/") == 0) {
		atomic_fetch_add(&s->role_gets, 1);
		if (!srv_imds_authorized(s, conn))
			return srv_reply(conn, 401, "");
		if (s->no_role)
			return srv_reply(conn, 404, "");
		return srv_reply(conn, MHD_HTTP_OK, "test-role");
	}
	if (strcmp(url, "/latest/meta-data/iam/security-credentials/"
	                "test-role") == 0) {
		if (!srv_imds_authorized(s, conn))
			return srv_reply(conn, 401, "");
		n = atomic_fetch_add(&s->cred_gets, 1) + 1;
		return srv_creds(s, conn, "IMDS", n, 1);
	}
	return srv_reply(conn, 404, "");
}

static void
srv_start(void)
{
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fx.srv.d =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
	                     srv_handler, &fx.srv, MHD_OPTION_SOCK_ADDR,
	                     (const struct sockaddr *)&sin, MHD_OPTION_END);
	cr_assert_not_null(fx.srv.d);
	info = MHD_get_daemon_info(fx.srv.d, MHD_DAEMON_INFO_BIND_PORT);
	cr_assert_not_null(info);
	snprintf(fx.srv.base, sizeof(fx.srv.base), "http://127.0.0.1:%u",
	         (unsigned)info->port);
}

/* A port that accepts connections and never answers. */
static void
silent_endpoint(char *out, size_t outlen)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	fx.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fx.listen_fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fx.listen_fd, (struct sockaddr *)&sin, sizeof(sin)),
	             0);
	cr_assert_eq(listen(fx.listen_fd, 8), 0);
	cr_assert_eq(getsockname(fx.listen_fd, (struct sockaddr *)&sin, &len),
	             0);
	snprintf(out, outlen, "http://127.0.0.1:%u", ntohs(sin.sin_port));
}

static void
use_container(const char *path)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", fx.srv.base, path);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
}

/*
 * Explicit keys and the environment.
 */
Test(creds, explicit_keys_win_over_env)
{
	struct creds_opts o = {.access_key_id = "AKIDCONFIG",
	                       .secret_access_key = "configsecret",
	                       .session_token = "configtoken"};
	struct creds_provider *p;
	struct result r;

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	p = provider(&o);
	resolve(p, &r);
	assert_creds(&r, "AKIDCONFIG", "configsecret", "configtoken", "config");
	cr_assert_eq(r.c.expiration, 0);
	creds_provider_free(p);
}

Test(creds, explicit_keys_incomplete_rejected)
{
	struct creds_opts o = {.access_key_id = "AKIDCONFIG"};
	struct err e;

	err_clear(&e);
	cr_assert_null(creds_provider_new(&o, fx.http, &e));
	cr_assert_eq(e.kind, ERR_CONFIG);
	cr_assert_not_null(strstr(e.message, "secret_access_key"), "%s",
	                   e.message);
}

Test(creds, env_with_session_token)
{
	struct creds_provider *p;
	struct result r;
	struct creds c;
	struct err e;

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	p = provider(NULL);
	cr_assert_eq(creds_provider_get(p, &c), -1, "nothing cached yet");
	/* No network needed: the callback fires before resolve returns. */
	memset(&r, 0, sizeof(r));
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, on_done, &r, &e), 0);
	cr_assert_eq(r.calls, 1);
	assert_creds(&r, "AKIDENV", "envsecret", "envtoken", "env");
	/* And now it is cached. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(creds_provider_get(p, &c), 0);
	cr_assert_str_eq(c.access_key_id, "AKIDENV");
	cr_assert_str_eq(c.session_token, "envtoken");
	creds_provider_free(p);
}

Test(creds, env_with_only_one_variable_is_skipped)
{
	struct creds_provider *p;
	struct result r;

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_home_file(fx.dir, "credentials",
	                       "[default]\n"
	                       "aws_access_key_id = AKIDFILE\n"
	                       "aws_secret_access_key = filesecret\n"),
	       1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKIDFILE", "filesecret", "", "profile");
	creds_provider_free(p);
}

/*
 * Shared files.
 */
Test(creds, profile_from_shared_credentials_file)
{
	struct creds_provider *p;
	struct result r;

	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_home_file(fx.dir, "creds",
	                       "# a comment\n"
	                       "[default]\n"
	                       "aws_access_key_id = AKIDDEFAULT\n"
	                       "aws_secret_access_key = defaultsecret\n"
	                       "\n"
	                       "[work]\r\n"
	                       "; another comment\r\n"
	                       "AWS_Access_Key_Id=AKIDWORK\r\n"
	                       "aws_secret_access_key   =   worksecret  \r\n"
	                       "aws_session_token = worktoken\r\n"
	                       "[other]\n"
	                       "aws_access_key_id = AKIDOTHER\n"),
	       1);
	setenv("AWS_PROFILE", "work", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKIDWORK", "worksecret", "worktoken", "profile");
	creds_provider_free(p);
}

Test(creds, configured_profile_wins_over_AWS_PROFILE)
{
	struct creds_opts o = {.profile = "other"};
	struct creds_provider *p;
	struct result r;

	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_home_file(fx.dir, "creds",
	                       "[work]\n"
	                       "aws_access_key_id = AKIDWORK\n"
	                       "aws_secret_access_key = worksecret\n"
	                       "[other]\n"
	                       "aws_access_key_id = AKIDOTHER\n"
	                       "aws_secret_access_key = othersecret\n"),
	       1);
	setenv("AWS_PROFILE", "work", 1);
	p = provider(&o);
	resolve(p, &r);
	assert_creds(&r, "AKIDOTHER", "othersecret", "", "profile");
	creds_provider_free(p);
}

Test(creds, profile_section_in_config_file)
{
	struct creds_provider *p;
	struct result r;

	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[default]\n"
	                       "region = eu-west-1\n"
	                       "[x]\n"
	                       "aws_access_key_id = AKIDBARE\n"
	                       "aws_secret_access_key = baresecret\n"
	                       "[profile   x  ]\n"
	                       "s3 =\n"
	                       "  aws_access_key_id = AKIDNESTED\n"
	                       "aws_access_key_id = AKIDCONFIGX\n"
	                       "aws_secret_access_key = configxsecret\n"
	                       "aws_session_token = configxtoken\n"),
	       1);
	setenv("AWS_PROFILE", "x", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKIDCONFIGX", "configxsecret", "configxtoken",
	             "profile");
	creds_provider_free(p);
}

Test(creds, default_section_in_config_file_and_default_paths)
{
	struct creds_provider *p;
	struct result r;
	char path[128];

	/* No AWS_*_FILE variables: $HOME/.aws/config. */
	snprintf(path, sizeof(path), "%s/.aws", fx.dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	write_home_file(fx.dir, ".aws/config",
	                "[default]\n"
	                "aws_access_key_id = AKIDHOME\n"
	                "aws_secret_access_key = homesecret\n");
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKIDHOME", "homesecret", "", "profile");
	creds_provider_free(p);
}

Test(creds, credentials_file_wins_over_config_file)
{
	struct creds_provider *p;
	struct result r;

	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_home_file(fx.dir, "creds",
	                       "[default]\n"
	                       "aws_access_key_id = AKIDCREDS\n"
	                       "aws_secret_access_key = credssecret\n"),
	       1);
	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[default]\n"
	                       "aws_access_key_id = AKIDCONFIG\n"
	                       "aws_secret_access_key = configsecret\n"),
	       1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKIDCREDS", "credssecret", "", "profile");
	creds_provider_free(p);
}

Test(creds, incomplete_profile_is_an_error_without_the_secret)
{
	struct creds_provider *p;
	struct result r;
	const char *path;

	/* The error ends the chain: the container step is not reached. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/", 1);
	path = write_home_file(fx.dir, "creds",
	                       "[broken]\n"
	                       "aws_secret_access_key = SECRETVALUE42\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_PROFILE", "broken", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "profile \"broken\"");
	cr_assert_not_null(strstr(r.e.message, path), "%s", r.e.message);
	cr_assert_not_null(strstr(r.e.message, "no aws_access_key_id"), "%s",
	                   r.e.message);
	cr_assert_null(strstr(r.e.message, "SECRETVALUE42"), "%s", r.e.message);

	/* The other way round, in the config file. */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[profile broken]\n"
	                       "aws_access_key_id = AKIDONLY\n"),
	       1);
	resolve(p, &r);
	assert_error(&r, "no aws_secret_access_key");
	creds_provider_free(p);
}

Test(creds, named_profile_that_does_not_exist_is_an_error)
{
	struct creds_opts o = {.profile = "nosuch"};
	struct creds_provider *p;
	struct result r;

	setenv("AWS_SHARED_CREDENTIALS_FILE",
	       write_home_file(fx.dir, "creds",
	                       "[default]\n"
	                       "aws_access_key_id = AKIDDEFAULT\n"
	                       "aws_secret_access_key = defaultsecret\n"),
	       1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	p = provider(&o);
	resolve(p, &r);
	assert_error(&r, "profile \"nosuch\" not found");
	creds_provider_free(p);
}

Test(creds, unsupported_profile_kind_is_an_error)
{
	struct creds_provider *p;
	struct result r;

	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[profile deploy]\n"
	                       "role_arn = arn:aws:iam::123:role/x\n"
	                       "source_profile = default\n"
	                       "mfa_serial = arn:aws:iam::123:mfa/me\n"),
	       1);
	setenv("AWS_PROFILE", "deploy", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "uses mfa_serial");
	creds_provider_free(p);
}

/* A profile's role that cannot be assumed says why, before any call. */
Test(creds, role_profiles_that_cannot_work)
{
	static const struct {
		const char *config, *needle;
	} cases[] = {
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n",
	     "has role_arn but no source_profile, credential_source or "
	     "web_identity_token_file"},
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n"
	     "credential_source = Laptop\n",
	     "credential_source \"Laptop\" is not one of"},
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n"
	     "credential_source = Environment\n",
	     "credential_source Environment: AWS_ACCESS_KEY_ID and "
	     "AWS_SECRET_ACCESS_KEY are not both set"},
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n"
	     "source_profile = nosuch\n",
	     "profile \"nosuch\" not found"},
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n"
	     "source_profile = deploy2\n"
	     "[profile deploy2]\nrole_arn = arn:aws:iam::1:role/y\n"
	     "source_profile = deploy\n",
	     "roles in a row through source_profile (a loop?)"},
	    {"[profile deploy]\nrole_arn = arn:aws:iam::1:role/x\n"
	     "source_profile = default\nduration_seconds = forever\n",
	     "duration_seconds \"forever\" is not a number"},
	};
	struct creds_provider *p;
	struct result r;
	size_t i;

	setenv("AWS_PROFILE", "deploy", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("AWS_CONFIG_FILE",
		       write_home_file(fx.dir, "config", cases[i].config), 1);
		p = provider(NULL);
		resolve(p, &r);
		assert_error(&r, cases[i].needle);
		cr_assert_not_null(strstr(r.e.message, "profile \""), "%s",
		                   r.e.message);
		creds_provider_free(p);
	}
}

/* credential_process: a script in the temporary HOME. */
static void
process_profile(const char *script, const char *args)
{
	char path[128], conf[512];

	snprintf(path, sizeof(path), "%s/helper.sh", fx.dir);
	write_home_file(fx.dir, "helper.sh", script);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(conf, sizeof(conf),
	         "[profile proc]\ncredential_process = %s %s\n", path, args);
	setenv("AWS_CONFIG_FILE", write_home_file(fx.dir, "config", conf), 1);
	setenv("AWS_PROFILE", "proc", 1);
}

Test(creds, credential_process_gives_keys)
{
	struct creds_provider *p;
	struct result r;
	struct creds c;

	/* Its words split as the SDKs do: quotes kept together, no shell. */
	process_profile(
	    "#!/bin/sh\n"

	    "[ \"$1\" = \"two words\" ] || exit 3\n"
	    "[ \"$2\" = \'$HOME\' ] || exit 4\n"
	    "echo noise >&2\n"
	    "printf '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", "
	    "\"SecretAccessKey\": \"procsecret\", \"SessionToken\": "
	    "\"proctoken\", \"Expiration\": \"%s\"}' "
	    "\"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\"\n",
	    "\"two words\" '$HOME'");
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKPROC", "procsecret", "proctoken", "process");
	cr_assert_gt(r.c.expiration, time(NULL) + 3000);
	cr_assert_eq(creds_provider_get(p, &c), 0);
	creds_provider_free(p);
}

/* The daemon blocks SIGTERM, SIGINT and SIGHUP for its signalfd: the
 * process must not inherit that (a shell would hide it: dash clears its
 * mask at start, so the helper here is Python). */
Test(creds, credential_process_gets_no_blocked_signals)
{
	struct creds_provider *p;
	sigset_t term, old;
	struct result r;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &term, &old), 0);
	process_profile(
	    "#!/usr/bin/env python3\n"
	    "import signal, sys\n"
	    "if signal.pthread_sigmask(signal.SIG_BLOCK, []): sys.exit(5)\n"
	    "print('{\"Version\": 1, \"AccessKeyId\": \"AKPY\", "
	    "\"SecretAccessKey\": \"pysecret\"}')\n",
	    "");
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "AKPY", "pysecret", "", "process");
	creds_provider_free(p);
	cr_assert_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

Test(creds, credential_process_failures_say_why_without_secrets)
{
	static const struct {
		const char *script, *needle;
	} cases[] = {
	    {"#!/bin/sh\necho 'secretstderr: cannot sign' >&2\nexit 2\n",
	     "exited with status 2 (its stderr: secretstderr: cannot sign)"},
	    {"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
	     "\"AKSECRETID\"'\n",
	     "its output is not a JSON object"},
	    {"#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": "
	     "\"AKSECRETID\", \"SecretAccessKey\": \"s3cr3t\"}'\n",
	     "its output's Version is not 1"},
	    {"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
	     "\"AKSECRETID\"}'\n",
	     "its output has no usable SecretAccessKey"},
	    {"#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": "
	     "\"AKSECRETID\", \"SecretAccessKey\": \"s3cr3t\", "
	     "\"Expiration\": \"soon\"}'\n",
	     "its output's Expiration is not an RFC 3339 time"},
	    {"#!/bin/sh\nexec sleep 30\n", "no answer within 300 ms: killed"},
	};
	struct creds_opts o = {.process_timeout_ms = 300};
	struct creds_provider *p;
	struct result r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		process_profile(cases[i].script, "--secret-arg=hunter2");
		p = provider(&o);
		resolve(p, &r);
		assert_error(&r, cases[i].needle);
		assert_error(&r, "credential_process of profile \"proc\" (");
		cr_assert_null(strstr(r.e.message, "hunter2"), "%s",
		               r.e.message);
		cr_assert_null(strstr(r.e.message, "AKSECRETID"), "%s",
		               r.e.message);
		cr_assert_null(strstr(r.e.message, "s3cr3t"), "%s",
		               r.e.message);
		creds_provider_free(p);
	}
	/* A program that is not there. */
	setenv("AWS_CONFIG_FILE",
	       write_home_file(fx.dir, "config",
	                       "[profile proc]\ncredential_process = "
	                       "/nonexistent/helper --x\n"),
	       1);
	p = provider(&o);
	resolve(p, &r);
	assert_error(&r, "(/nonexistent/helper): cannot run it");
	creds_provider_free(p);
}

Test(creds, sso_token_missing_or_expired_says_log_in)
{
	char dir[160], name[64];
	struct creds_provider *p;
	struct result r;

	setenv(
	    "AWS_CONFIG_FILE",
	    write_home_file(fx.dir, "config",
	                    "[profile dev]\nsso_session = corp\n"
	                    "sso_account_id = 111122223333\n"
	                    "sso_role_name = Images\n"
	                    "[sso-session corp]\nsso_region = eu-west-1\n"
	                    "sso_start_url = https://corp.awsapps.com/start\n"),
	    1);
	setenv("AWS_PROFILE", "dev", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "no cached token");
	assert_error(&r, "run aws sso login --profile dev");
	creds_provider_free(p);

	/* sha1("corp") names the cache file; its token expired. */
	snprintf(dir, sizeof(dir), "%s/.aws", fx.dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/.aws/sso", fx.dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/.aws/sso/cache", fx.dir);
	mkdir(dir, 0700);
	snprintf(name, sizeof(name), ".aws/sso/cache/%s.json",
	         "ee0bfd2552fbd840c02cc48b6e823320543c450f");
	write_home_file(fx.dir, name,
	                "{\"accessToken\": \"ssotokensecret\", "
	                "\"expiresAt\": \"2020-01-01T00:00:00Z\"}");
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "the cached token expired at 2020-01-01T00:00:00Z");
	cr_assert_null(strstr(r.e.message, "ssotokensecret"), "%s",
	               r.e.message);
	creds_provider_free(p);
}

Test(creds, nothing_found_names_the_chain)
{
	struct creds_provider *p;
	struct result r;
	struct err e;
	char creds_path[128], config_path[128];

	snprintf(creds_path, sizeof(creds_path), "%s/nonexistent-creds",
	         fx.dir);
	snprintf(config_path, sizeof(config_path), "%s/nonexistent-config",
	         fx.dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds_path, 1);
	setenv("AWS_CONFIG_FILE", config_path, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	p = provider(NULL);
	memset(&r, 0, sizeof(r));
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, on_done, &r, &e), 0);
	cr_assert_eq(r.calls, 1, "no network step: answered at once");
	assert_error(&r, "no AWS credentials found (tried config, "
	                 "environment, shared files [");
	cr_assert_not_null(strstr(r.e.message, creds_path), "%s", r.e.message);
	cr_assert_not_null(strstr(r.e.message, config_path), "%s", r.e.message);
	cr_assert_not_null(strstr(r.e.message, "container, instance metadata"),
	                   "%s", r.e.message);
	creds_provider_free(p);
}

Test(creds, nothing_found_when_instance_metadata_refuses_connections)
{
	struct creds_provider *p;
	struct result r;

	/* Port 1 on loopback: nobody listens, the connection is refused. */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "no AWS credentials found");
	cr_assert_not_null(strstr(r.e.message, "http://127.0.0.1:1/latest/"
	                                       "api/token"),
	                   "%s", r.e.message);
	creds_provider_free(p);
}

/*
 * Container credentials.
 */
Test(creds, container_with_token_from_env)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	fx.srv.auth = CONTAINER_TOKEN;
	use_container("/creds");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_TOKEN, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "ASIACONTAINER1", "CONTAINERsecret1",
	             "CONTAINERtoken1", "container");
	cr_assert_eq((long)r.c.expiration,
	             atomic_load(&fx.srv.last_expiration));
	creds_provider_free(p);
}

Test(creds, container_with_token_file_over_localhost)
{
	struct creds_provider *p;
	struct result r;
	char url[128];

	srv_start();
	fx.srv.auth = CONTAINER_TOKEN;
	/* The file wins over the variable and is read with its newline. */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	       write_home_file(fx.dir, "token", CONTAINER_TOKEN "\n"), 1);
	snprintf(url, sizeof(url), "http://localhost:%s/creds",
	         strrchr(fx.srv.base, ':') + 1);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "ASIACONTAINER1", "CONTAINERsecret1",
	             "CONTAINERtoken1", "container");
	creds_provider_free(p);
}

Test(creds, container_wins_over_instance_metadata)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	use_container("/creds");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	cr_assert(r.ok, "%s", r.e.message);
	cr_assert_str_eq(r.c.source, "container");
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 0);
	creds_provider_free(p);
}

Test(creds, container_wrong_token_is_an_error)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	fx.srv.auth = CONTAINER_TOKEN;
	use_container("/creds");
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-the-token", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "HTTP 401");
	cr_assert_null(strstr(r.e.message, "not-the-token"), "%s", r.e.message);
	creds_provider_free(p);
}

Test(creds, container_token_file_missing_is_an_error)
{
	struct creds_provider *p;
	struct result r;
	char path[128];

	srv_start();
	use_container("/creds");
	snprintf(path, sizeof(path), "%s/no-token", fx.dir);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	cr_assert_not_null(strstr(r.e.message, path), "%s", r.e.message);
	cr_assert_eq(atomic_load(&fx.srv.container_hits), 0);
	creds_provider_free(p);
}

Test(creds, container_500_is_a_clear_error)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	fx.srv.container_status = 500;
	use_container("/creds");
	/* Instance metadata must not be consulted after a container error. */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "container credentials from http://127.0.0.1:");
	cr_assert_not_null(strstr(r.e.message, "/creds: HTTP 500"), "%s",
	                   r.e.message);
	cr_assert_eq(r.e.http_status, 500);
	cr_assert_eq(atomic_load(&fx.srv.container_hits), 2, "one retry");
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 0);
	creds_provider_free(p);
}

Test(creds, container_bad_json_is_an_error)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	use_container("/creds");
	fx.srv.container_body = "{\"AccessKeyId\": \"ASIAX\", "
	                        "\"SecretAccessKey\": \"SECRETVALUE42\"";
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "not a JSON object");
	cr_assert_null(strstr(r.e.message, "SECRETVALUE42"), "%s", r.e.message);
	creds_provider_free(p);

	fx.srv.container_body = "{\"AccessKeyId\": \"ASIAX\"}";
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "lacks SecretAccessKey");
	creds_provider_free(p);

	fx.srv.container_body = "{\"AccessKeyId\": \"ASIAX\", "
	                        "\"SecretAccessKey\": \"s\", "
	                        "\"Expiration\": \"tomorrow\"}";
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "Expiration \"tomorrow\"");
	creds_provider_free(p);
}

Test(creds, container_host_must_be_allowed)
{
	static const char *const bad[] = {
	    "http://10.1.2.3/creds",    "http://169.254.170.3/creds",
	    "http://example.com/creds", "http://127.0.0.1@example.com/creds",
	    "http://[fe80::1]/creds",   "ftp://127.0.0.1/creds",
	};
	struct creds_provider *p;
	struct result r;
	size_t i;

	p = provider(NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad[i], 1);
		resolve(p, &r);
		assert_error(&r, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	}
	creds_provider_free(p);
}

/*
 * Instance metadata.
 */
Test(creds, imds_v2)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "ASIAIMDS1", "IMDSsecret1", "IMDStoken1", "imds");
	cr_assert_eq((long)r.c.expiration,
	             atomic_load(&fx.srv.last_expiration));
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 1);
	cr_assert_eq(atomic_load(&fx.srv.role_gets), 1);
	cr_assert_eq(atomic_load(&fx.srv.unauthorized), 0);
	creds_provider_free(p);
}

Test(creds, imds_without_token_is_refused_by_the_server)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	/* No IMDSv2 token: the SDKs fall back to IMDSv1, which this server
	 * refuses with 401 as a hardened instance would. */
	fx.srv.token_status = 404;
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "role request answered HTTP 401");
	cr_assert_eq(atomic_load(&fx.srv.unauthorized), 1);
	creds_provider_free(p);
}

Test(creds, imds_v1_fallback)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	fx.srv.token_status = 403;
	fx.srv.allow_v1 = 1;
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_creds(&r, "ASIAIMDS1", "IMDSsecret1", "IMDStoken1", "imds");

	setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
	resolve(p, &r);
	assert_error(&r, "AWS_EC2_METADATA_V1_DISABLED");
	creds_provider_free(p);
}

Test(creds, imds_without_role)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	fx.srv.no_role = 1;
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "no IAM role attached");
	creds_provider_free(p);
}

Test(creds, imds_disabled)
{
	struct creds_provider *p;
	struct result r;

	srv_start();
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	p = provider(NULL);
	resolve(p, &r);
	assert_error(&r, "disabled by AWS_EC2_METADATA_DISABLED");
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 0);
	creds_provider_free(p);
}

Test(creds, imds_that_never_answers_times_out)
{
	struct creds_provider *p;
	struct result r;
	char url[64];
	uint64_t t0;

	silent_endpoint(url, sizeof(url));
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	p = provider(NULL);
	t0 = loop_now_ms();
	resolve(p, &r);
	assert_error(&r, "timed out after 1000 ms");
	/* Two attempts of 1 s each. */
	cr_assert(loop_now_ms() - t0 >= 1900, "%llu ms",
	          (unsigned long long)(loop_now_ms() - t0));
	cr_assert(loop_now_ms() - t0 < 4000, "%llu ms",
	          (unsigned long long)(loop_now_ms() - t0));
	creds_provider_free(p);
}

/*
 * Caching, sharing, refreshing, cancelling.
 */
Test(creds, concurrent_resolves_share_one_lookup)
{
	struct creds_provider *p;
	struct result a, b;
	struct err e;

	srv_start();
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, on_done, &a, &e), 0);
	cr_assert_eq(creds_provider_resolve(p, on_done, &b, &e), 0);
	drive(&a.done);
	drive(&b.done);
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(b.calls, 1);
	assert_creds(&a, "ASIAIMDS1", "IMDSsecret1", "IMDStoken1", "imds");
	assert_creds(&b, "ASIAIMDS1", "IMDSsecret1", "IMDStoken1", "imds");
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 1);
	cr_assert_eq(atomic_load(&fx.srv.cred_gets), 1);
	creds_provider_free(p);
}

Test(creds, refresh_ahead_of_expiry)
{
	struct creds_opts o = {.refresh_ahead_secs = 300};
	struct creds_provider *p;
	struct result r;
	struct creds c;
	uint64_t deadline;
	struct err e;

	srv_start();
	fx.srv.expire_secs = 6;
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(&o);
	resolve(p, &r);
	assert_creds(&r, "ASIAIMDS1", "IMDSsecret1", "IMDStoken1", "imds");

	/* A lifetime shorter than refresh_ahead_secs: the refresh starts
	 * when a third of it remains (2 s before expiry), not at once. */
	cr_assert_eq(creds_provider_get(p, &c), 0);
	cr_assert_str_eq(c.access_key_id, "ASIAIMDS1");
	cr_assert_eq(loop_run_once(fx.loop, 100, &e), 0);
	cr_assert_eq(atomic_load(&fx.srv.cred_gets), 1, "refreshed at once");
	deadline = loop_now_ms() + 8000;
	err_clear(&e);
	for (;;) {
		cr_assert_eq(creds_provider_get(p, &c), 0);
		if (strcmp(c.access_key_id, "ASIAIMDS2") == 0)
			break;
		cr_assert(loop_now_ms() < deadline, "no refresh");
		cr_assert_eq(loop_run_once(fx.loop, 50, &e), 0);
	}
	cr_assert_str_eq(c.secret_access_key, "IMDSsecret2");
	cr_assert_str_eq(c.session_token, "IMDStoken2");
	cr_assert_eq(atomic_load(&fx.srv.cred_gets), 2);
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 2);
	/* The new ones are fresh again: no refresh on the next call. */
	cr_assert_eq(creds_provider_get(p, &c), 0);
	cr_assert_eq(loop_run_once(fx.loop, 100, &e), 0);
	cr_assert_eq(atomic_load(&fx.srv.token_puts), 2);
	creds_provider_free(p);
}

Test(creds, expired_credentials_are_not_returned)
{
	struct creds_provider *p;
	struct result r;
	struct creds c;

	srv_start();
	fx.srv.expire_secs = 2;
	use_container("/creds");
	p = provider(NULL);
	resolve(p, &r);
	cr_assert(r.ok, "%s", r.e.message);
	cr_assert_eq(creds_provider_get(p, &c), 0);
	while (time(NULL) < r.c.expiration)
		usleep(50000);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(creds_provider_get(p, &c), -1);
	cr_assert_str_eq(c.access_key_id, "");

	/* Credentials that arrive expired are an error, not a success. */
	fx.srv.expire_secs = -60;
	resolve(p, &r);
	assert_error(&r, "expired already");
	creds_provider_free(p);
}

Test(creds, free_fires_pending_callbacks)
{
	struct creds_provider *p;
	struct result r;
	struct err e;
	char url[64];

	silent_endpoint(url, sizeof(url));
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	p = provider(NULL);
	memset(&r, 0, sizeof(r));
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, on_done, &r, &e), 0);
	cr_assert_eq(loop_run_once(fx.loop, 50, &e), 0);
	cr_assert_eq(r.calls, 0);
	creds_provider_free(p);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.e.kind, ERR_CANCEL);
	cr_assert_eq(http_active(fx.http), 0);
}

static void
free_from_callback(const struct creds *c, const struct err *e, void *arg)
{
	struct creds_provider **pp = arg;

	(void)c;
	(void)e;
	creds_provider_free(*pp);
	*pp = NULL;
}

Test(creds, free_from_inside_the_callback)
{
	struct creds_provider *p;
	uint64_t deadline;
	struct err e;

	srv_start();
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fx.srv.base, 1);
	p = provider(NULL);
	err_clear(&e);
	cr_assert_eq(creds_provider_resolve(p, free_from_callback, &p, &e), 0);
	deadline = loop_now_ms() + 5000;
	while (p != NULL) {
		cr_assert(loop_now_ms() < deadline, "timed out");
		cr_assert_eq(loop_run_once(fx.loop, 50, &e), 0);
	}
	cr_assert_eq(http_active(fx.http), 0);
}
