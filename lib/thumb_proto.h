/*
 * thumb_proto: the messages between imgsyncd and its thumbnail helper,
 * imgsync-thumb, over a SOCK_SEQPACKET socketpair (one message each way
 * per image, so neither side frames a stream). A request carries the
 * image's descriptor (SCM_RIGHTS, read-only, the one the daemon hashed and
 * uploaded from); the answer carries the encoded thumbnail after its
 * header. Both sides are built from one tree: the layout is plain structs
 * in host order, checked by the magic and the sizes.
 */
#ifndef IMGSYNC_THUMB_PROTO_H
#define IMGSYNC_THUMB_PROTO_H

#include <stdint.h>

#define THUMB_MAGIC 0x494d5448u /* "IMTH" */
/* The most bytes of thumbnail an answer carries; a larger one is an error
 * (a 320 px WebP is a few tens of KB). */
#define THUMB_MAX_BYTES (1024u * 1024u)
#define THUMB_MAX_SIDE 4096u

enum thumb_format { THUMB_WEBP = 0, THUMB_JPEG = 1 };

enum thumb_status {
	THUMB_OK = 0,
	THUMB_UNREADABLE = 1, /* not an image libvips decodes: reason says */
	THUMB_TOO_LARGE = 2,  /* the encoded thumbnail passes the maximum */
	THUMB_BAD_REQUEST = 3
};

struct thumb_request {
	uint32_t magic;
	uint32_t id;
	uint32_t side;    /* longest side of the thumbnail, pixels */
	uint32_t format;  /* enum thumb_format */
	uint32_t quality; /* 1-100 */
};

struct thumb_answer {
	uint32_t magic;
	uint32_t id;
	uint32_t status;        /* enum thumb_status */
	uint32_t width, height; /* the thumbnail's, upright */
	uint32_t len;           /* bytes of thumbnail after this header */
	char reason[232];       /* when status is not THUMB_OK */
};

#endif
