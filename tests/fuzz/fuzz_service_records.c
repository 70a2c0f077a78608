/* Fuzzes the services' process record (agent/supervise/records.c): run_dir/services.json as
 * a new agent reads it to adopt what the previous one left running. */
#include "fuzz_util.h"
#include "records.h"

#include <limits.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct service_records records;
    char err[256];
    int r = service_records_parse((const char *)data, size, &records, err, sizeof(err));

    if (r < 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        return 0;
    }
    /* What reads is what adoption may act on: every field within its bounds. */
    for (size_t i = 0; i < records.n; i++) {
        const struct service_record *record = &records.items[i];

        FUZZ_CHECK(record->name && record->name[0] != '\0' && strlen(record->name) <= 255);
        FUZZ_CHECK(record->pid > 1);
        FUZZ_CHECK(record->state && strlen(record->state) <= 32);
        FUZZ_CHECK(record->settings &&
                   (strlen(record->settings) == 0 || strlen(record->settings) == 64));
    }
    for (size_t i = 0; i < records.n_operator_stopped; i++)
        FUZZ_CHECK(records.operator_stopped[i][0] != '\0');
    FUZZ_CHECK(records.n <= SERVICE_RECORDS_MAX);
    service_records_free(&records);
    return 0;
}
