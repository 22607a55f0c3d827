/*
 * verify: proving that the folder, the bucket and the table agree, and
 * repairing what is safe to repair (imgsyncctl verify, imgsyncd --verify).
 *
 * Three sides, under a FileName prefix:
 *   the folder  the state database's rows, each with a fresh lstat, and the
 *               files on disk the database does not know (a lost database);
 *   the bucket  ListObjectsV2: key, size, ETag;
 *   the table   Scan: FileName, Size, SHA256, ETag.
 * The listings go into a scratch SQLite database beside the state database
 * (<state.path>.verify, removed afterwards), so memory stays bounded
 * however large the bucket; the comparison is a few SQL joins. It runs on
 * the daemon's loop a page at a time, beside the engine's work.
 *
 * What it reports, with counts and (the first 100) names:
 *   objects_missing  a synced file whose object is not in the bucket
 *   items_missing    a synced file whose item is not in the table
 *   orphan_objects   an object no local file accounts for
 *   orphan_items     an item no local file accounts for
 *   disagree         an item whose Size or SHA256 differs from the file's,
 *                    or whose ETag or size differs from its object's
 *   unsynced         a local file the state database does not know
 *   failed           files that failed for good
 *   checksum_mismatch  (with opts.checksums) an object whose SHA-256
 *                    checksum is not the one its file's upload carries
 * Files deleted locally and not yet deleted remotely (held deletions among
 * them) are not differences.
 *
 * Repair (opts.repair): a file whose object or item is missing or disagrees
 * is uploaded again; a file the database does not know, whose item has its
 * SHA-256 and whose object has its size, gets its row back without any
 * upload (how a lost state database is rebuilt); any other such file is
 * uploaded; failed files are retried; an orphan item whose object is gone
 * is deleted. Orphan objects (and their items) are deleted only with
 * opts.delete_orphans, and not when there are more than sync.max_delete of
 * them (the mass-deletion guard: the report says so).
 */
#ifndef IMGSYNC_VERIFY_H
#define IMGSYNC_VERIFY_H

#include <jansson.h>

#include "config.h"
#include "dynamo.h"
#include "loop.h"
#include "s3.h"
#include "state.h"
#include "sync.h"

/* All borrowed; they outlive the verification, except cfg, which only
 * verify_start reads (a reload may free it). */
struct verify_deps {
	struct loop *loop;
	struct s3 *s3;
	struct dynamo *ddb;
	struct state *state;
	struct sync *sync;
	const struct config *cfg;
};

struct verify_opts {
	const char *prefix; /* a FileName prefix ("" for all), borrowed */
	int repair;
	int delete_orphans;
	/* Also compare each object's SHA-256 checksum (HeadObject, one per
	 * object; a multipart file is read again) with the file's: the
	 * report's "checksums" and the checksum_mismatch kind. */
	int checksums;
};

struct verify;

typedef void (*verify_done_cb)(void *arg);

/* Starts; cb fires once when the report is complete (also on failure:
 * the report says why). */
struct verify *verify_start(const struct verify_deps *deps,
                            const struct verify_opts *opts, verify_done_cb cb,
                            void *arg, struct err *e);
int verify_finished(const struct verify *v);
/* Progress while running, the report once finished: a new object. */
json_t *verify_report(const struct verify *v);
/* Differences found (after repair: those left unrepaired). */
long verify_differences(const struct verify *v);
/* Cancels what is in flight (its callbacks still find it) and frees. */
void verify_free(struct verify *v);

#endif
