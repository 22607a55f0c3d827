/*
 * sync_items: the item writes of the engine, batched. An upload (or a
 * rename) whose object is done hands its item here; with no item write in
 * flight it goes at once as one PutItem (a lone file waits for nothing),
 * else it waits for the one in flight and goes with the others that came
 * meanwhile as one TransactWriteItems of up to SYNC_ITEMS_MAX: so a burst
 * costs about one request per file, not two.
 *
 * Why TransactWriteItems and not BatchWriteItem: each write keeps its
 * condition (invariant 2: an older Timestamp never overwrites a newer
 * item), which BatchWriteItem cannot carry; the price is twice the write
 * capacity per item. A transaction is all or nothing: when it is cancelled,
 * its CancellationReasons say item by item why. An item whose condition
 * failed ends as a lone PutItem's would (the table holds newer metadata);
 * the others were not written and go again, at the head of the queue,
 * after a pause if the reason was a conflict or throttling; without
 * reasons, each goes again alone, as a PutItem, which answers for itself.
 * A store
 * without TransactWriteItems (dynalite), or a policy that refuses it, gets
 * one PutItem per item from then on, said once in the log; so does a
 * store whose transactions grow slow with the table (items_timing).
 *
 * Each entry belongs to a running job, which the callback finishes; every
 * entry ends exactly once, cancelled when the engine is freed. Items are
 * at most a few KB (a 1024-byte key, a few short attributes), so 100 stay
 * far below the request's 4 MB limit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errclass.h"
#include "item.h"
#include "log.h"
#include "sync_impl.h"

#define SYNC_ITEMS_MAX 100      /* TransactWriteItems' limit */
#define SYNC_ITEMS_INFLIGHT 4   /* writes in flight while items pile up */
#define SYNC_ITEMS_TRIES 8      /* cancelled by conflicts, then it fails */
#define SYNC_ITEMS_PAUSE_MS 100 /* after a conflict or throttling, x tries */
#define SYNC_ITEMS_SLOW 3       /* slow transactions (of 10 items or more) */
#define SYNC_ITEMS_SLOW_MS 1000 /* ... longer than this */

struct sync_item {
	struct job *job;
	json_t *item;
	dynamo_done_cb cb;
	unsigned tries; /* cancelled by a conflict or throttling so far */
	int alone;      /* goes as a PutItem of its own */
	struct sync_item *next;
};

/* One request in flight: its entries, in the order of its actions. */
struct items_req {
	struct sync *s;
	struct sync_item *head;
	size_t n;
	uint64_t sent_ms;
};

static void
items_entry_end(struct sync_item *it, json_t *resp, const struct err *e)
{
	struct job *j = it->job;
	dynamo_done_cb cb = it->cb;

	json_decref(it->item);
	free(it);
	cb(resp, e, j);
}

static void
items_queue_front(struct sync *s, struct sync_item *head,
                  struct sync_item *tail)
{
	if (head == NULL)
		return;
	tail->next = s->items_head;
	if (s->items_head == NULL)
		s->items_tail = tail;
	s->items_head = head;
}

static void
items_queue_back(struct sync *s, struct sync_item *it)
{
	it->next = NULL;
	if (s->items_tail != NULL)
		s->items_tail->next = it;
	else
		s->items_head = it;
	s->items_tail = it;
}

/* The reason one action of a cancelled transaction gives, or NULL. */
static const char *
items_reason(json_t *resp, size_t i, size_t n)
{
	json_t *reasons = json_object_get(resp, "CancellationReasons");

	if (json_array_size(reasons) != n)
		return NULL;
	return json_string_value(
	    json_object_get(json_array_get(reasons, i), "Code"));
}

static void sync_items_flush(struct sync *s);

/* A cancelled transaction: an item whose condition failed ends here; the
 * rest go again (those cancelled by a conflict or throttling after a
 * pause, each at most SYNC_ITEMS_TRIES times). Without reasons, every item
 * goes again alone. */
static void
items_cancelled(struct sync *s, struct items_req *q, json_t *resp,
                const struct err *e)
{
	struct sync_item *it, *next, *head = NULL, **tail = &head, *last = NULL;
	struct err cf;
	const char *why;
	unsigned pause = 0;
	size_t i = 0;

	err_clear(&cf);
	cf.kind = ERR_HTTP;
	cf.http_status = 400;
	snprintf(cf.code, sizeof(cf.code), "ConditionalCheckFailedException");
	snprintf(cf.message, sizeof(cf.message),
	         "the conditional request failed (in a transaction)");
	for (it = q->head; it != NULL; it = next, i++) {
		next = it->next;
		why = items_reason(resp, i, q->n);
		if (why != NULL && strcmp(why, "ConditionalCheckFailed") == 0) {
			items_entry_end(it, NULL, &cf);
			continue;
		}
		if (why == NULL) {
			it->alone = 1;
		} else if (strcmp(why, "None") != 0) {
			if (++it->tries >= SYNC_ITEMS_TRIES) {
				items_entry_end(it, NULL, e);
				continue;
			}
			if (it->tries > pause)
				pause = it->tries;
		}
		it->next = NULL;
		*tail = it;
		tail = &it->next;
		last = it;
	}
	items_queue_front(s, head, last);
	if (pause > 0 &&
	    loop_timer_set(s->items_timer,
	                   (int64_t)pause * SYNC_ITEMS_PAUSE_MS) == 0)
		s->items_paused = 1;
}

/*
 * Learns whether transactions stay cheap here. On DynamoDB a transaction
 * costs about a round trip, a lone PutItem's time (the quickest seen is
 * the round trip), whatever the table holds; on moto it grows with the
 * table (it copies the whole table for each action of a transaction: at a
 * few thousand items one of 60 takes seconds, and stalls every other
 * request). After SYNC_ITEMS_SLOW transactions of 10 items or more that
 * took over SYNC_ITEMS_SLOW_MS and 20 times the quickest PutItem, one
 * PutItem per item from now on, said once.
 */
static void
items_timing(struct sync *s, const struct items_req *q)
{
	uint64_t ms = loop_now_ms() - q->sent_ms;

	if (q->n == 1) {
		if (s->items_put_min_ms == 0 || ms < s->items_put_min_ms)
			s->items_put_min_ms = ms > 0 ? ms : 1;
		return;
	}
	if (q->n < 10 || s->items_single || s->items_put_min_ms == 0)
		return;
	log_debug("TransactWriteItems of %zu items: %" PRIu64 " ms", q->n, ms);
	if (ms <= SYNC_ITEMS_SLOW_MS || ms <= 20 * s->items_put_min_ms ||
	    ++s->items_slow < SYNC_ITEMS_SLOW)
		return;
	log_warnx("TransactWriteItems of %zu items took %" PRIu64 " ms, "
	          "PutItem %" PRIu64 " ms: one PutItem per item from now on "
	          "(said once)",
	          q->n, ms, s->items_put_min_ms);
	s->items_single = 1;
}

static void
items_on_write(json_t *resp, const struct err *e, void *arg)
{
	struct items_req *q = arg;
	struct sync *s = q->s;
	struct sync_item *it, *next;

	s->items_inflight--;
	if (e == NULL)
		items_timing(s, q);
	if (e != NULL && q->n > 1 &&
	    (strcmp(e->code, "UnknownOperationException") == 0 ||
	     err_classify(e) == ERRC_ACCESS)) {
		/* No transactions here: dynalite has none; a policy may
		 * deny them (dynamodb:EnclosingOperation); moto asks for a
		 * dynamodb:TransactWriteItems permission AWS does not have. */
		if (!s->items_single)
			log_warnx("TransactWriteItems: %s; one PutItem per "
			          "item from now on (said once)",
			          e->message);
		s->items_single = 1;
		for (it = q->head; it->next != NULL; it = it->next)
			;
		items_queue_front(s, q->head, it);
	} else if (e != NULL && q->n > 1 &&
	           strcmp(e->code, "TransactionCanceledException") == 0) {
		items_cancelled(s, q, resp, e);
	} else {
		/* Written, or failed for all alike (a lone PutItem's answer
		 * is its own). */
		for (it = q->head; it != NULL; it = next) {
			next = it->next;
			items_entry_end(it, q->n > 1 ? NULL : resp, e);
		}
	}
	free(q);
	if (e != NULL && e->kind == ERR_CANCEL)
		sync_items_cancel(s); /* the client is going away */
	else if (!s->items_paused)
		sync_items_flush(s);
}

/* Sends the first n queued entries as one request. */
static void
items_send(struct sync *s, size_t n)
{
	struct items_req *q;
	struct sync_item *it, *last = NULL;
	json_t *actions = NULL, *a;
	struct err e;
	size_t i;
	int rc;

	err_clear(&e);
	q = calloc(1, sizeof(*q));
	if (n > 1)
		actions = json_array();
	if (q == NULL || (n > 1 && actions == NULL)) {
		free(q);
		json_decref(actions);
		err_set(&e, ERR_SYS, "out of memory");
		for (i = 0; i < n; i++) {
			it = s->items_head;
			s->items_head = it->next;
			items_entry_end(it, NULL, &e);
		}
		if (s->items_head == NULL)
			s->items_tail = NULL;
		return;
	}
	q->s = s;
	q->head = s->items_head;
	q->sent_ms = loop_now_ms();
	for (it = q->head, i = 0; i < n; it = it->next, i++) {
		last = it;
		it->job->run->phase = RUN_PUTTING_ITEM;
		if (actions != NULL) {
			a = item_put_action(s->table, it->item);
			if (a == NULL ||
			    json_array_append_new(actions, a) == -1)
				break;
		}
	}
	q->n = i;
	s->items_head = last->next;
	if (s->items_head == NULL)
		s->items_tail = NULL;
	last->next = NULL;
	if (i < n) {
		err_set(&e, ERR_INVALID, "cannot build the item");
		rc = -1;
	} else if (n > 1) {
		rc = dynamo_transact_write(s->ddb, actions, items_on_write, q,
		                           &e);
	} else {
		rc = item_put(s->ddb, s->table, q->head->item, items_on_write,
		              q, &e);
	}
	json_decref(actions);
	if (rc == -1) {
		s->items_inflight++;
		items_on_write(NULL, &e, q);
		return;
	}
	s->items_inflight++;
}

/*
 * Sends what is queued: at once when nothing is in flight (or the store
 * takes one item per request); while writes are in flight, only full
 * batches, up to SYNC_ITEMS_INFLIGHT of them: the rest waits for an
 * answer, gathering the items that finish meanwhile.
 */
static void
sync_items_flush(struct sync *s)
{
	struct sync_item *it;
	size_t n;

	while (s->items_head != NULL) {
		for (n = 0, it = s->items_head;
		     it != NULL && !it->alone && n < SYNC_ITEMS_MAX &&
		     !s->items_single;
		     it = it->next)
			n++;
		if (s->items_single || s->items_head->alone)
			n = 1;
		else if (s->items_inflight > 0 &&
		         (n < SYNC_ITEMS_MAX ||
		          s->items_inflight >= SYNC_ITEMS_INFLIGHT))
			return;
		items_send(s, n);
	}
}

void
sync_items_on_timer(void *arg)
{
	struct sync *s = arg;

	s->items_paused = 0;
	sync_items_flush(s);
}

void
sync_items_put(struct job *j, json_t *item, dynamo_done_cb cb)
{
	struct sync *s = j->sync;
	struct sync_item *it;
	struct err e;

	it = calloc(1, sizeof(*it));
	if (it == NULL) {
		json_decref(item);
		err_clear(&e);
		err_set(&e, ERR_SYS, "out of memory");
		cb(NULL, &e, j);
		return;
	}
	it->job = j;
	it->item = item;
	it->cb = cb;
	j->run->phase = RUN_PUTTING_ITEM;
	items_queue_back(s, it);
	if (!s->items_paused)
		sync_items_flush(s);
}

void
sync_items_cancel(struct sync *s)
{
	struct sync_item *it;
	struct err e;

	err_clear(&e);
	err_set(&e, ERR_CANCEL, "cancelled");
	while ((it = s->items_head) != NULL) {
		s->items_head = it->next;
		if (s->items_head == NULL)
			s->items_tail = NULL;
		items_entry_end(it, NULL, &e);
	}
}
