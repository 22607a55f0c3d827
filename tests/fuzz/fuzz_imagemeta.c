/*
 * libFuzzer target over lib/imagemeta.c: the input is a file's content.
 * imagemeta_probe_buf reads it from memory, imagemeta_probe_fd (what the
 * daemon uses) from a memfd through its read window; both must give the
 * same answer, a type from the documented list, and dimensions exactly
 * when has_dimensions says so. Built and run by tests/fuzz/run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imagemeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    IMAGEMETA_OCTET_STREAM,
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/jxl",
    "image/vnd.microsoft.icon",
    "image/svg+xml",
};

static void
check(const struct imagemeta *m)
{
	size_t i;

	if (memchr(m->type, '\0', sizeof(m->type)) == NULL)
		abort();
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(m->type, types[i]) == 0)
			break;
	if (i == sizeof(types) / sizeof(types[0]))
		abort();
	if (m->has_dimensions ? m->width == 0 || m->height == 0
	                      : m->width != 0 || m->height != 0)
		abort();
	if (i == 0 && m->has_dimensions)
		abort();
}

/* One memfd for the whole run, rewritten for each input. */
static int
file_of(const uint8_t *data, size_t size)
{
	static int fd = -1;
	size_t off = 0;
	ssize_t n;

	if (fd == -1) {
		fd = memfd_create("fuzz_imagemeta", MFD_CLOEXEC);
		if (fd == -1)
			abort();
	}
	if (ftruncate(fd, 0) == -1)
		abort();
	while (off < size) {
		n = pwrite(fd, data + off, size - off, (off_t)off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imagemeta mb, mf, mh;
	struct err e;

	if (imagemeta_probe_buf(data, size, &mb) != 0)
		abort();
	check(&mb);

	err_clear(&e);
	if (imagemeta_probe_fd(file_of(data, size), size, &mf, &e) != 0)
		abort();
	check(&mf);
	if (strcmp(mb.type, mf.type) != 0 || mb.width != mf.width ||
	    mb.height != mf.height || mb.has_dimensions != mf.has_dimensions)
		abort();

	/* A size past the end of the file (it shrank since fstat): no
	 * error, a valid answer. Not always the same one: a box is measured
	 * against the size given until a read finds the end. */
	err_clear(&e);
	if (imagemeta_probe_fd(file_of(data, size), (uint64_t)size + 4096, &mh,
	                       &e) != 0)
		abort();
	check(&mh);
	return 0;
}
