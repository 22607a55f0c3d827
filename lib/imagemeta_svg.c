/*
 * imagemeta_svg: SVG, recognised by its root element after an optional XML
 * prolog in the file's head, with the width and height attributes that are
 * plain integers, optionally in px.
 */
#include <string.h>

#include "imagemeta_impl.h"

/*
 * Bounds on every loop over attacker-controlled counts. Real files stay far
 * below them; a hostile one costs at most this much work.
 */
#define SVG_MAX_NODES 64 /* prolog nodes before the root element */
#define SVG_MAX_ATTRS 256
#define SVG_MAX_TOKEN 32

static int
svg_byte(struct src *s, uint64_t off)
{
	unsigned char c;

	if (off >= IMAGEMETA_HEAD || imagemeta_src_get(s, off, &c, 1) == -1)
		return -1;
	return c;
}

static int
svg_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
svg_match(struct src *s, uint64_t off, const char *lit)
{
	size_t i;

	for (i = 0; lit[i] != '\0'; i++)
		if (svg_byte(s, off + i) != (unsigned char)lit[i])
			return 0;
	return 1;
}

/* The offset just past the first lit at or after off, or 0. */
static uint64_t
svg_past(struct src *s, uint64_t off, const char *lit)
{
	for (; off < IMAGEMETA_HEAD; off++)
		if (svg_match(s, off, lit))
			return off + strlen(lit);
	return 0;
}

/* Past a doctype's '>', which its quotes and [internal subset] may hold. */
static uint64_t
svg_past_doctype(struct src *s, uint64_t off)
{
	int c, quote = 0, depth = 0;

	while ((c = svg_byte(s, off)) != -1) {
		if (quote != 0) {
			if (c == quote)
				quote = 0;
		} else if (depth > 0 && svg_match(s, off, "<!--")) {
			off = svg_past(s, off + 4, "-->");
			if (off == 0)
				return 0;
			continue;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '[') {
			depth++;
		} else if (c == ']' && depth > 0) {
			depth--;
		} else if (c == '>' && depth == 0) {
			return off + 1;
		}
		off++;
	}
	return 0;
}

/* "120", "120px", blanks around: anything else (%, em, 1.5) is not used. */
static uint32_t
svg_length(const char *v)
{
	uint32_t n = 0;
	size_t digits = 0;

	while (svg_space(*v))
		v++;
	for (; *v >= '0' && *v <= '9'; v++) {
		if (++digits > 9)
			return 0;
		n = n * 10 + (uint32_t)(*v - '0');
	}
	if (digits == 0)
		return 0;
	if (v[0] == 'p' && v[1] == 'x')
		v += 2;
	while (svg_space(*v))
		v++;
	return *v == '\0' ? n : 0;
}

static int
svg_token_end(int c, int quote)
{
	if (quote != 0)
		return c == quote;
	return c == '=' || c == '>' || c == '/' || svg_space(c);
}

/* Reads one name or quoted value: 0 when it fit in tok, else -1. */
static int
svg_token(struct src *s, uint64_t *off, int quote, char *tok)
{
	size_t n = 0;
	int c, over = 0;

	while ((c = svg_byte(s, *off)) != -1 && !svg_token_end(c, quote)) {
		if (n < SVG_MAX_TOKEN - 1)
			tok[n++] = (char)c;
		else
			over = 1;
		(*off)++;
	}
	tok[n] = '\0';
	return c == -1 || over ? -1 : 0;
}

/* The attributes of <svg ...>, counted only when the tag is complete. */
static void
svg_attrs(struct src *s, uint64_t off, struct imagemeta *m)
{
	char name[SVG_MAX_TOKEN], value[SVG_MAX_TOKEN];
	uint32_t w = 0, h = 0;
	int c, quote, i, fits;

	for (i = 0; i < SVG_MAX_ATTRS; i++) {
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c == -1)
			return;
		if (c == '>' || c == '/') {
			meta_dims(m, w, h);
			return;
		}
		fits = svg_token(s, &off, 0, name) == 0;
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '=')
			return;
		off++;
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '"' && c != '\'')
			return;
		quote = c;
		off++;
		if (svg_token(s, &off, quote, value) == -1) {
			if (svg_byte(s, off) != quote)
				return;
			fits = 0;
		}
		off++;
		if (fits && strcmp(name, "width") == 0)
			w = svg_length(value);
		else if (fits && strcmp(name, "height") == 0)
			h = svg_length(value);
	}
}

/*
 * Text whose root element is <svg>, after an optional UTF-8 BOM, blanks,
 * the XML declaration, processing instructions, comments and a doctype.
 */
void
imagemeta_svg_probe(struct src *s, struct imagemeta *m)
{
	uint64_t off = 0;
	int c, i;

	if (svg_match(s, 0, "\xef\xbb\xbf"))
		off = 3;
	for (i = 0; i < SVG_MAX_NODES; i++) {
		while ((c = svg_byte(s, off)) != -1 && svg_space(c))
			off++;
		if (c != '<')
			return;
		if (svg_match(s, off, "<?")) {
			off = svg_past(s, off + 2, "?>");
		} else if (svg_match(s, off, "<!--")) {
			off = svg_past(s, off + 4, "-->");
		} else if (svg_match(s, off, "<!DOCTYPE")) {
			off = svg_past_doctype(s, off + 9);
		} else if (svg_match(s, off, "<svg")) {
			c = svg_byte(s, off + 4);
			if (c == '>' || c == '/' || (c != -1 && svg_space(c))) {
				meta_type(m, "image/svg+xml");
				svg_attrs(s, off + 4, m);
			}
			return;
		} else {
			return;
		}
		if (off == 0)
			return; /* unterminated */
	}
}
