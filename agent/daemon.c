/*
 * daemon: imgsyncd's run. Its clients (the loop, HTTP, credentials, S3,
 * DynamoDB), the state database (one daemon per database, one watch root
 * per database), the engine, the control socket, systemd's notifications,
 * signals (SIGTERM drains, SIGHUP reloads), and the loop until it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "awsconfig.h"
#include "buf.h"
#include "ctl_output.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "rootguard.h"

#define DRAIN_MS 10000 /* how long SIGTERM waits for running uploads */
#define RETRY_WARN_MS 10000
#define STATUS_MS 5000 /* how often systemd's STATUS= line is refreshed */
/* --check-remote gives up fast: the probes are tiny. */
#define CHECK_MAX_ATTEMPTS 3
#define CHECK_MAX_RETRY_MS 1000
#define CHECK_CONNECT_TIMEOUT_MS 5000
#define CHECK_TIMEOUT_MS 10000

/* Transient errors retry forever; say so now and then, not per request. */
static void
daemon_on_retry(const struct err *e, enum retry_class c, uint64_t delay_ms,
                void *arg)
{
	struct daemon *d = arg;
	uint64_t now = loop_now_ms();

	if (d->sync != NULL)
		sync_note_error(d->sync, e->message);
	if (now - d->last_retry_warn >= RETRY_WARN_MS ||
	    d->last_retry_warn == 0) {
		d->last_retry_warn = now;
		log_warnx("%s (%s); retrying in %" PRIu64 " ms", e->message,
		          retry_class_name(c), delay_ms);
	} else {
		log_debug("%s (%s); retrying in %" PRIu64 " ms", e->message,
		          retry_class_name(c), delay_ms);
	}
}

static struct aws_client *
daemon_client_new(struct daemon *d, const char *service, const char *region,
                  const char *endpoint, struct err *e)
{
	struct aws_client_opts o;
	char reg[64], ep[512];

	memset(&o, 0, sizeof(o));
	awsconfig_region_profile(region, d->cfg->credentials.profile, reg,
	                         sizeof(reg));
	awsconfig_endpoint(service, endpoint, ep, sizeof(ep));
	o.service = service;
	o.region = reg;
	o.endpoint = ep;
	/* --check-remote gives up after a few attempts: a dead endpoint
	 * fails in seconds, not after retrying forever. */
	o.max_attempts = d->check_remote ? CHECK_MAX_ATTEMPTS : 0;
	o.retry.max_ms = d->check_remote
	                     ? CHECK_MAX_RETRY_MS
	                     : (uint64_t)d->cfg->sync.max_retry_delay_ms;
	o.on_retry = daemon_on_retry;
	o.on_retry_arg = d;
	return aws_client_new(d->loop, d->http, d->creds, &o, e);
}

static int
daemon_state_dir(const char *path, struct err *e)
{
	char *dir = strdup(path), *p;

	if (dir == NULL) {
		err_sys(e, "strdup");
		return -1;
	}
	for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			err_sys(e, "cannot create %s", dir);
			free(dir);
			return -1;
		}
		*p = '/';
	}
	free(dir);
	return 0;
}

/* One daemon (or --once) per state database: two would run the same
 * intents twice and fight over the mirror. The lock goes with the
 * process, also when it is killed. */
static int
daemon_state_lock(struct daemon *d, struct err *e)
{
	struct buf path;
	int rc = -1;

	buf_init(&path, 0);
	if (buf_printf(&path, "%s.lock", d->cfg->state.path) == -1) {
		err_sys(e, "out of memory");
		goto out;
	}
	d->lockfd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lockfd == -1) {
		err_sys(e, "cannot open %s", path.data);
		goto out;
	}
	if (flock(d->lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			err_set(e, ERR_CONFIG,
			        "another imgsyncd uses the state database %s "
			        "(%s is locked)",
			        d->cfg->state.path, path.data);
		else
			err_sys(e, "cannot lock %s", path.data);
		goto out;
	}
	rc = 0;
out:
	buf_cleanup(&path);
	return rc;
}

/* A state database belongs to one watch root: pointed at another root it
 * would delete everything the first one synced. */
static int
daemon_check_root(struct daemon *d, struct err *e)
{
	const char *root = d->cfg->watch.root;
	char *have = NULL;
	int rc;

	rc = state_meta_get(d->state, "watch_root", &have, NULL, e);
	if (rc == -1)
		return -1;
	if (rc == 0)
		return state_meta_put(d->state, "watch_root", root,
		                      strlen(root), e);
	if (strcmp(have, root) != 0) {
		err_set(
		    e, ERR_CONFIG,
		    "the state database %s belongs to the watch root %s, not "
		    "%s: use another state.path (or remove it to start over)",
		    d->cfg->state.path, have, root);
		free(have);
		return -1;
	}
	free(have);
	return 0;
}

/* systemd: STATUS= now and then, and the watchdog's pings. */
static void
daemon_on_notify(void *arg)
{
	struct daemon *d = arg;
	struct sync_stats st;
	uint64_t now = loop_now_ms();
	char line[700], held[80];

	if (now - d->last_status_ms >= STATUS_MS) {
		d->last_status_ms = now;
		sync_get_stats(d->sync, &st);
		held[0] = '\0';
		if (sync_held_count(d->sync) > 0)
			snprintf(held, sizeof(held),
			         "; %" PRIu64 " deletions held (imgsyncctl "
			         "deletions)",
			         sync_held_count(d->sync));
		if (sync_root_lost_why(d->sync) != NULL)
			snprintf(line, sizeof(line), "STATUS=root lost: %s",
			         sync_root_lost_why(d->sync));
		else if (sync_disk_full_why(d->sync) != NULL)
			snprintf(line, sizeof(line),
			         "STATUS=disk full: %" PRIu64 " waiting; %s",
			         st.queued, sync_disk_full_why(d->sync));
		else
			snprintf(line, sizeof(line),
			         "STATUS=%s: %" PRIu64 " queued, %" PRIu64
			         " in flight, %" PRIu64 " synced, %" PRIu64
			         " failed%s",
			         sync_paused(d->sync) ? "paused" : "running",
			         st.queued, st.running,
			         st.uploaded + st.renamed + st.deleted,
			         st.failed, held);
		notify_send(line);
	}
	if (d->watchdog_ms > 0)
		notify_send("WATCHDOG=1");
	loop_timer_set(d->notify_timer,
	               d->watchdog_ms > 0 && d->watchdog_ms < STATUS_MS
	                   ? (int64_t)d->watchdog_ms
	                   : STATUS_MS);
}

/* The control socket, and systemd's notifications. */
static int
daemon_control_setup(struct daemon *d, struct err *e)
{
	struct control_deps cd = {
	    .loop = d->loop,
	    .sync = d->sync,
	    .state = d->state,
	    .ddb = d->ddb,
	    .s3 = d->s3,
	    .cfg = d->cfg,
	    .s3c = d->s3c,
	    .ddbc = d->ddbc,
	};

	d->control = control_new(d->cfg, &cd, e);
	if (d->control == NULL)
		return -1;
	/* Pinged at half the interval systemd asks for. */
	d->watchdog_ms = notify_watchdog_usec() / 2000;
	d->notify_timer = loop_timer_new(d->loop, daemon_on_notify, d, e);
	return d->notify_timer == NULL ? -1 : 0;
}

/* More descriptors than the default 1024: hundreds of control clients and
 * the uploads' connections at once. */
static void
daemon_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The loop and the AWS clients: all --check-remote needs. */
int
daemon_clients_setup(struct daemon *d, struct err *e)
{
	const struct config *c = d->cfg;
	struct creds_opts co;
	struct http_opts ho;
	struct s3_opts so;

	if (gethostname(d->hostname, sizeof(d->hostname) - 1) == -1)
		strcpy(d->hostname, "localhost");
	d->loop = loop_new(e);
	if (d->loop == NULL)
		return -1;
	memset(&ho, 0, sizeof(ho));
	ho.max_host_connections = c->sync.concurrency + 4;
	if (d->check_remote) {
		ho.connect_timeout_ms = CHECK_CONNECT_TIMEOUT_MS;
		ho.timeout_ms = CHECK_TIMEOUT_MS;
	}
	d->http = http_new(d->loop, &ho, e);
	if (d->http == NULL)
		return -1;
	memset(&co, 0, sizeof(co));
	co.access_key_id = c->credentials.access_key_id;
	co.secret_access_key = c->credentials.secret_access_key;
	co.session_token = c->credentials.session_token;
	co.profile = c->credentials.profile;
	co.loop = d->loop;
	co.region = c->s3.region;
	co.process_timeout_ms = c->credentials.process_timeout_ms;
	d->creds = creds_provider_new(&co, d->http, e);
	if (d->creds == NULL)
		return -1;
	d->s3c = daemon_client_new(d, "s3", c->s3.region, c->s3.endpoint, e);
	if (d->s3c == NULL)
		return -1;
	d->ddbc = daemon_client_new(d, "dynamodb",
	                            c->dynamodb.region[0] ? c->dynamodb.region
	                                                  : c->s3.region,
	                            c->dynamodb.endpoint, e);
	if (d->ddbc == NULL)
		return -1;
	/* --check-remote asks KMS itself whether the key may be used. */
	if (d->check_remote && strcmp(c->s3.sse, "aws:kms") == 0) {
		d->kmsc = daemon_client_new(d, "kms", c->s3.region, "", e);
		if (d->kmsc == NULL)
			return -1;
	}
	memset(&so, 0, sizeof(so));
	so.bucket = c->s3.bucket;
	so.path_style = c->s3.path_style;
	so.multipart_threshold = (uint64_t)c->s3.multipart_threshold_mb << 20;
	so.part_size = (uint64_t)c->s3.part_size_mb << 20;
	so.storage_class = c->s3.storage_class;
	so.sse = c->s3.sse;
	so.sse_kms_key_id = c->s3.sse_kms_key_id;
	so.sse_bucket_key = c->s3.sse_bucket_key;
	so.checksum = strcmp(c->s3.checksum, "sha256") == 0;
	so.expected_bucket_owner = c->s3.expected_bucket_owner;
	d->s3 = s3_new(d->s3c, &so, e);
	if (d->s3 != NULL && s3_forced_path_style(d->s3))
		log_info("s3: path-style requests (%s/%s/KEY): no virtual "
		         "host %s.<endpoint> can reach %s (set s3.path_style "
		         "= true to say so)",
		         aws_client_endpoint(d->s3c), c->s3.bucket,
		         c->s3.bucket, aws_client_endpoint(d->s3c));
	d->ddb = d->s3 != NULL ? dynamo_new(d->loop, d->ddbc, e) : NULL;
	return d->ddb == NULL ? -1 : 0;
}

int
daemon_state_open(struct daemon *d, struct err *e)
{
	const char *path = d->cfg->state.path;

	if (daemon_state_dir(path, e) == -1 || daemon_state_lock(d, e) == -1)
		return -1;
	d->state = state_open(path, e);
	return d->state == NULL ? -1 : daemon_check_root(d, e);
}

int
daemon_setup(struct daemon *d, struct err *e)
{
	const struct config *c = d->cfg;
	struct sync_deps deps;
	struct buf key;

	daemon_raise_nofile();
	if (daemon_clients_setup(d, e) == -1 || daemon_state_open(d, e) == -1)
		return -1;
	if (c->summary.enabled) {
		buf_init(&key, 0);
		buf_printf(&key, "%s%s", c->s3.prefix, c->summary.key);
		if (buf_cstr(&key) != NULL)
			d->summary =
			    summary_new(d->loop, d->s3, d->state, key.data,
			                (unsigned)c->summary.interval_ms, e);
		buf_cleanup(&key);
		if (d->summary == NULL)
			return -1;
	}
	deps = (struct sync_deps){
	    .loop = d->loop,
	    .s3 = d->s3,
	    .ddb = d->ddb,
	    .state = d->state,
	    .summary = d->summary,
	    .hostname = d->hostname,
	};
	d->sync = sync_new(c, &deps, e);
	if (d->sync == NULL)
		return -1;
	return d->once ? 0 : daemon_control_setup(d, e);
}

void
daemon_teardown(struct daemon *d)
{
	/* The control socket first: its waiting requests are answered and
	 * left to their callbacks. Then the clients: their cancellations end
	 * every running operation, whose callbacks still find the engine. */
	control_free(d->control);
	loop_timer_free(d->notify_timer);
	aws_client_free(d->s3c);
	aws_client_free(d->ddbc);
	aws_client_free(d->kmsc);
	summary_free(d->summary);
	sync_free(d->sync);
	state_close(d->state);
	s3_free(d->s3);
	dynamo_free(d->ddb);
	creds_provider_free(d->creds);
	http_free(d->http);
	if (d->sigfd != -1)
		close(d->sigfd);
	if (d->lockfd != -1)
		close(d->lockfd);
	loop_free(d->loop);
	config_free(d->cfg);
}

/* Whether the S3 client's settings differ: they are fixed while it runs
 * (a multipart upload in flight is cut by the part size it began with). */
static int
daemon_s3_changed(const struct config_s3 *a, const struct config_s3 *b)
{
	return strcmp(a->bucket, b->bucket) != 0 ||
	       strcmp(a->region, b->region) != 0 ||
	       strcmp(a->endpoint, b->endpoint) != 0 ||
	       a->path_style != b->path_style ||
	       a->multipart_threshold_mb != b->multipart_threshold_mb ||
	       a->part_size_mb != b->part_size_mb ||
	       strcmp(a->storage_class, b->storage_class) != 0 ||
	       strcmp(a->sse, b->sse) != 0 ||
	       strcmp(a->sse_kms_key_id, b->sse_kms_key_id) != 0 ||
	       a->sse_bucket_key != b->sse_bucket_key ||
	       strcmp(a->checksum, b->checksum) != 0 ||
	       strcmp(a->expected_bucket_owner, b->expected_bucket_owner) != 0;
}

static void
daemon_reload(struct daemon *d)
{
	struct config *nc;
	struct err e;

	err_clear(&e);
	nc = config_load_file(d->config_path, &e);
	if (nc == NULL) {
		log_error("reload failed, keeping the running configuration: "
		          "%s",
		          e.message);
		return;
	}
	log_set_level(nc->log.level);
	if (daemon_s3_changed(&d->cfg->s3, &nc->s3))
		log_warnx("reload: the s3 settings changed; they apply from "
		          "the next start (systemctl restart imgsyncd), the "
		          "running uploads keep the old ones");
	sync_reconfigure(d->sync, nc);
	if (d->control != NULL)
		control_reconfigure(d->control, nc);
	if (d->summary != NULL)
		summary_set_interval(d->summary,
		                     (unsigned)nc->summary.interval_ms);
	config_free(d->cfg);
	d->cfg = nc;
	log_info("configuration reloaded from %s", d->config_path);
}

static void
daemon_on_signal(int fd, uint32_t events, void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			notify_send("RELOADING=1");
			daemon_reload(d);
			notify_send("READY=1");
			break;
		case SIGTERM:
		case SIGINT:
			if (!d->stop)
				log_info("stopping: finishing running uploads "
				         "(at most %d s)",
				         DRAIN_MS / 1000);
			notify_send("STOPPING=1");
			d->stop = 1;
			sync_stop(d->sync);
			break;
		}
	}
}

int
daemon_signals_setup(struct daemon *d, struct err *e)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
		err_sys(e, "sigprocmask");
		return -1;
	}
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd == -1) {
		err_sys(e, "signalfd");
		return -1;
	}
	return loop_add_fd(d->loop, d->sigfd, EPOLLIN, daemon_on_signal, d, e);
}

static int
daemon_converged(const struct daemon *d)
{
	return sync_idle(d->sync) &&
	       (d->summary == NULL || summary_idle(d->summary));
}

static void
daemon_report(const struct daemon *d)
{
	const struct aws_stats *a = aws_client_stats(d->s3c);
	const struct aws_stats *b = aws_client_stats(d->ddbc);
	struct sync_stats st;

	sync_get_stats(d->sync, &st);
	log_info("uploaded %" PRIu64 ", renamed %" PRIu64 ", deleted %" PRIu64
	         ", unchanged %" PRIu64 ", failed %" PRIu64 "; requests: s3 "
	         "%" PRIu64 ", dynamodb %" PRIu64 ", retries %" PRIu64,
	         st.uploaded, st.renamed, st.deleted, st.unchanged, st.failed,
	         a->requests, b->requests, a->retries + b->retries);
}

/* imgsyncd --verify: the report first, before anything is uploaded (so a
 * lost state database is rebuilt, not re-uploaded); with --repair the
 * converge of --once follows. 1 when there is nothing more to do. */
static int
daemon_verify(struct daemon *d, struct err *e)
{
	enum rootguard_verdict g;
	struct verify_deps vd;
	struct verify *v;
	char why[700];
	json_t *r;
	int fd;

	g = rootguard_check(d->state, d->cfg->watch.root, &fd, why, sizeof(why),
	                    e);
	if (g == ROOTGUARD_ERROR)
		return -1;
	if (g == ROOTGUARD_LOST) {
		log_error("%s", why);
		d->verify_rc = EX_TEMPFAIL;
		return 1;
	}
	close(fd);
	vd = (struct verify_deps){
	    .loop = d->loop,
	    .s3 = d->s3,
	    .ddb = d->ddb,
	    .state = d->state,
	    .sync = d->sync,
	    .cfg = d->cfg,
	};
	v = verify_start(&vd, &d->vopts, NULL, NULL, e);
	if (v == NULL)
		return -1;
	while (!verify_finished(v))
		if (loop_run_once(d->loop, 200, e) == -1) {
			verify_free(v);
			return -1;
		}
	r = verify_report(v);
	if (r == NULL || ctl_output_verify(stdout, r, e) == -1) {
		json_decref(r);
		verify_free(v);
		return -1;
	}
	json_decref(r);
	d->verify_rc = verify_differences(v) > 0 ? 1 : 0;
	verify_free(v);
	return d->vopts.repair ? 0 : 1;
}

int
daemon_run(struct daemon *d, struct err *e)
{
	uint64_t deadline = 0;
	struct sync_stats st;
	int rc;

	log_info("imgsyncd %s: watching %s -> s3://%s/%s (%s), table %s (%s)",
	         IMGSYNC_VERSION, d->cfg->watch.root, d->cfg->s3.bucket,
	         d->cfg->s3.prefix, aws_client_endpoint(d->s3c),
	         d->cfg->dynamodb.table, aws_client_endpoint(d->ddbc));
	if (d->verify && (rc = daemon_verify(d, e)) != 0)
		return rc == -1 ? -1 : 0;
	if (sync_start(d->sync, e) == -1)
		return -1;
	if (d->once && sync_root_lost_why(d->sync) != NULL)
		return 0; /* nothing to do: main says why with its exit code */
	if (d->summary != NULL)
		summary_touch(d->summary);
	if (!d->once) {
		/* The socket listens and the initial scan is queued. */
		notify_send("READY=1");
		daemon_on_notify(d);
	}
	for (;;) {
		if (loop_run_once(d->loop, 200, e) == -1)
			return -1;
		if (d->once && daemon_converged(d))
			break;
		if (!d->stop)
			continue;
		if (deadline == 0)
			deadline = loop_now_ms() + DRAIN_MS;
		sync_get_stats(d->sync, &st);
		if (st.running == 0 || loop_now_ms() >= deadline)
			break;
	}
	daemon_report(d);
	return 0;
}
