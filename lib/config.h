/*
 * config: the daemon's configuration, read from a libconfig file into plain
 * structs (no libconfig types leak out of this header).
 *
 * Every string and list is a heap copy owned by the struct config and freed
 * by config_free(); a caller that replaces one frees the old value and stores
 * a malloc'd one. Strings are never NULL after config_new()/config_load(),
 * "" meaning "not set".
 *
 * Reload is parse -> validate -> swap: config_load() builds a new
 * configuration aside and only replaces the caller's one when the whole file
 * parsed and validated, so a failed reload keeps the old values.
 */
#ifndef IMGSYNC_CONFIG_H
#define IMGSYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CONFIG_DEFAULT_PATH "/etc/imgsync/imgsync.conf"

enum config_log_level {
	CONFIG_LOG_DEBUG,
	CONFIG_LOG_INFO,
	CONFIG_LOG_WARN,
	CONFIG_LOG_ERROR,
};

struct config_list {
	char **items;
	size_t count;
};

struct config_watch {
	char *root; /* required, absolute */
	/* Globs; matching them (case-insensitively) is the daemon's job. */
	struct config_list include;
	struct config_list exclude;
	int settle_ms; /* 0..600000, default 100 */
};

struct config_s3 {
	char *bucket;    /* required */
	char *prefix;    /* "" or a key prefix not starting with '/' */
	char *region;    /* "": from the environment, see awsconfig_region() */
	char *endpoint;  /* "": AWS's own; else http:// or https:// URL */
	bool path_style; /* default false */
	int multipart_threshold_mb; /* 5..5120, default 16 */
	int part_size_mb;           /* 5..5120, default 8 */
	char *storage_class;  /* "": the bucket's default; STANDARD_IA... */
	char *sse;            /* "": the bucket's default; AES256, aws:kms */
	char *sse_kms_key_id; /* aws:kms only; "": the AWS managed key */
	bool sse_bucket_key;  /* aws:kms only; default false */
	char *checksum;       /* "sha256" (default) or "none" */
	char *expected_bucket_owner; /* "" or a 12-digit account ID */
};

struct config_dynamodb {
	char *table;    /* required */
	char *region;   /* "": as for s3 */
	char *endpoint; /* "": AWS's own */
};

/* access_key_id and secret_access_key are both set or both "". */
struct config_credentials {
	char *profile;
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	int process_timeout_ms; /* credential_process; 1000..600000, 30000 */
};

struct config_sync {
	int concurrency;        /* 1..256, default 16 */
	char *source;           /* "": the daemon uses imgsync@<hostname> */
	int max_retry_delay_ms; /* 100..3600000, default 30000 */
	char *delete;           /* "mirror" (default) or "keep" */
	int max_delete;         /* a batch of more deletions is held; 0: none */
	int max_delete_percent; /* ... or of more than this share; 0: none */
};

struct config_state {
	char *path; /* default /var/lib/imgsync/state.db */
};

struct config_control {
	char *socket;    /* default /run/imgsync/imgsync.sock */
	char *group;     /* default "imgsync" */
	char *trash;     /* default /var/lib/imgsync/trash */
	int max_body_kb; /* 1..10240, default 64 */
	int timeout_ms;  /* 100..600000, default 25000 */
};

struct config_summary {
	bool enabled;    /* default false */
	char *key;       /* default "summary.json", under s3.prefix */
	int interval_ms; /* 100..3600000, default 2000 */
};

struct config_thumbnails {
	bool enabled;   /* default false */
	int size;       /* longest side, 16..4096, default 320 */
	char *format;   /* "webp" (default) or "jpeg" */
	int quality;    /* 1..100, default 80 */
	char *prefix;   /* default ".thumbnails/", under s3.prefix */
	char *helper;   /* default /usr/libexec/imgsync/imgsync-thumb */
	int memory_mb;  /* the helper's, beyond its libraries; default 256 */
	int timeout_ms; /* per image, 100..600000, default 20000 */
};

/* web.session's longest value, in seconds (30 days). */
#define WEB_SESSION_MAX_SECS (30L * 86400)

/* The gallery: off while listen is "". */
struct config_web {
	char *listen;     /* "HOST:PORT" or "[V6]:PORT"; default "" (off) */
	char *url;        /* where people reach it, for web-login's links */
	bool trust_proxy; /* a reverse proxy in front: any bind allowed */
	char *tls_cert;   /* PEM files: HTTPS, any bind allowed */
	char *tls_key;
	char *session;     /* a login's lifetime, a duration; default "12h" */
	int max_upload_mb; /* 1..5120, default 100 */
};

struct config_log {
	enum config_log_level level; /* default CONFIG_LOG_INFO */
};

struct config {
	struct config_watch watch;
	struct config_s3 s3;
	struct config_dynamodb dynamodb;
	struct config_credentials credentials;
	struct config_sync sync;
	struct config_state state;
	struct config_control control;
	struct config_summary summary;
	struct config_thumbnails thumbnails;
	struct config_web web;
	struct config_log log;
};

/* A configuration holding every default (the required keys ""), or NULL when
 * out of memory. It does not validate until the required keys are set. */
struct config *config_new(void);
void config_free(struct config *c);

/*
 * Reads path, checks every key's name, type and range, validates, and only
 * then replaces c's contents. On error c is unchanged and e (ERR_CONFIG, or
 * ERR_SYS when out of memory) says "FILE:LINE: key \"s3.bucket\": ...".
 */
int config_load(struct config *c, const char *path, struct err *e);
/* config_new() + config_load(); NULL on error. */
struct config *config_load_file(const char *path, struct err *e);

/* The checks config_load() makes, for a configuration built in code; the
 * message names the key but no file or line. */
int config_validate(const struct config *c, struct err *e);

/* "debug", "info", "warn", "error". */
const char *config_log_level_name(enum config_log_level level);

#endif
