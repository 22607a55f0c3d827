/*
 * sync_thumbs: thumbnails of synced images (thumbnails.enabled). The row an
 * upload or a rename records wants one (the state's thumb column); they are
 * made one at a time, in path order, by the sandboxed helper
 * (thumb_client.c) from the file opened beneath the root (invariant 6),
 * uploaded under thumbnails.prefix, and named in the item (Thumbnail) on
 * the condition that the item still describes that content. The rows say
 * what is left, so a crash or a restart loses none; the thumbnail of an
 * image is always at the key its image's key gives (sync_thumbs_key), so a
 * crash between its upload and its row's update makes it again at the same
 * key, and a delete or a rename removes it, before its intent ends, without
 * asking where it is: no orphan. Thumbnails follow the sync: an upload never
 * waits for one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "item.h"
#include "log.h"
#include "sync_impl.h"
#include "text.h"

#define THUMB_RETRY_MS 30000 /* after a store failed a thumbnail */
#define THUMB_DEFER_MS 1000  /* after a row being synced was passed */

struct sync_thumbs {
	struct thumb_client *client;
	char *prefix;     /* s3.prefix + thumbnails.prefix */
	const char *ext;  /* ".webp" or ".jpg" */
	const char *type; /* its Content-Type */
	struct loop_timer *timer;
	struct buf cursor; /* the last path of this pass */
	int busy;          /* a thumbnail is being made or stored */
	int again;         /* touched during the pass: one more */
	int deferred;      /* a row was being synced: a pass soon */
	int failed;        /* a store failed: a pass later */
	int helper_down;   /* the helper could not be asked: said once */
	struct state_file row;
	int fd;
	void *data; /* the thumbnail, while it is stored */
	char key[SYNC_MAX_KEY + 64];
};

static void thumbs_on_timer(void *arg);

int
sync_thumbs_new(struct sync *s, const struct config *cfg, struct err *e)
{
	const struct config_thumbnails *c = &cfg->thumbnails;
	struct thumb_client_opts o;
	struct sync_thumbs *t;

	if (!c->enabled)
		return 0;
	if (access(c->helper, X_OK) == -1) {
		err_set(e, ERR_INVALID, "thumbnails.helper %s: %s", c->helper,
		        strerror(errno));
		return -1;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		err_sys(e, "thumbnails: calloc");
		return -1;
	}
	s->thumbs = t;
	t->fd = -1;
	buf_init(&t->cursor, 0);
	memset(&o, 0, sizeof(o));
	o.helper = c->helper;
	o.memory_mb = (unsigned)c->memory_mb;
	o.timeout_ms = (unsigned)c->timeout_ms;
	o.side = (unsigned)c->size;
	o.quality = (unsigned)c->quality;
	o.format = strcmp(c->format, "jpeg") == 0 ? THUMB_JPEG : THUMB_WEBP;
	t->ext = o.format == THUMB_JPEG ? ".jpg" : ".webp";
	t->type = o.format == THUMB_JPEG ? "image/jpeg" : "image/webp";
	if (asprintf(&t->prefix, "%s%s", cfg->s3.prefix, c->prefix) == -1) {
		t->prefix = NULL;
		err_sys(e, "thumbnails: out of memory");
		return -1;
	}
	/* What lies under it in the root is never mirrored (sync_path.c). */
	s->thumbs_path_prefix = strdup(c->prefix);
	if (s->thumbs_path_prefix == NULL) {
		err_sys(e, "thumbnails: out of memory");
		return -1;
	}
	t->client = thumb_client_new(s->loop, &o, e);
	if (t->client == NULL)
		return -1;
	t->timer = loop_timer_new(s->loop, thumbs_on_timer, s, e);
	return t->timer == NULL ? -1 : 0;
}

void
sync_thumbs_free(struct sync *s)
{
	struct sync_thumbs *t = s->thumbs;

	if (t == NULL)
		return;
	thumb_client_free(t->client); /* a request in flight: cancelled */
	loop_timer_free(t->timer);
	if (t->fd != -1)
		close(t->fd);
	state_file_cleanup(&t->row);
	buf_cleanup(&t->cursor);
	free(t->data);
	free(t->prefix);
	free(t);
	s->thumbs = NULL;
	free(s->thumbs_path_prefix);
	s->thumbs_path_prefix = NULL;
}

int
sync_thumbs_key(const struct sync *s, const char *key, char *out, size_t outlen)
{
	const struct sync_thumbs *t = s->thumbs;
	size_t plen = strlen(s->prefix);
	int n;

	if (t == NULL)
		return -1;
	/* The image's key without s3.prefix, under the thumbnails' one. */
	if (strncmp(key, s->prefix, plen) == 0)
		key += plen;
	n = snprintf(out, outlen, "%s%s%s", t->prefix, key, t->ext);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

void
sync_thumbs_touch(struct sync *s)
{
	struct sync_thumbs *t = s->thumbs;

	if (t == NULL)
		return;
	t->again = 1;
	if (!t->busy)
		loop_timer_set(t->timer, 0);
}

#define THUMBS_META "thumbnails" /* "on" or "off" at the last start */

int
sync_thumbs_start(struct sync *s, struct err *e)
{
	const char *now = s->thumbs != NULL ? "on" : "off";
	char *was = NULL;
	int rc;

	rc = state_meta_get(s->state, THUMBS_META, &was, NULL, e);
	if (rc == -1)
		return -1;
	if (rc == 1 && strcmp(was, now) == 0) {
		free(was);
		return 0;
	}
	free(was);
	if (s->thumbs != NULL) {
		if (state_thumb_want_all(s->state, e) == -1)
			return -1;
		log_info("thumbnails: turned on: every synced image without "
		         "one wants one");
	}
	return state_meta_put(s->state, THUMBS_META, now, strlen(now), e);
}

int
sync_thumbs_idle(const struct sync *s)
{
	const struct sync_thumbs *t = s->thumbs;

	return t == NULL ||
	       (!t->busy && !t->again && !t->deferred && t->cursor.len == 0);
}

/* The row is done with: its fd closed, the next row in a moment. */
static void
thumbs_next(struct sync *s, int64_t delay_ms)
{
	struct sync_thumbs *t = s->thumbs;

	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
	free(t->data);
	t->data = NULL;
	t->busy = 0;
	state_file_cleanup(&t->row);
	loop_timer_set(t->timer, delay_ms);
}

/* The row has its thumbnail (key) or none to be had (why). */
static void
thumbs_done(struct sync *s, const char *key, const char *why)
{
	struct sync_thumbs *t = s->thumbs;
	struct err e;
	char p[256];

	err_clear(&e);
	if (state_thumb_done(s->state, t->row.path, t->row.path_len,
	                     t->row.synced_at, key, why, &e) == -1)
		log_warnx("state: %s", e.message);
	if (key != NULL) {
		s->stats.thumbnails++;
		log_debug("thumbnail of %s: %s",
		          log_path(t->row.path, p, sizeof(p)), key);
	} else {
		s->stats.thumbnails_failed++;
		log_warnx("%s: no thumbnail: %s",
		          log_path(t->row.path, p, sizeof(p)), why);
	}
	thumbs_next(s, 0);
}

/* A store failed (a network error, throttling): the row still wants its
 * thumbnail; the pass goes on, and comes back later. */
static void
thumbs_later(struct sync *s, const char *what, const struct err *e)
{
	struct sync_thumbs *t = s->thumbs;
	char p[256];

	if (e->kind == ERR_CANCEL || s->stopping) { /* shutting down */
		thumbs_next(s, -1);
		return;
	}
	log_warnx("%s: thumbnail not stored yet (%s: %s); trying again later",
	          log_path(t->row.path, p, sizeof(p)), what, e->message);
	t->failed = 1;
	thumbs_next(s, 0);
}

/* The image changed or went away while its thumbnail was made: the
 * thumbnail just stored goes (its delete may have come before it), and
 * the row, if there is still one, is done with (a newer sync's row wants
 * its own). */
static void
thumbs_on_dropped(const struct s3_result *res, const struct err *e, void *arg)
{
	struct sync *s = arg;
	struct sync_thumbs *t = s->thumbs;
	struct err se;
	char p[256];

	(void)res;
	if (e != NULL && e->http_status != 404) {
		thumbs_later(s, "DeleteObject", e);
		return;
	}
	log_debug("%s: thumbnail dropped: the image changed or went away "
	          "meanwhile",
	          log_path(t->row.path, p, sizeof(p)));
	err_clear(&se);
	if (state_thumb_done(
	        s->state, t->row.path, t->row.path_len, t->row.synced_at, NULL,
	        "the image changed or went away meanwhile", &se) == -1)
		log_warnx("state: %s", se.message);
	thumbs_next(s, 0);
}

static void
thumbs_on_item(json_t *resp, const struct err *e, void *arg)
{
	struct sync *s = arg;
	struct sync_thumbs *t = s->thumbs;
	struct err de;

	(void)resp;
	if (e != NULL && err_classify(e) == ERRC_CONFLICT) {
		err_clear(&de);
		if (s3_delete_object(s->s3, t->key, NULL, thumbs_on_dropped, s,
		                     &de) == -1)
			thumbs_later(s, "DeleteObject", &de);
		return;
	}
	if (e != NULL) {
		thumbs_later(s, "UpdateItem", e);
		return;
	}
	thumbs_done(s, t->key, NULL);
}

static void
thumbs_on_object(const struct s3_result *res, const struct err *e, void *arg)
{
	struct sync *s = arg;
	struct sync_thumbs *t = s->thumbs;
	struct err ie;

	(void)res;
	if (e != NULL) {
		thumbs_later(s, "PutObject", e);
		return;
	}
	err_clear(&ie);
	if (item_set_thumbnail(s->ddb, s->table, t->row.key, t->row.sha256,
	                       t->key, thumbs_on_item, s, &ie) == -1)
		thumbs_later(s, "UpdateItem", &ie);
}

/* The helper cannot be asked or cannot start: not this image's fault; it
 * keeps wanting one, and the pass stops until later (said once). */
static void
thumbs_helper_down(struct sync *s, const char *why)
{
	struct sync_thumbs *t = s->thumbs;

	if (!t->helper_down)
		log_warnx("thumbnails: %s; trying again in %d s", why,
		          THUMB_RETRY_MS / 1000);
	t->helper_down = 1;
	t->again = t->deferred = t->failed = 0;
	buf_reset(&t->cursor);
	thumbs_next(s, THUMB_RETRY_MS);
}

static void
thumbs_on_made(const void *data, size_t len, unsigned width, unsigned height,
               const char *why, int helper_fault, void *arg)
{
	struct sync *s = arg;
	struct sync_thumbs *t = s->thumbs;
	struct s3_body body;
	struct err e;

	(void)width;
	(void)height;
	if (s->stopping) {
		thumbs_next(s, -1);
		return;
	}
	if (data == NULL && helper_fault) {
		thumbs_helper_down(s, why);
		return;
	}
	t->helper_down = 0;
	if (data == NULL) {
		thumbs_done(s, NULL, why);
		return;
	}
	if (sync_thumbs_key(s, t->row.key, t->key, sizeof(t->key)) == -1) {
		thumbs_done(s, NULL, "its key would be too long");
		return;
	}
	t->data = malloc(len);
	if (t->data == NULL) {
		err_clear(&e);
		err_sys(&e, "malloc");
		thumbs_later(s, "memory", &e);
		return;
	}
	memcpy(t->data, data, len);
	memset(&body, 0, sizeof(body));
	body.data = t->data;
	body.fd = -1;
	body.len = len;
	err_clear(&e);
	if (s3_put_object(s->s3, t->key, &body, t->type, NULL, 0,
	                  thumbs_on_object, s, &e) == -1)
		thumbs_later(s, "PutObject", &e);
}

/* Whether the file is still the one the row describes (the upload's own
 * test: size, mtime, inode, ctime). */
static int
thumbs_same_file(int fd, const struct state_file *f)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	       sync_same_file(&st, f);
}

/* The next row that wants a thumbnail, past the cursor. */
static void
thumbs_on_timer(void *arg)
{
	struct sync *s = arg;
	struct sync_thumbs *t = s->thumbs;
	struct err e;
	int rc;

	if (t->busy || s->stopping)
		return;
	if (!s->started || s->paused || s->root_lost || s->disk_full) {
		loop_timer_set(t->timer, 1000);
		return;
	}
	err_clear(&e);
	for (;;) {
		rc = state_thumb_next(s->state,
		                      t->cursor.len > 0 ? t->cursor.data : "",
		                      t->cursor.len, &t->row, &e);
		if (rc == -1) {
			log_warnx("thumbnails: %s", e.message);
			loop_timer_set(t->timer, THUMB_RETRY_MS);
			return;
		}
		if (rc == 0) { /* the end of the pass */
			buf_reset(&t->cursor);
			if (t->again) {
				t->again = 0;
				continue;
			}
			if (t->failed || t->deferred)
				loop_timer_set(t->timer, t->failed
				                             ? THUMB_RETRY_MS
				                             : THUMB_DEFER_MS);
			t->failed = t->deferred = 0;
			return;
		}
		buf_reset(&t->cursor);
		buf_append(&t->cursor, t->row.path, t->row.path_len);
		if (sync_job_find(s, t->row.path, t->row.path_len) != NULL) {
			/* being synced: its end touches us again */
			t->deferred = 1;
			state_file_cleanup(&t->row);
			continue;
		}
		break;
	}
	t->busy = 1;
	if (strncmp(t->row.type, "image/", 6) != 0) {
		thumbs_done(s, NULL, "not an image");
		return;
	}
	t->fd = sync_open(s, t->row.path);
	if (t->fd == -1 || !thumbs_same_file(t->fd, &t->row)) {
		/* gone or changed: its delete or upload comes */
		thumbs_next(s, 0);
		return;
	}
	if (thumb_client_ask(t->client, t->fd, thumbs_on_made, s, &e) == -1)
		thumbs_helper_down(s, e.message);
}

/* --- deletes and renames ------------------------------------------------- */

struct thumbs_del {
	struct job *job;
	void (*then)(struct job *j);
};

static void
thumbs_on_deleted(const struct s3_result *res, const struct err *e, void *arg)
{
	struct thumbs_del *d = arg;
	struct job *j = d->job;
	void (*then)(struct job *) = d->then;

	(void)res;
	free(d);
	if (e != NULL && e->http_status != 404) {
		sync_job_net_error(j, "DeleteObject (thumbnail)", e);
		return;
	}
	then(j);
}

void
sync_thumbs_delete(struct job *j, const char *thumb, const char *image_key,
                   void (*then)(struct job *j))
{
	struct sync *s = j->sync;
	struct thumbs_del *d;
	char key[SYNC_MAX_KEY + 64];
	struct err e;

	/* The one recorded; else, thumbnails on, where one would be (made
	 * but not yet recorded when a crash came). */
	if (thumb != NULL)
		snprintf(key, sizeof(key), "%s", thumb);
	else if (image_key == NULL ||
	         sync_thumbs_key(s, image_key, key, sizeof(key)) == -1) {
		then(j);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		err_clear(&e);
		err_sys(&e, "calloc");
		sync_job_fail(j, &e, "thumbnail: %s", e.message);
		return;
	}
	d->job = j;
	d->then = then;
	err_clear(&e);
	if (s3_delete_object(s->s3, key, NULL, thumbs_on_deleted, d, &e) ==
	    -1) {
		free(d);
		sync_job_fail(j, &e, "DeleteObject (thumbnail): %s", e.message);
	}
}
