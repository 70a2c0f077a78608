/* What the fuzz targets share: their inputs as strings and as files, and a private temp dir. */
#ifndef CERTVISOR_FUZZ_UTIL_H
#define CERTVISOR_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * The input as a malloc'd string of exactly size + 1 bytes (so that ASan sees a
 * read past its end), NUL-terminated; a NUL inside ends the string early, as it
 * would for a parser that reads C strings. Aborts without memory.
 */
char *fuzz_string(const uint8_t *data, size_t size);

/*
 * Makes the input the whole content of a file that lives in memory only (a
 * memfd, so nothing is written to disk) and returns its path
 * ("/proc/self/fd/N", valid until the next call). Aborts on failure.
 */
const char *fuzz_file(const uint8_t *data, size_t size);

/*
 * A directory of the target's own under $TMPDIR (or /tmp), made on the first
 * call and removed, with what is in it, when the process exits.
 */
const char *fuzz_tmpdir(void);

/* Aborts, naming what failed: a broken invariant is a crash the fuzzer reports. */
void fuzz_fail(const char *what) __attribute__((noreturn));

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__ ": " #cond);                                                        \
    } while (0)

#endif
