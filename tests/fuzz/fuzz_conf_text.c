/* Fuzzes conf_text: how certvisord reads a configuration file before libconfuse parses it. */
#include "conf_text.h"
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    char *text = NULL, err[512];

    (void)conf_text_option_line(path, "tls");
    (void)conf_text_section_line(path, "service", "api");
    if (conf_text_load(path, &text, err, sizeof(err)) < 0)
        return 0;
    /*
     * Comments become blanks and nothing else moves: the same length, each byte kept or a
     * space, every line break where it was (libconfuse's line numbers depend on it).
     */
    FUZZ_CHECK(strlen(text) == size);
    for (size_t i = 0; i < size; i++) {
        FUZZ_CHECK(text[i] == (char)data[i] || text[i] == ' ');
        FUZZ_CHECK((text[i] == '\n') == (data[i] == '\n'));
    }
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        (void)conf_text_opens_section(line, "service", "proxy");
    }
    free(text);
    return 0;
}
