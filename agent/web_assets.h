/*
 * web_assets: the gallery's pages, scripts and styles, built into the
 * daemon from web/ by web/embed.cmake (the table ends with a NULL path).
 */
#ifndef IMGSYNC_WEB_ASSETS_H
#define IMGSYNC_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path; /* the URL path: "/", "/app.js" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct web_asset web_assets[];

#endif
