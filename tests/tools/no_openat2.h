/*
 * no_openat2: a seccomp filter that answers openat2(2) with ENOSYS, as
 * systemd's RestrictSUIDSGID= does (and kernels before 5.6), so that tests
 * run the daemon's path walk without it. Header-only: the no_openat2 tool
 * and the unit tests both install it.
 */
#ifndef IMGSYNC_NO_OPENAT2_H
#define IMGSYNC_NO_OPENAT2_H

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* 0, or -1 with errno. Applies to this process and what it execs. The
 * architecture is not checked: only the native one is ever run here. */
static inline int
no_openat2_install(void)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	             offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

#endif
