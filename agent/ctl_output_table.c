/*
 * ctl_output_table: the aligned table (columns as wide as their widest
 * cell in terminal columns, numbers to the right, the last column not
 * padded) and the answers printed as one: /getall's images and /failed.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl_output_impl.h"
#include "item.h"

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

static char *
size_text(const json_t *o, const char *key)
{
	char s[32];
	double v;

	if (!ctl_output_number(o, key, &v))
		return strdup("-");
	return strdup(ctl_output_size(v, s, sizeof(s)));
}

static char *
dimensions_text(const json_t *o)
{
	char s[64];
	double w, h;

	if (!ctl_output_number(o, ITEM_WIDTH, &w) ||
	    !ctl_output_number(o, ITEM_HEIGHT, &h))
		return strdup("-");
	snprintf(s, sizeof(s), "%.0fx%.0f", w, h);
	return strdup(s);
}

/* ---- answers as tables ----------------------------------------------- */

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
		return ctl_output_write_check(f, e);
	}
	table_init(&t, 5, head, right);
	json_array_foreach(images, i, it)
	{
		if (ctl_output_number(it, ITEM_SIZE, &v))
			sum += v;
		row[0] = size_text(it, ITEM_SIZE);
		row[1] = ctl_output_value_text(json_object_get(it, ITEM_TYPE));
		row[2] = dimensions_text(it);
		row[3] =
		    ctl_output_value_text(json_object_get(it, ITEM_TIMESTAMP));
		row[4] =
		    ctl_output_value_text(json_object_get(it, ITEM_FILENAME));
		if (table_add(&t, row, e) == -1)
			goto fail;
	}
	if (table_print(f, &t, e) == -1)
		goto fail;
	fprintf(f, "%zu image%s, %s\n", t.nrows, t.nrows == 1 ? "" : "s",
	        ctl_output_size(sum, total, sizeof(total)));
	table_cleanup(&t);
	return ctl_output_write_check(f, e);
fail:
	table_cleanup(&t);
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
		return ctl_output_write_check(f, e);
	}
	table_init(&t, 2, head, right);
	json_array_foreach(list, i, it)
	{
		row[0] =
		    ctl_output_value_text(json_object_get(it, ITEM_FILENAME));
		row[1] = ctl_output_message_text(json_object_get(it, "error"));
		if (table_add(&t, row, e) == -1)
			goto fail;
	}
	if (table_print(f, &t, e) == -1)
		goto fail;
	fprintf(f, "%zu failed file%s (imgsyncctl retry tries again)\n",
	        t.nrows, t.nrows == 1 ? "" : "s");
	table_cleanup(&t);
	return ctl_output_write_check(f, e);
fail:
	table_cleanup(&t);
	return -1;
}
