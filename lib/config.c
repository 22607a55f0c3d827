/*
 * config: the key table (each key's name, type, default and range, and the
 * rules for its value), the defaults, config_new/config_free and the public
 * entry points. Loading is parse -> validate -> swap: config_parse.c reads
 * the file into a configuration built aside, config_check.c validates it,
 * and only then does config_load() swap it in.
 */
#include "config.h"

#include <sys/un.h>

#include <stdlib.h>
#include <string.h>

#include "config_impl.h"
#include "netaddr.h"
#include "text.h"

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* NULL-terminated for the key table's row; indexed by value. */
static const char *const level_names[] = {
    [CONFIG_LOG_DEBUG] = "debug",  [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_WARN] = "warn",    [CONFIG_LOG_ERROR] = "error",
    [CONFIG_LOG_ERROR + 1] = NULL,
};

static const char *const default_include[] = {
    "*.jpg",  "*.jpeg", "*.png",  "*.gif",  "*.webp", "*.bmp", "*.tif",
    "*.tiff", "*.heic", "*.heif", "*.avif", "*.svg",  NULL,
};

static const char *const default_exclude[] = {
    "*.tmp", "*.part", ".*.swp", "*~", NULL,
};

static int
is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static int
is_alnum(char ch)
{
	return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

static const char *
check_abs_path(const char *v)
{
	return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *
check_no_slash(const char *v)
{
	return v[0] != '/' ? NULL : "must not start with '/'";
}

static const char *
check_delete_policy(const char *v)
{
	return strcmp(v, "mirror") == 0 || strcmp(v, "keep") == 0
	           ? NULL
	           : "must be \"mirror\" or \"keep\"";
}

static const char *
check_object_key(const char *v)
{
	if (v[0] == '\0')
		return "must not be empty";
	return check_no_slash(v);
}

static const char *
check_thumb_format(const char *v)
{
	return strcmp(v, "webp") == 0 || strcmp(v, "jpeg") == 0
	           ? NULL
	           : "must be \"webp\" or \"jpeg\"";
}

static const char *
check_endpoint(const char *v)
{
	if (v[0] == '\0')
		return NULL;
	if (strncmp(v, "http://", 7) == 0 && v[7] != '\0')
		return NULL;
	if (strncmp(v, "https://", 8) == 0 && v[8] != '\0')
		return NULL;
	return "must be empty or a URL starting with http:// or https://";
}

static const char *
check_abs_path_or_empty(const char *v)
{
	return v[0] == '\0' ? NULL : check_abs_path(v);
}

static const char *
check_listen(const char *v)
{
	struct netaddr a;
	const char *why = NULL;

	if (v[0] == '\0')
		return NULL;
	return netaddr_parse(v, &a, &why) == 0 ? NULL : why;
}

static const char *
check_web_url(const char *v)
{
	if (v[0] != '\0' && check_endpoint(v) != NULL)
		return "must be empty or a URL starting with http:// or "
		       "https://";
	return strpbrk(v, "?#\"' \t<>") == NULL
	           ? NULL
	           : "must be a plain base URL (no query, fragment, quote "
	             "or space)";
}

static const char *
check_session(const char *v)
{
	long secs;

	return text_duration_secs(v, WEB_SESSION_MAX_SECS, &secs) == 0
	           ? NULL
	           : "must be a duration of 1s to 30d (\"90m\", \"12h\", "
	             "\"7d\")";
}

/* The S3 rules for buckets created since 2018 (no uppercase, no '_'). */
static const char *
check_bucket(const char *v)
{
	size_t i, n = strlen(v);

	if (n < 3 || n > 63)
		return "must be 3 to 63 characters long";
	for (i = 0; i < n; i++) {
		if (!is_lower_alnum(v[i]) && v[i] != '.' && v[i] != '-')
			return "may only contain lowercase letters, digits, "
			       "'.' and '-'";
	}
	if (!is_lower_alnum(v[0]) || !is_lower_alnum(v[n - 1]))
		return "must start and end with a lowercase letter or digit";
	if (strstr(v, "..") != NULL)
		return "must not contain \"..\"";
	return NULL;
}

/* The classes an object can be written in and still be read at once
 * (GLACIER and DEEP_ARCHIVE need a restore first: verify and the trash
 * could not read their objects). */
static const char *
check_storage_class(const char *v)
{
	static const char *const classes[] = {
	    "STANDARD",   "STANDARD_IA",         "ONEZONE_IA",
	    "GLACIER_IR", "INTELLIGENT_TIERING", "REDUCED_REDUNDANCY",
	};
	size_t i;

	if (v[0] == '\0')
		return NULL;
	for (i = 0; i < nitems(classes); i++) {
		if (strcmp(v, classes[i]) == 0)
			return NULL;
	}
	return "must be empty (the bucket's default) or one of STANDARD, "
	       "STANDARD_IA, ONEZONE_IA, GLACIER_IR, INTELLIGENT_TIERING, "
	       "REDUCED_REDUNDANCY (GLACIER and DEEP_ARCHIVE objects cannot "
	       "be read back without a restore)";
}

static const char *
check_sse(const char *v)
{
	return v[0] == '\0' || strcmp(v, "AES256") == 0 ||
	               strcmp(v, "aws:kms") == 0
	           ? NULL
	           : "must be empty (the bucket's default), \"AES256\" or "
	             "\"aws:kms\"";
}

static const char *
check_checksum(const char *v)
{
	return strcmp(v, "sha256") == 0 || strcmp(v, "none") == 0
	           ? NULL
	           : "must be \"sha256\" or \"none\"";
}

/* An AWS account ID: twelve digits. */
static const char *
check_account_id(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			break;
	}
	return n == 12 && i == n ? NULL
	                         : "must be empty or an AWS account ID "
	                           "(12 digits)";
}

static const char *
check_table(const char *v)
{
	size_t i, n = strlen(v);

	if (n < 3 || n > 255)
		return "must be 3 to 255 characters long";
	for (i = 0; i < n; i++) {
		if (!is_alnum(v[i]) && strchr("_.-", v[i]) == NULL)
			return "may only contain letters, digits, '_', '.' and "
			       "'-'";
	}
	return NULL;
}

/*
 * FIELD(f, T) is offsetof(struct config, f), and a compile error when f is
 * not a T, so a row cannot point at a field of another type.
 */
#define FIELD(f, T)                                                            \
	(offsetof(struct config, f) +                                          \
	 0 * sizeof(&((struct config *)0)->f == (T *)0))

#define K_STR(n, f, d, len, chk)                                               \
	{                                                                      \
		.name = n, .type = KEY_STRING, .offset = FIELD(f, char *),     \
		.def_str = d, .max = len, .check = chk                         \
	}
#define K_REQ(n, f, chk)                                                       \
	{                                                                      \
		.name = n, .type = KEY_STRING, .offset = FIELD(f, char *),     \
		.required = true, .def_str = "", .check = chk                  \
	}
#define K_LIST(n, f, d, least)                                                 \
	{                                                                      \
		.name = n, .type = KEY_LIST,                                   \
		.offset = FIELD(f, struct config_list), .def_list = d,         \
		.min = least                                                   \
	}
#define K_INT(n, f, d, lo, hi)                                                 \
	{                                                                      \
		.name = n, .type = KEY_INT, .offset = FIELD(f, int),           \
		.def_int = d, .min = lo, .max = hi                             \
	}
#define K_BOOL(n, f, d)                                                        \
	{                                                                      \
		.name = n, .type = KEY_BOOL, .offset = FIELD(f, bool),         \
		.def_int = d                                                   \
	}
#define K_LEVEL(n, f, d)                                                       \
	{                                                                      \
		.name = n, .type = KEY_LEVEL,                                  \
		.offset = FIELD(f, enum config_log_level), .def_int = d,       \
		.names = level_names                                           \
	}

/* The longest socket path bind() takes. */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* Credential lengths fit struct creds (lib/creds.h) with its NUL. */
static const struct key keys[] = {
    K_REQ("watch.root", watch.root, check_abs_path),
    K_LIST("watch.include", watch.include, default_include, 1),
    K_LIST("watch.exclude", watch.exclude, default_exclude, 0),
    K_INT("watch.settle_ms", watch.settle_ms, 100, 0, 600000),
    K_REQ("s3.bucket", s3.bucket, check_bucket),
    K_STR("s3.prefix", s3.prefix, "", 0, check_no_slash),
    K_STR("s3.region", s3.region, "", 0, NULL),
    K_STR("s3.endpoint", s3.endpoint, "", 0, check_endpoint),
    K_BOOL("s3.path_style", s3.path_style, false),
    K_INT("s3.multipart_threshold_mb", s3.multipart_threshold_mb, 16, 5, 5120),
    K_INT("s3.part_size_mb", s3.part_size_mb, 8, 5, 5120),
    K_STR("s3.storage_class", s3.storage_class, "", 0, check_storage_class),
    K_STR("s3.sse", s3.sse, "", 0, check_sse),
    K_STR("s3.sse_kms_key_id", s3.sse_kms_key_id, "", 2048, NULL),
    K_BOOL("s3.sse_bucket_key", s3.sse_bucket_key, false),
    K_STR("s3.checksum", s3.checksum, "sha256", 0, check_checksum),
    K_STR("s3.expected_bucket_owner", s3.expected_bucket_owner, "", 0,
          check_account_id),
    K_REQ("dynamodb.table", dynamodb.table, check_table),
    K_STR("dynamodb.region", dynamodb.region, "", 0, NULL),
    K_STR("dynamodb.endpoint", dynamodb.endpoint, "", 0, check_endpoint),
    K_STR("credentials.profile", credentials.profile, "", 0, NULL),
    K_STR("credentials.access_key_id", credentials.access_key_id, "", 127,
          NULL),
    K_STR("credentials.secret_access_key", credentials.secret_access_key, "",
          127, NULL),
    K_STR("credentials.session_token", credentials.session_token, "", 4095,
          NULL),
    K_INT("credentials.process_timeout_ms", credentials.process_timeout_ms,
          30000, 1000, 600000),
    K_INT("sync.concurrency", sync.concurrency, 128, 1, 1024),
    K_STR("sync.source", sync.source, "", 0, NULL),
    K_STR("sync.delete", sync.delete, "mirror", 0, check_delete_policy),
    K_INT("sync.max_delete", sync.max_delete, 500, 0, 100000000),
    K_INT("sync.max_delete_percent", sync.max_delete_percent, 50, 0, 100),
    K_INT("sync.max_retry_delay_ms", sync.max_retry_delay_ms, 30000, 100,
          3600000),
    K_STR("state.path", state.path, "/var/lib/imgsync/state.db", 0,
          check_abs_path),
    K_STR("control.socket", control.socket, "/run/imgsync/imgsync.sock",
          SOCKET_PATH_MAX, check_abs_path),
    K_STR("control.group", control.group, "imgsync", 0, NULL),
    K_STR("control.trash", control.trash, "/var/lib/imgsync/trash", 0,
          check_abs_path),
    K_INT("control.max_body_kb", control.max_body_kb, 64, 1, 10240),
    K_INT("control.timeout_ms", control.timeout_ms, 25000, 100, 600000),
    K_BOOL("summary.enabled", summary.enabled, false),
    K_STR("summary.key", summary.key, "summary.json", 0, check_object_key),
    K_INT("summary.interval_ms", summary.interval_ms, 2000, 100, 3600000),
    K_BOOL("thumbnails.enabled", thumbnails.enabled, false),
    K_INT("thumbnails.size", thumbnails.size, 320, 16, 4096),
    K_STR("thumbnails.format", thumbnails.format, "webp", 0,
          check_thumb_format),
    K_INT("thumbnails.quality", thumbnails.quality, 80, 1, 100),
    K_STR("thumbnails.prefix", thumbnails.prefix, ".thumbnails/", 0,
          check_object_key),
    K_STR("thumbnails.helper", thumbnails.helper,
          "/usr/libexec/imgsync/imgsync-thumb", 0, check_abs_path),
    K_INT("thumbnails.memory_mb", thumbnails.memory_mb, 256, 16, 65536),
    K_INT("thumbnails.timeout_ms", thumbnails.timeout_ms, 20000, 100, 600000),
    K_STR("web.listen", web.listen, "", 0, check_listen),
    K_STR("web.url", web.url, "", 2048, check_web_url),
    K_BOOL("web.trust_proxy", web.trust_proxy, false),
    K_STR("web.tls_cert", web.tls_cert, "", 0, check_abs_path_or_empty),
    K_STR("web.tls_key", web.tls_key, "", 0, check_abs_path_or_empty),
    K_STR("web.session", web.session, "12h", 0, check_session),
    K_INT("web.max_upload_mb", web.max_upload_mb, 100, 1, 5120),
    K_LEVEL("log.level", log.level, CONFIG_LOG_INFO),
};

#define NKEYS nitems(keys)

/* Fills l from defs (NULL-terminated), which is then owned by l. */
static int
list_copy(struct config_list *l, const char *const *defs)
{
	size_t n;

	n = 0;
	while (defs[n] != NULL)
		n++;
	l->count = 0;
	l->items = calloc(n + 1, sizeof(*l->items));
	if (l->items == NULL)
		return -1;
	for (; l->count < n; l->count++) {
		l->items[l->count] = strdup(defs[l->count]);
		if (l->items[l->count] == NULL)
			return -1;
	}
	return 0;
}

static int
key_default(struct config *c, const struct key *k)
{
	void *f = key_field(c, k);

	switch (k->type) {
	case KEY_STRING:
		*(char **)f = strdup(k->def_str);
		return *(char **)f == NULL ? -1 : 0;
	case KEY_LIST:
		return list_copy(f, k->def_list);
	case KEY_INT:
		*(int *)f = (int)k->def_int;
		return 0;
	case KEY_BOOL:
		*(bool *)f = k->def_int != 0;
		return 0;
	case KEY_LEVEL:
		*(enum config_log_level *)f = (enum config_log_level)k->def_int;
		return 0;
	}
	return -1;
}

struct config *
config_new(void)
{
	struct config *c;
	size_t i;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	for (i = 0; i < NKEYS; i++) {
		if (key_default(c, &keys[i]) == -1) {
			config_free(c);
			return NULL;
		}
	}
	return c;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type == KEY_STRING)
			free(*(char **)key_field(c, &keys[i]));
		else if (keys[i].type == KEY_LIST)
			key_list_free(key_field(c, &keys[i]));
	}
	free(c);
}

const char *
config_log_level_name(enum config_log_level level)
{
	if ((unsigned)level >= nitems(level_names) - 1)
		return NULL;
	return level_names[level];
}

int
config_validate(const struct config *c, struct err *e)
{
	struct keyset ks = {keys, NKEYS, NULL};

	return config_check_keys(c, &ks, e);
}

int
config_load(struct config *c, const char *path, struct err *e)
{
	struct loc at[NKEYS];
	struct keyset ks = {keys, NKEYS, at};
	struct config *tmp, old;

	tmp = config_new();
	if (tmp == NULL) {
		err_sys(e, "config");
		return -1;
	}
	if (config_parse_file(tmp, &ks, path, e) == -1 ||
	    config_check_keys(tmp, &ks, e) == -1) {
		config_free(tmp);
		return -1;
	}
	old = *c;
	*c = *tmp;
	*tmp = old;
	config_free(tmp);
	return 0;
}

struct config *
config_load_file(const char *path, struct err *e)
{
	struct config *c;

	c = config_new();
	if (c == NULL) {
		err_sys(e, "config");
		return NULL;
	}
	if (config_load(c, path, e) == -1) {
		config_free(c);
		return NULL;
	}
	return c;
}
