/* Fuzzes the db_config reader: the database list the proxy and sentinel_service read. */
#include "db_config.h"
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct db_list list = {0}, again = {0};
    char err[1024], *text, *text2, host[256];
    int port;

    if (db_list_read(fuzz_file(data, size), &list, err, sizeof(err)) < 0) {
        db_list_clear(&list);
        return 0;
    }
    /* What was read renders to text that reads back the same and renders the same again. */
    text = db_list_render(&list);
    FUZZ_CHECK(text);
    FUZZ_CHECK(db_list_parse(text, &again, err, sizeof(err)) == 0);
    text2 = db_list_render(&again);
    FUZZ_CHECK(text2 && strcmp(text, text2) == 0);
    for (size_t i = 0; i < list.n; i++) {
        const struct db_config *db = &list.dbs[i];

        FUZZ_CHECK(db_config_name_valid(db->name));
        FUZZ_CHECK(db_list_find(&list, db->name) == db);
        (void)db_split_address(db->shard, host, sizeof(host), &port);
        if (db->replica_source)
            (void)db_split_address(db->replica_source, host, sizeof(host), &port);
    }
    free(text);
    free(text2);
    db_list_clear(&again);
    db_list_clear(&list);
    return 0;
}
