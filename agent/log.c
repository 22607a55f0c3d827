#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "text.h"

/* The one piece of process-wide state: logging is per process by nature. */
static enum config_log_level log_level = CONFIG_LOG_INFO;
static int log_time;
static int log_journal; /* stderr is journald's stream: "<N>" prefixes */

/* Whether stderr is the stream systemd connected to the journal: its
 * device and inode are in JOURNAL_STREAM (systemd.exec(5)). */
static int
log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	return fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
log_init(enum config_log_level level, int with_time)
{
	log_level = level;
	log_journal = log_stderr_is_journal();
	log_time = with_time && !log_journal;
}

/* The syslog priority journald reads from a "<N>" prefix (sd-daemon(3)). */
static int
log_priority(enum config_log_level level)
{
	switch (level) {
	case CONFIG_LOG_ERROR:
		return 3;
	case CONFIG_LOG_WARN:
		return 4;
	case CONFIG_LOG_INFO:
		return 6;
	default:
		return 7;
	}
}

void
log_set_level(enum config_log_level level)
{
	log_level = level;
}

int
log_enabled(enum config_log_level level)
{
	return level >= log_level;
}

static void
log_vwrite(enum config_log_level level, const char *tag, const char *fmt,
           va_list ap, const char *suffix)
{
	char line[2048], stamp[32] = "", *nl;
	struct timespec ts;
	struct tm tm;
	int n;

	if (!log_enabled(level))
		return;
	if (log_journal)
		snprintf(stamp, sizeof(stamp), "<%d>", log_priority(level));
	else if (log_time) {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - (size_t)n, ".%03ld ",
		         ts.tv_nsec / 1000000);
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	/* One message, one line (and one journal entry at its priority). */
	for (nl = line; (nl = strpbrk(nl, "\r\n")) != NULL;)
		*nl = ' ';
	fprintf(stderr, "%s%s%s%s%s\n", stamp, tag, line,
	        suffix != NULL ? ": " : "", suffix != NULL ? suffix : "");
}

#define LOG_FN(name, level, tag)                                               \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(level, tag, fmt, ap, NULL);                         \
		va_end(ap);                                                    \
	}

LOG_FN(log_warnx, CONFIG_LOG_WARN, "warning: ")
LOG_FN(log_error, CONFIG_LOG_ERROR, "error: ")
LOG_FN(log_info, CONFIG_LOG_INFO, "")
LOG_FN(log_debug, CONFIG_LOG_DEBUG, "debug: ")

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite(CONFIG_LOG_WARN, "warning: ", fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

const char *
log_path(const char *path, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)path;
	const unsigned char *end = p + strlen(path);
	size_t o = 0, n;

	while (*p != '\0' && o + 8 < outlen) {
		n = text_utf8_len((const char *)p, (size_t)(end - p));
		if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\') {
			out[o++] = (char)*p++;
		} else if (n > 1) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
			                      *p++);
		}
	}
	if (*p != '\0' && o + 4 <= outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
