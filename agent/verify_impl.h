/*
 * verify_impl: what the rooms of verify share, private to them.
 * verify.c owns the steps (a timer, one phase after another), the public
 * API and the report; verify_collect.c keeps the scratch database and
 * fills it from the three listings (the bucket, the table, the folder);
 * verify_repair.c compares the listings and repairs what is safe to.
 * Calls go one way: from the steps to collect and to repair. A
 * request's callback in collect or repair hands control back to the steps
 * through the two function pointers verify.c sets (resume, next), never by
 * name.
 */
#ifndef IMGSYNC_VERIFY_IMPL_H
#define IMGSYNC_VERIFY_IMPL_H

#include <sqlite3.h>
#include <stdint.h>

#include "verify.h"

#define VERIFY_PAGE 1000   /* keys a listing or scan page asks for */
#define VERIFY_NAMES 100   /* names a report lists per kind */
#define VERIFY_HASH_TURN 8 /* files hashed a loop turn (rebuilt rows) */

enum verify_phase {
	PHASE_OBJECTS,
	PHASE_ITEMS,
	PHASE_LOCAL,
	PHASE_COMPARE,
	PHASE_CHECKSUMS,
	PHASE_REBUILD,
	PHASE_DELETE,
	PHASE_DONE,
};

/* The kinds of difference, in report order (verify_repair_kind_name). */
enum verify_kind {
	K_OBJ_MISSING,
	K_ITEM_MISSING,
	K_ORPHAN_OBJ,
	K_ORPHAN_ITEM,
	K_DISAGREE,
	K_UNSYNCED,
	K_FAILED,
	K_CHECKSUM,      /* counted by verify_checksum.c, not by a query */
	K_THUMB_MISSING, /* thumbnails on, and listed: named, not there */
	K_ORPHAN_THUMB,  /* ... there, named by no item */
	K_NKINDS
};

struct verify {
	struct verify_deps d; /* d.cfg is NULL: a reload may free it */
	char *s3prefix, *table, *summary_key; /* copied from the config */
	char *thumb_prefix; /* thumbnails on: objects under it are theirs */
	int thumbs_listed;  /* ... and the listing covers them: compared */
	int max_delete;
	char *prefix;     /* the FileName prefix */
	char *fileprefix; /* the same, less s3.prefix: a path prefix */
	int repair, delete_orphans, checksums;
	uint64_t sums_checked, sums_absent, sums_other; /* verify_checksum.c */
	verify_done_cb cb;
	void *arg;
	/* Set by verify.c. A request's callback first calls resume (0: v
	 * was freed meanwhile, return at once), and when done with the
	 * answer, next (the following step, or the report). */
	int (*resume)(struct verify *v);
	void (*next)(struct verify *v);
	enum verify_phase phase;
	sqlite3 *db;
	char *dbpath;
	int rootfd;
	struct loop_timer *timer;
	char *token;       /* ListObjectsV2 continuation */
	json_t *start_key; /* Scan's LastEvaluatedKey */
	uint64_t nobjects, nitems, nfiles, hashed, deleted;
	long counts[K_NKINDS];
	long repaired, rebuilt;
	json_t *names[K_NKINDS];
	/* PHASE_REBUILD and PHASE_DELETE walk a query a step at a time */
	sqlite3_stmt *walk;
	int finished;  /* the report is complete */
	int pending;   /* a request is in flight */
	int abandoned; /* freed meanwhile: its callback frees */
	char error[600];
	char note[700];
};

/* verify_collect.c: the scratch database and the three listings. */

/* Creates <state_path>.verify afresh with its tables. 0, or -1 with
 * v->error set (empty when out of memory). */
int verify_collect_open(struct verify *v, const char *state_path);
/* Asks for the next page of the bucket (PHASE_OBJECTS) or the table
 * (PHASE_ITEMS); its callback moves the phase on after the last page.
 * 0 with v->pending set, or -1 with v->error set. */
int verify_collect_request(struct verify *v);
/* The state database's rows (with a fresh lstat), then the files on disk
 * it does not know. 0, or -1 with v->error set. */
int verify_collect_local(struct verify *v);

/* verify_repair.c: comparing and repairing. */

/* Prepares v->walk over sql. 0, or -1 with v->error set. */
int verify_repair_walk(struct verify *v, const char *sql);

/* The report's name of a kind ("objects_missing", ...). */
const char *verify_repair_kind_name(enum verify_kind k);
/* Counts each kind and keeps its first names; with repair, asks the
 * engine to upload again what it can mend. 0, or -1 with v->error set. */
int verify_repair_compare(struct verify *v);
/* Prepares v->walk over the files the database does not know. */
int verify_repair_rebuild_begin(struct verify *v);
/* A few of them a turn. 1 while there are more. */
int verify_repair_rebuild_step(struct verify *v);
/* Prepares v->walk over the orphans to delete (the mass-deletion guard
 * decides whether orphan objects are among them). */
int verify_repair_delete_begin(struct verify *v);
/* One orphan a step. 1 when a call is in flight (its callback goes on). */
int verify_repair_delete_step(struct verify *v);

/* verify_checksum.c: the objects' checksums against the files'. */

/* Prepares v->walk over the synced files whose object is there. */
int verify_checksum_begin(struct verify *v);
/* Asks for one object's checksum (HeadObject); its callback compares and
 * moves on. 1 when a call is in flight, 0 when there is no more. */
int verify_checksum_step(struct verify *v);

#endif
