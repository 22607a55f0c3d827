/*
 * test_state_intents: the `intents` table: order, ids never reused, the
 * fields kept, and an intent that survives a crash right after it.
 */
#include "test_state.h"

#include <sys/wait.h>

/* cppcheck-suppress unknownMacro */
TestSuite(state_intents, .init = setup, .fini = teardown);

Test(state_intents, intents_in_order_and_across_reopen)
{
	struct state *s = open_ok();
	struct intents_seen seen;
	struct state_intent in;
	struct err e;
	int64_t a, b, c, d;
	uint64_t n;

	a = add_intent(s, STATE_OP_UPLOAD, "u.jpg", "p/u.jpg", NULL, NULL);
	b = add_intent(s, STATE_OP_DELETE, "d\xff.jpg", "p/d.jpg", NULL, NULL);
	c = add_intent(s, STATE_OP_RENAME, "new.jpg", "p/new.jpg", "old.jpg",
	               "p/old.jpg");
	cr_assert(a < b && b < c);
	err_clear(&e);
	cr_assert_eq(state_intent_set_upload_id(s, a, "mpu-123", &e), 0);
	cr_assert_eq(state_intent_done(s, b, &e), 0);
	cr_assert_eq(state_intent_done(s, b, &e), 0);
	state_close(s);

	s = open_ok();
	d = add_intent(s, STATE_OP_UPLOAD, "later.jpg", "p/later.jpg", NULL,
	               NULL);
	cr_assert_gt(d, c); /* ids are never reused */
	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(state_intents_each(s, collect_intent, &seen, &e), 0);
	cr_assert_eq(seen.n, 3);
	cr_assert_eq(seen.ids[0], a);
	cr_assert_eq(seen.ids[1], c);
	cr_assert_eq(seen.ids[2], d);

	in = seen.copy[0];
	cr_assert_eq(in.op, STATE_OP_UPLOAD);
	cr_assert_str_eq(in.path, "u.jpg");
	cr_assert_str_eq(in.key, "p/u.jpg");
	cr_assert_null(in.old_path);
	cr_assert_null(in.old_key);
	cr_assert_str_eq(in.upload_id, "mpu-123");
	cr_assert_eq(in.size, 4096);
	cr_assert_eq(in.mtime_ns, 1700000000000000001LL);
	cr_assert_eq(strlen(in.sha256), 64);
	cr_assert_eq(strlen(in.created_at), 24);

	in = seen.copy[1];
	cr_assert_eq(in.op, STATE_OP_RENAME);
	cr_assert_str_eq(in.old_path, "old.jpg");
	cr_assert_eq(in.old_len, 7);
	cr_assert_str_eq(in.old_key, "p/old.jpg");
	cr_assert_null(in.upload_id);
	seen_free(&seen);

	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(state_op_name(STATE_OP_DELETE), "delete");

	/* A rename needs its old path and key. */
	memset(&in, 0, sizeof(in));
	in.op = STATE_OP_RENAME;
	in.path = "n";
	in.path_len = 1;
	in.key = "n";
	cr_assert_eq(state_intent_add(s, &in, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	in.op = (enum state_op)42;
	cr_assert_eq(state_intent_add(s, &in, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	state_close(s);
}

Test(state_intents, crash_after_intent_keeps_it)
{
	struct state *s;
	struct intents_seen seen;
	struct state_file f;
	struct err e;
	pid_t pid;
	int status;

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct state *cs;
		struct state_intent in;
		struct state_file cf;

		err_clear(&e);
		cs = state_open(dbpath, &e);
		if (cs == NULL)
			_exit(2);
		memset(&in, 0, sizeof(in));
		in.op = STATE_OP_UPLOAD;
		in.path = "crash.jpg";
		in.path_len = 9;
		in.key = "p/crash.jpg";
		if (state_intent_add(cs, &in, &e) <= 0)
			_exit(3);
		/* A batch in progress at the crash must vanish whole. */
		memset(&cf, 0, sizeof(cf));
		cf.path = "half.jpg";
		cf.path_len = 8;
		cf.key = "half.jpg";
		if (state_begin(cs, &e) == -1 ||
		    state_file_put(cs, &cf, &e) == -1)
			_exit(4);
		_exit(0); /* no state_close, no checkpoint, no atexit */
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d",
	          status);

	s = open_ok();
	memset(&seen, 0, sizeof(seen));
	err_clear(&e);
	cr_assert_eq(state_intents_each(s, collect_intent, &seen, &e), 0);
	cr_assert_eq(seen.n, 1);
	cr_assert_str_eq(seen.copy[0].path, "crash.jpg");
	cr_assert_str_eq(seen.copy[0].key, "p/crash.jpg");
	seen_free(&seen);
	cr_assert_eq(state_file_get(s, "half.jpg", 8, &f, &e), 0);
	state_close(s);
}
