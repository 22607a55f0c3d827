/*
 * libFuzzer target over what the credential chain (lib/creds*.c) and
 * lib/awsconfig.c read from outside:
 *   - the shared credentials and config files (INI), through the public
 *     creds_provider_resolve (no HTTP client: the chain ends after the
 *     files) and awsconfig_region_profile, with AWS_SHARED_CREDENTIALS_FILE
 *     and AWS_CONFIG_FILE naming memfds that hold the input;
 *   - the container endpoint's and instance metadata's answers (token,
 *     role name, credentials JSON with its ISO-8601 Expiration), STS's
 *     (AssumeRole's XML) and SSO's (GetRoleCredentials' JSON), through
 *     creds_http_on_response, the static callback http.c calls: the
 *     chain's files are included here;
 *   - a credential_process's output (creds_process_parse). The files'
 *     credential_process is never run: the providers here have no loop,
 *     and the chain refuses to run one without it. A step that would send the
 *     next request sends it on a real http client whose loop never runs;
 *     freeing the provider cancels it.
 * Every input is both files and every answer. Each resolution must end
 * with exactly one callback, with usable credentials or an ERR_CREDS error
 * (ERR_CANCEL when it was still waiting for the network). Built and run by
 * tests/fuzz/run.
 *
 * Input: a response body, or a whole response (see fuzz_resp.h); the
 * files hold the body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* For creds_http_on_response and the steps it drives. */
#include "../../lib/creds.c"
#include "../../lib/creds_container.c"
#include "../../lib/creds_core.c"
#include "../../lib/creds_http.c"
#include "../../lib/creds_imds.c"
#include "../../lib/creds_process.c"
#include "../../lib/creds_profile.c"
#include "../../lib/creds_sso.c"
#include "../../lib/creds_sts.c"
#include "fuzz_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	int cred_fd, config_fd;
	struct loop *loop;
	struct http *http;
} fx = {-1, -1, NULL, NULL};

static const char *const unset[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_V1_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
};

static int
memfd_env(const char *name)
{
	char path[64];
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd == -1)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (setenv(name, path, 1) == -1)
		abort();
	return fd;
}

static void
setup(void)
{
	struct http_opts ho;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
		unsetenv(unset[i]);
	fx.cred_fd = memfd_env("AWS_SHARED_CREDENTIALS_FILE");
	fx.config_fd = memfd_env("AWS_CONFIG_FILE");
	err_clear(&e);
	memset(&ho, 0, sizeof(ho));
	fx.loop = loop_new(&e);
	if (fx.loop == NULL)
		abort();
	fx.http = http_new(fx.loop, &ho, &e);
	if (fx.http == NULL)
		abort();
}

static void
fill(int fd, const char *p, size_t n)
{
	size_t off = 0;
	ssize_t w;

	if (ftruncate(fd, 0) == -1)
		abort();
	while (off < n) {
		w = pwrite(fd, p + off, n - off, (off_t)off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
}

struct done {
	int calls;
	enum err_kind kind;
};

static void
on_creds(const struct creds *c, const struct err *e, void *arg)
{
	struct done *d = arg;

	d->calls++;
	if ((c == NULL) == (e == NULL))
		abort();
	if (e != NULL) {
		if ((e->kind != ERR_CREDS && e->kind != ERR_CANCEL) ||
		    e->message[0] == '\0' ||
		    memchr(e->message, '\0', sizeof(e->message)) == NULL)
			abort();
		d->kind = e->kind;
		return;
	}
	FUZZ_TERMINATED(c->access_key_id);
	FUZZ_TERMINATED(c->secret_access_key);
	FUZZ_TERMINATED(c->session_token);
	FUZZ_TERMINATED(c->source);
	if (c->access_key_id[0] == '\0' || c->secret_access_key[0] == '\0' ||
	    (c->expiration != 0 && c->expiration <= time(NULL)))
		abort();
}

/* The files: the chain as the daemon starts it, for two profiles. */
static void
fuzz_files(void)
{
	static const char *const profiles[] = {NULL, "dev"};
	struct creds_opts o;
	struct creds_provider *p;
	struct done d;
	struct err e;
	char region[64];
	size_t i;

	for (i = 0; i < 2; i++) {
		memset(&o, 0, sizeof(o));
		o.profile = profiles[i];
		err_clear(&e);
		p = creds_provider_new(&o, NULL, &e);
		if (p == NULL)
			abort();
		memset(&d, 0, sizeof(d));
		if (creds_provider_resolve(p, on_creds, &d, &e) != 0 ||
		    d.calls != 1 || d.kind == ERR_CANCEL)
			abort();
		creds_provider_free(p);
		if (d.calls != 1)
			abort();

		awsconfig_region_profile(NULL, profiles[i], region,
		                         sizeof(region));
		if (region[0] == '\0' ||
		    memchr(region, '\0', sizeof(region)) == NULL)
			abort();
	}
}

/* One answer to one network step, as http.c delivers it. */
static void
fuzz_step(enum creds_stage stage, const uint8_t *data, size_t size)
{
	struct http_response resp;
	struct creds_provider *p;
	struct done d;
	struct err e;

	err_clear(&e);
	p = creds_provider_new(NULL, fx.http, &e);
	if (p == NULL)
		abort();
	memset(&d, 0, sizeof(d));
	if (creds_add_waiter(p, on_creds, &d, &e) == -1)
		abort();
	p->resolving = 1;
	p->step.stage = stage;
	p->step.ops = stage == STAGE_CONTAINER ? &creds_container_ops
	              : stage == STAGE_STS     ? &creds_sts_ops
	              : stage == STAGE_SSO     ? &creds_sso_ops
	                                       : &creds_imds_ops;
	snprintf(p->role.role_arn, sizeof(p->role.role_arn), "%s",
	         "arn:aws:iam::1:role/r");
	snprintf(p->sso.profile, sizeof(p->sso.profile), "%s", "dev");
	p->step.attempt = CREDS_ATTEMPTS;
	snprintf(p->step.imds_base, sizeof(p->step.imds_base), "%s",
	         CREDS_IMDS_HOST);
	if (stage == STAGE_CONTAINER) {
		snprintf(p->step.url, sizeof(p->step.url),
		         "%s/v2/credentials/x", CREDS_ECS_HOST);
	} else {
		snprintf(p->step.url, sizeof(p->step.url), "%s%s",
		         CREDS_IMDS_HOST, CREDS_IMDS_ROLE_PATH);
		snprintf(p->step.role, sizeof(p->step.role), "%s", "app-role");
	}
	/* creds_imds_token and _role edit the body in place: a fresh one. */
	fuzz_resp_init(&resp, data, size);
	creds_http_on_response(&resp, NULL, p);
	if (d.calls > 1 || (d.calls == 0 && p->step.xfer == NULL))
		abort();
	creds_provider_free(p);
	if (d.calls != 1)
		abort();
	fuzz_resp_cleanup(&resp);
}

/* A credential_process's stdout. */
static void
fuzz_process(const uint8_t *data, size_t size)
{
	struct creds c;
	struct buf b;
	const char *bad;

	buf_init(&b, 0);
	buf_append(&b, data, size);
	memset(&c, 0, sizeof(c));
	bad = creds_process_parse(&b, &c);
	if (bad == NULL) {
		FUZZ_TERMINATED(c.access_key_id);
		FUZZ_TERMINATED(c.secret_access_key);
		FUZZ_TERMINATED(c.session_token);
		if (c.access_key_id[0] == '\0' ||
		    c.secret_access_key[0] == '\0')
			abort();
	} else if (strlen(bad) == 0) {
		abort();
	}
	buf_cleanup(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response resp;

	if (fx.http == NULL)
		setup();
	fuzz_resp_init(&resp, data, size);
	fill(fx.cred_fd, resp.body.data, resp.body.len);
	fill(fx.config_fd, resp.body.data, resp.body.len);
	fuzz_resp_cleanup(&resp);
	fuzz_files();

	fuzz_step(STAGE_CONTAINER, data, size);
	fuzz_step(STAGE_STS, data, size);
	fuzz_step(STAGE_SSO, data, size);
	fuzz_process(data, size);
	fuzz_step(STAGE_IMDS_TOKEN, data, size);
	fuzz_step(STAGE_IMDS_ROLE, data, size);
	fuzz_step(STAGE_IMDS_CREDS, data, size);
	return 0;
}
