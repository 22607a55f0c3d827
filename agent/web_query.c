/*
 * web_query: the gallery's request arguments, checked. The listing's
 * cursor is the last row's mtime and path: "MTIME.BASE64URL(PATH)", the
 * path encoded as the control socket's cursors are.
 */
#include "web_query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_api.h"
#include "text.h"

/* Whether p (n bytes) is a relative path with no empty, "." or ".."
 * part. */
static int
web_query_relative(const char *p, size_t n)
{
	size_t i = 0, start;

	if (n == 0)
		return 0;
	while (i <= n) {
		start = i;
		while (i < n && p[i] != '/')
			i++;
		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return 0;
		i++;
	}
	return 1;
}

static int
web_query_parse_cursor(const char *cursor, struct state_gallery_query *q,
                       char **after)
{
	const char *dot = strchr(cursor, '.');
	char *end;
	long long m;

	if (dot == NULL || dot == cursor)
		return -1;
	errno = 0;
	m = strtoll(cursor, &end, 10);
	if (end != dot || errno != 0)
		return -1;
	if (control_api_cursor_decode(dot + 1, after, &q->after_len) == -1)
		return -1;
	if (q->after_len == 0) {
		free(*after);
		*after = NULL;
		return -1;
	}
	q->after_mtime_ns = m;
	q->after_path = *after;
	return 0;
}

int
web_query_list(const struct web_list_args *a, struct state_gallery_query *out,
               char **after, const char **why)
{
	unsigned long lim = WEB_LIST_DEFAULT;
	char *end;

	memset(out, 0, sizeof(*out));
	*after = NULL;
	out->dir = a->dir != NULL ? a->dir : "";
	out->dir_len = strlen(out->dir);
	if (out->dir_len > 0 &&
	    (out->dir_len > CTL_NAME_MAX || out->dir[out->dir_len - 1] != '/' ||
	     !web_query_relative(out->dir, out->dir_len - 1))) {
		*why = "dir must be empty or a relative folder ending in '/'";
		return -1;
	}
	out->search = a->q != NULL && a->q[0] != '\0' ? a->q : NULL;
	if (out->search != NULL && strlen(out->search) > CTL_NAME_MAX) {
		*why = "q must be at most 1024 bytes";
		return -1;
	}
	out->type = a->type != NULL && a->type[0] != '\0' ? a->type : NULL;
	if (out->type != NULL && strlen(out->type) > 127) {
		*why = "type must be a MIME type";
		return -1;
	}
	if (a->limit != NULL) {
		errno = 0;
		lim = strtoul(a->limit, &end, 10);
		if (a->limit[0] < '0' || a->limit[0] > '9' || *end != '\0' ||
		    errno != 0 || lim == 0 || lim > WEB_LIST_MAX) {
			*why = "limit must be 1 to 500";
			return -1;
		}
	}
	out->limit = (unsigned)lim;
	if (a->cursor != NULL && a->cursor[0] != '\0' &&
	    web_query_parse_cursor(a->cursor, out, after) == -1) {
		*why = "cursor is not one this API gave";
		return -1;
	}
	return 0;
}

char *
web_query_cursor(int64_t mtime_ns, const char *path, size_t len)
{
	char *p = control_api_cursor_encode(path, len), *s;

	if (p == NULL)
		return NULL;
	if (asprintf(&s, "%lld.%s", (long long)mtime_ns, p) == -1)
		s = NULL;
	free(p);
	return s;
}

const char *
web_query_upload_name(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0)
		return "name missing";
	if (n > CTL_NAME_MAX || !text_utf8_valid(name, n))
		return "name must be UTF-8, at most 1024 bytes";
	if (!web_query_relative(name, n))
		return "name must be a relative path with no empty, \".\" or "
		       "\"..\" part";
	return NULL;
}
