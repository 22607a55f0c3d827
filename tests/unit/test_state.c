/*
 * test_state: the state database's core: opening (the schema, files that
 * are not ours refused and kept, read-only files and directories), a full
 * disk and failing writes, batches, descriptors.
 */
#include "test_state.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* cppcheck-suppress unknownMacro */
TestSuite(state, .init = setup, .fini = teardown);

Test(state, schema_created_and_kept_on_reopen)
{
	struct state *s;
	struct state_file f;
	struct stat sb;
	struct err e;
	char wal[256];

	s = open_ok();
	cr_assert_eq(stat(dbpath, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "mode %o", sb.st_mode & 0777);
	puts0(s, "a.jpg");
	/* The WAL gets the database's mode, not the umask's. */
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	cr_assert_eq(stat(wal, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600, "wal mode %o", sb.st_mode & 0777);
	state_close(s);

	cr_assert_eq(query_int("PRAGMA user_version"), STATE_SCHEMA_VERSION);
	cr_assert_eq(query_int("PRAGMA application_id"), STATE_APPLICATION_ID);
	/* journal_mode=WAL is persistent: any new connection sees it. */
	cr_assert(query_is("PRAGMA journal_mode", "wal"));

	s = open_ok();
	err_clear(&e);
	cr_assert_eq(state_file_get(s, "a.jpg", 5, &f, &e), 1, "%s", e.message);
	cr_assert_str_eq(f.key, "a.jpg");
	state_file_cleanup(&f);
	state_close(s);
	cr_assert_eq(query_int("PRAGMA user_version"), STATE_SCHEMA_VERSION);
}

Test(state, empty_existing_file_gets_schema)
{
	struct state *s;
	int fd;

	fd = open(dbpath, O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0);
	close(fd);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 1);
}

Test(state, missing_parent_directory)
{
	struct err e;
	char path[160];

	snprintf(path, sizeof(path), "%s/nope/state.db", tmpdir);
	err_clear(&e);
	cr_assert_null(state_open(path, &e));
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_eq(e.sys_errno, ENOENT);
	cr_assert_not_null(strstr(e.message, path), "%s", e.message);
}

Test(state, batch_of_100k)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	char path[64];
	uint64_t files, bytes;
	int i;
	struct buf b;

	memset(&f, 0, sizeof(f));
	f.path = path;
	f.key = path;
	snprintf(f.type, sizeof(f.type), "image/png");
	err_clear(&e);
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	for (i = 0; i < 100000; i++) {
		f.path_len = (size_t)snprintf(path, sizeof(path),
		                              "d%03d/img-%06d.png", i % 100, i);
		f.size = (uint64_t)i;
		f.mtime_ns = i;
		cr_assert_eq(state_file_put(s, &f, &e), 0, "%s", e.message);
	}
	/* An intent inside a batch lands with it. */
	add_intent(s, STATE_OP_UPLOAD, "in-batch", "in-batch", NULL, NULL);
	cr_assert_eq(state_commit(s, &e), 0, "%s", e.message);
	cr_assert_eq(state_count(s, &files, NULL, &bytes, &e), 0);
	cr_assert_eq(files, 100000);
	cr_assert_eq(bytes, 99999ULL * 100000 / 2);

	buf_init(&b, 0);
	cr_assert_eq(state_files_under(s, "d042", 4, collect, &b, &e), 0);
	cr_assert_eq(b.len, 1000 * strlen("d042/img-000042.png|"));
	buf_cleanup(&b);
	state_close(s);
}

Test(state, batch_rollback_and_misuse)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	uint64_t n;

	err_clear(&e);
	cr_assert_eq(state_begin(s, &e), 0);
	cr_assert_eq(state_begin(s, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);
	puts0(s, "gone.jpg");
	add_intent(s, STATE_OP_DELETE, "gone.jpg", "gone.jpg", NULL, NULL);
	state_rollback(s);
	state_rollback(s); /* no batch: no-op */
	cr_assert_eq(state_file_get(s, "gone.jpg", 8, &f, &e), 0);
	cr_assert_eq(state_intent_count(s, &n, &e), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(state_commit(s, &e), -1);
	cr_assert_eq(e.kind, ERR_INVALID);

	/* Closing with a batch open rolls it back. */
	cr_assert_eq(state_begin(s, &e), 0);
	puts0(s, "also-gone.jpg");
	state_close(s);
	s = open_ok();
	cr_assert_eq(state_file_get(s, "also-gone.jpg", 13, &f, &e), 0);
	state_close(s);
}

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd;

	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

Test(state, garbage_file_is_refused_and_kept)
{
	char garbage[8192], back[8192];
	char wal[256];
	struct err e;
	struct stat sb;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)("not a database\n"[i % 15]);
	write_file(dbpath, garbage, sizeof(garbage));
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_eq(e.kind, ERR_SYS);
	cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
	cr_assert_not_null(strstr(e.message, "not a database"), "%s",
	                   e.message);
	cr_assert_str_eq(e.code, "SQLITE_NOTADB");

	fd = open(dbpath, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
	close(fd);
	cr_assert_eq(memcmp(garbage, back, sizeof(back)), 0);
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	cr_assert_eq(stat(wal, &sb), -1);

	/* Short garbage too. */
	write_file(dbpath, "hello", 5);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
}

Test(state, truncated_database_is_refused)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	char hdr[100];
	int fd;

	puts0(s, "x");
	state_close(s);
	fd = open(dbpath, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	close(fd);
	/* A valid header with its pages gone: page 1 is cut short. */
	write_file(dbpath, hdr, sizeof(hdr));
	err_clear(&e);
	s = state_open(dbpath, &e);
	if (s != NULL) {
		/* SQLite may open it; any use must then fail cleanly. */
		cr_assert_neq(state_file_get(s, "x", 1, &f, &e), 1);
		state_close(s);
	} else
		cr_assert_not_null(strstr(e.message, dbpath), "%s", e.message);
}

Test(state, foreign_sqlite_database_is_refused)
{
	struct err e;

	raw_exec("CREATE TABLE photos (id INTEGER PRIMARY KEY);"
	         "INSERT INTO photos VALUES (1);");
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, "not an imgsync state database"),
	                   "%s", e.message);
	cr_assert_not_null(strstr(e.message, dbpath));
	/* Untouched: still rollback-journal mode, no tables of ours. */
	cr_assert_eq(query_int("SELECT count(*) FROM photos"), 1);
	cr_assert_eq(query_int("SELECT count(*) FROM sqlite_schema "
	                       "WHERE name = 'files'"),
	             0);
	cr_assert_eq(query_int("PRAGMA user_version"), 0);
}

Test(state, newer_schema_is_refused)
{
	struct state *s = open_ok();
	struct err e;

	state_close(s);
	raw_exec("PRAGMA user_version = 99");
	err_clear(&e);
	cr_assert_null(state_open(dbpath, &e));
	cr_assert_not_null(strstr(e.message, "schema version 99"), "%s",
	                   e.message);
	cr_assert_eq(query_int("PRAGMA user_version"), 99);
}

/* A version 1 database (before Orientation and thumbnails) is brought to
 * the current version with its rows kept: they read orientation 0 (none)
 * and no thumbnail, and a row written after keeps its orientation. */
Test(state, version_1_gains_orientation)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;

	puts0(s, "old.jpg");
	state_close(s);
	raw_exec("DROP INDEX files_thumb_wanted; "
	         "ALTER TABLE files DROP COLUMN thumb; "
	         "ALTER TABLE files DROP COLUMN thumb_error; "
	         "ALTER TABLE files DROP COLUMN orientation; "
	         "PRAGMA user_version = 1");
	cr_assert_eq(query_int("SELECT count(*) FROM pragma_table_info('files')"
	                       " WHERE name = 'orientation'"),
	             0);
	s = open_ok();
	cr_assert_eq(query_int("PRAGMA user_version"), STATE_SCHEMA_VERSION);
	err_clear(&e);
	cr_assert_eq(state_file_get(s, "old.jpg", 7, &f, &e), 1, "%s",
	             e.message);
	cr_assert_eq(f.orientation, 0);
	cr_assert_null(f.thumb);
	cr_assert_null(f.thumb_error);
	f.orientation = 6;
	cr_assert_eq(state_file_put(s, &f, &e), 0, "%s", e.message);
	state_file_cleanup(&f);
	cr_assert_eq(state_file_get(s, "old.jpg", 7, &f, &e), 1, "%s",
	             e.message);
	cr_assert_eq(f.orientation, 6);
	state_file_cleanup(&f);
	state_close(s);
}

/* Thumbnails: rows put wanting one are handed out in path order, past a
 * cursor; done (a key, or a reason) they are wanted no more; a row synced
 * again meanwhile is not marked done by the old answer; rows put without
 * wanting one are wanted all at once when thumbnails are turned on. */
Test(state, thumbnails_wanted_handed_out_and_done)
{
	struct state *s = open_ok();
	struct state_file f, g;
	struct err e;
	const char *names[] = {"b.jpg", "a.jpg", "c/d.png"};
	size_t i;

	err_clear(&e);
	memset(&f, 0, sizeof(f));
	for (i = 0; i < 3; i++) {
		f.path = (char *)names[i];
		f.path_len = strlen(names[i]);
		f.key = (char *)names[i];
		f.thumb_wanted = 1;
		snprintf(f.synced_at, sizeof(f.synced_at),
		         "2026-12-04T10:00:0%zuZ", i);
		cr_assert_eq(state_file_put(s, &f, &e), 0, "%s", e.message);
	}
	cr_assert_eq(state_thumb_next(s, "", 0, &g, &e), 1, "%s", e.message);
	cr_assert_str_eq(g.path, "a.jpg");
	cr_assert_null(g.thumb);
	state_file_cleanup(&g);
	cr_assert_eq(state_thumb_next(s, "a.jpg", 5, &g, &e), 1);
	cr_assert_str_eq(g.path, "b.jpg");
	state_file_cleanup(&g);
	/* a.jpg done with a key; b.jpg's answer is for an older sync */
	cr_assert_eq(state_thumb_done(s, "a.jpg", 5, "2026-12-04T10:00:01Z",
	                              ".t/a.jpg.webp", NULL, &e),
	             0);
	cr_assert_eq(state_thumb_done(s, "b.jpg", 5, "2026-12-04T09:00:00Z",
	                              ".t/b.jpg.webp", NULL, &e),
	             0);
	cr_assert_eq(state_thumb_done(s, "c/d.png", 7, "2026-12-04T10:00:02Z",
	                              NULL, "cannot decode the image", &e),
	             0);
	cr_assert_eq(state_thumb_next(s, "", 0, &g, &e), 1);
	cr_assert_str_eq(g.path, "b.jpg", "still wanted");
	state_file_cleanup(&g);
	cr_assert_eq(state_thumb_next(s, "b.jpg", 5, &g, &e), 0);
	cr_assert_eq(state_file_get(s, "a.jpg", 5, &g, &e), 1);
	cr_assert_str_eq(g.thumb, ".t/a.jpg.webp");
	state_file_cleanup(&g);
	cr_assert_eq(state_file_get(s, "c/d.png", 7, &g, &e), 1);
	cr_assert_null(g.thumb);
	cr_assert_str_eq(g.thumb_error, "cannot decode the image");
	state_file_cleanup(&g);
	/* Synced again (put): wanted again, the reason gone. */
	f.path = "c/d.png";
	f.path_len = 7;
	f.key = "c/d.png";
	cr_assert_eq(state_file_put(s, &f, &e), 0);
	cr_assert_eq(state_file_get(s, "c/d.png", 7, &g, &e), 1);
	cr_assert_null(g.thumb_error);
	state_file_cleanup(&g);
	cr_assert_eq(state_thumb_next(s, "b.jpg", 5, &g, &e), 1);
	cr_assert_str_eq(g.path, "c/d.png");
	state_file_cleanup(&g);
	/* Put without wanting one, then thumbnails turned on. */
	f.path = "e.jpg";
	f.path_len = 5;
	f.key = "e.jpg";
	f.thumb_wanted = 0;
	cr_assert_eq(state_file_put(s, &f, &e), 0);
	cr_assert_eq(state_thumb_next(s, "d", 1, &g, &e), 0);
	cr_assert_eq(state_thumb_done(s, "c/d.png", 7, "2026-12-04T10:00:02Z",
	                              NULL, "cannot decode the image", &e),
	             0);
	cr_assert_eq(state_thumb_want_all(s, &e), 0, "%s", e.message);
	cr_assert_eq(state_thumb_next(s, "d", 1, &g, &e), 1);
	cr_assert_str_eq(g.path, "e.jpg");
	state_file_cleanup(&g);
	/* not the one that could not have one */
	cr_assert_eq(state_thumb_next(s, "", 0, &g, &e), 1);
	cr_assert_str_eq(g.path, "b.jpg");
	state_file_cleanup(&g);
	cr_assert_eq(state_thumb_next(s, "b.jpg", 5, &g, &e), 1);
	cr_assert_str_eq(g.path, "e.jpg", "c/d.png is not wanted again");
	state_file_cleanup(&g);
	state_close(s);
}

/*
 * Runs fn in a child without root's powers (root ignores file modes), and
 * returns its exit status. fn must end with _exit: sanitizers' exit hooks
 * do not work after setuid.
 */
static int
as_nobody(void (*fn)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		     setuid(65534) == -1))
			_exit(90);
		fn();
		_exit(91);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	return WEXITSTATUS(status);
}

static char child_path[192];

static void
expect_open_fails(void)
{
	struct err e;
	struct state *s;

	err_clear(&e);
	s = state_open(child_path, &e);
	if (s != NULL)
		_exit(1);
	fprintf(stderr, "state_open: %s\n", e.message);
	if (e.kind != ERR_SYS || strstr(e.message, child_path) == NULL)
		_exit(2);
	if (strstr(e.message, "Permission denied") == NULL &&
	    strstr(e.message, "read-only") == NULL &&
	    strstr(e.message, "unable to open") == NULL)
		_exit(3);
	_exit(0);
}

Test(state, read_only_directory)
{
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	cr_assert_eq(mkdir(dir, 0555), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

Test(state, read_only_file)
{
	struct state *s;
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/rw", tmpdir);
	cr_assert_eq(mkdir(dir, 0777), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	snprintf(dbpath, sizeof(dbpath), "%s", child_path);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	cr_assert_eq(chmod(child_path, 0444), 0);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

Test(state, read_only_directory_existing_database)
{
	struct state *s;
	char dir[128];

	cr_assert_eq(chmod(tmpdir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(child_path, sizeof(child_path), "%s/state.db", dir);
	snprintf(dbpath, sizeof(dbpath), "%s", child_path);
	s = open_ok();
	puts0(s, "x");
	state_close(s);
	/* The file is writable, but the -wal and -shm files cannot be
	 * created next to it. */
	cr_assert_eq(chmod(child_path, 0666), 0);
	cr_assert_eq(chmod(dir, 0555), 0);
	cr_assert_eq(as_nobody(expect_open_fails), 0);
}

/* Puts rows with long keys in one batch until a write fails; the error
 * goes into *e. */
static int
fill(struct state *s, struct err *e)
{
	struct state_file f;
	char path[32], key[2048];
	int i, r = 0;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	memset(&f, 0, sizeof(f));
	f.path = path;
	f.key = key;
	if (state_begin(s, e) == -1)
		return -1;
	for (i = 0; i < 2000 && r == 0; i++) {
		f.path_len = (size_t)snprintf(path, sizeof(path), "f%d", i);
		r = state_file_put(s, &f, e);
	}
	if (r == 0)
		return state_commit(s, e);
	state_rollback(s);
	return r;
}

static void
fill_until_disk_full(void)
{
	struct state *s;
	struct err e;

	/* A private mount namespace: the tmpfs vanishes with the child. */
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", tmpdir, "tmpfs", 0, "size=256k,mode=0700") == -1)
		_exit(77);
	err_clear(&e);
	s = state_open(child_path, &e);
	if (s == NULL)
		_exit(10);
	if (fill(s, &e) != -1)
		_exit(11);
	fprintf(stderr, "disk full: %s (%s, errno %d)\n", e.message, e.code,
	        e.sys_errno);
	if (e.kind != ERR_SYS || strcmp(e.code, "SQLITE_FULL") != 0 ||
	    strstr(e.message, child_path) == NULL ||
	    strstr(e.message, "full") == NULL)
		_exit(12);
	/* Still usable: reads work, and small writes once space is back. */
	if (state_count(s, NULL, NULL, NULL, &e) == -1)
		_exit(13);
	if (state_meta_put(s, "after", "x", 1, &e) == -1) {
		fprintf(stderr, "after: %s\n", e.message);
		_exit(14);
	}
	_exit(0);
}

Test(state, disk_full_is_a_clear_error)
{
	pid_t pid;
	int status;

	snprintf(child_path, sizeof(child_path), "%s", dbpath);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		fill_until_disk_full();
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("cannot mount a small tmpfs here (needs root)");
	cr_assert_eq(WEXITSTATUS(status), 0);
}

static void
fill_until_write_fails(void)
{
	struct rlimit rl;
	struct state *s;
	struct err e;

	err_clear(&e);
	s = state_open(child_path, &e);
	if (s == NULL)
		_exit(10);
	signal(SIGXFSZ, SIG_IGN);
	rl.rlim_cur = rl.rlim_max = 256 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		_exit(11);
	if (fill(s, &e) != -1)
		_exit(12);
	fprintf(stderr, "write failure: %s (%s, errno %d)\n", e.message, e.code,
	        e.sys_errno);
	if (e.kind != ERR_SYS || strstr(e.message, child_path) == NULL)
		_exit(13);
	/* The handle is still usable for reads after the failure. */
	if (state_count(s, NULL, NULL, NULL, &e) == -1)
		_exit(14);
	_exit(0);
}

Test(state, write_failure_is_an_error_not_a_crash)
{
	struct state *s;
	struct err e;
	uint64_t files;
	pid_t pid;
	int status;

	snprintf(child_path, sizeof(child_path), "%s", dbpath);
	s = open_ok();
	puts0(s, "before");
	state_close(s);

	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		fill_until_write_fails();
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %d", status);
	cr_assert_eq(WEXITSTATUS(status), 0);

	/* The failed batch left nothing behind and the file is healthy. */
	s = open_ok();
	err_clear(&e);
	cr_assert_eq(state_count(s, &files, NULL, NULL, &e), 0);
	cr_assert_eq(files, 1);
	puts0(s, "after");
	state_close(s);
	cr_assert(query_is("PRAGMA integrity_check", "ok"));
}

Test(state, descriptors_are_close_on_exec)
{
	struct state *s = open_ok();
	DIR *d;
	struct dirent *de;
	char link[PATH_MAX], fdpath[300];
	ssize_t n;
	int fd, found = 0;

	puts0(s, "x"); /* opens the -wal and -shm files */
	d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s",
		         de->d_name);
		n = readlink(fdpath, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, tmpdir, strlen(tmpdir)) != 0)
			continue;
		fd = atoi(de->d_name);
		cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC,
		          "%s is not close-on-exec", link);
		found++;
	}
	closedir(d);
	cr_assert_geq(found, 3, "db, -wal and -shm: found %d", found);
	state_close(s);
}

/* A read snapshot holds no write back: a write inside one is committed
 * (another connection sees it) before the write returns, an intent too;
 * a batch opens inside one; the reads go on after. */
Test(state, read_snapshot_never_holds_a_write)
{
	struct state *s = open_ok();
	struct state_file f;
	struct err e;
	int64_t id;

	puts0(s, "a.png");
	state_read_begin(s);
	state_read_begin(s); /* no-op: one is open */
	memset(&f, 0, sizeof(f));
	err_clear(&e);
	cr_assert_eq(state_file_get(s, "a.png", 5, &f, &e), 1, "%s", e.message);
	state_file_cleanup(&f);
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 1);
	puts0(s, "b.png"); /* a write: the snapshot ends first */
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 2,
	             "the write inside the snapshot is committed at once");
	cr_assert_eq(state_file_get(s, "b.png", 5, &f, &e), 1, "%s", e.message);
	state_file_cleanup(&f);
	state_read_end(s);
	state_read_end(s); /* no-op */

	state_read_begin(s);
	id = add_intent(s, STATE_OP_UPLOAD, "c.png", "c.png", NULL, NULL);
	cr_assert_gt(id, 0);
	cr_assert_eq(query_int("SELECT count(*) FROM intents"), 1,
	             "an intent inside the snapshot is on disk at once");
	state_read_end(s);

	state_read_begin(s);
	cr_assert_eq(state_begin(s, &e), 0, "%s", e.message);
	state_read_begin(s); /* no-op inside a batch */
	puts0(s, "d.png");
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 2,
	             "a batch is still one transaction");
	cr_assert_eq(state_commit(s, &e), 0, "%s", e.message);
	cr_assert_eq(query_int("SELECT count(*) FROM files"), 3);
	state_read_end(s);
	state_close(s);
}
