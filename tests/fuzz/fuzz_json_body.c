/* Fuzzes the REST API's request bodies: JSON objects, with the repairs for pasted PEM text. */
#include "fuzz_util.h"
#include "json_body.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_body_error error;
    size_t repaired_len = 0;
    char *repaired;
    json_t *body;

    /* The API hands the body as the server read it: NUL-terminated, possibly holding NULs. */
    char *copy = malloc(size + 1);

    FUZZ_CHECK(copy);
    memcpy(copy, data, size);
    copy[size] = '\0';
    memset(&error, 0, sizeof(error));
    body = json_body_parse(copy, size, &error);
    if (body) {
        FUZZ_CHECK(json_is_object(body));
        json_decref(body);
    } else {
        FUZZ_CHECK(memchr(error.text, '\0', sizeof(error.text)) != NULL);
        FUZZ_CHECK(error.position >= 0 && (size_t)error.position <= size);
    }
    repaired = json_body_repair(copy, size, &repaired_len);
    FUZZ_CHECK(repaired);
    /* At most 6 bytes out for one in ("\u00XX"), as the header promises. */
    FUZZ_CHECK(repaired_len <= size * 6 && repaired[repaired_len] == '\0');
    free(repaired);
    free(copy);
    return 0;
}
