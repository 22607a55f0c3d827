/*
 * rootguard: whether the folder at watch.root is the folder this state
 * database mirrors (invariant 5). A disk that was not mounted, an
 * unmount, a folder moved away and another made in its place: each leaves
 * an empty or foreign folder at the same path, and mirroring it would
 * delete the cloud copy at the moment it became the only one.
 *
 * The mark is a small file in the root, ROOTGUARD_MARKER, that names the
 * state database's root id (random, kept in its meta table), as Syncthing's
 * folder marker does. It travels with the disk, so a reboot of the same
 * disk (new device numbers for USB and NFS mounts) raises no alarm; a folder
 * without it, or with another database's, is not the mirrored one. The
 * marker itself is never mirrored.
 *
 * A database that has synced nothing yet adopts the folder (writes the
 * marker, or takes the id of one already there: how a lost state database
 * is rebuilt). A database from before the marker existed adopts the folder
 * once. A root that cannot be written gets no marker: then the operator
 * creates it by hand (the log says how) or runs imgsyncd --adopt-root.
 */
#ifndef IMGSYNC_ROOTGUARD_H
#define IMGSYNC_ROOTGUARD_H

#include <stddef.h>

#include "err.h"
#include "state.h"

#define ROOTGUARD_MARKER ".imgsync-root"

enum rootguard_verdict {
	ROOTGUARD_OK,      /* the marker names this database */
	ROOTGUARD_ADOPTED, /* a first start: the folder is now the mirrored one
	                    */
	ROOTGUARD_LOST,    /* not the mirrored folder: why says so */
	ROOTGUARD_ERROR,   /* the state database failed: e says why */
};

/*
 * Checks the folder at root. On OK and ADOPTED, *rootfd is an fd of the
 * very folder that was checked (O_DIRECTORY; the caller closes it). On
 * LOST, why holds one line for the log and /status. ADOPTED with an
 * unwritable root says, in why, what the operator must do.
 */
enum rootguard_verdict rootguard_check(struct state *st, const char *root,
                                       int *rootfd, char *why, size_t whylen,
                                       struct err *e);

/* imgsyncd --adopt-root: the folder at root is the mirror from now on
 * (writes the marker with this database's id). */
int rootguard_adopt(struct state *st, const char *root, struct err *e);

/* Whether path (relative to the root) is the marker. */
int rootguard_is_marker(const char *path);

#endif
