#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xml.h"

TestSuite(xml);

/* What the callback saw: each path with its text's length, one per line. */
struct seen {
	struct buf log;
	int stop_at; /* return -1 at this call (1-based); 0: never */
	int calls;
};

static int
on_end(const char *path, const char *text, size_t len, void *arg)
{
	struct seen *s = arg;

	(void)text;
	buf_printf(&s->log, "%s %zu\n", path, len);
	return ++s->calls == s->stop_at ? -1 : 0;
}

/* head, n copies of c, tail. */
static char *
doc_with(const char *head, size_t n, char c, const char *tail, size_t *len)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *d = malloc(hl + n + tl + 1);

	cr_assert_not_null(d);
	memcpy(d, head, hl);
	memset(d + hl, c, n);
	memcpy(d + hl + n, tail, tl + 1);
	*len = hl + n + tl;
	return d;
}

Test(xml, elements_in_document_order)
{
	static const char doc[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<ListBucketResult><Contents><Key>a&amp;b</Key>"
	    "<Size>12</Size></Contents></ListBucketResult>";
	struct seen s;
	struct err e;

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, sizeof(doc) - 1, on_end, &s, &e), 0);
	cr_assert_str_eq(buf_cstr(&s.log), "ListBucketResult/Contents/Key 3\n"
	                                   "ListBucketResult/Contents/Size 2\n"
	                                   "ListBucketResult/Contents 0\n"
	                                   "ListBucketResult 0\n");
	buf_cleanup(&s.log);
}

Test(xml, text_at_the_cap_is_delivered)
{
	struct seen s;
	struct err e;
	size_t len;
	char *doc =
	    doc_with("<R><K>", XML_MAX_TEXT, 'a', "</K><L>x</L></R>", &len);

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, len, on_end, &s, &e), 0, "%s", e.message);
	cr_assert_str_eq(buf_cstr(&s.log), "R/K 1048576\nR/L 1\nR 0\n");
	buf_cleanup(&s.log);
	free(doc);
}

/* Issue 9: an element over the cap was skipped and the parse succeeded, so
 * a listing could lose a key without anyone knowing. */
Test(xml, text_over_the_cap_fails_the_parse)
{
	struct seen s;
	struct err e;
	size_t len;
	char *doc =
	    doc_with("<R><K>", XML_MAX_TEXT + 1, 'a', "</K><L>x</L></R>", &len);

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, len, on_end, &s, &e), -1,
	             "an element over the cap must fail the parse");
	cr_assert_eq(e.kind, ERR_PARSE);
	cr_assert_not_null(strstr(e.message, "R/K"), "%s", e.message);
	cr_assert_not_null(strstr(e.message, "1048576"), "%s", e.message);
	cr_assert_str_eq(buf_cstr(&s.log), "",
	                 "nothing after the element is handed on");
	buf_cleanup(&s.log);
	free(doc);
}

/* Whitespace counts as text too (text between a container's children). */
Test(xml, container_text_over_the_cap_fails_the_parse)
{
	struct seen s;
	struct err e;
	size_t len;
	char *doc =
	    doc_with("<R><K/>", XML_MAX_TEXT + 1, ' ', "<L>x</L></R>", &len);

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, len, on_end, &s, &e), -1, "%s",
	             buf_cstr(&s.log));
	cr_assert_eq(e.kind, ERR_PARSE);
	cr_assert_str_eq(buf_cstr(&s.log), "R/K 0\n");
	buf_cleanup(&s.log);
	free(doc);
}

Test(xml, entities_expanded_over_the_cap_fail_the_parse)
{
	struct buf d;
	struct seen s;
	struct err e;
	int i;

	buf_init(&d, 0);
	buf_puts(&d, "<!DOCTYPE R [<!ENTITY k \"");
	for (i = 0; i < 1024; i++)
		buf_putc(&d, 'k');
	buf_puts(&d, "\">]><R><K>");
	for (i = 0; i < 1025; i++)
		buf_puts(&d, "&k;");
	buf_puts(&d, "</K></R>");
	cr_assert_not_null(buf_cstr(&d));
	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(d.data, d.len, on_end, &s, &e), -1);
	cr_assert_eq(e.kind, ERR_PARSE);
	cr_assert_str_eq(buf_cstr(&s.log), "");
	buf_cleanup(&s.log);
	buf_cleanup(&d);
}

Test(xml, path_over_the_cap_fails_the_parse)
{
	struct buf d;
	struct seen s;
	struct err e;
	int i, depth = (int)XML_MAX_PATH / 2 + 1;

	buf_init(&d, 0);
	for (i = 0; i < depth; i++)
		buf_puts(&d, "<a>");
	for (i = 0; i < depth; i++)
		buf_puts(&d, "</a>");
	cr_assert_not_null(buf_cstr(&d));
	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(d.data, d.len, on_end, &s, &e), -1);
	cr_assert_eq(e.kind, ERR_PARSE);
	cr_assert_not_null(strstr(e.message, "too deep"), "%s", e.message);
	cr_assert_str_eq(buf_cstr(&s.log), "");
	buf_cleanup(&s.log);
	buf_cleanup(&d);
}

Test(xml, malformed_fails_with_the_line)
{
	static const char doc[] = "<R>\n<K>x</R>";
	struct seen s;
	struct err e;

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, sizeof(doc) - 1, on_end, &s, &e), -1);
	cr_assert_eq(e.kind, ERR_PARSE);
	cr_assert_not_null(strstr(e.message, "line 2"), "%s", e.message);
	buf_cleanup(&s.log);
}

Test(xml, callback_stops_the_parse)
{
	static const char doc[] = "<R><A>1</A><B>2</B><C>3</C></R>";
	struct seen s;
	struct err e;

	memset(&s, 0, sizeof(s));
	buf_init(&s.log, 0);
	s.stop_at = 2;
	err_clear(&e);
	cr_assert_eq(xml_parse(doc, sizeof(doc) - 1, on_end, &s, &e), 0);
	cr_assert_eq(e.kind, ERR_NONE);
	cr_assert_str_eq(buf_cstr(&s.log), "R/A 1\nR/B 1\n");
	buf_cleanup(&s.log);
}

Test(xml, aws_error_fields)
{
	static const char s3[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<Error><Code>NoSuchKey</Code><Message>The resource you requested "
	    "does not exist</Message><Resource>/b/k</Resource>"
	    "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
	static const char query[] =
	    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
	    "<Message>Rate exceeded</Message></Error>"
	    "<RequestId>a-b-c</RequestId></ErrorResponse>";
	static const char ok[] = "<CopyObjectResult><ETag>\"x\"</ETag>"
	                         "</CopyObjectResult>";
	struct err e;

	err_clear(&e);
	cr_assert_eq(xml_aws_error(s3, sizeof(s3) - 1, &e), 1);
	cr_assert_str_eq(e.code, "NoSuchKey");
	cr_assert_str_eq(e.message,
	                 "The resource you requested does not exist");
	cr_assert_str_eq(e.request_id, "4442587FB7D0A2F9");
	err_clear(&e);
	cr_assert_eq(xml_aws_error(query, sizeof(query) - 1, &e), 1);
	cr_assert_str_eq(e.code, "Throttling");
	cr_assert_str_eq(e.message, "Rate exceeded");
	cr_assert_str_eq(e.request_id, "a-b-c");
	err_clear(&e);
	cr_assert_eq(xml_aws_error(ok, sizeof(ok) - 1, &e), 0);
	cr_assert_eq(xml_aws_error(NULL, 0, &e), 0);
	cr_assert_str_eq(e.code, "");
}

/* An error document with an element over the cap is still an error, and
 * says why its message is missing. */
Test(xml, aws_error_over_the_cap)
{
	struct err e;
	size_t len;
	char *doc = doc_with("<Error><Code>SlowDown</Code><Message>",
	                     XML_MAX_TEXT + 1, 'm', "</Message></Error>", &len);

	err_clear(&e);
	cr_assert_eq(xml_aws_error(doc, len, &e), 1);
	cr_assert_str_eq(e.code, "SlowDown");
	cr_assert_not_null(strstr(e.message, "Error/Message"), "%s", e.message);
	free(doc);
}
