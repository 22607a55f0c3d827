/*
 * config_parse: a libconfig file into a struct config. Opens the file
 * itself (for a message with the path and errno), reports syntax errors
 * with their line, rejects unknown groups and keys, checks each value's
 * type and range where the value as written is still known, and records
 * where each key was set for the messages of the later validation. No
 * libconfig type leaves this file.
 */
#include <sys/stat.h>

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"

static int
key_in_group(const struct key *k, const char *group)
{
	size_t glen = strlen(group);

	return strncmp(k->name, group, glen) == 0 && k->name[glen] == '.';
}

/* The key group.name, or with name NULL the group's first key. */
static const struct key *
key_find(const struct keyset *ks, const char *group, const char *name)
{
	size_t i, glen = strlen(group);

	for (i = 0; i < ks->n; i++) {
		if (key_in_group(&ks->keys[i], group) &&
		    (name == NULL ||
		     strcmp(ks->keys[i].name + glen + 1, name) == 0))
			return &ks->keys[i];
	}
	return NULL;
}

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
	return config_check_fail(e, at, name, "must be %s (got %s)", want,
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
			config_check_fail(
			    e, &at, k->name,
			    "element %zu must be a string (got %s)", i + 1,
			    type_name(config_setting_type(el)));
			key_list_free(&nl);
			return -1;
		}
		nl.items[i] = strdup(config_setting_get_string(el));
		if (nl.items[i] == NULL)
			goto nomem;
		nl.count++;
	}
	key_list_free(l);
	*l = nl;
	return 0;
nomem:
	err_sys(e, "config");
	key_list_free(&nl);
	return -1;
}
static int
level_parse(enum config_log_level *level, const struct key *k, const char *v,
            const struct loc *at, struct err *e)
{
	size_t i;

	for (i = 0; k->names[i] != NULL; i++) {
		if (strcmp(v, k->names[i]) == 0) {
			*level = (enum config_log_level)i;
			return 0;
		}
	}
	return config_check_fail(
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
		if (config_check_int(v, k, &at, e) == -1)
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
member_parse(struct config *c, const struct keyset *ks, const char *group,
             const config_setting_t *s, const char *path, struct err *e)
{
	const struct key *k = key_find(ks, group, config_setting_name(s));
	struct loc at = setting_loc(s, path);

	if (k == NULL)
		return unknown_key(e, &at, group, config_setting_name(s));
	ks->at[k - ks->keys] = at;
	return key_parse(c, k, s, path, e);
}

static int
group_parse(struct config *c, const struct keyset *ks,
            const config_setting_t *g, const char *path, struct err *e)
{
	const char *group = config_setting_name(g);
	struct loc at = setting_loc(g, path);
	int i, n;
	size_t j;

	if (key_find(ks, group, NULL) == NULL)
		return unknown_key(e, &at, group, NULL);
	if (!config_setting_is_group(g))
		return wrong_type(e, &at, group, "a group", g);
	/* A key left out is reported at its group's line. */
	for (j = 0; j < ks->n; j++) {
		if (key_in_group(&ks->keys[j], group))
			ks->at[j] = at;
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		if (member_parse(c, ks, group,
		                 config_setting_get_elem(g, (unsigned)i), path,
		                 e) == -1)
			return -1;
	}
	return 0;
}

static int
tree_parse(struct config *c, const struct keyset *ks,
           const config_setting_t *root, const char *path, struct err *e)
{
	int i, n;
	size_t j;

	for (j = 0; j < ks->n; j++) {
		ks->at[j].file = path;
		ks->at[j].line = 0;
	}
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		if (group_parse(c, ks,
		                config_setting_get_elem(root, (unsigned)i),
		                path, e) == -1)
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
config_parse_file(struct config *c, const struct keyset *ks, const char *path,
                  struct err *e)
{
	config_t cf;
	FILE *fp;
	int rc = -1;

	config_init(&cf);
	fp = file_open(path, e);
	if (fp == NULL)
		goto done;
	if (config_read(&cf, fp) != CONFIG_TRUE) {
		syntax_error(&cf, path, e);
		goto done;
	}
	rc = tree_parse(c, ks, config_root_setting(&cf), path, e);
done:
	if (fp != NULL)
		fclose(fp);
	config_destroy(&cf);
	return rc;
}
