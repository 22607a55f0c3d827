/*
 * imagemeta: what a file is, from its content (never its name), how large
 * a picture it holds when the header says so, and its SHA-256.
 *
 * Types come from magic bytes: image/jpeg, image/png, image/gif,
 * image/webp, image/bmp, image/tiff, image/heic, image/heif, image/avif,
 * image/jxl, image/vnd.microsoft.icon and image/svg+xml; anything else is
 * application/octet-stream, which is not an error. Width and height are
 * the picture as displayed: as coded, swapped when the EXIF Orientation
 * (read from JPEG's EXIF segment and TIFF's first directory) turns it a
 * quarter (5-8), as browsers and exiftool show it. HEIF irot and the EXIF
 * of PNG and WebP are not read: there they are as coded. For SVG only
 * width/height attributes that are plain integers, optionally in px.
 *
 * Every read is bounds-checked and every loop bounded: a truncated or
 * hostile header yields the type without dimensions, never a crash. The
 * probes return -1 only when reading the file fails.
 *
 * Nothing here keeps state between calls; all pointers are borrowed for the
 * duration of the call, except the struct imagemeta_hash the caller owns.
 */
#ifndef IMGSYNC_IMAGEMETA_H
#define IMGSYNC_IMAGEMETA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * How much of a file's start imagemeta_probe_buf wants to see to do as well
 * as imagemeta_probe_fd on all formats but JPEG (whose frame header may sit
 * after large EXIF/ICC segments), and how far the SVG prolog scan goes.
 */
#define IMAGEMETA_HEAD 65536
#define IMAGEMETA_OCTET_STREAM "application/octet-stream"

struct imagemeta {
	char type[64];          /* MIME type, always set */
	unsigned width, height; /* 0 when unknown; as displayed */
	int has_dimensions;     /* width and height both known and > 0 */
	unsigned orientation;   /* EXIF Orientation 1-8; 0: the file has none */
};

/*
 * Probes the first size bytes of fd (normally st_size) with pread, so the
 * file offset is untouched. Reads are bounded: a few KiB for most formats,
 * one small read per segment header for JPEG up to its frame header.
 * Returns -1 with e set (m then says application/octet-stream) only when a
 * read fails.
 */
int imagemeta_probe_fd(int fd, uint64_t size, struct imagemeta *m,
                       struct err *e);
/* The same on the first n bytes of a file; cannot fail, returns 0. */
int imagemeta_probe_buf(const void *p, size_t n, struct imagemeta *m);

/*
 * The SHA-256 of all of fd, read with pread from offset 0 to end of file,
 * as 64 lowercase hex digits and a NUL into out; *bytes (when bytes is not
 * NULL) gets the number of bytes hashed. Blocks for the whole read: the
 * event loop uses imagemeta_hash_* instead. Fails with ERR_SYS and
 * sys_errno EAGAIN when the file's size or mtime changed while it was read
 * (it is still being written: try again later).
 */
int imagemeta_sha256_fd(int fd, char out[65], uint64_t *bytes, struct err *e);

/*
 * Incremental SHA-256, for hashing a chunk per loop turn. final writes the
 * hex digest and resets the context, so it can hash the next input.
 * Returns NULL/-1 only when OpenSSL fails (out of memory).
 * imagemeta_hash_free(NULL) is a no-op.
 */
struct imagemeta_hash;

struct imagemeta_hash *imagemeta_hash_new(void);
int imagemeta_hash_update(struct imagemeta_hash *h, const void *p, size_t n);
int imagemeta_hash_final(struct imagemeta_hash *h, char out[65]);
void imagemeta_hash_free(struct imagemeta_hash *h);

#endif
