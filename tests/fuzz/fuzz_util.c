/* What the fuzz targets share: their inputs as strings and as files, and a private temp dir. */
#include "fuzz_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    abort();
}

char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        fuzz_fail("out of memory");
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    size_t done = 0;

    if (fd < 0) {
        fd = memfd_create("certvisor-fuzz", MFD_CLOEXEC);
        if (fd < 0)
            fuzz_fail("memfd_create");
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0)
        fuzz_fail("ftruncate");
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fuzz_fail("pwrite");
        done += (size_t)n;
    }
    return path;
}

static char tmpdir[4096];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmpdir(void)
{
    /* Depth first, without following links: only what the target made goes. */
    nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");

        snprintf(tmpdir, sizeof(tmpdir), "%s/certvisor-fuzz.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir))
            fuzz_fail("mkdtemp");
        atexit(remove_tmpdir);
    }
    return tmpdir;
}
