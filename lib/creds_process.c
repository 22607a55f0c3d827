/*
 * creds_process: a profile's credential_process, the way machines outside
 * AWS get short-lived credentials (IAM Roles Anywhere's signing helper, a
 * vault's agent). The command line is split into words as the SDKs do
 * (blanks separate; '...' keeps everything, "..." keeps all but \" and \\,
 * a backslash outside quotes keeps the next character) and run without a
 * shell, stdin from /dev/null. Its stdout, read on the loop without
 * blocking it, is the JSON the SDKs define: Version 1, AccessKeyId,
 * SecretAccessKey, SessionToken, Expiration (RFC 3339; none: the keys do
 * not expire). Its stderr is kept aside and shown (cut) only when it fails;
 * its stdout never is, it holds the secret. It gets process_timeout_ms
 * (default 30 s) to answer and exit; past that it is killed, by pid. A
 * failure names the profile and the program's first word, never its
 * arguments, which may hold a secret.
 */
#include "creds_impl.h"
#include "child.h"

#include <sys/epoll.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CREDS_PROC_MAX_OUT (64u * 1024u)
#define CREDS_PROC_MAX_ERR 512
#define CREDS_PROC_MAX_ARGS 64
#define CREDS_PROC_REAP_MS 20

/* Splits cmd into argv (at most CREDS_PROC_MAX_ARGS words) in store. */
static int
creds_process_split(const char *cmd, char *store, char **argv, int *argc)
{
	char *o = store;
	int n = 0, in_word = 0;
	char q = 0;

	for (; *cmd != '\0'; cmd++) {
		char ch = *cmd;

		if (q == '\'') {
			if (ch == '\'')
				q = 0;
			else
				*o++ = ch;
			continue;
		}
		if (q == '"') {
			if (ch == '"')
				q = 0;
			else if (ch == '\\' &&
			         (cmd[1] == '"' || cmd[1] == '\\'))
				*o++ = *++cmd;
			else
				*o++ = ch;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\n') {
			if (in_word) {
				*o++ = '\0';
				in_word = 0;
			}
			continue;
		}
		if (!in_word) {
			if (n == CREDS_PROC_MAX_ARGS)
				return -1;
			argv[n++] = o;
			in_word = 1;
		}
		if (ch == '\'' || ch == '"')
			q = ch;
		else if (ch == '\\' && cmd[1] != '\0')
			*o++ = *++cmd;
		else
			*o++ = ch;
	}
	if (q != 0)
		return -1;
	*o = '\0';
	argv[n] = NULL;
	*argc = n;
	return 0;
}

static void
creds_process_close_fds(struct creds_provider *p)
{
	struct creds_proc *pr = &p->proc;

	if (pr->out_fd != -1) {
		loop_del_fd(p->loop, pr->out_fd);
		close(pr->out_fd);
		pr->out_fd = -1;
	}
	if (pr->err_fd != -1) {
		loop_del_fd(p->loop, pr->err_fd);
		close(pr->err_fd);
		pr->err_fd = -1;
	}
}

static void
creds_process_wipe(struct creds_proc *pr)
{
	if (pr->out.data != NULL)
		explicit_bzero(pr->out.data, pr->out.cap);
	buf_cleanup(&pr->out);
	buf_cleanup(&pr->err);
}

void
creds_process_stop(struct creds_provider *p)
{
	struct creds_proc *pr = &p->proc;

	if (pr->pid > 0) {
		kill(pr->pid, SIGKILL);
		(void)waitpid(pr->pid, NULL, 0);
		pr->pid = 0;
	}
	if (p->loop != NULL)
		creds_process_close_fds(p);
	loop_timer_free(pr->timer);
	pr->timer = NULL;
	creds_process_wipe(pr);
}

/* The failure, with the program's stderr (cut, on one line) when it said
 * something. */
static void
creds_process_fail(struct creds_provider *p, const char *why)
{
	struct creds_proc *pr = &p->proc;
	char err_text[CREDS_PROC_MAX_ERR + 1];
	size_t i, n = 0;
	struct err e;

	for (i = 0; i < pr->err.len && n < CREDS_PROC_MAX_ERR; i++) {
		unsigned char ch = (unsigned char)pr->err.data[i];

		err_text[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	while (n > 0 && err_text[n - 1] == ' ')
		n--;
	err_text[n] = '\0';
	err_clear(&e);
	err_set(&e, ERR_CREDS,
	        "credential_process of profile \"%s\" (%s): %s%s%s%s",
	        pr->profile, pr->first_word, why, n > 0 ? " (its stderr: " : "",
	        err_text, n > 0 ? ")" : "");
	creds_process_wipe(pr);
	creds_core_finish(p, NULL, &e);
}

static int
creds_process_str(json_t *root, const char *key, char *dst, size_t dstlen,
                  int required)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL || json_is_null(v))
		return required ? -1 : 0;
	if (!json_is_string(v) || json_string_length(v) >= dstlen ||
	    (required && json_string_length(v) == 0))
		return -1;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* Its stdout as the SDKs' JSON into c; NULL, or what is wrong (never a
 * value). */
static const char *
creds_process_parse(const struct buf *out, struct creds *c)
{
	char when[64] = "";
	json_error_t je;
	json_t *root, *v;
	const char *bad = NULL;

	root = json_loadb(out->data != NULL ? out->data : "", out->len, 0, &je);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return "its output is not a JSON object";
	}
	v = json_object_get(root, "Version");
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		bad = "its output's Version is not 1";
	else if (creds_process_str(root, "AccessKeyId", c->access_key_id,
	                           sizeof(c->access_key_id), 1) == -1)
		bad = "its output has no usable AccessKeyId";
	else if (creds_process_str(root, "SecretAccessKey",
	                           c->secret_access_key,
	                           sizeof(c->secret_access_key), 1) == -1)
		bad = "its output has no usable SecretAccessKey";
	else if (creds_process_str(root, "SessionToken", c->session_token,
	                           sizeof(c->session_token), 0) == -1)
		bad = "its output's SessionToken is not a string";
	else if (creds_process_str(root, "Expiration", when, sizeof(when), 0) ==
	             -1 ||
	         (when[0] != '\0' &&
	          creds_http_parse_time(when, &c->expiration) == -1))
		bad = "its output's Expiration is not an RFC 3339 time";
	json_decref(root);
	return bad;
}

/* Both pipes are closed and the process reaped: judge it. */
static void
creds_process_done(struct creds_provider *p, int status)
{
	struct creds_proc *pr = &p->proc;
	struct creds c;
	const char *bad;
	char why[128];

	if (WIFSIGNALED(status)) {
		snprintf(why, sizeof(why), "killed by signal %d",
		         WTERMSIG(status));
		creds_process_fail(p, why);
		return;
	}
	if (WEXITSTATUS(status) != 0) {
		snprintf(why, sizeof(why), "exited with status %d",
		         WEXITSTATUS(status));
		creds_process_fail(p, why);
		return;
	}
	memset(&c, 0, sizeof(c));
	bad = creds_process_parse(&pr->out, &c);
	if (bad != NULL) {
		explicit_bzero(&c, sizeof(c));
		creds_process_fail(p, bad);
		return;
	}
	snprintf(c.source, sizeof(c.source), "%s", "process");
	creds_process_wipe(pr);
	creds_core_finish(p, &c, NULL);
	explicit_bzero(&c, sizeof(c));
}

/* Reaps the process once its pipes are closed (it may linger a moment
 * after closing them); killed past the deadline. */
static void
creds_process_reap(struct creds_provider *p)
{
	struct creds_proc *pr = &p->proc;
	int status;
	pid_t r;

	if (pr->out_fd != -1 || pr->err_fd != -1)
		return;
	r = waitpid(pr->pid, &status, WNOHANG);
	if (r == 0) {
		loop_timer_set(pr->timer, CREDS_PROC_REAP_MS);
		return;
	}
	pr->pid = 0;
	loop_timer_set(pr->timer, -1);
	if (r == -1) {
		creds_process_fail(p, "cannot wait for it");
		return;
	}
	creds_process_done(p, status);
}

static void
creds_process_on_fd(int fd, uint32_t events, void *arg)
{
	struct creds_provider *p = arg;
	struct creds_proc *pr = &p->proc;
	int is_out = fd == pr->out_fd;
	struct buf *b = is_out ? &pr->out : &pr->err;
	char chunk[4096];
	ssize_t n;

	(void)events;
	creds_core_enter(p);
	n = read(fd, chunk, sizeof(chunk));
	if (n > 0) {
		if (is_out || b->len < CREDS_PROC_MAX_ERR)
			buf_append(b, chunk, (size_t)n);
		explicit_bzero(chunk, sizeof(chunk));
		if (pr->out.len > CREDS_PROC_MAX_OUT) {
			kill(pr->pid, SIGKILL);
			creds_process_close_fds(p);
			(void)waitpid(pr->pid, NULL, 0);
			pr->pid = 0;
			creds_process_fail(p, "its output is too large");
		}
		goto out;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		goto out;
	loop_del_fd(p->loop, fd);
	close(fd);
	if (is_out)
		pr->out_fd = -1;
	else
		pr->err_fd = -1;
	creds_process_reap(p);
out:
	creds_core_leave(p);
}

static void
creds_process_on_timer(void *arg)
{
	struct creds_provider *p = arg;
	struct creds_proc *pr = &p->proc;
	char why[96];

	creds_core_enter(p);
	if (pr->pid > 0 && loop_now_ms() >= pr->deadline_ms) {
		kill(pr->pid, SIGKILL);
		(void)waitpid(pr->pid, NULL, 0);
		pr->pid = 0;
		creds_process_close_fds(p);
		snprintf(why, sizeof(why),
		         "no answer within %d ms: killed (it may not hang: the "
		         "daemon waits for no one)",
		         p->process_timeout_ms);
		creds_process_fail(p, why);
	} else if (pr->pid > 0) {
		creds_process_reap(p);
	}
	creds_core_leave(p);
}

static int
creds_process_pipe(int fds[2], struct err *e)
{
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
		err_sys(e, "credential_process: pipe");
		e->kind = ERR_CREDS;
		return -1;
	}
	return 0;
}

/* Runs argv with stdout and stderr into the pipes' write ends. */
static int
creds_process_spawn(struct creds_provider *p, char **argv, int out[2],
                    int errp[2], struct err *e)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	rc = child_spawn(&pid, argv[0], 1, &fa, argv);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		err_set(e, ERR_CREDS,
		        "credential_process of profile \"%s\" (%s): cannot run "
		        "it: %s",
		        p->proc.profile, p->proc.first_word, strerror(rc));
		return -1;
	}
	p->proc.pid = pid;
	return 0;
}

int
creds_process_start(struct creds_provider *p, const char *cmd,
                    const char *profile, struct err *e)
{
	struct creds_proc *pr = &p->proc;
	char *argv[CREDS_PROC_MAX_ARGS + 1], *store;
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, argc = 0, rc = -1;

	creds_process_stop(p);
	pr->out_fd = pr->err_fd = -1;
	snprintf(pr->profile, sizeof(pr->profile), "%s", profile);
	snprintf(pr->first_word, sizeof(pr->first_word), "%s", "?");
	if (p->loop == NULL) {
		err_set(e, ERR_CREDS,
		        "credential_process of profile \"%s\" needs the "
		        "daemon's loop",
		        profile);
		return -1;
	}
	store = malloc(strlen(cmd) + 1);
	if (store == NULL) {
		err_sys(e, "credential_process: malloc");
		return -1;
	}
	if (creds_process_split(cmd, store, argv, &argc) == -1 || argc == 0) {
		err_set(e, ERR_CREDS,
		        "credential_process of profile \"%s\": cannot split "
		        "the command line (an unclosed quote, or no program)",
		        profile);
		goto done;
	}
	snprintf(pr->first_word, sizeof(pr->first_word), "%s", argv[0]);
	buf_init(&pr->out, 0);
	buf_init(&pr->err, 0);
	if (pr->timer == NULL) {
		pr->timer =
		    loop_timer_new(p->loop, creds_process_on_timer, p, e);
		if (pr->timer == NULL)
			goto done;
	}
	if (creds_process_pipe(out, e) == -1 ||
	    creds_process_pipe(errp, e) == -1 ||
	    creds_process_spawn(p, argv, out, errp, e) == -1)
		goto done;
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	pr->out_fd = out[0];
	pr->err_fd = errp[0];
	out[0] = errp[0] = -1;
	if (loop_add_fd(p->loop, pr->out_fd, EPOLLIN, creds_process_on_fd, p,
	                e) == -1 ||
	    loop_add_fd(p->loop, pr->err_fd, EPOLLIN, creds_process_on_fd, p,
	                e) == -1) {
		creds_process_stop(p);
		goto done;
	}
	pr->deadline_ms = loop_now_ms() + (uint64_t)p->process_timeout_ms;
	loop_timer_set(pr->timer, p->process_timeout_ms);
	rc = 1;
done:
	if (out[0] != -1)
		close(out[0]);
	if (out[1] != -1)
		close(out[1]);
	if (errp[0] != -1)
		close(errp[0]);
	if (errp[1] != -1)
		close(errp[1]);
	explicit_bzero(store, strlen(cmd) + 1);
	free(store);
	return rc;
}
