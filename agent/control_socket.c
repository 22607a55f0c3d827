/*
 * control_socket: the control socket's file, made so that only imgsyncd
 * and root can swap it. Its directory is created 0750 when missing and
 * refused when anyone else can write to it or to a directory above it;
 * a socket file a dead daemon left is replaced, one a live daemon answers
 * on is refused; the socket gets mode 0660 before bind() (never wider, not
 * even for an instant) and the group control.group.
 */
#include "control_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Whether someone other than this daemon and root could rename or create
 * entries in the directory st: then the socket's path could be swapped
 * under us. A sticky bit (as on /tmp) protects others' entries, so it
 * excuses an ancestor, but not the socket's own directory. */
static const char *
control_socket_dir_unsafe(const struct stat *st, int own)
{
	int sticky = !own && (st->st_mode & S_ISVTX);

	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user";
	if ((st->st_mode & S_IWOTH) && !sticky)
		return "is writable by anyone";
	if ((st->st_mode & S_IWGRP) && st->st_gid != getegid() && !sticky)
		return "is writable by another group";
	return NULL;
}

/* Creates the socket's directory when missing (0750) and opens it, after
 * checking that nobody else can write to it or to a directory above it:
 * a directory others can write stops the start. */
static int
control_socket_dir_open(const char *dir, struct err *e)
{
	char *walk = strdup(dir), *p;
	const char *why;
	struct stat st;
	int fd = -1;

	if (walk == NULL) {
		err_sys(e, "strdup");
		return -1;
	}
	for (p = walk + 1;; p++) {
		p = strchr(p, '/');
		if (p != NULL)
			*p = '\0';
		if (mkdir(walk, 0750) == -1 && errno != EEXIST) {
			err_sys(e, "control.socket: cannot create %s", walk);
			goto fail;
		}
		if (p == NULL)
			break;
		*p = '/';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		err_sys(e, "control.socket: %s", dir);
		goto fail;
	}
	why = control_socket_dir_unsafe(&st, 1);
	/* Each directory above, up to "/" (or the working directory). */
	while (why == NULL && (p = strrchr(walk, '/')) != NULL) {
		p[p == walk ? 1 : 0] = '\0';
		if (stat(walk, &st) == -1) {
			err_sys(e, "control.socket: %s", walk);
			goto fail;
		}
		why = control_socket_dir_unsafe(&st, 0);
		if (p == walk)
			break;
	}
	if (why != NULL) {
		err_set(e, ERR_CONFIG,
		        "control.socket: %s %s; put the socket in a directory "
		        "only imgsyncd and root can write (the unit's "
		        "/run/imgsync)",
		        walk, why);
		goto fail;
	}
	free(walk);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	free(walk);
	return -1;
}

/* A socket file already there: another daemon's (refused) or a dead one's
 * (removed). */
static int
control_socket_stale(const struct sockaddr_un *sa, struct err *e)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) == -1)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		err_set(e, ERR_CONFIG,
		        "control.socket: %s exists and is not a socket",
		        sa->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err_sys(e, "socket");
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		err_set(e, ERR_CONFIG,
		        "control.socket: another imgsyncd answers on %s",
		        sa->sun_path);
		return -1;
	}
	if (errno != ECONNREFUSED) {
		err_sys(e, "control.socket: %s", sa->sun_path);
		return -1;
	}
	log_info("control: removing the stale socket %s", sa->sun_path);
	if (unlink(sa->sun_path) == -1 && errno != ENOENT) {
		err_sys(e, "control.socket: cannot remove %s", sa->sun_path);
		return -1;
	}
	return 0;
}

/* The socket's group, set on the name in its (safe) directory without
 * following a link. */
static void
control_socket_chgrp(int dirfd, const char *name, const char *group)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (group[0] == '\0')
		return;
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_warnx("control.group: no group %s; the socket keeps the "
		          "daemon's group",
		          group);
		return;
	}
	if (gr.gr_gid == getegid())
		return; /* already ours (systemd's Group=): chown is a
		         * privileged call the unit's system-call filter refuses
		         */
	if (fchownat(dirfd, name, (uid_t)-1, gr.gr_gid, AT_SYMLINK_NOFOLLOW) ==
	    -1)
		log_warn("control.group: chown %s to group %s", name, group);
}

int
control_socket_open(const struct config *cfg, struct err *e)
{
	struct sockaddr_un sa;
	char *dir, *slash;
	mode_t old;
	int fd = -1, dirfd, rc;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cfg->control.socket) >= sizeof(sa.sun_path)) {
		err_set(e, ERR_CONFIG,
		        "control.socket: the path is longer than %zu bytes",
		        sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, cfg->control.socket, strlen(cfg->control.socket));
	dir = strdup(sa.sun_path);
	if (dir == NULL) {
		err_sys(e, "strdup");
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, strlen(dir) + 1, ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	dirfd = control_socket_dir_open(dir, e);
	free(dir);
	if (dirfd == -1 || control_socket_stale(&sa, e) == -1)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		err_sys(e, "socket");
		goto out;
	}
	/* The mode is set on the socket before bind(), which gives it to the
	 * new file (and the umask too: single-threaded, it is ours): the
	 * socket is never reachable with wider rights than 0660, and no path
	 * is ever chmod'ed. */
	old = umask(0117);
	rc = fchmod(fd, 0660);
	if (rc == 0)
		rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == -1 || listen(fd, 128) == -1) {
		err_sys(e, "control.socket: %s", sa.sun_path);
		close(fd);
		fd = -1;
		goto out;
	}
	slash = strrchr(sa.sun_path, '/');
	control_socket_chgrp(dirfd, slash != NULL ? slash + 1 : sa.sun_path,
	                     cfg->control.group);
out:
	if (dirfd != -1)
		close(dirfd);
	return fd;
}
