/*
 * ctl_output: imgsyncctl's text back end (ctl_output.h says what it
 * prints): the pieces every answer uses (sizes, durations, escaping,
 * display width, JSON values as text) and the answers printed as lines,
 * an item's attributes and a command's message; the item's attributes and
 * their order are item.h's. ctl_output_impl.h says where the other
 * answers are.
 */
#include "ctl_output.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl_output_impl.h"
#include "item.h"
#include "text.h"

const char *
ctl_output_size(double bytes, char *out, size_t outlen)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB",
	                                   "TiB", "PiB", "EiB"};
	size_t i = 0;
	double v;

	if (isnan(bytes) || bytes < 0) {
		snprintf(out, outlen, "-");
		return out;
	}
	if (bytes < 1023.5) {
		snprintf(out, outlen, "%.0f B", bytes);
		return out;
	}
	v = bytes / 1024;
	/* 1023.96 KiB would print as "1024.0 KiB": that is 1.0 MiB */
	while (v >= 1023.95 && i + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		i++;
	}
	snprintf(out, outlen, "%.1f %s", v, unit[i]);
	return out;
}

const char *
ctl_output_duration(double seconds, char *out, size_t outlen)
{
	long long s, d, h, m;

	if (isnan(seconds) || seconds < 0 || seconds > 1e15) {
		snprintf(out, outlen, "-");
		return out;
	}
	s = (long long)seconds;
	d = s / 86400;
	h = s % 86400 / 3600;
	m = s % 3600 / 60;
	s %= 60;
	if (d > 0)
		snprintf(out, outlen, "%lldd %lldh %lldm", d, h, m);
	else if (h > 0)
		snprintf(out, outlen, "%lldh %lldm %llds", h, m, s);
	else if (m > 0)
		snprintf(out, outlen, "%lldm %llds", m, s);
	else
		snprintf(out, outlen, "%llds", s);
	return out;
}

static uint32_t
utf8_decode(const unsigned char *p, size_t len)
{
	switch (len) {
	case 2:
		return (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
	case 3:
		return (uint32_t)(p[0] & 0x0f) << 12 |
		       (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
	case 4:
		return (uint32_t)(p[0] & 0x07) << 18 |
		       (uint32_t)(p[1] & 0x3f) << 12 |
		       (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
	default:
		return p[0];
	}
}

/* Code points that are well-formed but move the cursor, end a line or
 * reorder the text around them. */
static int
unsafe_code_point(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

static char *
escape(const char *s, size_t n, int backslash)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	size_t i = 0, len;
	uint32_t cp;

	buf_init(&b, 0);
	while (i < n) {
		if (p[i] == '\\' && backslash) {
			buf_puts(&b, "\\\\");
		} else if (p[i] == '\n') {
			buf_puts(&b, "\\n");
		} else if (p[i] == '\r') {
			buf_puts(&b, "\\r");
		} else if (p[i] == '\t') {
			buf_puts(&b, "\\t");
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			buf_printf(&b, "\\x%02x", p[i]);
		} else if (p[i] < 0x80) {
			buf_putc(&b, (char)p[i]);
		} else {
			len = text_utf8_len(s + i, n - i);
			if (len == 0) {
				buf_printf(&b, "\\x%02x", p[i]);
				i++;
				continue;
			}
			cp = utf8_decode(p + i, len);
			if (unsafe_code_point(cp))
				buf_printf(&b, "\\u%04x", (unsigned)cp);
			else
				buf_append(&b, s + i, len);
			i += len;
			continue;
		}
		i++;
	}
	return buf_steal(&b);
}

char *
ctl_output_escape(const char *s, size_t n)
{
	return escape(s, n, 1);
}

char *
ctl_output_escape_message(const char *s, size_t n)
{
	return escape(s, n, 0);
}

static int
wide_code_point(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115f) ||
	       (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
	       (cp >= 0xac00 && cp <= 0xd7a3) ||
	       (cp >= 0xf900 && cp <= 0xfaff) ||
	       (cp >= 0xfe30 && cp <= 0xfe4f) ||
	       (cp >= 0xff00 && cp <= 0xff60) ||
	       (cp >= 0xffe0 && cp <= 0xffe6) ||
	       (cp >= 0x1f300 && cp <= 0x1f64f) ||
	       (cp >= 0x1f900 && cp <= 0x1f9ff) ||
	       (cp >= 0x20000 && cp <= 0x3fffd);
}

static int
combining_code_point(uint32_t cp)
{
	return (cp >= 0x0300 && cp <= 0x036f) ||
	       (cp >= 0x1ab0 && cp <= 0x1aff) ||
	       (cp >= 0x1dc0 && cp <= 0x1dff) ||
	       (cp >= 0x20d0 && cp <= 0x20ff) ||
	       (cp >= 0xfe20 && cp <= 0xfe2f) || cp == 0x200b || cp == 0x200c ||
	       cp == 0x200d;
}

size_t
ctl_output_width(const char *s)
{
	size_t n = strlen(s), i = 0, w = 0;

	while (i < n) {
		size_t len = text_utf8_len(s + i, n - i);
		uint32_t cp;

		if (len == 0)
			len = 1;
		cp = utf8_decode((const unsigned char *)s + i, len);
		if (wide_code_point(cp))
			w += 2;
		else if (!combining_code_point(cp))
			w++;
		i += len;
	}
	return w;
}

/* ---- values ---------------------------------------------------------- */

char *
ctl_output_value_text(const json_t *v)
{
	char *dump, *out;

	if (v == NULL)
		return strdup("-");
	if (json_is_string(v))
		return ctl_output_escape(json_string_value(v),
		                         json_string_length(v));
	dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (dump == NULL)
		return NULL;
	out = ctl_output_escape(dump, strlen(dump));
	free(dump);
	return out;
}

char *
ctl_output_message_text(const json_t *v)
{
	if (json_is_string(v))
		return ctl_output_escape_message(json_string_value(v),
		                                 json_string_length(v));
	return ctl_output_value_text(v);
}

int
ctl_output_number(const json_t *o, const char *key, double *v)
{
	const json_t *n = json_object_get(o, key);

	if (!json_is_number(n))
		return 0;
	*v = json_number_value(n);
	return 1;
}

int
ctl_output_write_check(FILE *f, struct err *e)
{
	if (fflush(f) != 0 || ferror(f)) {
		err_sys(e, "write error");
		return -1;
	}
	return 0;
}

/* ---- answers as lines ------------------------------------------------ */

static int
attribute_line(FILE *f, const char *key, const json_t *v)
{
	char *k = ctl_output_escape(key, strlen(key)),
	     *s = ctl_output_value_text(v);
	char size[32];
	int rc = -1;

	if (k == NULL || s == NULL)
		goto out;
	fprintf(f, "%s: %s", k, s);
	if (strcmp(key, ITEM_SIZE) == 0 && json_is_number(v))
		fprintf(
		    f, " (%s)",
		    ctl_output_size(json_number_value(v), size, sizeof(size)));
	fputc('\n', f);
	rc = 0;
out:
	free(k);
	free(s);
	return rc;
}

static int
known_key(const char *key)
{
	size_t i;

	for (i = 0; i < item_nattributes; i++)
		if (strcmp(key, item_attributes[i]) == 0)
			return 1;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
ctl_output_item(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *item = json_object_get(answer, "data"), *v;
	const char **rest = NULL, *key;
	size_t i, n = 0;

	if (!json_is_object(item)) {
		err_set(e, ERR_PARSE, "no \"data\" object in the answer");
		return -1;
	}
	for (i = 0; i < item_nattributes; i++) {
		v = json_object_get(item, item_attributes[i]);
		if (v != NULL && attribute_line(f, item_attributes[i], v) == -1)
			goto oom;
	}
	rest = calloc(json_object_size(item) + 1, sizeof(*rest));
	if (rest == NULL)
		goto oom;
	json_object_foreach((json_t *)item, key, v)
	{
		if (!known_key(key))
			rest[n++] = key;
	}
	qsort(rest, n, sizeof(*rest), cmp_str);
	for (i = 0; i < n; i++)
		if (attribute_line(f, rest[i],
		                   json_object_get(item, rest[i])) == -1)
			goto oom;
	free(rest);
	return ctl_output_write_check(f, e);
oom:
	free(rest);
	err_set(e, ERR_SYS, "out of memory");
	return -1;
}

int
ctl_output_message(FILE *f, const json_t *answer, struct err *e)
{
	const json_t *msg = json_object_get(answer, "message");
	const json_t *file = json_object_get(answer, "deletedFile");
	char *m, *name = NULL;

	if (file == NULL)
		file = json_object_get(answer, ITEM_FILENAME);
	m = json_is_string(msg) ? ctl_output_message_text(msg) : strdup("OK");
	if (json_is_string(file))
		name = ctl_output_value_text(file);
	if (m == NULL || (json_is_string(file) && name == NULL)) {
		free(m);
		free(name);
		err_set(e, ERR_SYS, "out of memory");
		return -1;
	}
	if (name != NULL)
		fprintf(f, "%s: %s\n", m, name);
	else
		fprintf(f, "%s\n", m);
	free(m);
	free(name);
	return ctl_output_write_check(f, e);
}

int
ctl_output_url(FILE *f, const json_t *answer, struct err *e)
{
	const char *url = json_string_value(json_object_get(answer, "url")), *p;

	if (url == NULL) {
		err_set(e, ERR_PARSE, "no \"url\" in the answer");
		return -1;
	}
	/* a URL is printable ASCII: anything else is not written to a
	 * terminal */
	for (p = url; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~') {
			err_set(e, ERR_PARSE,
			        "the answer's \"url\" is not a URL");
			return -1;
		}
	fprintf(f, "%s\n", url);
	return ctl_output_write_check(f, e);
}

void
ctl_output_url_note(FILE *f, const json_t *answer)
{
	const char *at =
	    json_string_value(json_object_get(answer, "expires_at"));
	double secs;
	char d[32];

	if (at == NULL || !ctl_output_number(answer, "expires_in", &secs))
		return;
	fprintf(f, "expires in %s (at %s)%s\n",
	        ctl_output_duration(secs, d, sizeof(d)), at,
	        json_is_true(json_object_get(answer, "capped"))
	            ? ": cut to the expiry of the daemon's credentials"
	            : "");
}
