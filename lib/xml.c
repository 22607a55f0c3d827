#include "xml.h"

#include <expat.h>
#include <string.h>

#include "buf.h"

#define XML_MAX_TEXT (1u << 20)

struct xml_state {
	XML_Parser parser;
	struct buf path;
	struct buf text;
	xml_end_cb cb;
	void *arg;
	int stopped;
};

static void XMLCALL
xml_on_start(void *userp, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_state *s = userp;

	(void)attrs;
	if (s->path.len > 0)
		buf_putc(&s->path, '/');
	buf_puts(&s->path, name);
	buf_reset(&s->text);
}

static void XMLCALL
xml_on_end(void *userp, const XML_Char *name)
{
	struct xml_state *s = userp;
	char *slash;

	(void)name;
	if (!s->stopped && buf_cstr(&s->path) != NULL &&
	    buf_cstr(&s->text) != NULL &&
	    s->cb(s->path.data, s->text.data, s->text.len, s->arg) == -1) {
		s->stopped = 1;
		XML_StopParser(s->parser, XML_FALSE);
	}
	buf_reset(&s->text);
	if (s->path.data == NULL)
		return;
	slash = strrchr(s->path.data, '/');
	s->path.len = slash != NULL ? (size_t)(slash - s->path.data) : 0;
	s->path.data[s->path.len] = '\0';
}

static void XMLCALL
xml_on_text(void *userp, const XML_Char *p, int len)
{
	struct xml_state *s = userp;

	buf_append(&s->text, p, (size_t)len);
}

int
xml_parse(const char *doc, size_t len, xml_end_cb cb, void *arg, struct err *e)
{
	struct xml_state s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	buf_init(&s.path, 4096);
	buf_init(&s.text, XML_MAX_TEXT);
	s.cb = cb;
	s.arg = arg;
	s.parser = XML_ParserCreate("UTF-8");
	if (s.parser == NULL) {
		err_set(e, ERR_SYS, "xml: out of memory");
		goto done;
	}
	XML_SetUserData(s.parser, &s);
	XML_SetElementHandler(s.parser, xml_on_start, xml_on_end);
	XML_SetCharacterDataHandler(s.parser, xml_on_text);
	if (XML_Parse(s.parser, doc, (int)len, XML_TRUE) == XML_STATUS_ERROR &&
	    !s.stopped) {
		err_set(e, ERR_PARSE, "xml: %s at line %lu",
		        XML_ErrorString(XML_GetErrorCode(s.parser)),
		        (unsigned long)XML_GetCurrentLineNumber(s.parser));
		goto done;
	}
	if (s.path.failed || s.text.failed) {
		err_set(e, ERR_PARSE, "xml: document too deep or too large");
		goto done;
	}
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

static int
xml_err_elem(const char *path, const char *text, size_t len, void *arg)
{
	struct xml_err_ctx *x = arg;
	struct err *e = x->e;

	if (strcmp(path, "Error") == 0 || strcmp(path, "ErrorResponse") == 0)
		x->is_error = 1;
	else if (xml_ends_with(path, "Error/Code"))
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
	(void)xml_parse(doc, len, xml_err_elem, &x, &perr);
	return x.is_error;
}
