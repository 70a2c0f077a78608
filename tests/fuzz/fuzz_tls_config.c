/* Fuzzes the tls_config reader: the rendered TLS file each service reads at start and reload. */
#include "fuzz_util.h"
#include "tls_config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_config *config = NULL, *again = NULL;
    char err[1024], *text, *text2;
    int version;

    if (tls_config_read(fuzz_file(data, size), &config, err, sizeof(err)) < 0)
        return 0;
    /* What was read renders to text that reads back the same and renders the same again. */
    text = tls_config_render(config);
    FUZZ_CHECK(text);
    FUZZ_CHECK(tls_config_parse(text, &again, err, sizeof(err)) == 0);
    text2 = tls_config_render(again);
    FUZZ_CHECK(text2 && strcmp(text, text2) == 0);
    if (config->min_version)
        (void)tls_version_parse(config->min_version, &version);
    free(text);
    free(text2);
    tls_config_free(again);
    tls_config_free(config);
    return 0;
}
