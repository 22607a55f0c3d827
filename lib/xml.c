#include "xml.h"

#include <expat.h>
#include <limits.h>
#include <string.h>

#include "buf.h"

struct xml_state {
	XML_Parser parser;
	struct buf path;
	struct buf text;
	xml_end_cb cb;
	void *arg;
	struct err *e;
	int stopped; /* by cb: not an error */
	int failed;  /* over a cap, or out of memory: e says which */
};

/* Ends the parse at the element being read: neither it nor anything after
 * it reaches cb, and xml_parse fails with e as set by the caller. */
static void
xml_fail(struct xml_state *s)
{
	s->failed = 1;
	XML_StopParser(s->parser, XML_FALSE);
}

static void
xml_nomem(struct xml_state *s)
{
	err_set(s->e, ERR_SYS, "xml: out of memory");
	xml_fail(s);
}

static void XMLCALL
xml_on_start(void *userp, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_state *s = userp;
	size_t sep;

	(void)attrs;
	if (s->stopped || s->failed)
		return;
	sep = s->path.len > 0 ? 1 : 0;
	if (s->path.len + sep + strlen(name) > XML_MAX_PATH) {
		err_set(s->e, ERR_PARSE,
		        "xml: element %.200s%s%.64s is nested too deep (path "
		        "over %u bytes)",
		        s->path.len > 0 ? s->path.data : "", sep ? "/" : "",
		        name, XML_MAX_PATH);
		xml_fail(s);
		return;
	}
	if ((sep && buf_putc(&s->path, '/') == -1) ||
	    buf_puts(&s->path, name) == -1) {
		xml_nomem(s);
		return;
	}
	buf_reset(&s->text);
}

static void XMLCALL
xml_on_end(void *userp, const XML_Char *name)
{
	struct xml_state *s = userp;
	const char *path, *text;
	char *slash;

	(void)name;
	if (s->stopped || s->failed)
		return;
	path = buf_cstr(&s->path);
	text = buf_cstr(&s->text);
	if (path == NULL || text == NULL) {
		xml_nomem(s);
		return;
	}
	if (s->cb(path, text, s->text.len, s->arg) == -1) {
		s->stopped = 1;
		XML_StopParser(s->parser, XML_FALSE);
	}
	buf_reset(&s->text);
	slash = strrchr(s->path.data, '/');
	s->path.len = slash != NULL ? (size_t)(slash - s->path.data) : 0;
	s->path.data[s->path.len] = '\0';
}

static void XMLCALL
xml_on_text(void *userp, const XML_Char *p, int len)
{
	struct xml_state *s = userp;

	if (s->stopped || s->failed)
		return;
	/* Refused, not dropped: a caller must not take a listing that lost
	 * a key for a complete one. */
	if ((size_t)len > XML_MAX_TEXT - s->text.len) {
		err_set(s->e, ERR_PARSE,
		        "xml: text of element %.200s is over %u bytes",
		        s->path.len > 0 ? s->path.data : "", XML_MAX_TEXT);
		xml_fail(s);
		return;
	}
	if (buf_append(&s->text, p, (size_t)len) == -1)
		xml_nomem(s);
}

int
xml_parse(const char *doc, size_t len, xml_end_cb cb, void *arg, struct err *e)
{
	struct xml_state s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	buf_init(&s.path, XML_MAX_PATH);
	buf_init(&s.text, XML_MAX_TEXT);
	s.cb = cb;
	s.arg = arg;
	s.e = e;
	if (len > INT_MAX) {
		err_set(e, ERR_PARSE,
		        "xml: a document of %zu bytes is too large", len);
		return -1;
	}
	s.parser = XML_ParserCreate("UTF-8");
	if (s.parser == NULL) {
		err_set(e, ERR_SYS, "xml: out of memory");
		goto done;
	}
	XML_SetUserData(s.parser, &s);
	XML_SetElementHandler(s.parser, xml_on_start, xml_on_end);
	XML_SetCharacterDataHandler(s.parser, xml_on_text);
	if (XML_Parse(s.parser, doc, (int)len, XML_TRUE) == XML_STATUS_ERROR &&
	    !s.stopped && !s.failed)
		err_set(e, ERR_PARSE, "xml: %s at line %lu",
		        XML_ErrorString(XML_GetErrorCode(s.parser)),
		        (unsigned long)XML_GetCurrentLineNumber(s.parser));
	else if (!s.failed)
		rc = 0;
done:
	if (s.parser != NULL)
		XML_ParserFree(s.parser);
	buf_cleanup(&s.path);
	buf_cleanup(&s.text);
	return rc;
}

int
xml_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		case '\'':
			buf_puts(b, "&apos;");
			break;
		default:
			buf_putc(b, *s);
		}
	}
	return b->failed ? -1 : 0;
}

static int
xml_ends_with(const char *path, const char *tail)
{
	size_t pl = strlen(path), tl = strlen(tail);

	return pl >= tl && strcmp(path + pl - tl, tail) == 0 &&
	       (pl == tl || path[pl - tl - 1] == '/');
}

static void
xml_copy(char *dst, size_t dstlen, const char *text, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, text, len);
	dst[len] = '\0';
}

struct xml_err_ctx {
	struct err *e;
	int is_error;
};

/* path is root or inside it. */
static int
xml_under(const char *path, const char *root)
{
	size_t n = strlen(root);

	return strncmp(path, root, n) == 0 &&
	       (path[n] == '\0' || path[n] == '/');
}

static int
xml_err_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct xml_err_ctx *x = arg;
	struct err *e = x->e;

	/* Known from the first element inside the root, so that a document
	 * that fails later (cut short, or over a cap) is still an error. */
	if (xml_under(path, "Error") || xml_under(path, "ErrorResponse"))
		x->is_error = 1;
	if (xml_ends_with(path, "Error/Code"))
		xml_copy(e->code, sizeof(e->code), text, len);
	else if (xml_ends_with(path, "Error/Message"))
		xml_copy(e->message, sizeof(e->message), text, len);
	else if (xml_ends_with(path, "RequestId"))
		xml_copy(e->request_id, sizeof(e->request_id), text, len);
	return 0;
}

int
xml_aws_error(const char *doc, size_t len, struct err *e)
{
	struct xml_err_ctx x;
	struct err perr;

	if (doc == NULL || len == 0 || memmem(doc, len, "<Error", 6) == NULL)
		return 0;
	x.e = e;
	x.is_error = 0;
	err_clear(&perr);
	if (xml_parse(doc, len, xml_err_elem, &x, &perr) == -1 && x.is_error &&
	    e->message[0] == '\0')
		xml_copy(e->message, sizeof(e->message), perr.message,
		         strlen(perr.message));
	return x.is_error;
}
