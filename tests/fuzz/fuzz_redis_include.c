/* Fuzzes the Redis include reader: the TLS include the proxy's shard reload reads back. */
#include "fuzz_util.h"
#include "redis_include.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct redis_include *include = NULL;
    const char **pairs = NULL;
    char err[1024];
    int n;

    if (redis_include_load(fuzz_file(data, size), &include, err, sizeof(err)) < 0)
        return 0;
    FUZZ_CHECK(redis_include_get(include, "tls-port"));
    FUZZ_CHECK(redis_include_get(include, "tls-cert-file"));
    FUZZ_CHECK(redis_include_get(include, "tls-key-file"));
    for (size_t i = 0; i < include->n; i++) {
        /* A directive given twice keeps its last value: get finds this very entry's value. */
        const char *value = redis_include_get(include, include->entries[i].name);

        FUZZ_CHECK(value && strncmp(include->entries[i].name, "tls-", 4) == 0);
    }
    n = redis_include_config_set_pairs(include, &pairs);
    FUZZ_CHECK(n >= 0 && n % 2 == 0);
    for (int i = 0; i < n; i++)
        FUZZ_CHECK(pairs[i] != NULL && strlen(pairs[i]) < 1024 * 1024);
    free(pairs);
    redis_include_free(include);
    return 0;
}
