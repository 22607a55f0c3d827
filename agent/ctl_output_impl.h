/*
 * ctl_output_impl: what the rooms of the text back end share, private to
 * them. ctl_output.c holds the pieces (sizes, durations, escaping, display
 * width, JSON values as text) and the answers printed as lines (an item,
 * a message); ctl_output_table.c the aligned table and the answers printed
 * as one (images, failed files); ctl_output_status.c the status lines;
 * ctl_output_verify.c the verify report and the held deletions. Calls go
 * one way: from the answers' rooms to ctl_output.c.
 */
#ifndef IMGSYNC_CTL_OUTPUT_IMPL_H
#define IMGSYNC_CTL_OUTPUT_IMPL_H

#include "ctl_output.h"

/* Any JSON value as escaped text: strings as they are, numbers, booleans,
 * null, objects and arrays as compact JSON; absent -> "-". The caller
 * frees; NULL when out of memory. */
char *ctl_output_value_text(const json_t *v);
/* A message from the daemon: as ctl_output_value_text, backslashes kept. */
char *ctl_output_message_text(const json_t *v);
/* 1 with *v set when o's member key is a number, else 0. */
int ctl_output_number(const json_t *o, const char *key, double *v);
/* Flushes f: 0, or -1 with e set when writing failed. */
int ctl_output_write_check(FILE *f, struct err *e);

#endif
