/*
 * ctl_output_status: /status as aligned "label: value" lines, with human
 * sizes, durations and rates.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl_output_impl.h"

#define LABEL_WIDTH 13 /* "transferred: " */

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
		s = strdup("-");
	else if (strcmp(key, "last_error") == 0 ||
	         strcmp(key, "root_lost") == 0 || strcmp(key, "disk_full") == 0)
		s = ctl_output_message_text(v);
	else
		s = ctl_output_value_text(v);
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
	if (ctl_output_number(st, key, &v))
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
	        ctl_output_number(st, "uptime_s", &v)
	            ? ctl_output_duration(v, s, sizeof(s))
	            : "-");
	if (status_string(f, st, "watch root", "watch_root") == -1 ||
	    status_string(f, st, "bucket", "bucket") == -1 ||
	    status_string(f, st, "table", "table") == -1)
		goto oom;
	status_count(f, st, "queued", "queued");
	status_count(f, st, "in flight", "in_flight");
	label(f, "done");
	if (ctl_output_number(st, "done", &v))
		fprintf(f, "%.0f", v);
	else
		fputc('-', f);
	if (ctl_output_number(st, "uploaded", &up) &&
	    ctl_output_number(st, "deleted", &del) &&
	    ctl_output_number(st, "renamed", &ren))
		fprintf(f, " (%.0f uploaded, %.0f deleted, %.0f renamed)", up,
		        del, ren);
	fputc('\n', f);
	status_count(f, st, "unchanged", "unchanged");
	status_count(f, st, "failed", "failed");
	/* Only once the daemon made (or failed) a thumbnail. */
	if (ctl_output_number(st, "thumbnails", &v)) {
		label(f, "thumbnails");
		fprintf(f, "%.0f", v);
		if (ctl_output_number(st, "thumbnails_failed", &v) && v > 0)
			fprintf(f, " (%.0f could not be made: see the log)", v);
		fputc('\n', f);
	}
	label(f, "transferred");
	fprintf(f, "%s\n",
	        ctl_output_number(st, "bytes", &v)
	            ? ctl_output_size(v, s, sizeof(s))
	            : "-");
	label(f, "rate");
	if (ctl_output_number(st, "rate", &rate)) {
		fprintf(f, "%.1f files/s", rate);
		if (ctl_output_number(st, "byte_rate", &v))
			fprintf(f, ", %s/s", ctl_output_size(v, s, sizeof(s)));
		ctl_output_number(st, "queued", &q);
		ctl_output_number(st, "in_flight", &fl);
		/* While the scan walks, the queue is not all that is left. */
		if (rate > 0 && q + fl > 0 &&
		    !json_is_true(json_object_get(st, "scanning")))
			fprintf(
			    f, ", about %s left",
			    ctl_output_duration((q + fl) / rate, s, sizeof(s)));
		fputc('\n', f);
	} else {
		fputs("-\n", f);
	}
	if (json_is_true(json_object_get(st, "scanning"))) {
		label(f, "scan");
		fprintf(f, "under way, %.0f files found so far\n",
		        ctl_output_number(st, "scanned", &v) ? v : 0.0);
	}
	if (ctl_output_number(st, "held_deletions", &v) && v > 0) {
		label(f, "deletions held");
		fprintf(f, "%.0f (imgsyncctl deletions)\n", v);
	}
	if (status_string(f, st, "last error", "last_error") == -1)
		goto oom;
	return ctl_output_write_check(f, e);
oom:
	err_set(e, ERR_SYS, "out of memory");
	return -1;
}
