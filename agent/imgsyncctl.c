/*
 * imgsyncctl: asks imgsyncd questions and gives it commands over its
 * control socket (HTTP/1.1 on a Unix socket). The command-line parser and
 * the HTTP client are here; ctl_output.c turns answers into text for
 * people. libcurl's easy interface, not the multi one the daemon uses: a
 * one-shot client has no event loop to stay out of the way of.
 *
 * With --json, stdout gets each answer's body byte for byte (plus a newline
 * when the body does not end in one), so `imgsyncctl --json X` and
 * `curl --unix-socket SOCK http://localhost/X` agree. `list --json` follows
 * the cursor and prints every page's body that way, one page a line (JSON
 * Lines; `jq -s 'map(.images[])'` merges them): merging the pages here would
 * print a body the server never sent. An error answer is not a result: its
 * "error" goes to stderr and nothing of it goes to stdout, --json or not
 * (pages of a list printed before a failing page stay printed).
 *
 * Exit codes: 0 done; 1 the daemon answered with an error (its "error"
 * message goes to stderr) or an answer that makes no sense; 2 usage; 3 the
 * daemon cannot be reached, with what to check (what a failed connect
 * means comes from lib/errclass, as every error's does).
 *
 * Over 600 lines, one file still: a one-shot program whose parts (the
 * usage text, one request function, a table of commands a screen each,
 * the option parser) are read top to bottom, and whose text back end is
 * ctl_output.c already.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl_output.h"
#include "err.h"
#include "errclass.h"
#include "item.h"
#include "sigv4.h"
#include "text.h"

#define SOCKET_DEFAULT "/run/imgsync/imgsync.sock"
#define TIMEOUT_S 30L         /* per request, so per page of a listing */
#define CONNECT_TIMEOUT_S 10L /* a full listen backlog makes connect wait */
#define ANSWER_MAX (256u << 20)
#define PAGE_DEFAULT 1000L

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

struct ctl {
	const char *socket;
	int json;
	int watch;
	int local;
	int confirm;   /* deletions --confirm */
	int repair;    /* verify --repair [--delete-orphans] */
	int checksums; /* verify --checksums */
	int delete_orphans;
	long page_size;
	long expires; /* url --expires, seconds; 0: the daemon's default */
	CURL *curl;
	struct buf body; /* the last answer's body */
	long status;     /* and its HTTP status */
	char curl_err[CURL_ERROR_SIZE];
};

typedef int ctl_render_fn(FILE *f, const json_t *answer, struct err *e);

struct command {
	const char *name;
	int min_args, max_args;
	const char *method;
	const char *path;
	int (*run)(struct ctl *c, const struct command *cmd, char **args);
	ctl_render_fn *render;
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: imgsyncctl [-s SOCKET] [--json] COMMAND [ARG]\n"
	    "commands:\n"
	    "  status [-w]        the daemon's state and progress; -w, "
	    "--watch: refresh\n"
	    "                     every second until nothing is queued "
	    "or in flight\n"
	    "  list [-n N] [--local] [PREFIX]\n"
	    "                     every synced image (under PREFIX); "
	    "-n: page size\n"
	    "                     (1-1000), --local: from the state "
	    "database\n"
	    "  get NAME           one image's attributes\n"
	    "  delete NAME        delete the item and the object; the "
	    "local file goes\n"
	    "                     to the trash folder\n"
	    "  upload NAME        sync that local file now\n"
	    "  rescan             compare the whole folder with the "
	    "mirror again\n"
	    "  pause, resume      stop and restart syncing\n"
	    "  failed             files that failed, with the error\n"
	    "  retry              try the failed files again\n"
	    "  verify [--checksums] [--repair [--delete-orphans]] [PREFIX]\n"
	    "                     compare the folder, the bucket and the "
	    "table; --repair\n"
	    "                     fixes what is safe, --delete-orphans also "
	    "deletes objects\n"
	    "                     no file accounts for; exit 1 when they "
	    "differ;\n"
	    "                     --checksums also reads each object's "
	    "SHA-256 checksum\n"
	    "  deletions [--confirm]\n"
	    "                     local deletions held by sync.max_delete; "
	    "--confirm\n"
	    "                     sends them\n"
	    "  metrics            Prometheus metrics\n"
	    "  url [--expires DURATION] NAME\n"
	    "                     a link to the synced file that anyone "
	    "holding it can\n"
	    "                     open until it expires (default 1h, at "
	    "most 7d, and no\n"
	    "                     longer than the daemon's credentials "
	    "last)\n"
	    "  web-login          a one-time link into the gallery "
	    "(web.listen): it works\n"
	    "                     once, within 10 minutes, and logs that "
	    "browser in\n"
	    "options:\n"
	    "  -s, --socket PATH  control socket (default: $IMGSYNC_SOCKET, "
	    "else\n"
	    "                     %s)\n"
	    "      --json         print the daemon's JSON answers as they "
	    "are\n"
	    "  -v, --version      print the version\n"
	    "  -h, --help         this text\n"
	    "exit: 0 ok, 1 refused or not found, 2 usage, 3 daemon not "
	    "reachable\n",
	    SOCKET_DEFAULT);
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("imgsyncctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(imgsyncctl -h for help)\n", stderr);
	return EXIT_USAGE;
}

/* ---- HTTP over the socket --------------------------------------------- */

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (buf_append(b, p, size * n) == -1)
		return 0;
	return size * n;
}

/* curl says only "couldn't connect". Connect's errno, or what the socket
 * file says when connect gave none, make it an error lib/errclass sorts
 * as it sorts every other: no socket, not ours, not a socket, or nobody
 * listening. */
static void
explain_connect(const char *path, long os_errno)
{
	struct stat st;
	struct err e;

	err_clear(&e);
	e.kind = ERR_NET;
	e.curl_code = CURLE_COULDNT_CONNECT;
	e.sys_errno = (int)os_errno;
	if (stat(path, &st) == -1) {
		if (errno == EACCES)
			e.sys_errno = EACCES;
		else if (e.sys_errno == 0 || e.sys_errno == ECONNREFUSED)
			e.sys_errno = ENOENT;
	} else if (!S_ISSOCK(st.st_mode)) {
		e.sys_errno = ENOTSOCK;
	} else if (e.sys_errno == 0 && access(path, R_OK | W_OK) == -1 &&
	           errno == EACCES) {
		e.sys_errno = EACCES;
	}
	switch (err_classify(&e)) {
	case ERRC_MISSING:
		fprintf(stderr,
		        "imgsyncctl: is imgsyncd running? no socket at %s "
		        "(set -s or control.socket)\n",
		        path);
		break;
	case ERRC_ACCESS:
		fprintf(stderr,
		        "imgsyncctl: permission denied on %s: are you in the "
		        "socket's group (imgsync)?\n",
		        path);
		break;
	case ERRC_CONFIG:
		fprintf(stderr,
		        "imgsyncctl: %s is not a socket (set -s or "
		        "control.socket)\n",
		        path);
		break;
	default:
		if (e.sys_errno == 0 || e.sys_errno == ECONNREFUSED)
			fprintf(stderr,
			        "imgsyncctl: nobody listening on %s: is "
			        "imgsyncd running?\n",
			        path);
		else
			fprintf(stderr,
			        "imgsyncctl: cannot connect to %s: %s\n", path,
			        strerror(e.sys_errno));
		break;
	}
}

static struct curl_slist *
headers_new(int with_body)
{
	static const char *const all[] = {"Accept: application/json", "Expect:",
	                                  "Content-Type: application/json"};
	struct curl_slist *list = NULL, *l;
	size_t i;

	for (i = 0; i < (with_body ? 3u : 2u); i++) {
		l = curl_slist_append(list, all[i]);
		if (l == NULL) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = l;
	}
	return list;
}

#define SETOPT(opt, val)                                                       \
	do {                                                                   \
		if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK)           \
			goto setopt_fail;                                      \
	} while (0)

/* One request; its answer in c->status and c->body. Returns 0 for a 2xx
 * answer, else the exit code, with the reason on stderr. body (JSON) may be
 * NULL. */
static int
request(struct ctl *c, const char *method, const char *path, const char *body)
{
	struct curl_slist *hdr = NULL;
	struct buf url;
	const char *u;
	long os_errno = 0;
	CURLcode rc;
	int ret = EXIT_REFUSED;

	buf_init(&url, 0);
	buf_puts(&url, "http://localhost");
	buf_puts(&url, path);
	u = buf_cstr(&url);
	buf_reset(&c->body);
	c->status = 0;
	c->curl_err[0] = '\0';
	hdr = headers_new(body != NULL);
	if (u == NULL || hdr == NULL) {
		fputs("imgsyncctl: out of memory\n", stderr);
		goto out;
	}
	curl_easy_reset(c->curl);
	SETOPT(CURLOPT_UNIX_SOCKET_PATH, c->socket);
	SETOPT(CURLOPT_URL, u);
	SETOPT(CURLOPT_NOPROXY, "*");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_TIMEOUT, TIMEOUT_S);
	SETOPT(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	SETOPT(CURLOPT_ERRORBUFFER, c->curl_err);
	SETOPT(CURLOPT_USERAGENT, "imgsyncctl/" IMGSYNC_VERSION);
	SETOPT(CURLOPT_HTTPHEADER, hdr);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, &c->body);
	if (strcmp(method, "GET") != 0) {
		SETOPT(CURLOPT_POSTFIELDS, body != NULL ? body : "");
		SETOPT(CURLOPT_POSTFIELDSIZE,
		       body != NULL ? (long)strlen(body) : 0L);
		if (strcmp(method, "POST") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(c->curl);
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		explain_connect(c->socket, os_errno);
		ret = EXIT_UNREACHABLE;
		goto out;
	case CURLE_OPERATION_TIMEDOUT:
		fprintf(stderr,
		        "imgsyncctl: no answer from imgsyncd on %s within "
		        "%ld s\n",
		        c->socket, TIMEOUT_S);
		ret = EXIT_UNREACHABLE;
		goto out;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* Connected, then cut off: the daemon is there. */
		fprintf(stderr,
		        "imgsyncctl: imgsyncd closed the connection without an "
		        "answer (%s)\n",
		        c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
		goto out;
	case CURLE_WRITE_ERROR:
		fprintf(stderr,
		        "imgsyncctl: the answer to %s is over %u MiB (or out "
		        "of memory)\n",
		        path, ANSWER_MAX >> 20);
		goto out;
	default:
		fprintf(stderr, "imgsyncctl: %s: %s\n", c->socket,
		        c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
		ret = EXIT_UNREACHABLE;
		goto out;
	}
	if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status) !=
	        CURLE_OK ||
	    buf_cstr(&c->body) == NULL) {
		fputs("imgsyncctl: out of memory\n", stderr);
		goto out;
	}
	ret = EXIT_OK;
	goto out;
setopt_fail:
	fputs("imgsyncctl: libcurl refused an option\n", stderr);
out:
	curl_slist_free_all(hdr);
	buf_cleanup(&url);
	return ret;
}

#undef SETOPT

static json_t *
parse_answer(const struct ctl *c)
{
	json_error_t je;
	json_t *j;

	j = json_loadb(c->body.data, c->body.len, JSON_ALLOW_NUL, &je);
	if (j == NULL)
		fprintf(stderr,
		        "imgsyncctl: unreadable answer from imgsyncd (HTTP "
		        "%ld): %s\n",
		        c->status, je.text);
	return j;
}

/* An answer outside 2xx: the server's "error", escaped like any text it
 * sends (it may quote a file name). */
static int
refused(const struct ctl *c)
{
	json_t *j = json_loadb(c->body.data, c->body.len, JSON_ALLOW_NUL, NULL);
	const json_t *msg = json_object_get(j, "error");
	char *s = NULL;

	if (json_is_string(msg))
		s = ctl_output_escape_message(json_string_value(msg),
		                              json_string_length(msg));
	if (s != NULL)
		fprintf(stderr, "imgsyncctl: %s\n", s);
	else
		fprintf(stderr, "imgsyncctl: imgsyncd answered HTTP %ld\n",
		        c->status);
	free(s);
	json_decref(j);
	return EXIT_REFUSED;
}

static int
call(struct ctl *c, const char *method, const char *path, const char *body)
{
	int rc = request(c, method, path, body);

	if (rc != EXIT_OK)
		return rc;
	if (c->status < 200 || c->status > 299)
		return refused(c);
	return EXIT_OK;
}

static void
print_verbatim(const struct ctl *c)
{
	fwrite(c->body.data, 1, c->body.len, stdout);
	if (c->json &&
	    (c->body.len == 0 || c->body.data[c->body.len - 1] != '\n'))
		fputc('\n', stdout);
}

static int
render(struct ctl *c, ctl_render_fn *fn)
{
	struct err e;
	json_t *j;
	int rc = EXIT_OK;

	if (c->json) {
		print_verbatim(c);
		return EXIT_OK;
	}
	j = parse_answer(c);
	if (j == NULL)
		return EXIT_REFUSED;
	err_clear(&e);
	if (fn(stdout, j, &e) == -1) {
		fprintf(stderr, "imgsyncctl: %s\n", e.message);
		rc = EXIT_REFUSED;
	}
	json_decref(j);
	return rc;
}

/* ---- commands ---------------------------------------------------------- */

/* {"FileName": name} (with "ExpiresIn" when expires > 0) into *out. */
static int
name_body(const char *name, long expires, char **out)
{
	json_t *j;

	*out = NULL;
	if (!text_utf8_valid(name, strlen(name)))
		return usage_error("NAME is not valid UTF-8 (S3 keys are "
		                   "UTF-8)");
	j = json_pack("{s:s}", ITEM_FILENAME, name);
	if (j != NULL && expires > 0)
		json_object_set_new(j, "ExpiresIn", json_integer(expires));
	*out = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (*out == NULL) {
		fputs("imgsyncctl: out of memory\n", stderr);
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

static int
run_simple(struct ctl *c, const struct command *cmd, char **args)
{
	char *body = NULL;
	int rc;

	if (cmd->max_args == 1 &&
	    (rc = name_body(args[0], 0, &body)) != EXIT_OK)
		return rc;
	rc = call(c, cmd->method, cmd->path, body);
	free(body);
	if (rc != EXIT_OK)
		return rc;
	if (cmd->render == NULL) {
		print_verbatim(c); /* metrics: text either way */
		return EXIT_OK;
	}
	return render(c, cmd->render);
}

/* Whether the daemon has nothing left to do, from a /status body. */
static int
status_idle(const struct ctl *c)
{
	json_t *j = json_loadb(c->body.data, c->body.len, JSON_ALLOW_NUL, NULL);
	const char *state = json_string_value(json_object_get(j, "state"));
	int idle;

	/* Paused, the queue would never drain: nothing more to watch. */
	idle = j == NULL || (state != NULL && strcmp(state, "paused") == 0) ||
	       (json_number_value(json_object_get(j, "queued")) == 0 &&
	        json_number_value(json_object_get(j, "in_flight")) == 0 &&
	        (state == NULL || strcmp(state, "scanning") != 0));
	json_decref(j);
	return idle;
}

static int
run_status(struct ctl *c, const struct command *cmd, char **args)
{
	struct timespec second = {1, 0};
	int tty = isatty(STDOUT_FILENO);

	(void)args;
	for (;;) {
		int rc = call(c, cmd->method, cmd->path, NULL);
		if (rc != EXIT_OK)
			return rc;
		if (c->watch && tty && !c->json)
			fputs("\033[H\033[2J", stdout);
		rc = render(c, ctl_output_status);
		if (rc != EXIT_OK || !c->watch || status_idle(c))
			return rc;
		if (!tty && !c->json)
			fputc('\n', stdout);
		if (fflush(stdout) != 0)
			return EXIT_REFUSED;
		/* Ctrl-C ends the watch: nothing here needs undoing */
		nanosleep(&second, NULL);
	}
}

/* /getall?limit=N[&prefix=P][&local=1][&cursor=C], escaped. */
static char *
list_path(const struct ctl *c, const char *prefix, const char *cursor)
{
	struct buf b;
	char *p;

	buf_init(&b, 0);
	buf_printf(&b, "/getall?limit=%ld", c->page_size);
	if (prefix != NULL && prefix[0] != '\0') {
		p = curl_easy_escape(c->curl, prefix, 0);
		if (p == NULL)
			goto fail;
		buf_printf(&b, "&prefix=%s", p);
		curl_free(p);
	}
	if (c->local)
		buf_puts(&b, "&local=1");
	if (cursor != NULL) {
		p = curl_easy_escape(c->curl, cursor, 0);
		if (p == NULL)
			goto fail;
		buf_printf(&b, "&cursor=%s", p);
		curl_free(p);
	}
	return buf_steal(&b);
fail:
	buf_cleanup(&b);
	return NULL;
}

static int
run_list(struct ctl *c, const struct command *cmd, char **args)
{
	const char *prefix = args[0], *next;
	char *path = NULL, *cursor = NULL;
	json_t *all = NULL, *page = NULL;
	struct err e;
	int rc = EXIT_REFUSED;

	all = json_array();
	if (all == NULL)
		goto oom;
	for (;;) {
		path = list_path(c, prefix, cursor);
		if (path == NULL)
			goto oom;
		rc = call(c, cmd->method, path, NULL);
		free(path);
		path = NULL;
		if (rc != EXIT_OK)
			goto out;
		rc = EXIT_REFUSED;
		page = parse_answer(c);
		if (page == NULL)
			goto out;
		if (c->json) {
			print_verbatim(c);
		} else if (!json_is_array(json_object_get(page, "images"))) {
			fputs("imgsyncctl: no \"images\" array in the answer\n",
			      stderr);
			goto out;
		} else if (json_array_extend(
		               all, json_object_get(page, "images")) == -1) {
			goto oom;
		}
		next = json_string_value(json_object_get(page, "cursor"));
		if (next == NULL)
			break;
		/* a daemon that hands back the same cursor would loop us */
		if (cursor != NULL && strcmp(next, cursor) == 0) {
			fputs(
			    "imgsyncctl: imgsyncd sent the same cursor twice\n",
			    stderr);
			goto out;
		}
		free(cursor);
		cursor = strdup(next);
		if (cursor == NULL)
			goto oom;
		json_decref(page);
		page = NULL;
	}
	rc = EXIT_OK;
	if (!c->json) {
		err_clear(&e);
		if (ctl_output_images(stdout, all, &e) == -1) {
			fprintf(stderr, "imgsyncctl: %s\n", e.message);
			rc = EXIT_REFUSED;
		}
	}
	goto out;
oom:
	fputs("imgsyncctl: out of memory\n", stderr);
	rc = EXIT_REFUSED;
out:
	free(cursor);
	json_decref(page);
	json_decref(all);
	return rc;
}

/* url: a link to one synced file, on stdout alone (for scripts); what
 * limits it on stderr. */
static int
run_url(struct ctl *c, const struct command *cmd, char **args)
{
	char *body = NULL;
	json_t *j;
	int rc;

	if ((rc = name_body(args[0], c->expires, &body)) != EXIT_OK)
		return rc;
	rc = call(c, cmd->method, cmd->path, body);
	free(body);
	if (rc != EXIT_OK)
		return rc;
	rc = render(c, cmd->render);
	if (rc == EXIT_OK && !c->json) {
		j = json_loadb(c->body.data, c->body.len, 0, NULL);
		ctl_output_url_note(stderr, j);
		json_decref(j);
	}
	return rc;
}

/* deletions: the held ones; with --confirm, they are sent. */
static int
run_deletions(struct ctl *c, const struct command *cmd, char **args)
{
	int rc;

	(void)args;
	if (!c->confirm)
		return run_simple(c, cmd, args);
	rc = call(c, "POST", "/deletions/confirm", NULL);
	return rc != EXIT_OK ? rc : render(c, ctl_output_message);
}

/* verify: starts it, follows its progress (on stderr, every second or
 * so), prints the report; exit 1 when the copies differ. */
static int
run_verify(struct ctl *c, const struct command *cmd, char **args)
{
	char *esc = NULL, last[200] = "";
	const char *state;
	struct buf path;
	json_t *j = NULL;
	double total = 0;
	int rc, n = 0;

	buf_init(&path, 0);
	esc = curl_easy_escape(c->curl, args[0] != NULL ? args[0] : "", 0);
	buf_printf(&path, "%s?prefix=%s%s%s%s", cmd->path,
	           esc != NULL ? esc : "", c->repair ? "&repair=1" : "",
	           c->delete_orphans ? "&delete_orphans=1" : "",
	           c->checksums ? "&checksums=1" : "");
	curl_free(esc);
	if (buf_cstr(&path) == NULL) {
		fputs("imgsyncctl: out of memory\n", stderr);
		return EXIT_REFUSED;
	}
	rc = call(c, cmd->method, path.data, NULL);
	buf_cleanup(&path);
	for (; rc == EXIT_OK; n++) {
		rc = call(c, "GET", "/verify/status", NULL);
		json_decref(j);
		j = rc == EXIT_OK
		        ? json_loadb(c->body.data, c->body.len, 0, NULL)
		        : NULL;
		state = json_string_value(json_object_get(j, "state"));
		if (rc != EXIT_OK || state == NULL ||
		    strcmp(state, "done") == 0)
			break;
		if (n % 5 == 0 && isatty(STDERR_FILENO)) {
			snprintf(
			    last, sizeof(last),
			    "verify: %s: %.0f objects, %.0f items, %.0f "
			    "files",
			    state,
			    json_number_value(json_object_get(j, "objects")),
			    json_number_value(json_object_get(j, "items")),
			    json_number_value(json_object_get(j, "files")));
			fprintf(stderr, "%s\n", last);
		}
		usleep(200000);
	}
	if (rc == EXIT_OK)
		rc = render(c, cmd->render);
	total = json_number_value(json_object_get(j, "total"));
	json_decref(j);
	return rc == EXIT_OK && total > 0 ? EXIT_REFUSED : rc;
}

static const struct command commands[] = {
    {"status", 0, 0, "GET", "/status", run_status, NULL},
    {"list", 0, 1, "GET", "/getall", run_list, NULL},
    {"get", 1, 1, "POST", "/getitem", run_simple, ctl_output_item},
    {"delete", 1, 1, "DELETE", "/delete", run_simple, ctl_output_message},
    {"upload", 1, 1, "POST", "/upload", run_simple, ctl_output_message},
    {"rescan", 0, 0, "POST", "/rescan", run_simple, ctl_output_message},
    {"pause", 0, 0, "POST", "/pause", run_simple, ctl_output_message},
    {"resume", 0, 0, "POST", "/resume", run_simple, ctl_output_message},
    {"failed", 0, 0, "GET", "/failed", run_simple, ctl_output_failed},
    {"retry", 0, 0, "POST", "/retry", run_simple, ctl_output_message},
    {"deletions", 0, 0, "GET", "/deletions", run_deletions,
     ctl_output_deletions},
    {"verify", 0, 1, "POST", "/verify", run_verify, ctl_output_verify},
    {"metrics", 0, 0, "GET", "/metrics", run_simple, NULL},
    {"url", 1, 1, "POST", "/url", run_url, ctl_output_url},
    {"web-login", 0, 0, "POST", "/web/login", run_simple, ctl_output_url},
};

static const struct command *
command_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* ---- main -------------------------------------------------------------- */

static int
page_size(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 1000)
		return -1;
	*out = v;
	return 0;
}

/* Options may come before or after the command (getopt permutes); a NAME
 * that starts with '-' goes after "--". */
static int
parse_args(struct ctl *c, int argc, char **argv, const struct command **cmd,
           char ***args)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"watch", no_argument, NULL, 'w'},
	    {"page-size", required_argument, NULL, 'n'},
	    {"local", no_argument, NULL, 'l'},
	    {"confirm", no_argument, NULL, 'y'},
	    {"repair", no_argument, NULL, 'R'},
	    {"delete-orphans", no_argument, NULL, 'D'},
	    {"checksums", no_argument, NULL, 'C'},
	    {"expires", required_argument, NULL, 'e'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *env = getenv("IMGSYNC_SOCKET");
	struct sockaddr_un sun;
	int ch, nargs, page_set = 0;

	c->socket = env != NULL && env[0] != '\0' ? env : SOCKET_DEFAULT;
	c->page_size = PAGE_DEFAULT;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:wn:vh", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 's':
			c->socket = optarg;
			break;
		case 'j':
			c->json = 1;
			break;
		case 'w':
			c->watch = 1;
			break;
		case 'n':
			if (page_size(optarg, &c->page_size) == -1)
				return usage_error(
				    "-n wants a page size from 1 to 1000, "
				    "not '%s'",
				    optarg);
			page_set = 1;
			break;
		case 'l':
			c->local = 1;
			break;
		case 'y':
			c->confirm = 1;
			break;
		case 'R':
			c->repair = 1;
			break;
		case 'D':
			c->delete_orphans = 1;
			break;
		case 'C':
			c->checksums = 1;
			break;
		case 'e':
			if (text_duration_secs(optarg, SIGV4_MAX_EXPIRES,
			                       &c->expires) == -1)
				return usage_error(
				    "--expires wants a duration from 1s to 7d "
				    "(90, 90s, 30m, 12h, 7d), not '%s'",
				    optarg);
			break;
		case 'v':
			printf("imgsyncctl %s\n", IMGSYNC_VERSION);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		case ':':
			return usage_error("%s wants a value",
			                   argv[optind - 1]);
		default:
			if (strncmp(argv[optind - 1], "--", 2) == 0)
				return usage_error("bad option %s",
				                   argv[optind - 1]);
			return usage_error("bad option -%c", optopt);
		}
	}
	if (optind >= argc)
		return usage_error("which command? (status, list, get, delete, "
		                   "upload, rescan, pause, resume, failed, "
		                   "retry, deletions, verify, metrics, url, "
		                   "web-login)");
	*cmd = command_find(argv[optind]);
	if (*cmd == NULL)
		return usage_error("unknown command '%s'", argv[optind]);
	*args = argv + optind + 1;
	nargs = argc - optind - 1;
	if (nargs < (*cmd)->min_args)
		return usage_error("%s wants a NAME", (*cmd)->name);
	if (nargs > (*cmd)->max_args)
		return usage_error("too many arguments for %s", (*cmd)->name);
	if (c->watch && strcmp((*cmd)->name, "status") != 0)
		return usage_error("-w goes with status");
	if ((page_set || c->local) && strcmp((*cmd)->name, "list") != 0)
		return usage_error("-n and --local go with list");
	if (c->confirm && strcmp((*cmd)->name, "deletions") != 0)
		return usage_error("--confirm goes with deletions");
	if ((c->repair || c->delete_orphans || c->checksums) &&
	    strcmp((*cmd)->name, "verify") != 0)
		return usage_error("--repair, --delete-orphans and --checksums "
		                   "go with verify");
	if (c->expires > 0 && strcmp((*cmd)->name, "url") != 0)
		return usage_error("--expires goes with url");
	if (c->delete_orphans && !c->repair)
		return usage_error("--delete-orphans goes with --repair");
	if (c->socket[0] == '\0' || strlen(c->socket) >= sizeof(sun.sun_path))
		return usage_error("the socket path must have 1 to %zu bytes",
		                   sizeof(sun.sun_path) - 1);
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct ctl c;
	char **args = NULL;
	int rc;

	memset(&c, 0, sizeof(c));
	buf_init(&c.body, ANSWER_MAX);
	rc = parse_args(&c, argc, argv, &cmd, &args);
	if (rc == -1)
		return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
	if (rc != EXIT_OK)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fputs("imgsyncctl: libcurl would not start\n", stderr);
		return EXIT_REFUSED;
	}
	c.curl = curl_easy_init();
	if (c.curl == NULL) {
		fputs("imgsyncctl: libcurl would not start\n", stderr);
		rc = EXIT_REFUSED;
	} else {
		rc = cmd->run(&c, cmd, args);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "imgsyncctl: writing the answer: %s\n",
		        strerror(errno));
		if (rc == EXIT_OK)
			rc = EXIT_REFUSED;
	}
	curl_easy_cleanup(c.curl);
	curl_global_cleanup();
	buf_cleanup(&c.body);
	return rc;
}
