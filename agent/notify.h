/*
 * notify: the systemd notification protocol (sd_notify(3)): one datagram
 * of "KEY=VALUE" lines to the socket in $NOTIFY_SOCKET. Written here
 * rather than taken from libsystemd, which would add its own dependencies
 * (libgcrypt, lz4, zstd, lzma: about 0.6 MB of resident memory) for one
 * sendto; the protocol is stable and documented.
 */
#ifndef IMGSYNC_NOTIFY_H
#define IMGSYNC_NOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1"); 0 when sent or when not run by systemd,
 * -1 with errno otherwise. */
int notify_send(const char *state);
/* The watchdog interval systemd asks for, in microseconds, or 0. */
uint64_t notify_watchdog_usec(void);

#endif
