/*
 * thumbimg: test images for the thumbnail tests, made and read with
 * libvips (the library the helper uses, so no other imaging tool is
 * needed):
 *
 *   thumbimg make OUT.jpg|.png|.webp W H [ORIENTATION]
 *       W x H as coded: white, with the top-left quarter red; a JPEG gets
 *       the EXIF Orientation given (1-8).
 *   thumbimg read FILE
 *       prints "W H" of the image as stored (no rotation applied) and what
 *       each quarter is, top-left, top-right, bottom-left, bottom-right:
 *       r (red), w (white) or ? (neither), e.g. "200 150 rwww".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

static int
make(const char *out, int w, int h, int orientation)
{
	VipsImage *white = NULL, *red = NULL, *img = NULL;
	double wv[3] = {255, 255, 255}, rv[3] = {255, 0, 0};
	int rc = -1;

	if (vips_black(&white, w, h, "bands", 3, NULL) ||
	    vips_linear(white, &red, (double[]){1, 1, 1}, wv, 3, NULL))
		goto done;
	g_object_unref(white);
	white = red;
	red = NULL;
	if (vips_black(&red, w / 2, h / 2, "bands", 3, NULL))
		goto done;
	{
		VipsImage *r2 = NULL;

		if (vips_linear(red, &r2, (double[]){1, 1, 1}, rv, 3, NULL))
			goto done;
		g_object_unref(red);
		red = r2;
	}
	if (vips_insert(white, red, &img, 0, 0, NULL))
		goto done;
	{
		VipsImage *u = NULL;

		if (vips_cast_uchar(img, &u, NULL))
			goto done;
		g_object_unref(img);
		img = u;
	}
	if (orientation > 0)
		vips_image_set_int(img, VIPS_META_ORIENTATION, orientation);
	rc = vips_image_write_to_file(img, out, NULL);
done:
	if (rc != 0)
		fprintf(stderr, "thumbimg: %s\n", vips_error_buffer());
	if (white)
		g_object_unref(white);
	if (red)
		g_object_unref(red);
	if (img)
		g_object_unref(img);
	return rc;
}

/* 'r' when the quarter's mean is red, 'w' when white, '?' otherwise. */
static int
quarter(VipsImage *img, int qx, int qy, char *out)
{
	int w = vips_image_get_width(img) / 2,
	    h = vips_image_get_height(img) / 2;
	VipsImage *q = NULL, *b = NULL;
	double m[3];
	int i, rc = -1;

	if (vips_extract_area(img, &q, qx * w, qy * h, w, h, NULL))
		return -1;
	for (i = 0; i < 3; i++) {
		if (vips_extract_band(q, &b, i, NULL) ||
		    vips_avg(b, &m[i], NULL))
			goto done;
		g_object_unref(b);
		b = NULL;
	}
	*out = m[0] > 200 && m[1] > 200 && m[2] > 200 ? 'w'
	       : m[0] > 200 && m[1] < 60 && m[2] < 60 ? 'r'
	                                              : '?';
	rc = 0;
done:
	if (b)
		g_object_unref(b);
	g_object_unref(q);
	return rc;
}

static int
readback(const char *file)
{
	VipsImage *img = vips_image_new_from_file(file, NULL);
	char c[4];
	int i, rc = -1;

	if (img == NULL)
		goto done;
	for (i = 0; i < 4; i++)
		if (quarter(img, i % 2, i / 2, &c[i]) == -1)
			goto done;
	printf("%d %d %c%c%c%c\n", vips_image_get_width(img),
	       vips_image_get_height(img), c[0], c[1], c[2], c[3]);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "thumbimg: %s\n", vips_error_buffer());
	if (img)
		g_object_unref(img);
	return rc;
}

int
main(int argc, char **argv)
{
	if (VIPS_INIT(argv[0]) != 0)
		return 1;
	if (argc >= 5 && strcmp(argv[1], "make") == 0)
		return make(argv[2], atoi(argv[3]), atoi(argv[4]),
		            argc > 5 ? atoi(argv[5]) : 0) == 0
		           ? 0
		           : 1;
	if (argc == 3 && strcmp(argv[1], "read") == 0)
		return readback(argv[2]) == 0 ? 0 : 1;
	fprintf(stderr, "usage: thumbimg make OUT W H [ORIENTATION] | "
	                "thumbimg read FILE\n");
	return 2;
}
