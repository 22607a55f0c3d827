/*
 * control_web_upload: PUT /api/upload?name=PATH, a file from the browser
 * into the watch root. The body streams into a temporary file beside its
 * destination (".imgsync-upload-RANDOM.part", which include/exclude never
 * select), is checked when complete (the whole length came, the content
 * is an image: imagemeta, not the name), made durable, and renamed into
 * place without replacing anything (RENAME_NOREPLACE: a file that exists
 * is never overwritten from a browser). The watcher then sees a new file
 * and the normal sync path takes it. Opened beneath the root: no symlink
 * is followed (invariant 6). A connection that ends early leaves nothing.
 */
#include "control_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "imagemeta.h"
#include "item.h"
#include "log.h"
#include "web_query.h"

struct control_web_upload {
	int dirfd;
	int fd;
	char tmp[48];     /* in dirfd */
	char *path;       /* relative to the root */
	const char *base; /* in path: the name in dirfd */
	uint64_t expected;
	uint64_t got;
	int werrno; /* a write failed: why; the rest is read and dropped */
};

/* The request's end (control_conn_free): a temporary file left, by a
 * refusal or a connection that ended early, is removed. */
static void
control_web_upload_cleanup(struct control_conn *k)
{
	struct control_web_upload *up = k->up;

	k->up = NULL;
	if (up == NULL)
		return;
	if (up->fd != -1) {
		close(up->fd);
		unlinkat(up->dirfd, up->tmp, 0);
	}
	if (up->dirfd != -1)
		close(up->dirfd);
	free(up->path);
	free(up);
}

static enum MHD_Result
control_web_upload_refuse(struct control_conn *k, unsigned status,
                          const char *why)
{
	control_conn_log_refused(k, k->path, status, why);
	return control_conn_error(k, status, why);
}

enum MHD_Result
control_web_upload_begin(struct control_conn *k)
{
	struct control *c = k->c;
	struct control_web_upload *up;
	const char *name = control_conn_query(k, "name");
	const char *cl, *why;
	unsigned char r[8];
	char msg[160], *end;
	unsigned long long n;
	struct stat st;
	int rootfd = sync_root_fd(c->d.sync);

	why = web_query_upload_name(name);
	if (why != NULL)
		return control_web_upload_refuse(k, 400, why);
	if (!sync_path_wanted(c->d.sync, name))
		return control_web_upload_refuse(
		    k, 415,
		    "this name would not be synced (watch.include, "
		    "watch.exclude)");
	cl = MHD_lookup_connection_value(k->mc, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl == NULL)
		return control_web_upload_refuse(k, 411,
		                                 "Content-Length required");
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno != 0 || *end != '\0' || n > c->max_upload) {
		snprintf(msg, sizeof(msg),
		         "the file is larger than web.max_upload_mb (%llu MiB)",
		         (unsigned long long)(c->max_upload >> 20));
		return control_web_upload_refuse(k, 413, msg);
	}
	if (rootfd == -1)
		return control_web_upload_refuse(k, 503,
		                                 sync_root_lost_why(c->d.sync));
	up = calloc(1, sizeof(*up));
	if (up == NULL || (up->path = strdup(name)) == NULL) {
		free(up);
		return control_conn_error(k, 500, "out of memory");
	}
	up->fd = -1;
	up->dirfd = -1;
	up->expected = n;
	k->up = up;
	k->cleanup = control_web_upload_cleanup;
	up->dirfd = beneath_open_parent(rootfd, up->path, 0, 0, &up->base);
	if (up->dirfd == -1)
		return control_web_upload_refuse(
		    k, errno == ENOENT ? 404 : 400,
		    errno == ENOENT ? "no such folder"
		                    : "the folder is not a plain directory "
		                      "under the root");
	if (fstatat(up->dirfd, up->base, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return control_web_upload_refuse(k, 409,
		                                 "a file by that name exists");
	if (RAND_bytes(r, sizeof(r)) != 1)
		return control_conn_error(k, 500, "no random bytes");
	snprintf(up->tmp, sizeof(up->tmp),
	         ".imgsync-upload-%02x%02x%02x%02x%02x%02x%02x%02x.part", r[0],
	         r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	up->fd =
	    openat(up->dirfd, up->tmp,
	           O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (up->fd == -1) {
		snprintf(msg, sizeof(msg), "cannot write in that folder: %s",
		         strerror(errno));
		return control_web_upload_refuse(k, errno == ENOSPC ? 507 : 500,
		                                 msg);
	}
	return MHD_YES;
}

int
control_web_upload_feed(struct control_conn *k, const char *data, size_t len)
{
	struct control_web_upload *up = k->up;
	ssize_t w;

	if (up == NULL)
		return -1;
	up->got += len;
	while (len > 0 && up->werrno == 0) {
		w = write(up->fd, data, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			up->werrno = errno;
			break;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

enum MHD_Result
control_web_upload_finish(struct control_conn *k)
{
	struct control_web_upload *up = k->up;
	struct imagemeta m;
	struct err e;
	char msg[200], who[128], p[256];
	struct buf name;
	json_t *doc;
	int rc;

	if (up == NULL)
		return MHD_NO;
	if (up->werrno == 0 && fsync(up->fd) == -1)
		up->werrno = errno;
	if (up->werrno != 0) {
		snprintf(msg, sizeof(msg), "cannot write the file: %s",
		         strerror(up->werrno));
		return control_web_upload_refuse(
		    k, up->werrno == ENOSPC || up->werrno == EDQUOT ? 507 : 500,
		    msg);
	}
	if (up->got != up->expected)
		return control_web_upload_refuse(k, 400, "the body was cut");
	err_clear(&e);
	memset(&m, 0, sizeof(m));
	if (imagemeta_probe_fd(up->fd, up->got, &m, &e) == -1 ||
	    strncmp(m.type, "image/", 6) != 0) {
		snprintf(msg, sizeof(msg), "not an image (the content is %s)",
		         m.type[0] != '\0' ? m.type : "unknown");
		return control_web_upload_refuse(k, 415, msg);
	}
	rc = renameat2(up->dirfd, up->tmp, up->dirfd, up->base,
	               RENAME_NOREPLACE);
	if (rc == -1 && errno == EINVAL) { /* no RENAME_NOREPLACE here */
		rc = linkat(up->dirfd, up->tmp, up->dirfd, up->base, 0);
		if (rc == 0)
			unlinkat(up->dirfd, up->tmp, 0);
	}
	if (rc == -1) {
		snprintf(msg, sizeof(msg), "cannot put the file in place: %s",
		         strerror(errno));
		return control_web_upload_refuse(
		    k, errno == EEXIST ? 409 : 500,
		    errno == EEXIST ? "a file by that name exists" : msg);
	}
	close(up->fd);
	up->fd = -1; /* in place: nothing to remove */
	(void)fsync(up->dirfd);
	log_info("%s: PUT /upload %s (%llu bytes, %s)",
	         control_conn_who(k, who, sizeof(who)),
	         log_path(up->path, p, sizeof(p)), (unsigned long long)up->got,
	         m.type);
	buf_init(&name, 0);
	buf_printf(&name, "%s%s", k->c->prefix, up->path);
	doc = buf_cstr(&name) == NULL
	          ? NULL
	          : json_pack("{s:s,s:s,s:s,s:I,s:s}", ITEM_FILENAME, name.data,
	                      "path", up->path, "type", m.type, "size",
	                      (json_int_t)up->got, "message",
	                      "Uploaded; it syncs now");
	buf_cleanup(&name);
	return control_conn_json(k, 201, doc);
}
