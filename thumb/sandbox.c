/*
 * sandbox: imgsync-thumb's limits (see sandbox.h). The seccomp filter is an
 * allow-list built with libseccomp; anything else fails with EPERM rather
 * than killing the process, so that a loader probing for something it may
 * not have (a module, a config file) fails its image and not the helper.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1 /* its shadow memory is terabytes of address space */
#else
#define SANDBOX_ASAN 0
#endif

int
sandbox_prepare(int check, char *why, size_t whylen)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (!check &&
	    (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	     type != SOCK_SEQPACKET)) {
		snprintf(why, whylen,
		         "standard input is not a SOCK_SEQPACKET socket "
		         "(imgsyncd starts this helper itself)");
		return -1;
	}
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == -1) {
		snprintf(why, whylen, "close_range: %s", strerror(errno));
		return -1;
	}
	/* One malloc arena: each thread's own would reserve 64 MB of the
	 * bounded address space. */
	mallopt(M_ARENA_MAX, 1);
	return 0;
}

static int
sandbox_limit(int resource, rlim_t v, const char *name, char *why,
              size_t whylen)
{
	struct rlimit r = {v, v};

	if (setrlimit(resource, &r) == 0)
		return 0;
	snprintf(why, whylen, "setrlimit(%s): %s", name, strerror(errno));
	return -1;
}

#define ALLOW(nr, ...)                                                         \
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(nr), __VA_ARGS__)

static scmp_filter_ctx
sandbox_filter(char *why, size_t whylen)
{
	static const int plain[] = {
	    SCMP_SYS(read),
	    SCMP_SYS(readv),
	    SCMP_SYS(pread64),
	    SCMP_SYS(preadv),
	    SCMP_SYS(lseek),
	    SCMP_SYS(close),
	    SCMP_SYS(fstat),
	    SCMP_SYS(dup),
	    SCMP_SYS(munmap),
	    SCMP_SYS(mremap),
	    SCMP_SYS(brk),
	    SCMP_SYS(madvise),
	    SCMP_SYS(futex),
	    SCMP_SYS(set_robust_list),
	    SCMP_SYS(rseq),
	    SCMP_SYS(sched_yield),
	    SCMP_SYS(sched_getaffinity),
	    SCMP_SYS(getrandom),
	    SCMP_SYS(clock_gettime),
	    SCMP_SYS(clock_getres),
	    SCMP_SYS(gettimeofday),
	    SCMP_SYS(clock_nanosleep),
	    SCMP_SYS(nanosleep),
	    SCMP_SYS(gettid),
	    SCMP_SYS(getpid),
	    SCMP_SYS(exit),
	    SCMP_SYS(exit_group),
	    SCMP_SYS(rt_sigreturn),
	    SCMP_SYS(rt_sigprocmask),
	    SCMP_SYS(rt_sigaction),
	    SCMP_SYS(sigaltstack),
	    SCMP_SYS(setitimer),
	    SCMP_SYS(getitimer),
	    SCMP_SYS(getrusage),
	    SCMP_SYS(membarrier),
	    SCMP_SYS(sysinfo),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	size_t i;
	int rc = 0;

	if (ctx == NULL) {
		snprintf(why, whylen, "seccomp_init failed");
		return NULL;
	}
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
	/* The daemon's socket only; standard error for libvips' warnings. */
	ALLOW(recvmsg, 1, SCMP_A0(SCMP_CMP_EQ, STDIN_FILENO));
	ALLOW(sendmsg, 1, SCMP_A0(SCMP_CMP_EQ, STDIN_FILENO));
	ALLOW(write, 1, SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO));
	ALLOW(writev, 1, SCMP_A0(SCMP_CMP_EQ, STDERR_FILENO));
	/* fstat of a descriptor (glibc's fstat is newfstatat(fd, "",
	 * AT_EMPTY_PATH)), never of a path. */
	ALLOW(newfstatat, 1,
	      SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	/* Memory, never executable. */
	ALLOW(mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ALLOW(mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Descriptors: duplicates and their flags. */
	ALLOW(fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_GETFL));
	ALLOW(fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_GETFD));
	ALLOW(fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_SETFD));
	ALLOW(fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_DUPFD_CLOEXEC));
	/* Threads (libvips' pool), not processes; clone3 answers ENOSYS so
	 * that glibc falls back to clone, whose flags a filter can see. */
	ALLOW(clone, 1,
	      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	rc |=
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Naming a thread; abort() signalling itself. */
	ALLOW(prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	ALLOW(tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	if (rc != 0) {
		seccomp_release(ctx);
		snprintf(why, whylen, "seccomp: cannot build the filter");
		return NULL;
	}
	return ctx;
}

/* Bytes of address space mapped now (libvips and its codecs' libraries
 * alone are over 100 MB of it), from /proc/self/statm; 0 if unknown. */
static uint64_t
sandbox_mapped(void)
{
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu", &pages) != 1)
		pages = 0;
	fclose(f);
	return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

int
sandbox_enter(uint64_t memory, char *why, size_t whylen)
{
	uint64_t mapped = sandbox_mapped();
	scmp_filter_ctx ctx;
	int rc;

	/* Built before the limits: building takes memory too. */
	ctx = sandbox_filter(why, whylen);
	if (ctx == NULL)
		return -1;
	if ((!SANDBOX_ASAN &&
	     sandbox_limit(RLIMIT_AS, (rlim_t)(mapped + memory), "AS", why,
	                   whylen) == -1) ||
	    sandbox_limit(RLIMIT_NOFILE, 16, "NOFILE", why, whylen) == -1 ||
	    sandbox_limit(RLIMIT_CORE, 0, "CORE", why, whylen) == -1) {
		seccomp_release(ctx);
		return -1;
	}
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(why, whylen, "seccomp_load: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* What a hostile image's code would try first. */
int
sandbox_check(void)
{
	int fd, bad = 0;
	pid_t pid;
	void *p;

	fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	fprintf(stderr, "open /etc/passwd: %s\n",
	        fd == -1 ? strerror(errno) : "allowed");
	bad |= fd != -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fprintf(stderr, "socket: %s\n", fd == -1 ? strerror(errno) : "allowed");
	bad |= fd != -1;
	pid = fork();
	if (pid == 0)
		_exit(0);
	fprintf(stderr, "fork: %s\n", pid == -1 ? strerror(errno) : "allowed");
	bad |= pid != -1;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
	         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fprintf(stderr, "executable memory: %s\n",
	        p == MAP_FAILED ? strerror(errno) : "allowed");
	bad |= p != MAP_FAILED;
	p = mmap(NULL, (size_t)1 << 40, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	fprintf(stderr, "1 TiB of address space: %s\n",
	        p == MAP_FAILED ? strerror(errno) : "allowed");
	bad |= !SANDBOX_ASAN && p != MAP_FAILED;
	return bad ? 1 : 0;
}
