/*
 * text: small byte-string helpers shared by the daemon's modules: UTF-8
 * validation (S3 keys and DynamoDB strings must be UTF-8; log lines escape
 * what is not) and the FNV-1a hash its tables use.
 */
#ifndef IMGSYNC_TEXT_H
#define IMGSYNC_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Length of the well-formed UTF-8 sequence at p (at most n bytes; no
 * overlong forms, surrogates or code points past U+10FFFF), or 0. */
size_t text_utf8_len(const char *p, size_t n);
/* Whether all n bytes at p are well-formed UTF-8. */
int text_utf8_valid(const char *p, size_t n);
/* ts as ISO-8601 UTC with digits (0..9) fractional digits:
 * "2026-11-21T10:00:00.123Z". */
void text_iso_time(const struct timespec *ts, int digits, char *out,
                   size_t outlen);
/* ts in nanoseconds since the epoch, saturated to INT64_MIN/INT64_MAX
 * (years 1677 and 2262): a file's times are whatever its owner set. */
int64_t text_timespec_ns(const struct timespec *ts);
/* A duration as people write it: whole seconds ("90"), or a number with
 * one unit, s, m, h or d ("90s", "30m", "12h", "7d"). 0 with *out in
 * seconds (at most max), or -1 when it is none or out of 1..max. */
int text_duration_secs(const char *s, long max, long *out);
/* The value of one hex digit (either case), or -1. */
int text_hexval(int c);
/* s without its leading blanks (spaces, tabs) and trailing white space:
 * the end is cut in place; returns a pointer into s. */
char *text_trim(char *s);
/* 32-bit FNV-1a of n bytes. */
uint32_t text_hash(const void *p, size_t n);

#endif
