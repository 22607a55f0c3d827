/*
 * netaddr: a TCP address as an operator writes it in a configuration,
 * "HOST:PORT" or "[IPV6]:PORT", HOST a numeric address or "localhost"
 * (no name is looked up: a listener must not depend on DNS at start).
 */
#ifndef IMGSYNC_NETADDR_H
#define IMGSYNC_NETADDR_H

#include <sys/socket.h>

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* 0, or -1 with *why saying what is wrong (a static string). */
int netaddr_parse(const char *s, struct netaddr *out, const char **why);
/* Whether only this machine can reach it: 127.0.0.0/8, ::1, or an
 * IPv4-mapped 127.x. */
int netaddr_is_loopback(const struct netaddr *a);
/* The port, in host order. */
unsigned netaddr_port(const struct netaddr *a);

#endif
