/*
 * config_check: validation. Each key's value against its row of the key
 * table (required, length, range, the key's own rule), then the rules that
 * span keys: credentials set in pairs, and a trash outside the watch root.
 * Used by config_load() on the file it parsed, with the file and line of
 * each key, and by config_validate() on a configuration built in code.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"
#include "netaddr.h"

int
config_check_fail(struct err *e, const struct loc *at, const char *name,
                  const char *fmt, ...)
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
string_check(const char *v, const struct key *k, const struct loc *at,
             struct err *e)
{
	const char *why;
	size_t len;

	if (v == NULL)
		return config_check_fail(e, at, k->name, "not set (NULL)");
	if (k->required && v[0] == '\0')
		return config_check_fail(e, at, k->name,
		                         "required but not set");
	len = strlen(v);
	if (k->max > 0 && len > (size_t)k->max)
		return config_check_fail(
		    e, at, k->name, "must be at most %lld bytes long (got %zu)",
		    k->max, len);
	why = k->check != NULL ? k->check(v) : NULL;
	if (why != NULL)
		return config_check_fail(e, at, k->name, "%s (got \"%s\")", why,
		                         v);
	return 0;
}

static int
list_check(const struct config_list *l, const struct key *k,
           const struct loc *at, struct err *e)
{
	size_t i;

	if (l->count < (size_t)k->min)
		return config_check_fail(e, at, k->name,
		                         "must not be an empty list");
	for (i = 0; i < l->count; i++) {
		if (l->items[i] == NULL || l->items[i][0] == '\0')
			return config_check_fail(
			    e, at, k->name, "element %zu must not be empty",
			    i + 1);
	}
	return 0;
}
int
config_check_int(long long v, const struct key *k, const struct loc *at,
                 struct err *e)
{
	if (v < k->min || v > k->max)
		return config_check_fail(
		    e, at, k->name, "must be between %lld and %lld (got %lld)",
		    k->min, k->max, v);
	return 0;
}
static int
level_check(enum config_log_level level, const struct key *k,
            const struct loc *at, struct err *e)
{
	size_t n = 0;

	while (k->names[n] != NULL)
		n++;
	if ((unsigned)level >= n)
		return config_check_fail(
		    e, at, k->name, "not a log level (got %d)", (int)level);
	return 0;
}

static int
key_check(const struct config *c, const struct key *k, const struct loc *at,
          struct err *e)
{
	const void *f = key_cfield(c, k);

	switch (k->type) {
	case KEY_STRING:
		return string_check(*(char *const *)f, k, at, e);
	case KEY_LIST:
		return list_check(f, k, at, e);
	case KEY_INT:
		return config_check_int(*(const int *)f, k, at, e);
	case KEY_BOOL:
		return 0;
	case KEY_LEVEL:
		return level_check(*(const enum config_log_level *)f, k, at, e);
	}
	return 0;
}

static const struct loc *
loc_of(const struct keyset *ks, const char *name)
{
	size_t i;

	if (ks->at == NULL)
		return NULL;
	for (i = 0; i < ks->n; i++) {
		if (strcmp(ks->keys[i].name, name) == 0)
			return &ks->at[i];
	}
	return NULL;
}

static int
credentials_check(const struct config_credentials *cr, const struct keyset *ks,
                  struct err *e)
{
	int id = cr->access_key_id[0] != '\0';
	int secret = cr->secret_access_key[0] != '\0';

	if (id && !secret)
		return config_check_fail(
		    e, loc_of(ks, "credentials.access_key_id"),
		    "credentials.access_key_id",
		    "set without credentials.secret_access_key "
		    "(set both or neither)");
	if (secret && !id)
		return config_check_fail(
		    e, loc_of(ks, "credentials.secret_access_key"),
		    "credentials.secret_access_key",
		    "set without credentials.access_key_id "
		    "(set both or neither)");
	if (cr->session_token[0] != '\0' && !id)
		return config_check_fail(
		    e, loc_of(ks, "credentials.session_token"),
		    "credentials.session_token",
		    "set without credentials.access_key_id and "
		    "credentials.secret_access_key");
	return 0;
}

/* The KMS settings mean something only with sse = "aws:kms". */
static int
sse_check(const struct config_s3 *s3, const struct keyset *ks, struct err *e)
{
	if (strcmp(s3->sse, "aws:kms") == 0)
		return 0;
	if (s3->sse_kms_key_id[0] != '\0')
		return config_check_fail(e, loc_of(ks, "s3.sse_kms_key_id"),
		                         "s3.sse_kms_key_id",
		                         "needs s3.sse = \"aws:kms\"");
	if (s3->sse_bucket_key)
		return config_check_fail(e, loc_of(ks, "s3.sse_bucket_key"),
		                         "s3.sse_bucket_key",
		                         "needs s3.sse = \"aws:kms\"");
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
trash_check(const struct config *c, const struct keyset *ks, struct err *e)
{
	char *root = path_resolve(c->watch.root);
	char *trash = path_resolve(c->control.trash);
	size_t n = root != NULL ? strlen(root) : 0;
	int inside;

	if (root == NULL || trash == NULL) {
		free(root);
		free(trash);
		return config_check_fail(
		    e, loc_of(ks, "control.trash"), "control.trash",
		    "cannot resolve \"%s\" or \"%s\": %s", c->control.trash,
		    c->watch.root, strerror(errno));
	}
	inside =
	    strncmp(trash, root, n) == 0 &&
	    (trash[n] == '/' || trash[n] == '\0' || strcmp(root, "/") == 0);
	free(root);
	free(trash);
	if (inside)
		return config_check_fail(
		    e, loc_of(ks, "control.trash"), "control.trash",
		    "must be outside watch.root (got \"%s\")",
		    c->control.trash);
	return 0;
}
/* The gallery's listener: certificate and key go in pairs, and a port
 * other machines can reach is opened only for HTTPS or behind a proxy the
 * operator named. */
static int
web_check(const struct config *c, const struct keyset *ks, struct err *e)
{
	const struct config_web *w = &c->web;
	struct netaddr a;
	const char *why;

	if ((w->tls_cert[0] == '\0') != (w->tls_key[0] == '\0'))
		return config_check_fail(
		    e, loc_of(ks, "web.tls_key"), "web.tls_key",
		    "web.tls_cert and web.tls_key are set together");
	if (w->listen[0] == '\0' || netaddr_parse(w->listen, &a, &why) == -1)
		return 0;
	if (!netaddr_is_loopback(&a) && w->tls_cert[0] == '\0' &&
	    !w->trust_proxy)
		return config_check_fail(
		    e, loc_of(ks, "web.listen"), "web.listen",
		    "\"%s\" is reachable from other machines: set "
		    "web.tls_cert and web.tls_key, or web.trust_proxy when a "
		    "reverse proxy with TLS is in front (or listen on "
		    "127.0.0.1)",
		    w->listen);
	return 0;
}

int
config_check_keys(const struct config *c, const struct keyset *ks,
                  struct err *e)
{
	size_t i;

	for (i = 0; i < ks->n; i++) {
		if (key_check(c, &ks->keys[i],
		              ks->at != NULL ? &ks->at[i] : NULL, e) == -1)
			return -1;
	}
	if (credentials_check(&c->credentials, ks, e) == -1 ||
	    sse_check(&c->s3, ks, e) == -1)
		return -1;
	if (web_check(c, ks, e) == -1)
		return -1;
	return trash_check(c, ks, e);
}
