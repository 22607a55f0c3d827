/*
 * libFuzzer target over agent/web_query.c: the gallery's listing
 * arguments (folder, search, type, cursor, page size) and upload names,
 * as a browser may send any of them. Built and run by tests/fuzz/run.
 *
 * Input layout: byte 0's low five bits say which of dir, q, type, cursor,
 * limit are present; then the present fields, each ended by '\n'; the
 * rest is an upload name. A broken invariant abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_api.h"
#include "web_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
take(const uint8_t **p, size_t *n)
{
	const uint8_t *nl = memchr(*p, '\n', *n);
	size_t len = nl != NULL ? (size_t)(nl - *p) : *n;
	char *s = strndup((const char *)*p, len);

	if (s == NULL)
		abort();
	*p += len + (nl != NULL);
	*n -= len + (nl != NULL);
	return s;
}

/* An independent reading of a relative path with no empty, "." or ".."
 * part (n > 0). */
static int
relative(const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (i == start || (i - start == 1 && s[start] == '.') ||
		    (i - start == 2 && s[start] == '.' && s[start + 1] == '.'))
			return 0;
		start = i + 1;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[5] = {NULL, NULL, NULL, NULL, NULL}, *after = NULL, *c, *name;
	struct web_list_args a;
	struct state_gallery_query q;
	const char *why = NULL;
	unsigned mask;
	int i, rc;

	if (size == 0)
		return 0;
	mask = data[0];
	data++;
	size--;
	for (i = 0; i < 5; i++)
		if (mask & (1u << i))
			f[i] = take(&data, &size);
	a.dir = f[0];
	a.q = f[1];
	a.type = f[2];
	a.cursor = f[3];
	a.limit = f[4];
	rc = web_query_list(&a, &q, &after, &why);
	if ((rc == 0) != (why == NULL))
		abort();
	if (rc == 0) {
		if (q.dir_len > 0 && (q.dir[q.dir_len - 1] != '/' ||
		                      !relative(q.dir, q.dir_len - 1)))
			abort();
		if (q.limit == 0 || q.limit > WEB_LIST_MAX)
			abort();
		if ((q.after_path == NULL) != (after == NULL) ||
		    (after != NULL && q.after_len == 0))
			abort();
		if (after != NULL) { /* the cursor comes back the same */
			c = web_query_cursor(q.after_mtime_ns, after,
			                     q.after_len);
			if (c == NULL || strcmp(c, a.cursor) != 0) {
				/* a cursor may have been written otherwise
				 * ("+1", "01") and still read: it must read
				 * back to the same row */
				struct state_gallery_query q2;
				struct web_list_args a2 = a;
				char *after2 = NULL;

				if (c == NULL)
					abort();
				a2.cursor = c;
				if (web_query_list(&a2, &q2, &after2, &why) !=
				        0 ||
				    q2.after_mtime_ns != q.after_mtime_ns ||
				    q2.after_len != q.after_len ||
				    memcmp(after2, after, q.after_len) != 0)
					abort();
				free(after2);
			}
			free(c);
		}
	} else if (after != NULL) {
		abort();
	}
	free(after);
	name = strndup((const char *)data, size);
	if (name == NULL)
		abort();
	why = web_query_upload_name(name);
	if (why == NULL && (name[0] == '\0' || !relative(name, strlen(name)) ||
	                    strlen(name) > CTL_NAME_MAX))
		abort();
	free(name);
	for (i = 0; i < 5; i++)
		free(f[i]);
	return 0;
}
