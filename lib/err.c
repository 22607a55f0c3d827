#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void
err_clear(struct err *e)
{
	memset(e, 0, sizeof(*e));
}

static void
err_vset(struct err *e, enum err_kind kind, const char *fmt, va_list ap)
{
	e->kind = kind;
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
}

void
err_set(struct err *e, enum err_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	err_vset(e, kind, fmt, ap);
	va_end(ap);
}

void
err_sys(struct err *e, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t n;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	err_vset(e, ERR_SYS, fmt, ap);
	va_end(ap);
	e->sys_errno = saved;
	n = strlen(e->message);
	snprintf(e->message + n, sizeof(e->message) - n, ": %s",
	         strerror(saved));
	errno = saved;
}

const char *
err_kind_name(enum err_kind kind)
{
	switch (kind) {
	case ERR_NONE:
		return "none";
	case ERR_SYS:
		return "system";
	case ERR_NET:
		return "network";
	case ERR_HTTP:
		return "http";
	case ERR_PARSE:
		return "parse";
	case ERR_CONFIG:
		return "config";
	case ERR_CREDS:
		return "credentials";
	case ERR_CANCEL:
		return "cancelled";
	case ERR_INVALID:
		return "invalid";
	case ERR_DB:
		return "state";
	case ERR_NAME:
		return "name";
	}
	return "unknown";
}
