/*
 * verify_checksum: with checksums asked for (imgsyncctl verify --checksums),
 * each synced file's object is asked for the SHA-256 checksum S3 keeps with
 * it (HeadObject with x-amz-checksum-mode), one object at a time, and that
 * is compared with what an upload of the file carries: for one PUT the
 * base64 of the SHA-256 the state database holds (no read), for multipart
 * the composite of the parts' SHA-256s, which needs the file read again
 * (inside the root, beneath it); a renamed file's object, a copy, carries
 * the whole file's SHA-256 whatever its size. A mismatch is a difference
 * (repair uploads the file again); an object with no checksum (uploaded before
 * checksums were on, or a store that keeps none), or whose part count is not
 * the one the part size gives now, is counted apart: it proves nothing either
 * way.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "beneath.h"
#include "verify_impl.h"

struct verify_sum {
	struct verify *v;
	char *key;
	char *path;
	char want[80];  /* the checksum the file's upload carries */
	char whole[48]; /* the whole file's: what a copy (a rename) carries */
};

int
verify_checksum_begin(struct verify *v)
{
	return verify_repair_walk(
	    v, "SELECT l.key, l.path, l.sha, l.size FROM loc l "
	       "JOIN obj o ON o.key = l.key WHERE l.row = 1 AND "
	       "l.present = 1 AND l.failed = 0 AND o.size IS l.size "
	       "ORDER BY l.key");
}

/* The part after the base64 digest: "-<parts>", or "" (moto gives none). */
static const char *
verify_checksum_parts(const char *sum)
{
	const char *dash = strchr(sum, '-');

	return dash != NULL ? dash : "";
}

static void
verify_checksum_mismatch(struct verify *v, const struct verify_sum *vs)
{
	struct err e;

	v->counts[K_CHECKSUM]++;
	if (json_array_size(v->names[K_CHECKSUM]) < VERIFY_NAMES)
		json_array_append_new(v->names[K_CHECKSUM],
		                      json_string(vs->key));
	err_clear(&e);
	if (v->repair && sync_reupload(v->d.sync, vs->path, &e) == 0)
		v->repaired++;
}

static void
verify_checksum_free(struct verify_sum *vs)
{
	free(vs->key);
	free(vs->path);
	free(vs);
}

static void
verify_checksum_on_head(const struct s3_result *r, const struct err *e,
                        void *arg)
{
	struct verify_sum *vs = arg;
	struct verify *v = vs->v;
	const char *got, *want;
	size_t n;

	if (!v->resume(v)) {
		verify_checksum_free(vs);
		return;
	}
	if (e != NULL) {
		/* Gone meanwhile, or refused: said, and the walk goes on. */
		snprintf(v->note, sizeof(v->note), "HeadObject %s: %s", vs->key,
		         e->message);
		v->sums_other++;
	} else if (r->checksum_sha256[0] == '\0') {
		v->sums_absent++;
	} else {
		got = r->checksum_sha256;
		want = vs->want;
		n = strcspn(want, "-");
		if (strcmp(got, vs->whole) == 0)
			v->sums_checked++;
		else if (*verify_checksum_parts(got) != '\0' &&
		         strcmp(verify_checksum_parts(got),
		                verify_checksum_parts(want)) != 0)
			v->sums_other++; /* cut in other parts */
		else if (strcspn(got, "-") != n || strncmp(got, want, n) != 0)
			verify_checksum_mismatch(v, vs);
		else
			v->sums_checked++;
	}
	verify_checksum_free(vs);
	v->next(v);
}

/* What the upload of the row's file carries, into vs->want. 0, or -1 when
 * the file cannot be read now (counted apart). */
static int
verify_checksum_want(struct verify *v, struct verify_sum *vs, const char *sha,
                     uint64_t size)
{
	struct err e;
	int fd, rc;

	if (s3_checksum_from_hex(sha, vs->whole, sizeof(vs->whole)) == -1)
		return -1;
	if (!s3_multipart(v->d.s3, size))
		return s3_checksum_from_hex(sha, vs->want, sizeof(vs->want));
	fd = beneath_open(v->rootfd, vs->path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd == -1)
		return -1;
	err_clear(&e);
	rc =
	    s3_checksum_file(v->d.s3, fd, size, vs->want, sizeof(vs->want), &e);
	close(fd);
	return rc;
}

int
verify_checksum_step(struct verify *v)
{
	struct verify_sum *vs;
	const char *key, *sha;
	struct err e;
	int n;

	while (sqlite3_step(v->walk) == SQLITE_ROW) {
		key = (const char *)sqlite3_column_text(v->walk, 0);
		n = sqlite3_column_bytes(v->walk, 1);
		sha = (const char *)sqlite3_column_text(v->walk, 2);
		if (key == NULL || sha == NULL || n <= 0)
			continue;
		vs = calloc(1, sizeof(*vs));
		if (vs == NULL)
			return 0;
		vs->v = v;
		vs->key = strdup(key);
		vs->path = strndup(sqlite3_column_blob(v->walk, 1), (size_t)n);
		if (vs->key == NULL || vs->path == NULL ||
		    verify_checksum_want(
		        v, vs, sha,
		        (uint64_t)sqlite3_column_int64(v->walk, 3)) == -1) {
			v->sums_other++;
			verify_checksum_free(vs);
			continue;
		}
		err_clear(&e);
		if (s3_head_checksum(v->d.s3, vs->key, verify_checksum_on_head,
		                     vs, &e) == -1) {
			snprintf(v->note, sizeof(v->note), "%s", e.message);
			verify_checksum_free(vs);
			return 0;
		}
		v->pending = 1;
		return 1;
	}
	return 0;
}
