/*
 * ctl_output: imgsyncctl's text back end. Pure functions from the control
 * API's JSON answers (docs: the control API table) to what a person reads:
 * aligned tables, human sizes and durations, "Key: value" lines. The --json
 * back end needs no code: it writes the server's body as it came.
 *
 * Every string that came from the server is escaped before it is printed
 * (ctl_output_escape), so a file name with a newline cannot break a table
 * and one with ESC cannot drive the terminal.
 *
 * All json_t and FILE pointers are borrowed. The printing functions return
 * 0, or -1 with e set when the answer lacks the expected shape or writing
 * to f failed.
 */
#ifndef IMGSYNC_CTL_OUTPUT_H
#define IMGSYNC_CTL_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

/* "0 B", "1023 B", "1.0 KiB", "1.2 MiB", ... up to EiB; negative -> "-".
 * Returns out. */
const char *ctl_output_size(double bytes, char *out, size_t outlen);
/* "0s", "59s", "1m 0s", "1h 2m 3s", "3d 4h 5m"; negative -> "-".
 * Returns out. */
const char *ctl_output_duration(double seconds, char *out, size_t outlen);
/* n bytes at s made safe for a terminal line: printable ASCII and
 * well-formed printable UTF-8 as they are, backslash as \\, \n \r \t,
 * other control bytes, DEL and invalid UTF-8 as \xNN, C1 controls, bidi
 * overrides and line separators as \uNNNN. Returns a string the caller
 * frees, or NULL when out of memory. */
char *ctl_output_escape(const char *s, size_t n);
/* The same for a message: backslashes stay as they are, because the
 * daemon's messages quote file names it has escaped already ("bad\xff.png:
 * ..."). Only names need the escapes to be unambiguous. */
char *ctl_output_escape_message(const char *s, size_t n);
/* Terminal columns an escaped string takes (wide East Asian characters
 * count two, combining marks none). */
size_t ctl_output_width(const char *s);

/* /getall: the "images" arrays of one or more pages, as one table with the
 * name last (long keys do not push the other columns) and a count line. */
int ctl_output_images(FILE *f, const json_t *images, struct err *e);
/* /status: aligned "label: value" lines with human sizes and rates. */
int ctl_output_status(FILE *f, const json_t *status, struct err *e);
/* /failed: a NAME/ERROR table, or "no failed files". */
int ctl_output_failed(FILE *f, const json_t *answer, struct err *e);
/* verify: the report, kind by kind with the first names. */
int ctl_output_verify(FILE *f, const json_t *answer, struct err *e);
/* deletions: the held deletions' names and how many. */
int ctl_output_deletions(FILE *f, const json_t *answer, struct err *e);
/* /getitem: the item's attributes ("data") as "Key: value" lines, the
 * known attributes first in the table's order, then any others sorted. */
int ctl_output_item(FILE *f, const json_t *answer, struct err *e);
/* /url: the link alone on its line. */
int ctl_output_url(FILE *f, const json_t *answer, struct err *e);
/* /url: how long the link lasts, and why it is shorter than asked when it
 * is ("expires in 1h (at ...)"); nothing for an answer without it. */
void ctl_output_url_note(FILE *f, const json_t *answer);
/* The answers to commands: "message", with the file it names. */
int ctl_output_message(FILE *f, const json_t *answer, struct err *e);

#endif
