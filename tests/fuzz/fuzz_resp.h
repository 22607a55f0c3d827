/*
 * For the fuzz targets over response parsers: an input read as a raw HTTP
 * response, made into the struct http_response that lib/http.c hands to
 * its callbacks, byte for byte as it would build it.
 *
 * Input layout: when the input starts with "HTTP/" and holds "\r\n\r\n",
 * what comes before (and the first CRLF of the blank line) is the header
 * block, its status line included (as http.c keeps it), and the status is
 * the three digits after the first space (200 when they are not digits);
 * what follows is the body. Any other input is a body alone, answered 200
 * with no headers. A seed is therefore a response body as AWS sends it, or
 * a whole response.
 */
#ifndef IMGSYNC_FUZZ_RESP_H
#define IMGSYNC_FUZZ_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"

/* As http.c: unbounded here (its caps are transport limits). A part that
 * is empty leaves its buf untouched, data NULL, as when curl wrote
 * nothing. */
static void
fuzz_resp_init(struct http_response *resp, const uint8_t *data, size_t size)
{
	const uint8_t *sep = NULL, *sp;
	size_t hlen = 0, i;
	long st = 0;

	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, 0);
	buf_init(&resp->headers, 0);
	resp->status = 200;
	if (size >= 5 && memcmp(data, "HTTP/", 5) == 0)
		sep = memmem(data, size, "\r\n\r\n", 4);
	if (sep != NULL) {
		hlen = (size_t)(sep - data) + 2;
		if (buf_append(&resp->headers, data, hlen) == -1)
			abort();
		sp = memchr(data, ' ', hlen);
		for (i = 1; sp != NULL && i <= 3 && sp + i < data + hlen; i++) {
			if (sp[i] < '0' || sp[i] > '9')
				break;
			st = st * 10 + (sp[i] - '0');
		}
		if (i == 4)
			resp->status = st;
		hlen += 2;
	}
	if (size > hlen &&
	    buf_append(&resp->body, data + hlen, size - hlen) == -1)
		abort();
}

static void
fuzz_resp_cleanup(struct http_response *resp)
{
	buf_cleanup(&resp->body);
	buf_cleanup(&resp->headers);
}

/* A char array filled by a parser must hold its NUL. */
#define FUZZ_TERMINATED(a)                                                     \
	do {                                                                   \
		if (memchr((a), '\0', sizeof(a)) == NULL)                      \
			abort();                                               \
	} while (0)

#endif
