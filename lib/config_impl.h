/*
 * config_impl: what the files of the config module share and nobody else
 * sees: the shape of a key table row, and the calls config.c makes into
 * config_parse.c (the libconfig file into a struct config) and
 * config_check.c (every key's rules). The table itself lives in config.c,
 * which hands it down in a struct keyset: the lower files never call back.
 */
#ifndef IMGSYNC_CONFIG_IMPL_H
#define IMGSYNC_CONFIG_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "config.h"
#include "err.h"

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
 * length in bytes (0: any), for a list min is its fewest elements. A level's
 * names are NULL-terminated, indexed by value.
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
	const char *const *names; /* KEY_LEVEL */
};

/* Where a key was set: its file and line (0: only its group, or neither). */
struct loc {
	const char *file;
	unsigned line;
};

/* The key table, and while loading a file where each of its keys was set
 * (at[i] for keys[i]; at is NULL outside a load). */
struct keyset {
	const struct key *keys;
	size_t n;
	struct loc *at;
};

static inline void *
key_field(struct config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

static inline const void *
key_cfield(const struct config *c, const struct key *k)
{
	return (const char *)c + k->offset;
}

static inline void
key_list_free(struct config_list *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* config_check.c */

/* "FILE:LINE: key \"name\": ...", leaving out what is not known; -1. */
int config_check_fail(struct err *e, const struct loc *at, const char *name,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* v within k's min and max. */
int config_check_int(long long v, const struct key *k, const struct loc *at,
                     struct err *e);
/* Every key of ks against its row, then the rules across keys. */
int config_check_keys(const struct config *c, const struct keyset *ks,
                      struct err *e);

/* config_parse.c */

/* Reads path into c (holding the defaults) and fills ks->at; type and range
 * are checked here, the rules across keys are not. */
int config_parse_file(struct config *c, const struct keyset *ks,
                      const char *path, struct err *e);

#endif
