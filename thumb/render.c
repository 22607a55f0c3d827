/*
 * render: one thumbnail with libvips (see render.h). libvips is chosen for
 * its shrink-on-load (a 24 MP JPEG is decoded at an eighth of its size, in
 * a few MB), its streaming from a descriptor, and its loaders being the
 * maintained Debian libraries (libjpeg-turbo, libpng, libwebp, libheif,
 * libtiff, giflib); what it would hand to ImageMagick or poppler is
 * blocked as untrusted.
 */
#include "render.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>
#include <vips/vector.h> /* after vips.h, which it needs */

int
render_init(const char *argv0, char *why, size_t whylen)
{
	if (VIPS_INIT(argv0) != 0) {
		snprintf(why, whylen, "libvips: %s", vips_error_buffer());
		return -1;
	}
	vips_block_untrusted_set(TRUE);
	vips_cache_set_max(0);
	vips_concurrency_set(1);
	vips_leak_set(FALSE);
	/* No run-time code generation (orc): the sandbox maps no executable
	 * memory, and systemd's MemoryDenyWriteExecute would refuse it too. */
	vips_vector_set_enabled(FALSE);
	return 0;
}

/* libvips' last error, on one line, into a->reason. */
static void
render_reason(struct thumb_answer *a, const char *what)
{
	const char *e = vips_error_buffer();
	size_t i, n;

	n = (size_t)snprintf(a->reason, sizeof(a->reason), "%s%s%s", what,
	                     e[0] != '\0' ? ": " : "", e);
	if (n >= sizeof(a->reason))
		n = sizeof(a->reason) - 1;
	while (n > 0 && (a->reason[n - 1] == '\n' || a->reason[n - 1] == ' '))
		a->reason[--n] = '\0';
	for (i = 0; i < n; i++)
		if (a->reason[i] == '\n')
			a->reason[i] = ' ';
	vips_error_clear();
}

int
render_thumbnail(int fd, const struct thumb_request *rq, struct thumb_answer *a,
                 void **out)
{
	VipsSource *src;
	VipsImage *img = NULL;
	size_t len = 0;
	void *buf = NULL;
	int rc;

	*out = NULL;
	if (lseek(fd, 0, SEEK_SET) == -1) {
		a->status = THUMB_UNREADABLE;
		snprintf(a->reason, sizeof(a->reason), "cannot read the file");
		return -1;
	}
	src = vips_source_new_from_descriptor(fd);
	if (src == NULL) {
		a->status = THUMB_UNREADABLE;
		render_reason(a, "cannot read the file");
		return -1;
	}
	/* Upright (EXIF orientation applied), within side x side, never
	 * enlarged; a damaged image fails instead of coming out grey. */
	rc = vips_thumbnail_source(src, &img, (int)rq->side, "height",
	                           (int)rq->side, "size", VIPS_SIZE_DOWN,
	                           "fail_on", VIPS_FAIL_ON_ERROR, NULL);
	g_object_unref(src);
	if (rc != 0) {
		a->status = THUMB_UNREADABLE;
		render_reason(a, "cannot decode the image");
		return -1;
	}
	if (rq->format == THUMB_JPEG)
		rc = vips_jpegsave_buffer(img, &buf, &len, "Q",
		                          (int)rq->quality, "strip", TRUE,
		                          "optimize_coding", TRUE, NULL);
	else
		rc =
		    vips_webpsave_buffer(img, &buf, &len, "Q", (int)rq->quality,
		                         "strip", TRUE, NULL);
	a->width = (uint32_t)vips_image_get_width(img);
	a->height = (uint32_t)vips_image_get_height(img);
	g_object_unref(img);
	if (rc != 0) {
		a->status = THUMB_UNREADABLE;
		render_reason(a, "cannot encode the thumbnail");
		return -1;
	}
	if (len > THUMB_MAX_BYTES) {
		g_free(buf);
		a->status = THUMB_TOO_LARGE;
		snprintf(a->reason, sizeof(a->reason),
		         "the thumbnail is %zu bytes, more than %u", len,
		         THUMB_MAX_BYTES);
		return -1;
	}
	a->status = THUMB_OK;
	a->len = (uint32_t)len;
	*out = buf;
	return 0;
}

void
render_free(void *p)
{
	g_free(p);
}
