/*
 * thumb_client: the daemon's side of imgsync-thumb (thumb/), the sandboxed
 * helper that turns an image into its thumbnail. The helper is started on
 * first use with a SOCK_SEQPACKET socketpair as its standard input and
 * asked one image at a time (its descriptor passed, never its path); the
 * answer is read on the loop. A helper that ends (its time limit, a crash,
 * a hostile image) fails only the image it had, with the reason from its
 * exit status, and the next request starts a new one.
 */
#ifndef IMGSYNC_THUMB_CLIENT_H
#define IMGSYNC_THUMB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loop.h"
#include "thumb_proto.h"

struct thumb_client;

struct thumb_client_opts {
	const char *helper; /* absolute path of imgsync-thumb */
	unsigned memory_mb;
	unsigned timeout_ms;
	unsigned side;
	enum thumb_format format;
	unsigned quality;
};

/* data (len bytes; width x height) on success, else data NULL and why
 * says why there is no thumbnail: the image's fault, or (helper_fault 1)
 * the helper's, which could not start (a bad installation, a sandbox it
 * cannot enter): not the image's. Borrowed for the call. */
typedef void (*thumb_done_cb)(const void *data, size_t len, unsigned width,
                              unsigned height, const char *why,
                              int helper_fault, void *arg);

/* Copies opts; starts nothing yet. */
struct thumb_client *thumb_client_new(struct loop *l,
                                      const struct thumb_client_opts *opts,
                                      struct err *e);
/* Ends the helper (by pid) and calls back a request in flight with
 * "cancelled". NULL is a no-op. */
void thumb_client_free(struct thumb_client *c);
/* Asks for the thumbnail of the image fd holds (fd is duplicated for the
 * message; the caller keeps its own). One request at a time: -1 with e
 * set when one is in flight or the helper cannot start. */
int thumb_client_ask(struct thumb_client *c, int fd, thumb_done_cb cb,
                     void *arg, struct err *e);

#endif
