/*
 * state_gallery: the gallery's reads of `files`. A folder is a range of
 * the path index (dir up to dir + 0xff...: paths are BLOBs, compared
 * bytewise), so a page costs one range scan of that folder, sorted newest
 * first; the subfolders are found by seeking past each one's rows.
 */
#include "state_impl.h"

#include <stdlib.h>
#include <string.h>

/* ?1..?2 the folder's range (?2 NULL: to the end); ?3 dir's length + 1
 * (where names start); ?4 NULL: only the folder's own files; ?5 the
 * search in lower case; ?6 the type; ?7/?8 the cursor. */
static const struct state_sql gallery_page = {
    ST_GALLERY_PAGE,
    "SELECT " STATE_FILE_COLS " FROM files WHERE status = 'synced' "
    "AND path >= ?1 AND (?2 IS NULL OR path < ?2) "
    "AND (?4 IS NOT NULL OR instr(substr(path, ?3), x'2f') = 0) "
    "AND (?5 IS NULL OR instr(lower(CAST(substr(path, ?3) AS TEXT)), ?5) "
    "> 0) AND (?6 IS NULL OR type = ?6) "
    "AND (?8 IS NULL OR mtime_ns < ?7 OR (mtime_ns = ?7 AND path < ?8)) "
    "ORDER BY mtime_ns DESC, path DESC LIMIT ?9"};
/* The first synced row from ?1 on, inside the folder, below a subfolder. */
static const struct state_sql gallery_folder = {
    ST_GALLERY_FOLDER,
    "SELECT path FROM files WHERE path >= ?1 AND (?2 IS NULL OR path < ?2) "
    "AND instr(substr(path, ?3), x'2f') > 0 AND status = 'synced' "
    "ORDER BY path LIMIT 1"};

/* The end of the range of paths starting with dir: dir with its last byte
 * that is not 0xff raised by one (NULL and 0: no end, to the last row). */
static char *
gallery_range_end(const char *dir, size_t len, size_t *outlen)
{
	char *hi;

	while (len > 0 && (unsigned char)dir[len - 1] == 0xff)
		len--;
	*outlen = len;
	if (len == 0)
		return NULL;
	hi = malloc(len);
	if (hi == NULL)
		return NULL;
	memcpy(hi, dir, len);
	hi[len - 1] = (char)((unsigned char)hi[len - 1] + 1);
	return hi;
}

static char *
gallery_lower(const char *s)
{
	size_t i, n = strlen(s);
	char *l = malloc(n + 1);

	if (l == NULL)
		return NULL;
	for (i = 0; i <= n; i++)
		l[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	return l;
}

int
state_gallery_page(struct state *s, const struct state_gallery_query *q,
                   state_file_cb cb, void *arg, struct err *e)
{
	char *hi = NULL, *search = NULL;
	size_t hilen = 0;
	int ret;

	if (q->dir_len > 0) {
		hi = gallery_range_end(q->dir, q->dir_len, &hilen);
		if (hi == NULL && hilen > 0) {
			state_nomem(s, e);
			return -1;
		}
	}
	if (q->search != NULL && (search = gallery_lower(q->search)) == NULL) {
		free(hi);
		state_nomem(s, e);
		return -1;
	}
	{
		const struct state_arg args[] = {
		    STATE_BLOB(q->dir != NULL ? q->dir : "", q->dir_len),
		    hi != NULL ? STATE_BLOB(hi, hilen) : STATE_NULL,
		    STATE_INT(q->dir_len + 1),
		    search != NULL ? STATE_INT(1) : STATE_NULL,
		    search != NULL ? STATE_TEXT(search) : STATE_NULL,
		    q->type != NULL ? STATE_TEXT(q->type) : STATE_NULL,
		    STATE_INT(q->after_mtime_ns),
		    q->after_path != NULL
		        ? STATE_BLOB(q->after_path, q->after_len)
		        : STATE_NULL,
		    STATE_INT(q->limit),
		};

		ret = state_file_walk(s, &gallery_page, args, nitems(args), cb,
		                      arg, e);
	}
	free(hi);
	free(search);
	return ret;
}

/* The path of the first row gallery_folder finds. */
struct gallery_seek {
	char *path;
	size_t len;
};

static int
gallery_seek_row(sqlite3_stmt *st, void *arg)
{
	struct gallery_seek *k = arg;

	return state_col_dup(st, 0, &k->path, &k->len) == -1 ? -1 : 1;
}

int
state_gallery_folders(struct state *s, const char *dir, size_t dir_len,
                      unsigned max, state_folder_cb cb, void *arg,
                      struct err *e)
{
	char *hi = NULL, *from;
	size_t hilen = 0, fromlen = dir_len;
	const char *slash;
	struct gallery_seek k;
	unsigned n;
	int rc = 0;

	if (dir_len > 0) {
		hi = gallery_range_end(dir, dir_len, &hilen);
		if (hi == NULL && hilen > 0) {
			state_nomem(s, e);
			return -1;
		}
	}
	from = malloc(dir_len + 1);
	if (from == NULL) {
		free(hi);
		state_nomem(s, e);
		return -1;
	}
	if (dir_len > 0)
		memcpy(from, dir, dir_len);
	for (n = 0; n < max; n++) {
		const struct state_arg args[] = {
		    STATE_BLOB(from, fromlen),
		    hi != NULL ? STATE_BLOB(hi, hilen) : STATE_NULL,
		    STATE_INT(dir_len + 1),
		};

		memset(&k, 0, sizeof(k));
		rc = state_rows(s, &gallery_folder, args, nitems(args),
		                gallery_seek_row, &k, e);
		if (rc != 1)
			break; /* 0: no more; -1: e says */
		slash = memchr(k.path + dir_len, '/', k.len - dir_len);
		rc = cb(k.path + dir_len, (size_t)(slash - k.path) - dir_len,
		        arg);
		if (rc == 0) {
			/* past "dir/name/": "dir/name0" ('/' + 1) */
			fromlen = (size_t)(slash - k.path) + 1;
			free(from);
			from = k.path;
			from[fromlen - 1] = '0';
			k.path = NULL;
		}
		free(k.path);
		if (rc != 0)
			break;
	}
	free(from);
	free(hi);
	if (rc == -1 && e->kind == ERR_NONE)
		state_nomem(s, e);
	return rc == -1 ? -1 : 0;
}
