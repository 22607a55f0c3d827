/*
 * control_web_listen: the gallery's TCP socket on web.listen (config.c
 * already refused a port other machines reach without TLS or
 * web.trust_proxy), and the PEM files of web.tls_cert and web.tls_key,
 * read whole before the daemon gives up any privilege.
 */
#include "control_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netaddr.h"

#define WEB_PEM_MAX (1024 * 1024)
#define WEB_BACKLOG 64

/* A whole PEM file as a C string, or NULL with e set. */
static char *
control_web_pem(const char *path, struct err *e)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		err_set(e, ERR_CONFIG, "web: cannot open %s: %s", path,
		        strerror(errno));
		return NULL;
	}
	buf_init(&b, WEB_PEM_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(&b, chunk, (size_t)n) == -1) {
			n = -2;
			break;
		}
	if (n < 0 || buf_cstr(&b) == NULL) {
		err_set(e, ERR_CONFIG, "web: cannot read %s: %s", path,
		        n == -2 ? "larger than 1 MiB" : strerror(errno));
		close(fd);
		buf_cleanup(&b);
		return NULL;
	}
	close(fd);
	if (strstr(b.data, "-----BEGIN ") == NULL) {
		err_set(e, ERR_CONFIG, "web: %s is not a PEM file", path);
		buf_cleanup(&b);
		return NULL;
	}
	return b.data;
}

int
control_web_listen(const struct config *cfg, char **tls_cert, char **tls_key,
                   struct err *e)
{
	struct netaddr a;
	const char *why;
	int fd, one = 1;

	*tls_cert = *tls_key = NULL;
	if (netaddr_parse(cfg->web.listen, &a, &why) == -1) {
		err_set(e, ERR_CONFIG, "web.listen \"%s\": %s", cfg->web.listen,
		        why);
		return -1;
	}
	if (cfg->web.tls_cert[0] != '\0') {
		*tls_cert = control_web_pem(cfg->web.tls_cert, e);
		*tls_key = *tls_cert != NULL
		               ? control_web_pem(cfg->web.tls_key, e)
		               : NULL;
		if (*tls_key == NULL) {
			free(*tls_cert);
			*tls_cert = NULL;
			return -1;
		}
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)&a.ss, a.len) == -1 ||
	    listen(fd, WEB_BACKLOG) == -1) {
		err_set(e, ERR_SYS, "web: cannot listen on %s: %s",
		        cfg->web.listen, strerror(errno));
		if (fd != -1)
			close(fd);
		free(*tls_cert);
		free(*tls_key);
		*tls_cert = *tls_key = NULL;
		return -1;
	}
	return fd;
}
