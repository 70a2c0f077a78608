/* Fuzzes the readers of etcd's JSON answers (agent/cluster/etcd_json.c): a member, or whatever
 * answers on its port, must never make the agent read out of bounds, leak or trust a bad
 * field. The same input goes to every reader, as any endpoint may answer anything. */
#include "etcd_json.h"
#include "fuzz_util.h"

#include <string.h>

static void check_kv(const struct etcd_kv *kv)
{
    FUZZ_CHECK(kv->key && kv->key_len > 0 && kv->key_len <= ETCD_MAX_KEY);
    FUZZ_CHECK(memchr(kv->key, '\0', kv->key_len) == NULL && kv->key[kv->key_len] == '\0');
    FUZZ_CHECK(kv->value && kv->value_len <= ETCD_MAX_VALUE && kv->value[kv->value_len] == '\0');
    FUZZ_CHECK(kv->mod_revision >= 0 && kv->create_revision >= 0 && kv->version >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct etcd_range range;
    struct etcd_watch_message watch;
    struct etcd_status status;
    struct etcd_header header;
    struct etcd_error etcd_err;
    int64_t id, ttl;
    static struct etcd_members members;
    bool succeeded;
    char err[256];

    if (etcd_parse_range(text, size, &range, &etcd_err, err, sizeof(err)) == 0) {
        FUZZ_CHECK(range.count >= 0 && range.header.revision >= 0);
        for (size_t i = 0; i < range.n_kvs; i++)
            check_kv(&range.kvs[i]);
        etcd_range_free(&range);
    } else {
        FUZZ_CHECK(err[0] != '\0' && range.kvs == NULL && range.n_kvs == 0);
    }
    if (etcd_parse_watch(text, size, &watch, &etcd_err, err, sizeof(err)) == 0) {
        FUZZ_CHECK(watch.compact_revision >= 0);
        FUZZ_CHECK(memchr(watch.cancel_reason, '\0', sizeof(watch.cancel_reason)) != NULL);
        for (size_t i = 0; i < watch.n_events; i++)
            check_kv(&watch.events[i].kv);
        etcd_watch_message_free(&watch);
    } else {
        FUZZ_CHECK(err[0] != '\0' && watch.events == NULL);
    }
    if (etcd_parse_status(text, size, &status, &etcd_err, err, sizeof(err)) == 0)
        FUZZ_CHECK(memchr(status.version, '\0', sizeof(status.version)) != NULL);
    if (etcd_parse_lease(text, size, &id, &ttl, &etcd_err, err, sizeof(err)) == 0)
        FUZZ_CHECK(id > 0);
    if (etcd_parse_members(text, size, &members, &etcd_err, err, sizeof(err)) == 0) {
        FUZZ_CHECK(members.n <= ETCD_MAX_MEMBERS);
        for (size_t i = 0; i < members.n; i++)
            FUZZ_CHECK(members.members[i].id != 0 &&
                       memchr(members.members[i].name, '\0', sizeof(members.members[i].name)) &&
                       memchr(members.members[i].peer_url, '\0', ETCD_MAX_URL));
    }
    if (etcd_parse_txn(text, size, &header, &succeeded, &etcd_err, err, sizeof(err)) < 0)
        FUZZ_CHECK(!succeeded);
    etcd_parse_write(text, size, &header, &etcd_err, err, sizeof(err));
    return 0;
}
