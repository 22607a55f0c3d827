/*
 * netaddr: parsing "HOST:PORT" and "[IPV6]:PORT" into a socket address,
 * and telling a loopback address from one other machines can reach.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define NETADDR_HOST_MAX 64

static int
netaddr_port_parse(const char *s, unsigned *port)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
netaddr_parse(const char *s, struct netaddr *out, const char **why)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
	char host[NETADDR_HOST_MAX];
	const char *colon, *hs;
	size_t hlen;
	unsigned port;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		colon = strstr(s, "]:");
		if (colon == NULL) {
			*why = "must be \"[IPV6]:PORT\"";
			return -1;
		}
		hs = s + 1;
		hlen = (size_t)(colon - hs);
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s))) {
			*why = "must be \"HOST:PORT\" or \"[IPV6]:PORT\"";
			return -1;
		}
		hs = s;
		hlen = (size_t)(colon - s);
	}
	if (netaddr_port_parse(colon + 1, &port) == -1) {
		*why = "the port must be 1 to 65535";
		return -1;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "the host must be a numeric address or \"localhost\"";
		return -1;
	}
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*v4);
		return 0;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*v6);
		return 0;
	}
	*why = s[0] == '[' ? "the host must be a numeric IPv6 address"
	                   : "the host must be a numeric IPv4 address or "
	                     "\"localhost\" (write IPv6 as [ADDR]:PORT)";
	return -1;
}

int
netaddr_is_loopback(const struct netaddr *a)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
	if (a->ss.ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) &&
	       v6->sin6_addr.s6_addr[12] == 127;
}

unsigned
netaddr_port(const struct netaddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}
