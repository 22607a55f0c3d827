/*
 * xml: the little that S3's answers need, on expat: a callback for each
 * element's end with its path ("ListBucketResult/Contents/Key") and text.
 */
#ifndef IMGSYNC_XML_H
#define IMGSYNC_XML_H

#include <stddef.h>

#include "err.h"

/* path is '/'-joined element names from the root; text is the element's
 * own character data (empty for containers). Return -1 to stop. */
typedef int (*xml_end_cb)(const char *path, const char *text, size_t len,
                          void *arg);

int xml_parse(const char *doc, size_t len, xml_end_cb cb, void *arg,
              struct err *e);

/* Fills e's code, message and request id from an AWS XML error document
 * (S3's <Error>, or the query protocol's <ErrorResponse><Errors><Error>);
 * returns 1 if doc is one, else 0. */
int xml_aws_error(const char *doc, size_t len, struct err *e);

/* Appends s to b with &, <, >, " and ' escaped. */
struct buf;
int xml_escape(struct buf *b, const char *s);

#endif
