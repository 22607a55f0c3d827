/*
 * sync_upload: converging a path. The file is compared with its state row;
 * a new or changed one is hashed a bounded amount per loop turn, probed,
 * recorded as an intent (a turn's intents in one commit, invariant 3), and
 * uploaded from the one descriptor it was hashed from: the object, then the
 * item (invariant 1), and the row only when the file did not change
 * meanwhile (invariant 4). A path that is gone, or no longer wanted, is a
 * deletion (sync_remove.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "item.h"
#include "log.h"
#include "sync_impl.h"
#include "text.h"

#define SYNC_HASH_CHUNK (1u << 20) /* bytes hashed per file per turn */
#define SYNC_HASH_TURN (4u << 20)  /* bytes hashed per loop turn */

/* --- the item, then the row -------------------------------------------- */

static void
upload_now(char *out, size_t outlen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	text_iso_time(&ts, 3, out, outlen);
}

/* The row the upload leaves (its pointers borrowed from the job). */
static void
upload_row(const struct job *j, struct state_file *f)
{
	const struct run *r = j->run;
	const struct run_upload *u = &r->u.up;

	memset(f, 0, sizeof(*f));
	f->path = j->path;
	f->path_len = j->path_len;
	f->key = (char *)r->key;
	f->size = (uint64_t)u->st.st_size;
	f->mtime_ns = sync_mtime_ns(&u->st);
	f->ctime_ns = text_timespec_ns(&u->st.st_ctim);
	f->inode = (uint64_t)u->st.st_ino;
	memcpy(f->sha256, u->sha256, sizeof(f->sha256));
	snprintf(f->etag, sizeof(f->etag), "%s", u->etag);
	snprintf(f->type, sizeof(f->type), "%s", u->meta.type);
	f->width = u->meta.width;
	f->height = u->meta.height;
	f->orientation = u->meta.orientation;
	f->thumb_wanted = j->sync->thumbs != NULL;
}

/* PutItem of f's item (batched with others, sync_items.c), unless the
 * table holds a newer one (invariant 2); for an upload and a rename's new
 * half alike. mtime is the file's exact one (f->mtime_ns ends in 2262). */
void
sync_upload_put_item(struct job *j, const struct state_file *f,
                     const struct timespec *mtime, dynamo_done_cb cb)
{
	struct sync *s = j->sync;
	char ts[40];
	json_t *item;
	struct err e;

	upload_now(ts, sizeof(ts));
	item = item_from_file_mtime(f, mtime, s->bucket, s->source, ts);
	if (item == NULL) {
		err_clear(&e);
		err_set(&e, ERR_INVALID, "cannot build the item");
		sync_job_fail(j, &e, "PutItem: %s", e.message);
		return;
	}
	sync_items_put(j, item, cb);
}

static void
upload_record(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct state_file f;
	int64_t ids[8];
	size_t i, n;
	struct err e;

	upload_row(j, &f);
	/* The row and the end of the intents in one commit, when the
	 * intents fit here; else sync_job_finish clears them one by one. */
	n = 0;
	ids[n++] = r->intent;
	for (i = 0; i < j->nreplay && n < sizeof(ids) / sizeof(ids[0]); i++)
		ids[n++] = j->replay[i];
	if (i < j->nreplay)
		n = 0;
	err_clear(&e);
	if (state_file_synced(s->state, &f, ids, n, &e) == -1) {
		/* Its intent stays: the next start (or the rescan when
		 * space is back) finds the file unsynced and converges it. */
		if (sync_state_error(s, &e))
			j->again = 1;
		else
			log_warnx("%s", e.message);
	} else if (n > 0) {
		r->intent = 0;
		free(j->replay);
		j->replay = NULL;
		j->nreplay = 0;
	}
	if (s->summary != NULL)
		summary_touch(s->summary);
	sync_thumbs_touch(s);
}

static void
upload_on_item(json_t *resp, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct sync *s = j->sync;
	struct run_upload *u = &j->run->u.up;
	char p[256];

	(void)resp;
	if (e != NULL && err_classify(e) != ERRC_CONFLICT) {
		sync_job_net_error(j, "PutItem", e);
		return;
	}
	if (e != NULL)
		log_info("%s: the table holds newer metadata; kept",
		         log_path(j->path, p, sizeof(p)));
	upload_record(j);
	s->stats.uploaded++;
	s->stats.bytes += (uint64_t)u->st.st_size;
	log_debug("uploaded %s (%" PRIu64 " bytes, %s)",
	          log_path(j->path, p, sizeof(p)), (uint64_t)u->st.st_size,
	          u->meta.type);
	sync_job_finish(j, 1);
}

/* --- the object -------------------------------------------------------- */

/* Whether the file changed since it was opened for this upload. */
static int
upload_changed(const struct run_upload *u)
{
	struct stat now;

	if (fstat(u->fd, &now) == -1 || now.st_nlink == 0)
		return 1;
	return now.st_size != u->st.st_size ||
	       sync_mtime_ns(&now) != sync_mtime_ns(&u->st);
}

void
sync_upload_notes(struct sync *s, const struct s3_result *r)
{
	unsigned fresh = r->notes & ~s->s3_noted;

	if (fresh & S3_NOTE_ETAG_BY_HEAD)
		log_warnx("the S3 store answered an empty ETag (Ceph RGW "
		          "does after CompleteMultipartUpload); the object is "
		          "whole: its ETag now comes from HeadObject (said "
		          "once)");
	if (fresh & S3_NOTE_NO_CHECKSUM)
		log_warnx("the S3 store did not confirm the SHA-256 checksum "
		          "sent with the upload: it keeps none, so verify "
		          "cannot read one back (said once; s3.checksum = "
		          "\"none\" stops sending it)");
	s->s3_noted |= fresh;
}

static void
upload_on_object(const struct s3_result *res, const struct err *e, void *arg)
{
	struct job *j = arg;
	struct run_upload *u = &j->run->u.up;
	struct state_file f;

	if (e != NULL && e->kind != ERR_CANCEL && upload_changed(u)) {
		/* The file changed under the upload: start again. */
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	if (e != NULL) {
		sync_job_net_error(j, "PutObject", e);
		return;
	}
	if (upload_changed(u)) {
		/* An object without its item: the next run finishes it. */
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	sync_upload_notes(j->sync, res);
	snprintf(u->etag, sizeof(u->etag), "%s", res->etag);
	upload_row(j, &f);
	sync_upload_put_item(j, &f, &u->st.st_mtim, upload_on_item);
}

/* A multipart upload was created: its id goes into the intent, so that
 * after a crash the next start aborts it (its parts would cost storage
 * and never become an object). */
static void
upload_on_multipart(const char *upload_id, void *arg)
{
	struct job *j = arg;
	struct err e;

	err_clear(&e);
	if (j->run->intent > 0 &&
	    state_intent_set_upload_id(j->sync->state, j->run->intent,
	                               upload_id, &e) == -1)
		log_warnx("%s", e.message);
}

/*
 * Probes the file and records its intent, inside the caller's batch if one
 * is open. Makes no network call and never finishes the job (which could
 * start others, whose calls would run before the batch is committed):
 * that is upload_send's, after the commit.
 */
static enum upload_step
upload_prepare(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct run_upload *u = &r->u.up;
	struct state_intent in;
	struct err e;

	err_clear(&e);
	if (imagemeta_probe_fd(u->fd, (uint64_t)u->st.st_size, &u->meta, &e) ==
	    -1)
		return UPLOAD_AGAIN;
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_UPLOAD;
	in.path = j->path;
	in.path_len = j->path_len;
	in.key = r->key;
	in.size = (uint64_t)u->st.st_size;
	in.mtime_ns = sync_mtime_ns(&u->st);
	memcpy(in.sha256, u->sha256, sizeof(in.sha256));
	r->intent = sync_add_intent(s, &in, &e);
	if (r->have_old && !r->old.failed && r->old.etag[0] != '\0' &&
	    strcmp(r->old.sha256, u->sha256) == 0 &&
	    r->old.size == (uint64_t)u->st.st_size)
		return r->intent == -1 ? UPLOAD_NO_INTENT : UPLOAD_ITEM;
	return r->intent == -1 ? UPLOAD_NO_INTENT : UPLOAD_OBJECT;
}

static void
upload_send(struct job *j, enum upload_step step)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct run_upload *u = &r->u.up;
	struct s3_meta meta[1];
	struct s3_body body;
	struct state_file f;
	struct err e;

	err_clear(&e);
	switch (step) {
	case UPLOAD_AGAIN:
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	case UPLOAD_NO_INTENT:
		err_set(&e, ERR_DB, "no intent");
		sync_job_fail(j, &e,
		              "cannot record the intent in the state database");
		return;
	case UPLOAD_ITEM:
		snprintf(u->etag, sizeof(u->etag), "%s", r->old.etag);
		upload_row(j, &f);
		sync_upload_put_item(j, &f, &u->st.st_mtim, upload_on_item);
		return;
	case UPLOAD_OBJECT:
		break;
	}
	meta[0].name = "sha256";
	meta[0].value = u->sha256;
	memset(&body, 0, sizeof(body));
	body.data = NULL;
	body.fd = u->fd;
	body.len = (uint64_t)u->st.st_size;
	body.sha256 = u->sha256;
	body.started = upload_on_multipart;
	body.started_arg = j;
	body.parts = u->parts;
	r->phase = RUN_UPLOADING;
	if (s3_upload(s->s3, r->key, &body, u->meta.type, meta, 1,
	              upload_on_object, j, &e) == -1)
		sync_job_fail(j, &e, "PutObject: %s", e.message);
}

/* --- hashing ----------------------------------------------------------- */

/*
 * Group commit: the intents of every file whose hash completed in this
 * turn are written in one transaction with one fsync, and only then do
 * their network calls start (invariant 3 holds for each: its intent is on
 * disk before its first call). A lone file commits on its own, as
 * state_intent_add does outside a batch.
 */
static void
upload_start_batch(struct sync *s, struct job *done)
{
	struct job *j, *next;
	struct err e;
	size_t n = 0;
	int batch = 0;

	for (j = done; j != NULL && n < 2; j = j->run->u.up.next_hashing)
		if (j->run->u.up.hashed != UINT64_MAX)
			n++;
	err_clear(&e);
	if (n > 1) {
		if (state_begin(s->state, &e) == 0)
			batch = 1;
		else if (!sync_state_error(s, &e))
			log_warnx("%s", e.message); /* one commit each, then */
	}
	for (j = done; j != NULL; j = j->run->u.up.next_hashing) {
		struct run_upload *u = &j->run->u.up;

		if (u->hashed == UINT64_MAX)
			continue;
		imagemeta_hash_final(u->hash, u->sha256);
		u->step = upload_prepare(j);
	}
	if (batch && state_commit(s->state, &e) == -1) {
		/* rolled back: no intent of this turn is on disk */
		if (!sync_state_error(s, &e))
			log_warnx("%s", e.message);
		for (j = done; j != NULL; j = j->run->u.up.next_hashing) {
			struct run_upload *u = &j->run->u.up;

			if (u->hashed == UINT64_MAX || u->step == UPLOAD_AGAIN)
				continue;
			j->run->intent = -1;
			u->step = UPLOAD_NO_INTENT;
		}
	}
	for (j = done; j != NULL; j = next) {
		next = j->run->u.up.next_hashing;
		if (j->run->u.up.hashed == UINT64_MAX) {
			/* shrank or unreadable while hashing: look again */
			j->again = 1;
			sync_job_finish(j, 0);
			continue;
		}
		upload_send(j, j->run->u.up.step);
	}
}

/* The next n bytes of the file, into its hash and its parts' hashes. */
static void
upload_hash(struct run_upload *u, const unsigned char *chunk, size_t n)
{
	imagemeta_hash_update(u->hash, chunk, n);
	if (u->parts != NULL && s3_parts_update(u->parts, chunk, n) == -1) {
		s3_parts_free(u->parts); /* the upload reads them itself */
		u->parts = NULL;
	}
	u->hashed += (uint64_t)n;
}

/* The work timer: hashes a bounded amount per loop turn so a large file
 * never stalls the loop; files whose hash is complete go on to upload. */
void
sync_upload_on_work(void *arg)
{
	struct sync *s = arg;
	struct job *j, **pp, *done = NULL;
	unsigned char *chunk;
	size_t budget = SYNC_HASH_TURN;
	ssize_t got;

	/* Kept for the next turns: a fresh megabyte each turn was an mmap
	 * and a munmap, and their page faults, per file of a burst. */
	if (s->hash_buf == NULL)
		s->hash_buf = malloc(SYNC_HASH_CHUNK);
	chunk = s->hash_buf;
	if (chunk == NULL) {
		loop_timer_set(s->work_timer, 100);
		return;
	}
	pp = &s->hashing;
	while ((j = *pp) != NULL && budget > 0) {
		struct run_upload *u = &j->run->u.up;
		size_t want = SYNC_HASH_CHUNK;

		if ((uint64_t)want > (uint64_t)u->st.st_size - u->hashed)
			want = (size_t)((uint64_t)u->st.st_size - u->hashed);
		got =
		    want > 0 ? pread(u->fd, chunk, want, (off_t)u->hashed) : 0;
		if (got > 0) {
			upload_hash(u, chunk, (size_t)got);
			budget -= (size_t)got < budget ? (size_t)got : budget;
		}
		if (got < 0 || (got == 0 && want > 0) ||
		    u->hashed >= (uint64_t)u->st.st_size) {
			*pp = u->next_hashing;
			u->next_hashing = done;
			done = j;
			if (got < 0 || (got == 0 && want > 0))
				u->hashed = UINT64_MAX; /* marks the failure */
			continue;
		}
		pp = &u->next_hashing;
	}
	if (s->hashing != NULL)
		loop_timer_set(s->work_timer, 0);
	upload_start_batch(s, done);
}

/* --- converging -------------------------------------------------------- */

/* The ops table's converge: compares the file with its row; starts its
 * hash when it is new or changed. */
void
sync_upload_converge(struct job *j)
{
	struct sync *s = j->sync;
	struct run *r = j->run;
	struct run_upload *u;
	struct timespec now;
	int64_t age_ms;
	struct err e;
	int found;

	sync_run_use(r, RUN_UPLOAD);
	u = &r->u.up;
	if (!sync_wanted(s, j->path)) {
		s->ops->gone(j);
		return;
	}
	err_clear(&e);
	if (sync_key(s, j->path, r->key, sizeof(r->key), &e) == -1) {
		sync_job_fail(j, &e, "%s", e.message);
		return;
	}
	u->fd = sync_open(s, j->path);
	if (u->fd == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
		    errno == EXDEV || errno == ENXIO) {
			s->ops->gone(j);
			return;
		}
		err_sys(&e, "cannot open");
		sync_job_fail(j, &e, "%s", e.message);
		return;
	}
	if (fstat(u->fd, &u->st) == -1) {
		err_sys(&e, "fstat");
		sync_job_fail(j, &e, "%s", e.message);
		return;
	}
	if (!S_ISREG(u->st.st_mode)) {
		s->ops->gone(j);
		return;
	}
	if (s->nheld > 0) /* back: its held deletion goes */
		sync_held_drop(s, j->path);
	found = state_file_get(s->state, j->path, j->path_len, &r->old, &e);
	if (found == -1) {
		sync_job_fail(j, &e, "state: %s", e.message);
		return;
	}
	r->have_old = found;
	if (found && !r->old.failed && sync_same_file(&u->st, &r->old)) {
		s->stats.unchanged++;
		sync_job_finish(j, 1);
		return;
	}
	/* Still being written (a rescan found it before its close event):
	 * wait for it to settle (invariant 4). An mtime in the future says
	 * nothing. */
	clock_gettime(CLOCK_REALTIME, &now);
	age_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 -
	         sync_mtime_ns(&u->st) / 1000000;
	if (age_ms >= 0 && age_ms < (int64_t)s->settle_ms) {
		j->again = 1;
		sync_job_finish(j, 0);
		return;
	}
	u->hash = imagemeta_hash_new();
	err_clear(&e);
	/* A file that goes in parts has them hashed in the same pass. */
	u->parts = s3_parts_new(s->s3, (uint64_t)u->st.st_size, &e);
	if (u->hash == NULL || e.kind != ERR_NONE) {
		err_set(&e, ERR_SYS, "SHA-256: out of memory");
		e.sys_errno = ENOMEM;
		sync_job_fail(j, &e, "%s", e.message);
		return;
	}
	r->phase = RUN_HASHING;
	u->next_hashing = s->hashing;
	s->hashing = j;
	loop_timer_set(s->work_timer, 0);
}
