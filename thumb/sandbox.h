/*
 * sandbox: what imgsync-thumb may do. Before libvips starts, every
 * descriptor but the standard three is closed and standard input must be
 * the daemon's SOCK_SEQPACKET socket. Once libvips is loaded: its address
 * space is bounded, it holds few descriptors and starts no process, and a
 * seccomp filter lets through only the system calls decoding, encoding and
 * the socket need: opening any path, writing anywhere but standard error
 * (the daemon's log), making a socket, running a program, tracing,
 * mounting and the like fail with EPERM. (No RLIMIT_FSIZE: standard error
 * may be a regular file, and the filter already allows no other write.)
 */
#ifndef IMGSYNC_THUMB_SANDBOX_H
#define IMGSYNC_THUMB_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

/* check: for sandbox_check, without the daemon's socket. */
int sandbox_prepare(int check, char *why, size_t whylen);
/* memory: bytes of address space the helper may take beyond what it has
 * mapped once libvips is loaded (its libraries), at most. */
int sandbox_enter(uint64_t memory, char *why, size_t whylen);
/* Inside the sandbox: tries what it must refuse (open a file, make a
 * socket, fork, map executable memory, reserve a TiB), says how each went
 * on standard error (the one output the filter allows); 0 when all were
 * refused. */
int sandbox_check(void);

#endif
