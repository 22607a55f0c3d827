/*
 * log: the daemon's one logging API, to stderr (journald adds the time).
 * log_warn adds strerror(errno); log_warnx does not; log_error is for what
 * stops the daemon or all of its work. Secrets never reach a log line:
 * callers log names, never keys.
 */
#ifndef IMGSYNC_LOG_H
#define IMGSYNC_LOG_H

#include "config.h"

void log_init(enum config_log_level level, int with_time);
void log_set_level(enum config_log_level level);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int log_enabled(enum config_log_level level);

/* A path made printable for a log line: control bytes and invalid UTF-8
 * become \xNN escapes; long names are cut. Returns out. */
const char *log_path(const char *path, char *out, size_t outlen);

#endif
