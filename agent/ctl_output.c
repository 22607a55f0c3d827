#include "ctl_output.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "text.h"

#define LABEL_WIDTH 13 /* "transferred: " */

/* The attributes of an item in the order of the DynamoDB table's page. */
static const char *const item_order[] = {
    "FileName", "Bucket", "Source", "Timestamp", "Size",  "Type",
    "Width",    "Height", "SHA256", "ETag",      "MTime",
};

const char *
ctl_output_size(double bytes, char *out, size_t outlen)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB",
	                                   "TiB", "PiB", "EiB"};
	size_t i = 0;
	double v;

	if (isnan(bytes) || bytes < 0) {
		snprintf(out, outlen, "-");
		return out;
	}
	if (bytes < 1023.5) {
		snprintf(out, outlen, "%.0f B", bytes);
		return out;
	}
	v = bytes / 1024;
	/* 1023.96 KiB would print as "1024.0 KiB": that is 1.0 MiB */
	while (v >= 1023.95 && i + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		i++;
	}
	snprintf(out, outlen, "%.1f %s", v, unit[i]);
	return out;
}

const char *
ctl_output_duration(double seconds, char *out, size_t outlen)
{
	long long s, d, h, m;

	if (isnan(seconds) || seconds < 0 || seconds > 1e15) {
		snprintf(out, outlen, "-");
		return out;
	}
	s = (long long)seconds;
	d = s / 86400;
	h = s % 86400 / 3600;
	m = s % 3600 / 60;
	s %= 60;
	if (d > 0)
		snprintf(out, outlen, "%lldd %lldh %lldm", d, h, m);
	else if (h > 0)
		snprintf(out, outlen, "%lldh %lldm %llds", h, m, s);
	else if (m > 0)
		snprintf(out, outlen, "%lldm %llds", m, s);
	else
		snprintf(out, outlen, "%llds", s);
	return out;
}

static uint32_t
utf8_decode(const unsigned char *p, size_t len)
{
	switch (len) {
	case 2:
		return (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	case 3:
		return (uint32_t)(p[0] & 0x0f) << 12 |
		       (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
	case 4:
		return (uint32_t)(p[0] & 0x07) << 18 |
		       (uint32_t)(p[1] & 0x3f) << 12 |
		       (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
	default:
		return p[0];
	}
}

/* Code points that are well-formed but move the cursor, end a line or
 * reorder the text around them. */
static int
unsafe_code_point(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

static char *
escape(const char *s, size_t n, int backslash)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	size_t i = 0, len;
	uint32_t cp;

	buf_init(&b, 0);
	while (i < n) {
		if (p[i] == '\\' && backslash) {
			buf_puts(&b, "\\\\");
		} else if (p[i] == '\n') {
			buf_puts(&b, "\\n");
		} else if (p[i] == '\r') {
			buf_puts(&b, "\\r");
		} else if (p[i] == '\t') {
			buf_puts(&b, "\\t");
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			buf_printf(&b, "\\x%02x", p[i]);
		} else if (p[i] < 0x80) {
			buf_putc(&b, (char)p[i]);
		} else {
			len = text_utf8_len(s + i, n - i);
			if (len == 0) {
				buf_printf(&b, "\\x%02x", p[i]);
				i++;
				continue;
			}
			cp = utf8_decode(p + i, len);
			if (unsafe_code_point(cp))
				buf_printf(&b, "\\u%04x", (unsigned)cp);
			else
				buf_append(&b, s + i, len);
			i += len;
			continue;
		}
		i++;
	}
	return buf_steal(&b);
}

char *
ctl_output_escape(const char *s, size_t n)
{
	return escape(s, n, 1);
}

char *
ctl_output_escape_message(const char *s, size_t n)
{
	return escape(s, n, 0);
}

static int
wide_code_point(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) ||
	       (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
	       (cp >= 0xac00 && cp <= 0xd7a3) ||
	       (cp >= 0xf900 && cp <= 0xfaff) ||
	       (cp >= 0xfe30 && cp <= 0xfe4f) ||
	       (cp >= 0xff00 && cp <= 0xff60) ||
	       (cp >= 0xffe0 && cp <= 0xffe6) ||
	       (cp >= 0x1f300 && cp <= 0x1f64f) ||
	       (cp >= 0x1f900 && cp <= 0x1f9ff) ||
	       (cp >= 0x20000 && cp <= 0x3fffd);
}

static int
combining_code_point(uint32_t cp)
{
	return (cp >= 0x0300 && cp <= 0x036f) ||
	       (cp >= 0x1ab0 && cp <= 0x1aff) ||
	       (cp >= 0x1dc0 && cp <= 0x1dff) ||
	       (cp >= 0x20d0 && cp <= 0x20ff) ||
	       (cp >= 0xfe20 && cp <= 0xfe2f) || cp == 0x200b || cp == 0x200c ||
	       cp == 0x200d;
}

size_t
ctl_output_width(const char *s)
{
	size_t n = strlen(s), i = 0, w = 0;

	while (i < n) {
		size_t len = text_utf8_len(s + i, n - i);
		uint32_t cp;

		if (len == 0)
			len = 1;
		cp = utf8_decode((const unsigned char *)s + i, len);
		if (wide_code_point(cp))
			w += 2;
		else if (!combining_code_point(cp))
			w++;
		i += len;
	}
	return w;
}

/* ---- tables ---------------------------------------------------------- */

struct table {
	size_t ncols;
	const char *const *head;
	const int *right; /* per column: align right (numbers) */
	char **cells;     /* nrows * ncols, owned, escaped */
	size_t nrows;
	size_t cap; /* rows */
};

static void
table_init(struct table *t, size_t ncols, const char *const *head,
           const int *right)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
	t->right = right;
}

static void
table_cleanup(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* Adds a row of cells the table takes (NULL cells mean out of memory). */
static int
table_add(struct table *t, char **row, struct err *e)
{
	size_t i;
	int ok = 1;

	for (i = 0; i < t->ncols; i++)
		ok = ok && row[i] != NULL;
	if (ok && t->nrows == t->cap) {
		size_t ncap = t->cap != 0 ? t->cap * 2 : 16;
		char **p = realloc(t->cells, ncap * t->ncols * sizeof(*p));
		if (p == NULL) {
			ok = 0;
		} else {
			t->cells = p;
			t->cap = ncap;
		}
	}
	if (!ok) {
		for (i = 0; i < t->ncols; i++)
			free(row[i]);
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(*row));
	t->nrows++;
	return 0;
}

static void
table_cell(FILE *f, const char *s, size_t width, int right, int last)
{
	size_t w = ctl_output_width(s);
	int pad = (int)(width > w ? width - w : 0);

	if (right)
		fprintf(f, "%*s%s", pad, "", s);
	else if (last)
		fputs(s, f);
	else
		fprintf(f, "%s%*s", s, pad, "");
	fputs(last ? "\n" : "  ", f);
}

static int
table_print(FILE *f, const struct table *t, struct err *e)
{
	size_t *width, r, c, w;

	width = calloc(t->ncols, sizeof(*width));
	if (width == NULL) {
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	for (c = 0; c < t->ncols; c++)
		width[c] = ctl_output_width(t->head[c]);
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			w = ctl_output_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < t->ncols; c++)
		table_cell(f, t->head[c], width[c], t->right[c],
		           c + 1 == t->ncols);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			table_cell(f, t->cells[r * t->ncols + c], width[c],
			           t->right[c], c + 1 == t->ncols);
	free(width);
	return 0;
}

/* ---- values ---------------------------------------------------------- */

static char *
dup_text(const char *s)
{
	return strdup(s);
}

/* Any JSON value as escaped text: strings as they are, numbers, booleans,
 * null, objects and arrays as compact JSON; absent -> "-". */
static char *
value_text(const json_t *v)
{
	char *dump, *out;

	if (v == NULL)
		return dup_text("-");
	if (json_is_string(v))
		return ctl_output_escape(json_string_value(v),
		                         json_string_length(v));
	dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (dump == NULL)
		return NULL;
	out = ctl_output_escape(dump, strlen(dump));
	free(dump);
	return out;
}

/* A message from the daemon: as value_text, backslashes kept. */
static char *
message_text(const json_t *v)
{
	if (json_is_string(v))
		return ctl_output_escape_message(json_string_value(v),
		                                 json_string_length(v));
	return value_text(v);
}

static int
number(const json_t *o, const char *key, double *v)
{
	const json_t *n = json_object_get(o, key);

	if (!json_is_number(n))
		return 0;
	*v = json_number_value(n);
	return 1;
}

static char *
size_text(const json_t *o, const char *key)
{
	char s[32];
	double v;

	if (!number(o, key, &v))
		return dup_text("-");
	return dup_text(ctl_output_size(v, s, sizeof(s)));
}

static char *
dimensions_text(const json_t *o)
{
	char s[64];
	double w, h;

	if (!number(o, "Width", &w) || !number(o, "Height", &h))
		return dup_text("-");
	snprintf(s, sizeof(s), "%.0fx%.0f", w, h);
	return dup_text(s);
}

static int
write_check(FILE *f, struct err *e)
{
	if (fflush(f) != 0 || ferror(f)) {
		err_sys(e, "write error");
		return -1;
	}
	return 0;
}

/* ---- answers --------------------------------------------------------- */

int
ctl_output_images(FILE *f, const json_t *images, struct err *e)
{
	static const char *const head[] = {"SIZE", "TYPE", "DIMENSIONS",
	                                   "SYNCED", "NAME"};
	static const int right[] = {1, 0, 0, 0, 0};
	struct table t;
	const json_t *it;
	char *row[5], total[32];
	double sum = 0, v;
	size_t i;

	if (!json_is_array(images)) {
		err_set(e, ERR_PARSE, "no \"images\" array in the answer");
		return -1;
	}
	if (json_array_size(images) == 0) {
		fputs("no images\n", f);
		return write_check(f, e);
	}
	table_init(&t, 5, head, right);
	json_array_foreach(images, i, it)
	{
		if (number(it, "Size", &v))
			sum += v;
		row[0] = size_text(it, "Size");
		row[1] = value_text(json_object_get(it, "Type"));
		row[2] = dimensions_text(it);
		row[3] = value_text(json_object_get(it, "Timestamp"));
		row[4] = value_text(json_object_get(it, "FileName"));
		if (table_add(&t, row, e) == -1)
			goto fail;
	}
	if (table_print(f, &t, e) == -1)
		goto fail;
	fprintf(f, "%zu image%s, %s\n", t.nrows, t.nrows == 1 ? "" : "s",
	        ctl_output_size(sum, total, sizeof(total)));
	table_cleanup(&t);
	return write_check(f, e);
fail:
	table_cleanup(&t);
	return -1;
}

static void
label(FILE *f, const char *name)
{
	fprintf(f, "%s:%*s", name, (int)(LABEL_WIDTH - strlen(name) - 1), "");
}

/* One "label: value" line for a string member; returns -1 out of memory. */
static int
status_string(FILE *f, const json_t *st, const char *name, const char *key)
{
	const json_t *v = json_object_get(st, key);
	char *s;

	if (json_is_null(v))
		s = dup_text("-");
	else if (strcmp(key, "last_error") == 0 ||
	         strcmp(key, "root_lost") == 0 || strcmp(key, "disk_full") == 0)
		s = message_text(v);
	else
		s = value_text(v);
	if (s == NULL)
		return -1;
	label(f, name);
	fprintf(f, "%s\n", s);
	free(s);
	return 0;
}

static void
status_count(FILE *f, const json_t *st, const char *name, const char *key)
{
	double v;

	label(f, name);
	if (number(st, key, &v))
		fprintf(f, "%.0f\n", v);
	else
		fputs("-\n", f);
}

int
ctl_output_status(FILE *f, const json_t *st, struct err *e)
{
	double v, up, del, ren, q = 0, fl = 0, rate;
	char s[32];

	if (!json_is_object(st)) {
		err_set(e, ERR_PARSE, "the status answer is not an object");
		return -1;
	}
	if (status_string(f, st, "state", "state") == -1 ||
	    (json_object_get(st, "root_lost") != NULL &&
	     status_string(f, st, "why", "root_lost") == -1) ||
	    (json_object_get(st, "disk_full") != NULL &&
	     status_string(f, st, "why", "disk_full") == -1) ||
	    status_string(f, st, "version", "version") == -1)
		goto oom;
	label(f, "uptime");
	fprintf(f, "%s\n",
	        number(st, "uptime_s", &v)
	            ? ctl_output_duration(v, s, sizeof(s))
	            : "-");
	if (status_string(f, st, "watch root", "watch_root") == -1 ||
	    status_string(f, st, "bucket", "bucket") == -1 ||
	    status_string(f, st, "table", "table") == -1)
		goto oom;
	status_count(f, st, "queued", "queued");
	status_count(f, st, "in flight", "in_flight");
	label(f, "done");
	if (number(st, "done", &v))
		fprintf(f, "%.0f", v);
	else
		fputc('-', f);
	if (number(st, "uploaded", &up) && number(st, "deleted", &del) &&
	    number(st, "renamed", &ren))
		fprintf(f, " (%.0f uploaded, %.0f deleted, %.0f renamed)", up,
		        del, ren);
	fputc('\n', f);
	status_count(f, st, "unchanged", "unchanged");
	status_count(f, st, "failed", "failed");
	label(f, "transferred");
	fprintf(f, "%s\n",
	        number(st, "bytes", &v) ? ctl_output_size(v, s, sizeof(s))
	                                : "-");
	label(f, "rate");
	if (number(st, "rate", &rate)) {
		fprintf(f, "%.1f files/s", rate);
		number(st, "queued", &q);
		number(st, "in_flight", &fl);
		if (rate > 0 && q + fl > 0)
			fprintf(
			    f, ", about %s left",
			    ctl_output_duration((q + fl) / rate, s, sizeof(s)));
		fputc('\n', f);
	} else {
		fputs("-\n", f);
	}
	if (number(st, "held_deletions", &v) && v > 0) {
		label(f, "deletions held");
		fprintf(f, "%.0f (imgsyncctl deletions)\n", v);
	}
	if (status_string(f, st, "last error", "last_error") == -1)
		goto oom;
	return write_check(f, e);
oom:
	err_set(e, ERR_SYS, "out of memory");
	return -1;
}

int
ctl_output_failed(FILE *f, const json_t *answer, struct err *e)
{
	static const char *const head[] = {"NAME", "ERROR"};
	static const int right[] = {0, 0};
	const json_t *list = json_object_get(answer, "failed"), *it;
	struct table t;
	char *row[2];
	size_t i;

	if (!json_is_array(list)) {
		err_set(e, ERR_PARSE, "no \"failed\" array in the answer");
		return -1;
	}
	if (json_array_size(list) == 0) {
		fputs("no failed files\n", f);
		return write_check(f, e);
	}
	table_init(&t, 2, head, right);
	json_array_foreach(list, i, it)
	{
		row[0] = value_text(json_object_get(it, "FileName"));
		row[1] = message_text(json_object_get(it, "error"));
		if (table_add(&t, row, e) == -1)
			goto fail;
	}
	if (table_print(f, &t, e) == -1)
		goto fail;
	fprintf(f, "%zu failed file%s (imgsyncctl retry tries again)\n",
	        t.nrows, t.nrows == 1 ? "" : "s");
	table_cleanup(&t);
	return write_check(f, e);
fail:
	table_cleanup(&t);
	return -1;
}

int
ctl_output_verify(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *kinds = json_object_get(answer, "differences"), *k, *n;
	const char *name, *v;
	double count = 0;
	size_t i;
	char *s;

	if (!json_is_object(kinds)) {
		err_set(e, ERR_PARSE, "no \"differences\" in the answer");
		return -1;
	}
	json_object_foreach((json_t *)kinds, name, k)
	{
		number(k, "count", &count);
		fprintf(f, "%-16s %.0f\n", name, count);
		json_array_foreach(json_object_get(k, "names"), i, n)
		{
			s = value_text(n);
			if (s != NULL)
				fprintf(f, "  %s\n", s);
			free(s);
		}
	}
	number(answer, "total", &count);
	fprintf(f, "%.0f difference%s", count, count == 1 ? "" : "s");
	if (json_is_true(json_object_get(answer, "repair"))) {
		double up = 0, rows = 0, del = 0;

		number(answer, "uploads_queued", &up);
		number(answer, "rows_rebuilt", &rows);
		number(answer, "orphans_deleted", &del);
		fprintf(
		    f,
		    "; repair: %.0f uploads queued, %.0f rows rebuilt, %.0f "
		    "orphans deleted",
		    up, rows, del);
	}
	fputc('\n', f);
	v = json_string_value(json_object_get(answer, "note"));
	if (v != NULL)
		fprintf(f, "note: %s\n", v);
	v = json_string_value(json_object_get(answer, "error"));
	if (v != NULL)
		fprintf(f, "error: %s\n", v);
	return write_check(f, e);
}

int
ctl_output_deletions(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *list = json_object_get(answer, "held"), *it;
	double n = 0;
	size_t i;
	char *name;

	if (!json_is_array(list)) {
		err_set(e, ERR_PARSE, "no \"held\" array in the answer");
		return -1;
	}
	number(answer, "count", &n);
	if (n == 0) {
		fputs("no deletions held\n", f);
		return write_check(f, e);
	}
	json_array_foreach(list, i, it)
	{
		name = value_text(it);
		if (name == NULL) {
			err_set(e, ERR_SYS, "out of memory");
			return -1;
		}
		fprintf(f, "%s\n", name);
		free(name);
	}
	fprintf(f,
	        "%.0f deletion%s held%s (imgsyncctl deletions --confirm sends "
	        "them; a file that comes back is dropped from the list)\n",
	        n, n == 1 ? "" : "s",
	        json_is_true(json_object_get(answer, "truncated"))
	            ? ", the first 1,000 shown"
	            : "");
	return write_check(f, e);
}

static int
item_line(FILE *f, const char *key, const json_t *v)
{
	char *k = ctl_output_escape(key, strlen(key)), *s = value_text(v);
	char size[32];
	int rc = -1;

	if (k == NULL || s == NULL)
		goto out;
	fprintf(f, "%s: %s", k, s);
	if (strcmp(key, "Size") == 0 && json_is_number(v))
		fprintf(
		    f, " (%s)",
		    ctl_output_size(json_number_value(v), size, sizeof(size)));
	fputc('\n', f);
	rc = 0;
out:
	free(k);
	free(s);
	return rc;
}

static int
known_key(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(item_order) / sizeof(item_order[0]); i++)
		if (strcmp(key, item_order[i]) == 0)
			return 1;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
ctl_output_item(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *item = json_object_get(answer, "data"), *v;
	const char **rest = NULL, *key;
	size_t i, n = 0;

	if (!json_is_object(item)) {
		err_set(e, ERR_PARSE, "no \"data\" object in the answer");
		return -1;
	}
	for (i = 0; i < sizeof(item_order) / sizeof(item_order[0]); i++) {
		v = json_object_get(item, item_order[i]);
		if (v != NULL && item_line(f, item_order[i], v) == -1)
			goto oom;
	}
	rest = calloc(json_object_size(item) + 1, sizeof(*rest));
	if (rest == NULL)
		goto oom;
	json_object_foreach((json_t *)item, key, v)
	{
		if (!known_key(key))
			rest[n++] = key;
	}
	qsort(rest, n, sizeof(*rest), cmp_str);
	for (i = 0; i < n; i++)
		if (item_line(f, rest[i], json_object_get(item, rest[i])) == -1)
			goto oom;
	free(rest);
	return write_check(f, e);
oom:
	free(rest);
	err_set(e, ERR_SYS, "out of memory");
	return -1;
}

int
ctl_output_message(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *msg = json_object_get(answer, "message");
	const json_t *file = json_object_get(answer, "deletedFile");
	char *m, *name = NULL;

	if (file == NULL)
		file = json_object_get(answer, "FileName");
	m = json_is_string(msg) ? message_text(msg) : dup_text("OK");
	if (json_is_string(file))
		name = value_text(file);
	if (m == NULL || (json_is_string(file) && name == NULL)) {
		free(m);
		free(name);
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	if (name != NULL)
		fprintf(f, "%s: %s\n", m, name);
	else
		fprintf(f, "%s\n", m);
	free(m);
	free(name);
	return write_check(f, e);
}
