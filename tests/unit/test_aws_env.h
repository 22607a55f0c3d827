/*
 * What test_creds.c and test_awsconfig.c share: a process environment
 * without AWS_* variables, files written in a temporary HOME, and removing
 * it. Include after <criterion/criterion.h>.
 */
#ifndef IMGSYNC_TEST_AWS_ENV_H
#define IMGSYNC_TEST_AWS_ENV_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline void
clear_aws_env(void)
{
	extern char **environ;
	char name[256];
	size_t i, n;

again:
	for (i = 0; environ[i] != NULL; i++) {
		if (strncmp(environ[i], "AWS_", 4) != 0)
			continue;
		n = strcspn(environ[i], "=");
		if (n >= sizeof(name))
			continue;
		memcpy(name, environ[i], n);
		name[n] = '\0';
		unsetenv(name);
		goto again;
	}
}

static inline int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* dir/name with content; the path stays valid for the next three calls. */
static inline const char *
write_home_file(const char *dir, const char *name, const char *content)
{
	static char path[4][128];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs(content, f);
	fclose(f);
	return p;
}

#endif
