#include "config.h"

#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

enum key_type {
	KEY_STRING,
	KEY_LIST,
	KEY_INT,
	KEY_BOOL,
	KEY_LEVEL,
};

/* Returns NULL when the value is acceptable, else what is wrong with it. */
typedef const char *(*key_check_fn)(const char *value);

/*
 * One row per key. min/max bound an integer; for a string max is its longest
 * length in bytes (0: any), for a list min is its fewest elements.
 */
struct key {
	const char *name; /* "group.key" */
	enum key_type type;
	size_t offset;
	bool required;
	const char *def_str;
	const char *const *def_list; /* NULL-terminated */
	long long def_int;           /* also bool and level */
	long long min;
	long long max;
	key_check_fn check;
};

/* Where a key was set: its file and line (0: only its group, or neither). */
struct loc {
	const char *file;
	unsigned line;
};

static const char *const level_names[] = {
    [CONFIG_LOG_DEBUG] = "debug",
    [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_WARN] = "warn",
    [CONFIG_LOG_ERROR] = "error",
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
		.offset = FIELD(f, enum config_log_level), .def_int = d        \
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
    K_INT("sync.concurrency", sync.concurrency, 16, 1, 256),
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
    K_LEVEL("log.level", log.level, CONFIG_LOG_INFO),
};

#define NKEYS nitems(keys)

/* Where each key of keys[] was set, while loading a file. */
struct where {
	struct loc at[NKEYS];
};

static int key_fail(struct err *e, const struct loc *at, const char *name,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: key \"name\": ...", leaving out what is not known. */
static int
key_fail(struct err *e, const struct loc *at, const char *name, const char *fmt,
         ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at == NULL || at->file == NULL)
		err_set(e, ERR_CONFIG, "key \"%s\": %s", name, msg);
	else if (at->line == 0)
		err_set(e, ERR_CONFIG, "%s: key \"%s\": %s", at->file, name,
		        msg);
	else
		err_set(e, ERR_CONFIG, "%s:%u: key \"%s\": %s", at->file,
		        at->line, name, msg);
	return -1;
}

static int
key_in_group(const struct key *k, const char *group)
{
	size_t glen = strlen(group);

	return strncmp(k->name, group, glen) == 0 && k->name[glen] == '.';
}

/* The key group.name, or with name NULL the group's first key. */
static const struct key *
key_find(const char *group, const char *name)
{
	size_t i, glen = strlen(group);

	for (i = 0; i < NKEYS; i++) {
		if (key_in_group(&keys[i], group) &&
		    (name == NULL ||
		     strcmp(keys[i].name + glen + 1, name) == 0))
			return &keys[i];
	}
	return NULL;
}

static void *
key_field(struct config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

static const void *
key_cfield(const struct config *c, const struct key *k)
{
	return (const char *)c + k->offset;
}

static void
list_free(struct config_list *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

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
			list_free(key_field(c, &keys[i]));
	}
	free(c);
}

const char *
config_log_level_name(enum config_log_level level)
{
	if ((unsigned)level >= nitems(level_names))
		return NULL;
	return level_names[level];
}

/* ---- validation ---- */

static int
string_check(const char *v, const struct key *k, const struct loc *at,
             struct err *e)
{
	const char *why;
	size_t len;

	if (v == NULL)
		return key_fail(e, at, k->name, "not set (NULL)");
	if (k->required && v[0] == '\0')
		return key_fail(e, at, k->name, "required but not set");
	len = strlen(v);
	if (k->max > 0 && len > (size_t)k->max)
		return key_fail(e, at, k->name,
		                "must be at most %lld bytes long (got %zu)",
		                k->max, len);
	why = k->check != NULL ? k->check(v) : NULL;
	if (why != NULL)
		return key_fail(e, at, k->name, "%s (got \"%s\")", why, v);
	return 0;
}

static int
list_check(const struct config_list *l, const struct key *k,
           const struct loc *at, struct err *e)
{
	size_t i;

	if (l->count < (size_t)k->min)
		return key_fail(e, at, k->name, "must not be an empty list");
	for (i = 0; i < l->count; i++) {
		if (l->items[i] == NULL || l->items[i][0] == '\0')
			return key_fail(e, at, k->name,
			                "element %zu must not be empty", i + 1);
	}
	return 0;
}

static int
int_check(long long v, const struct key *k, const struct loc *at, struct err *e)
{
	if (v < k->min || v > k->max)
		return key_fail(e, at, k->name,
		                "must be between %lld and %lld (got %lld)",
		                k->min, k->max, v);
	return 0;
}

static int
key_check(const struct config *c, const struct key *k, const struct loc *at,
          struct err *e)
{
	const void *f = key_cfield(c, k);
	enum config_log_level level;

	switch (k->type) {
	case KEY_STRING:
		return string_check(*(char *const *)f, k, at, e);
	case KEY_LIST:
		return list_check(f, k, at, e);
	case KEY_INT:
		return int_check(*(const int *)f, k, at, e);
	case KEY_BOOL:
		return 0;
	case KEY_LEVEL:
		level = *(const enum config_log_level *)f;
		if (config_log_level_name(level) == NULL)
			return key_fail(e, at, k->name,
			                "not a log level (got %d)", (int)level);
		return 0;
	}
	return 0;
}

static const struct loc *
loc_of(const struct where *w, const char *name)
{
	size_t i;

	if (w == NULL)
		return NULL;
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &w->at[i];
	}
	return NULL;
}

static int
credentials_check(const struct config_credentials *cr, const struct where *w,
                  struct err *e)
{
	int id = cr->access_key_id[0] != '\0';
	int secret = cr->secret_access_key[0] != '\0';

	if (id && !secret)
		return key_fail(e, loc_of(w, "credentials.access_key_id"),
		                "credentials.access_key_id",
		                "set without credentials.secret_access_key "
		                "(set both or neither)");
	if (secret && !id)
		return key_fail(e, loc_of(w, "credentials.secret_access_key"),
		                "credentials.secret_access_key",
		                "set without credentials.access_key_id "
		                "(set both or neither)");
	if (cr->session_token[0] != '\0' && !id)
		return key_fail(e, loc_of(w, "credentials.session_token"),
		                "credentials.session_token",
		                "set without credentials.access_key_id and "
		                "credentials.secret_access_key");
	return 0;
}

/* path with its symlinks resolved as far as it exists, and "//", "." and
 * ".." folded in the rest: the folder it is, or will be once created.
 * Allocated; NULL when even "/" cannot be resolved. */
static char *
path_resolve(const char *path)
{
	char *r = realpath(path, NULL), *dir, *slash, *parent, *base;
	size_t n;

	if (r != NULL || (errno != ENOENT && errno != ENOTDIR))
		return r;
	dir = strdup(path);
	if (dir == NULL)
		return NULL;
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	slash = strrchr(dir, '/');
	if (slash == NULL) { /* relative and missing: from the cwd */
		parent = path_resolve(".");
		base = dir;
	} else {
		*slash = '\0';
		parent = path_resolve(slash == dir ? "/" : dir);
		base = slash + 1;
	}
	if (parent != NULL && strcmp(base, "..") == 0) {
		slash = strrchr(parent, '/');
		if (slash != NULL)
			slash[slash == parent ? 1 : 0] = '\0';
	} else if (parent != NULL && base[0] != '\0' &&
	           strcmp(base, ".") != 0) {
		n = strlen(parent);
		r = malloc(n + strlen(base) + 2);
		if (r != NULL)
			sprintf(r, "%s%s%s", parent,
			        n > 0 && parent[n - 1] == '/' ? "" : "/", base);
		free(parent);
		parent = r;
	}
	free(dir);
	return parent;
}

/* /delete moves files to the trash, which must not be mirrored itself:
 * judged on real paths, so that "//", "/./", ".." or a symlink cannot hide
 * a trash inside the root. */
static int
trash_check(const struct config *c, const struct where *w, struct err *e)
{
	char *root = path_resolve(c->watch.root);
	char *trash = path_resolve(c->control.trash);
	size_t n = root != NULL ? strlen(root) : 0;
	int inside;

	if (root == NULL || trash == NULL) {
		free(root);
		free(trash);
		return key_fail(e, loc_of(w, "control.trash"), "control.trash",
		                "cannot resolve \"%s\" or \"%s\": %s",
		                c->control.trash, c->watch.root,
		                strerror(errno));
	}
	inside =
	    strncmp(trash, root, n) == 0 &&
	    (trash[n] == '/' || trash[n] == '\0' || strcmp(root, "/") == 0);
	free(root);
	free(trash);
	if (inside)
		return key_fail(e, loc_of(w, "control.trash"), "control.trash",
		                "must be outside watch.root (got \"%s\")",
		                c->control.trash);
	return 0;
}

/* w is NULL outside a load: messages then name no file or line. */
static int
config_check(const struct config *c, const struct where *w, struct err *e)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (key_check(c, &keys[i], w != NULL ? &w->at[i] : NULL, e) ==
		    -1)
			return -1;
	}
	if (credentials_check(&c->credentials, w, e) == -1)
		return -1;
	return trash_check(c, w, e);
}

int
config_validate(const struct config *c, struct err *e)
{
	return config_check(c, NULL, e);
}

/* ---- parsing ---- */

static const char *
type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "of unknown type";
}

static struct loc
setting_loc(const config_setting_t *s, const char *path)
{
	struct loc l;

	l.file = config_setting_source_file(s);
	if (l.file == NULL)
		l.file = path;
	l.line = config_setting_source_line(s);
	return l;
}

static int
unknown_key(struct err *e, const struct loc *at, const char *group,
            const char *name)
{
	err_set(e, ERR_CONFIG, "%s:%u: unknown key \"%s%s%s\"", at->file,
	        at->line, group, name != NULL ? "." : "",
	        name != NULL ? name : "");
	return -1;
}

static int
wrong_type(struct err *e, const struct loc *at, const char *name,
           const char *want, const config_setting_t *s)
{
	return key_fail(e, at, name, "must be %s (got %s)", want,
	                type_name(config_setting_type(s)));
}

static int
string_set(char **field, const char *v, struct err *e)
{
	char *copy;

	copy = strdup(v);
	if (copy == NULL) {
		err_sys(e, "config");
		return -1;
	}
	free(*field);
	*field = copy;
	return 0;
}

static int
list_parse(struct config_list *l, const struct key *k,
           const config_setting_t *s, const char *path, struct err *e)
{
	struct config_list nl = {NULL, 0};
	const config_setting_t *el;
	struct loc at;
	size_t i, n;

	at = setting_loc(s, path);
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return wrong_type(e, &at, k->name, "a list of strings", s);
	n = (size_t)config_setting_length(s);
	nl.items = calloc(n + 1, sizeof(*nl.items));
	if (nl.items == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(el) != CONFIG_TYPE_STRING) {
			at = setting_loc(el, path);
			key_fail(e, &at, k->name,
			         "element %zu must be a string (got %s)", i + 1,
			         type_name(config_setting_type(el)));
			list_free(&nl);
			return -1;
		}
		nl.items[i] = strdup(config_setting_get_string(el));
		if (nl.items[i] == NULL)
			goto nomem;
		nl.count++;
	}
	list_free(l);
	*l = nl;
	return 0;
nomem:
	err_sys(e, "config");
	list_free(&nl);
	return -1;
}

static int
level_parse(enum config_log_level *level, const struct key *k, const char *v,
            const struct loc *at, struct err *e)
{
	size_t i;

	for (i = 0; i < nitems(level_names); i++) {
		if (strcmp(v, level_names[i]) == 0) {
			*level = (enum config_log_level)i;
			return 0;
		}
	}
	return key_fail(
	    e, at, k->name,
	    "must be \"debug\", \"info\", \"warn\" or \"error\" (got \"%s\")",
	    v);
}

/* Type and range here, where the value as written is still known. */
static int
key_parse(struct config *c, const struct key *k, const config_setting_t *s,
          const char *path, struct err *e)
{
	struct loc at = setting_loc(s, path);
	int type = config_setting_type(s);
	void *f = key_field(c, k);
	long long v;

	switch (k->type) {
	case KEY_STRING:
		if (type != CONFIG_TYPE_STRING)
			return wrong_type(e, &at, k->name, "a string", s);
		return string_set(f, config_setting_get_string(s), e);
	case KEY_LIST:
		return list_parse(f, k, s, path, e);
	case KEY_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return wrong_type(e, &at, k->name, "an integer", s);
		v = config_setting_get_int64(s);
		if (int_check(v, k, &at, e) == -1)
			return -1;
		*(int *)f = (int)v;
		return 0;
	case KEY_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return wrong_type(e, &at, k->name,
			                  "a boolean, true or false", s);
		*(bool *)f = config_setting_get_bool(s) != 0;
		return 0;
	case KEY_LEVEL:
		if (type != CONFIG_TYPE_STRING)
			return wrong_type(e, &at, k->name, "a string", s);
		return level_parse(f, k, config_setting_get_string(s), &at, e);
	}
	return 0;
}

static int
member_parse(struct config *c, const char *group, const config_setting_t *s,
             const char *path, struct where *w, struct err *e)
{
	const struct key *k = key_find(group, config_setting_name(s));
	struct loc at = setting_loc(s, path);

	if (k == NULL)
		return unknown_key(e, &at, group, config_setting_name(s));
	w->at[k - keys] = at;
	return key_parse(c, k, s, path, e);
}

static int
group_parse(struct config *c, const config_setting_t *g, const char *path,
            struct where *w, struct err *e)
{
	const char *group = config_setting_name(g);
	struct loc at = setting_loc(g, path);
	int i, n;
	size_t j;

	if (key_find(group, NULL) == NULL)
		return unknown_key(e, &at, group, NULL);
	if (!config_setting_is_group(g))
		return wrong_type(e, &at, group, "a group", g);
	/* A key left out is reported at its group's line. */
	for (j = 0; j < NKEYS; j++) {
		if (key_in_group(&keys[j], group))
			w->at[j] = at;
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		if (member_parse(c, group,
		                 config_setting_get_elem(g, (unsigned)i), path,
		                 w, e) == -1)
			return -1;
	}
	return 0;
}

static int
tree_parse(struct config *c, const config_setting_t *root, const char *path,
           struct where *w, struct err *e)
{
	int i, n;
	size_t j;

	for (j = 0; j < NKEYS; j++) {
		w->at[j].file = path;
		w->at[j].line = 0;
	}
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		if (group_parse(c, config_setting_get_elem(root, (unsigned)i),
		                path, w, e) == -1)
			return -1;
	}
	return 0;
}

/*
 * Opened here rather than by config_read_file(), which reports only
 * "file I/O error": the operator needs the path and the errno.
 */
static FILE *
file_open(const char *path, struct err *e)
{
	struct stat st;
	FILE *fp;
	int saved;

	fp = fopen(path, "re");
	if (fp == NULL)
		goto fail;
	if (fstat(fileno(fp), &st) == -1)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	return fp;
fail:
	saved = errno;
	err_set(e, ERR_CONFIG, "%s: %s", path, strerror(saved));
	if (e != NULL)
		e->sys_errno = saved;
	if (fp != NULL)
		fclose(fp);
	return NULL;
}

static void
syntax_error(const config_t *cf, const char *path, struct err *e)
{
	const char *file = config_error_file(cf);
	const char *text = config_error_text(cf);

	if (file == NULL)
		file = path;
	if (text == NULL || strcmp(text, "syntax error") == 0)
		err_set(e, ERR_CONFIG, "%s:%d: syntax error", file,
		        config_error_line(cf));
	else
		err_set(e, ERR_CONFIG, "%s:%d: syntax error: %s", file,
		        config_error_line(cf), text);
}

int
config_load(struct config *c, const char *path, struct err *e)
{
	struct config *tmp, old;
	struct where w;
	config_t cf;
	FILE *fp = NULL;
	int rc = -1;

	config_init(&cf);
	tmp = config_new();
	if (tmp == NULL) {
		err_sys(e, "config");
		goto done;
	}
	fp = file_open(path, e);
	if (fp == NULL)
		goto done;
	if (config_read(&cf, fp) != CONFIG_TRUE) {
		syntax_error(&cf, path, e);
		goto done;
	}
	if (tree_parse(tmp, config_root_setting(&cf), path, &w, e) == -1)
		goto done;
	if (config_check(tmp, &w, e) == -1)
		goto done;
	old = *c;
	*c = *tmp;
	*tmp = old;
	rc = 0;
done:
	if (fp != NULL)
		fclose(fp);
	config_destroy(&cf);
	config_free(tmp);
	return rc;
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
