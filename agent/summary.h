/*
 * summary: summary.json in the bucket, the sorted list of every synced
 * image ({"name","size","type","timestamp","width","height"}), rebuilt from
 * the state database at most once per interval after a change. It is built
 * from the one index the engine keeps, never read, modified and written
 * back, so no update is lost to a race.
 */
#ifndef IMGSYNC_SUMMARY_H
#define IMGSYNC_SUMMARY_H

#include "err.h"
#include "loop.h"
#include "s3.h"
#include "state.h"

struct summary;

/* l, s3 and st are borrowed. */
struct summary *summary_new(struct loop *l, struct s3 *s3, struct state *st,
                            const char *key, unsigned interval_ms,
                            struct err *e);
void summary_free(struct summary *s);
/* Something changed: rewrite the summary within the interval. */
void summary_touch(struct summary *s);
void summary_set_interval(struct summary *s, unsigned interval_ms);
/* Nothing waiting to be written and nothing being written. */
int summary_idle(const struct summary *s);

#endif
