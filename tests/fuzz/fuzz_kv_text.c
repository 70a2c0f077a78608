/* Fuzzes kv_text: the "key = value" lines of every rendered file, read from a file as services do.
 */
#include "fuzz_util.h"
#include "kv_text.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_KV_MAX (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], *text = NULL;
    const char *cursor;
    struct kv_line line;
    int number = 0, r;

    /* Through the reader: its size limit, NUL bytes and the file itself. */
    r = kv_read_file(fuzz_file(data, size), FUZZ_KV_MAX, &text, err, sizeof(err));
    if (r < 0)
        return 0;
    FUZZ_CHECK(strlen(text) == size);
    cursor = text;
    while ((r = kv_next(&cursor, &number, &line, err, sizeof(err))) > 0) {
        /* What a line points at lies in the text, trimmed and never empty. */
        FUZZ_CHECK(line.value >= text && line.value + line.value_len <= text + size);
        FUZZ_CHECK(line.value_len > 0);
        if (line.key) {
            FUZZ_CHECK(line.key >= text && line.key + line.key_len <= text + size);
            FUZZ_CHECK(line.key_len > 0);
            (void)kv_key_is(&line, "cert_file");
        }
        FUZZ_CHECK(line.number == number && number >= 1);
    }
    FUZZ_CHECK(r == 0 || strncmp(err, "line ", 5) == 0);
    free(text);
    return 0;
}
