/*
 * ctl_output_verify: the answers about what the folder and the remote
 * side disagree on: the verify report, kind by kind with the first names,
 * and the deletions held by the mass-deletion guard.
 */
#include <stdlib.h>

#include "ctl_output_impl.h"

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
		ctl_output_number(k, "count", &count);
		fprintf(f, "%-16s %.0f\n", name, count);
		json_array_foreach(json_object_get(k, "names"), i, n)
		{
			s = ctl_output_value_text(n);
			if (s != NULL)
				fprintf(f, "  %s\n", s);
			free(s);
		}
	}
	ctl_output_number(answer, "total", &count);
	fprintf(f, "%.0f difference%s", count, count == 1 ? "" : "s");
	if (json_is_true(json_object_get(answer, "repair"))) {
		double up = 0, rows = 0, del = 0;

		ctl_output_number(answer, "uploads_queued", &up);
		ctl_output_number(answer, "rows_rebuilt", &rows);
		ctl_output_number(answer, "orphans_deleted", &del);
		fprintf(
		    f,
		    "; repair: %.0f uploads queued, %.0f rows rebuilt, %.0f "
		    "orphans deleted",
		    up, rows, del);
	}
	fputc('\n', f);
	k = json_object_get(answer, "checksums");
	if (json_is_object(k)) {
		double ok = 0, absent = 0, other = 0;

		ctl_output_number(k, "matched", &ok);
		ctl_output_number(k, "absent", &absent);
		ctl_output_number(k, "not_compared", &other);
		fprintf(f,
		        "checksums: %.0f matched, %.0f absent, %.0f not "
		        "compared\n",
		        ok, absent, other);
	}
	v = json_string_value(json_object_get(answer, "note"));
	if (v != NULL)
		fprintf(f, "note: %s\n", v);
	v = json_string_value(json_object_get(answer, "error"));
	if (v != NULL)
		fprintf(f, "error: %s\n", v);
	return ctl_output_write_check(f, e);
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
	ctl_output_number(answer, "count", &n);
	if (n == 0) {
		fputs("no deletions held\n", f);
		return ctl_output_write_check(f, e);
	}
	json_array_foreach(list, i, it)
	{
		name = ctl_output_value_text(it);
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
	return ctl_output_write_check(f, e);
}
