/*
 * daemon: imgsyncd's run, for main.c: everything the daemon holds, set up,
 * run and torn down in that order (daemon_teardown frees what was made,
 * also after a failed setup).
 */
#ifndef IMGSYNC_DAEMON_H
#define IMGSYNC_DAEMON_H

#include <stdint.h>

#include "aws.h"
#include "config.h"
#include "control.h"
#include "creds.h"
#include "dynamo.h"
#include "http.h"
#include "loop.h"
#include "s3.h"
#include "state.h"
#include "summary.h"
#include "sync.h"
#include "verify.h"

struct daemon {
	char *config_path;
	struct config *cfg;
	int once;
	int verify; /* --verify: verify_opts below, its exit code in verify_rc
	             */
	struct verify_opts vopts;
	int verify_rc;
	int check_remote;
	struct loop *loop;
	struct http *http;
	struct creds_provider *creds;
	struct aws_client *s3c;
	struct aws_client *ddbc;
	struct aws_client *kmsc; /* --check-remote with s3.sse = aws:kms */
	struct s3 *s3;
	struct dynamo *ddb;
	struct state *state;
	struct summary *summary;
	struct sync *sync;
	struct control *control;
	struct loop_timer *notify_timer;
	uint64_t watchdog_ms;
	uint64_t last_status_ms;
	int sigfd;
	int lockfd; /* holds the state database's lock */
	int stop;
	uint64_t last_retry_warn;
	char hostname[256];
};

/* The loop and the AWS clients: all --check-remote needs. */
int daemon_clients_setup(struct daemon *d, struct err *e);
/* The state database: its folder made, locked for this process, opened,
 * and checked to belong to watch.root. */
int daemon_state_open(struct daemon *d, struct err *e);
/* The clients, the state database, the engine and (unless --once) the
 * control socket. */
int daemon_setup(struct daemon *d, struct err *e);
int daemon_signals_setup(struct daemon *d, struct err *e);
/* Until converged (--once, --verify) or stopped by a signal. */
int daemon_run(struct daemon *d, struct err *e);
void daemon_teardown(struct daemon *d);

#endif
