#include "summary.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct summary {
	struct loop *loop;
	struct s3 *s3;
	struct state *state;
	char *key;
	unsigned interval_ms;
	struct loop_timer *timer;
	int dirty;
	int armed;
	int inflight;
	uint64_t last; /* when the last write started */
	char *body;    /* borrowed by the upload in flight */
};

static void summary_arm(struct summary *s);

static int
summary_row(const struct state_file *f, void *arg)
{
	json_t *list = arg, *o;

	if (f->failed || f->key == NULL || f->key[0] == '\0')
		return 0;
	o = json_pack("{s:s, s:I, s:s, s:s}", "name", f->key, "size",
	              (json_int_t)f->size, "type", f->type, "timestamp",
	              f->synced_at);
	if (o == NULL)
		return 0;
	if (f->width > 0 && f->height > 0) {
		json_object_set_new(o, "width", json_integer(f->width));
		json_object_set_new(o, "height", json_integer(f->height));
	} else {
		json_object_set_new(o, "width", json_null());
		json_object_set_new(o, "height", json_null());
	}
	return json_array_append_new(list, o) == 0 ? 0 : -1;
}

static int
summary_cmp(const void *a, const void *b)
{
	const char *x =
	    json_string_value(json_object_get(*(json_t *const *)a, "name"));
	const char *y =
	    json_string_value(json_object_get(*(json_t *const *)b, "name"));

	return strcmp(x, y);
}

/* The state walk is ordered by path; names carry the prefix, so sort by
 * name to be exact whatever the prefix. */
static char *
summary_build(struct summary *s, struct err *e)
{
	json_t *list = json_array(), *sorted, **v;
	size_t i, n;
	char *out = NULL;

	if (list == NULL)
		return NULL;
	if (state_files_each(s->state, summary_row, list, e) == -1)
		goto done;
	n = json_array_size(list);
	v = calloc(n ? n : 1, sizeof(*v));
	sorted = json_array();
	if (v == NULL || sorted == NULL) {
		free(v);
		json_decref(sorted);
		goto done;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(list, i);
	qsort(v, n, sizeof(*v), summary_cmp);
	for (i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	out = json_dumps(sorted, JSON_COMPACT);
	json_decref(sorted);
done:
	json_decref(list);
	return out;
}

static void
summary_on_put(const struct s3_result *r, const struct err *e, void *arg)
{
	struct summary *s = arg;

	(void)r;
	s->inflight = 0;
	free(s->body);
	s->body = NULL;
	if (e != NULL && e->kind == ERR_CANCEL)
		return;
	if (e != NULL) {
		log_warnx("summary %s: %s", s->key, e->message);
		s->dirty = 1;
	}
	if (s->dirty)
		summary_arm(s);
}

static void
summary_on_timer(void *arg)
{
	struct summary *s = arg;
	struct s3_body body;
	struct err e;

	s->armed = 0;
	if (s->inflight || !s->dirty)
		return;
	err_clear(&e);
	s->body = summary_build(s, &e);
	if (s->body == NULL) {
		log_warnx("summary: cannot build it: %s", e.message);
		summary_arm(s);
		return;
	}
	s->dirty = 0;
	s->inflight = 1;
	s->last = loop_now_ms();
	memset(&body, 0, sizeof(body));
	body.data = s->body;
	body.fd = -1;
	body.len = strlen(s->body);
	if (s3_put_object(s->s3, s->key, &body, "application/json", NULL, 0,
	                  summary_on_put, s, &e) == -1) {
		log_warnx("summary %s: %s", s->key, e.message);
		s->inflight = 0;
		s->dirty = 1;
		free(s->body);
		s->body = NULL;
		summary_arm(s);
	}
}

static void
summary_arm(struct summary *s)
{
	uint64_t now = loop_now_ms(), at = s->last + s->interval_ms;

	if (s->armed || s->inflight)
		return;
	s->armed = 1;
	loop_timer_set(s->timer, at > now ? (int64_t)(at - now) : 0);
}

struct summary *
summary_new(struct loop *l, struct s3 *s3, struct state *st, const char *key,
            unsigned interval_ms, struct err *e)
{
	struct summary *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->key = strdup(key)) == NULL) {
		err_sys(e, "summary: out of memory");
		free(s);
		return NULL;
	}
	s->loop = l;
	s->s3 = s3;
	s->state = st;
	s->interval_ms = interval_ms;
	s->timer = loop_timer_new(l, summary_on_timer, s, e);
	if (s->timer == NULL) {
		summary_free(s);
		return NULL;
	}
	return s;
}

void
summary_free(struct summary *s)
{
	if (s == NULL)
		return;
	loop_timer_free(s->timer);
	free(s->body);
	free(s->key);
	free(s);
}

void
summary_touch(struct summary *s)
{
	s->dirty = 1;
	summary_arm(s);
}

void
summary_set_interval(struct summary *s, unsigned interval_ms)
{
	s->interval_ms = interval_ms;
}

int
summary_idle(const struct summary *s)
{
	return !s->dirty && !s->inflight;
}
