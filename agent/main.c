/*
 * imgsyncd: keeps an S3 bucket and a DynamoDB table a live mirror of a
 * folder. Flags and the one-shot modes (-t, --check-remote, --adopt-root);
 * the daemon's run is daemon.c, the work the engine's (sync.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "checkremote.h"
#include "daemon.h"
#include "log.h"
#include "rootguard.h"

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: imgsyncd [-c FILE] [-f] [-t] [--once] [--check-remote] "
	    "[--verify] [--adopt-root] [-v] [-h]\n"
	    "  -c, --config FILE  configuration (default %s)\n"
	    "  -f, --foreground   run in the foreground (always; for "
	    "systemd)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "      --once         converge the mirror once, then exit\n"
	    "      --check-remote probe the credentials and every permission "
	    "the daemon\n"
	    "                     needs, name what is missing, then exit\n"
	    "      --verify [--checksums] [--repair [--delete-orphans]] "
	    "[--prefix P]\n"
	    "                     compare the folder, the bucket and the "
	    "table (exit 1\n"
	    "                     when they differ); --repair fixes what is "
	    "safe, then\n"
	    "                     converges as --once does; --checksums "
	    "also reads each\n"
	    "                     object's SHA-256 checksum\n"
	    "      --adopt-root   make the folder at watch.root the mirrored "
	    "one (writes\n"
	    "                     its marker), then exit\n"
	    "  -v, --version      print the version\n"
	    "  -h, --help         this text\n"
	    "Signals: SIGTERM/SIGINT stop after running uploads finish, "
	    "SIGHUP reloads.\n",
	    CONFIG_DEFAULT_PATH);
}

/* imgsyncd --check-remote: the daemon's clients, no state, no watcher. */
static int
check_remote(struct daemon *d, struct err *e)
{
	char source[300];
	int rc;

	if (daemon_clients_setup(d, e) == -1) {
		log_error("%s", e->message);
		return e->kind == ERR_CONFIG ? EX_CONFIG : EX_OSERR;
	}
	snprintf(source, sizeof(source), "%s%s",
	         d->cfg->sync.source[0] ? "" : "imgsync@",
	         d->cfg->sync.source[0] ? d->cfg->sync.source : d->hostname);
	rc = checkremote_run(d->cfg, d->loop, d->s3, d->ddb, d->kmsc, source,
	                     stdout, e);
	if (rc == -1)
		log_error("%s", e->message);
	return checkremote_exit_code(rc, e);
}

/* imgsyncd --adopt-root: the operator says the folder at watch.root is the
 * mirror from now on (a new disk, or a root without a marker). */
static int
adopt_root(struct daemon *d)
{
	struct err e;
	int rc = 0;

	err_clear(&e);
	if (daemon_state_open(d, &e) == -1 ||
	    rootguard_adopt(d->state, d->cfg->watch.root, &e) == -1) {
		log_error("%s", e.message);
		rc = e.kind == ERR_CONFIG ? EX_CONFIG : EX_CANTCREAT;
	} else {
		printf("imgsyncd: %s/%s written: %s is the mirrored folder\n",
		       d->cfg->watch.root, ROOTGUARD_MARKER,
		       d->cfg->watch.root);
	}
	daemon_teardown(d);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"test", no_argument, NULL, 't'},
	    {"once", no_argument, NULL, 'o'},
	    {"check-remote", no_argument, NULL, 'r'},
	    {"adopt-root", no_argument, NULL, 'a'},
	    {"verify", no_argument, NULL, 'V'},
	    {"repair", no_argument, NULL, 'R'},
	    {"delete-orphans", no_argument, NULL, 'D'},
	    {"checksums", no_argument, NULL, 'C'},
	    {"prefix", required_argument, NULL, 'P'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct daemon d;
	struct sync_stats st;
	struct err e;
	int ch, test = 0, adopt = 0, rc;

	memset(&d, 0, sizeof(d));
	d.sigfd = -1;
	d.lockfd = -1;
	d.config_path = CONFIG_DEFAULT_PATH;
	while ((ch = getopt_long(argc, argv, "c:ftvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'f':
			break;
		case 't':
			test = 1;
			break;
		case 'o':
			d.once = 1;
			break;
		case 'r':
			d.check_remote = 1;
			break;
		case 'a':
			adopt = 1;
			break;
		case 'V':
			d.verify = d.once = 1;
			break;
		case 'R':
			d.vopts.repair = 1;
			break;
		case 'D':
			d.vopts.delete_orphans = 1;
			break;
		case 'C':
			d.vopts.checksums = 1;
			break;
		case 'P':
			d.vopts.prefix = optarg;
			break;
		case 'v':
			printf("imgsyncd %s\n", IMGSYNC_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc || ((d.vopts.repair || d.vopts.delete_orphans ||
	                        d.vopts.checksums || d.vopts.prefix) &&
	                       !d.verify)) {
		usage(stderr);
		return EX_USAGE;
	}
	/* Until the configuration sets the level: its errors reach the
	 * journal at error priority too. */
	log_init(CONFIG_LOG_INFO, 0);
	err_clear(&e);
	d.cfg = config_load_file(d.config_path, &e);
	if (d.cfg == NULL) {
		log_error("%s", e.message);
		return EX_CONFIG;
	}
	if (test) {
		printf("imgsyncd: the configuration file %s is valid\n",
		       d.config_path);
		config_free(d.cfg);
		return 0;
	}
	log_init(d.cfg->log.level, isatty(STDERR_FILENO));
	if (adopt)
		return adopt_root(&d);
	if (d.check_remote) {
		rc = check_remote(&d, &e);
		daemon_teardown(&d);
		return rc;
	}
	if (daemon_setup(&d, &e) == -1 || daemon_signals_setup(&d, &e) == -1 ||
	    daemon_run(&d, &e) == -1) {
		if (e.kind != ERR_NONE)
			log_error("%s", e.message);
		daemon_teardown(&d);
		return e.kind == ERR_CONFIG ? EX_CONFIG : 1;
	}
	sync_get_stats(d.sync, &st);
	rc = d.once && st.failed > 0 ? 1 : 0;
	if (d.once && sync_root_lost_why(d.sync) != NULL)
		rc = EX_TEMPFAIL;
	if (d.verify && d.verify_rc != 0)
		rc = d.verify_rc;
	daemon_teardown(&d);
	return rc;
}
