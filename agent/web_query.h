/*
 * web_query: what the gallery's requests say, checked before anything
 * acts on them (pure, no I/O): the listing's folder, search, type, cursor
 * and page size, and the name an upload asks for.
 */
#ifndef IMGSYNC_WEB_QUERY_H
#define IMGSYNC_WEB_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

#define WEB_LIST_DEFAULT 60u
#define WEB_LIST_MAX 500u

/* GET /api/list's arguments as the HTTP server decoded them (NULL: not
 * given). */
struct web_list_args {
	const char *dir;
	const char *q;
	const char *type;
	const char *cursor;
	const char *limit;
};

/*
 * Fills out (borrowing the strings of a; out->after_path is *after, which
 * the caller frees): 0, or -1 with *why. dir is "" or a relative folder
 * ending in '/' with no empty, "." or ".." part; an empty q or type is
 * none; limit 1..WEB_LIST_MAX; the cursor one web_query_cursor made.
 */
int web_query_list(const struct web_list_args *a,
                   struct state_gallery_query *out, char **after,
                   const char **why);
/* The cursor after a row: "MTIME.BASE64URL(PATH)"; NULL when out of
 * memory or the path is too long to be one. */
char *web_query_cursor(int64_t mtime_ns, const char *path, size_t len);
/* NULL when name is one an upload may create: relative, UTF-8, at most
 * 1024 bytes, no empty, "." or ".." part; else what is wrong. */
const char *web_query_upload_name(const char *name);

#endif
