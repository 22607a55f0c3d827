/*
 * render: one thumbnail with libvips: decoded from a descriptor, shrunk on
 * load where the format allows (JPEG, WebP, HEIF), turned upright by its
 * EXIF orientation, encoded as WebP or JPEG without metadata.
 */
#ifndef IMGSYNC_THUMB_RENDER_H
#define IMGSYNC_THUMB_RENDER_H

#include <stddef.h>

#include "thumb_proto.h"

/* libvips started, with the loaders it calls untrusted (ImageMagick, PDF,
 * and the like) blocked, no operation cache and one worker thread. -1
 * with why set when libvips cannot start. */
int render_init(const char *argv0, char *why, size_t whylen);

/* The thumbnail of the image fd holds (read from its start): 0 with *out
 * (g_free it) and a->len, a->width, a->height set; else -1 with a->status
 * and a->reason set. */
int render_thumbnail(int fd, const struct thumb_request *rq,
                     struct thumb_answer *a, void **out);

/* Frees what render_thumbnail gave; NULL is a no-op. */
void render_free(void *p);

#endif
