/*
 * xml: the little that S3's answers need, on expat: a callback for each
 * element's end with its path ("ListBucketResult/Contents/Key") and text.
 */
#ifndef IMGSYNC_XML_H
#define IMGSYNC_XML_H

#include <stddef.h>

#include "err.h"

/* Caps, in bytes: an element's own text, and its path. */
#define XML_MAX_TEXT (1u << 20)
#define XML_MAX_PATH 4096u

/* path is '/'-joined element names from the root; text is the element's
 * own character data (empty for containers). Return -1 to stop. */
typedef int (*xml_end_cb)(const char *path, const char *text, size_t len,
                          void *arg);

/*
 * Calls cb at each element's end, in document order. Returns -1 with e
 * set (ERR_PARSE) when doc is not well-formed, or as soon as an element's
 * text would pass XML_MAX_TEXT or its path XML_MAX_PATH: such an element
 * is never handed to cb (nor is anything after it), and e names it. A cb
 * that returns -1 stops the parse, which then returns 0.
 */
int xml_parse(const char *doc, size_t len, xml_end_cb cb, void *arg,
              struct err *e);

/* Fills e's code, message and request id from an AWS XML error document
 * (S3's <Error>, or the query protocol's <ErrorResponse><Errors><Error>);
 * returns 1 if doc is one, else 0. One that fails to parse after its root
 * (cut short, an element over a cap) still is: what it had is kept, and
 * the message, when it had none, says why the rest is missing. */
int xml_aws_error(const char *doc, size_t len, struct err *e);

/* Appends s to b with &, <, >, " and ' escaped. */
struct buf;
int xml_escape(struct buf *b, const char *s);

#endif
