/* Unit tests for etcd's JSON API (agent/cluster/etcd_json.c): the requests the agent sends,
 * and what its readers take and refuse, on answers as etcd 3.4's gateway writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "etcd_json.h"

#include <errno.h>
#include <string.h>

#define HEADER "\"header\":{\"cluster_id\":\"14841639068965178418\",\"revision\":\"7\"}"

static char *dump(json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(request);
    return text;
}

static void requests_are_base64_with_numbers_as_strings(void **unused)
{
    char *text;

    (void)unused;
    text = dump(etcd_put_request("foo", 3, "bar", 3, 42));
    assert_string_equal(text, "{\"key\":\"Zm9v\",\"lease\":\"42\",\"value\":\"YmFy\"}");
    free(text);
    text = dump(etcd_range_request("a", 1, "b", 1, 9, true));
    assert_string_equal(text, "{\"key\":\"YQ==\",\"range_end\":\"Yg==\",\"revision\":\"9\","
                              "\"serializable\":true}");
    free(text);
    text = dump(etcd_watch_request("k", 1, NULL, 0, 5));
    assert_string_equal(text, "{\"create_request\":{\"key\":\"aw==\",\"start_revision\":\"5\"}}");
    free(text);
}

static void a_txn_compares_mod_revisions(void **unused)
{
    struct etcd_compare compare = {"k", 1, 0};
    struct etcd_op put = {ETCD_OP_PUT, "k", 1, "v", 1, 0};
    char *text;

    (void)unused;
    text = dump(etcd_txn_request(&compare, 1, &put, 1, NULL, 0));
    assert_string_equal(text, "{\"compare\":[{\"key\":\"aw==\",\"mod_revision\":\"0\","
                              "\"result\":\"EQUAL\",\"target\":\"MOD\"}],\"failure\":[],"
                              "\"success\":[{\"request_put\":{\"key\":\"aw==\",\"value\":"
                              "\"dg==\"}}]}");
    free(text);
}

static void a_prefix_ends_at_its_last_byte_plus_one(void **unused)
{
    char end[8];

    (void)unused;
    assert_int_equal(etcd_prefix_end("/a/", 3, end), 3);
    assert_memory_equal(end, "/a0", 3);
    assert_int_equal(etcd_prefix_end("a\xff", 2, end), 1);
    assert_memory_equal(end, "b", 1);
    assert_int_equal(etcd_prefix_end("\xff\xff", 2, end), 1); /* every key */
    assert_int_equal(end[0], '\0');
}

static void limits_are_kept(void **unused)
{
    static char big_key[ETCD_MAX_KEY + 1];

    (void)unused;
    memset(big_key, 'k', sizeof(big_key));
    assert_null(etcd_put_request(big_key, sizeof(big_key), "v", 1, 0));
    assert_null(etcd_put_request("k", 1, big_key, ETCD_MAX_VALUE + 1, 0));
}

static void a_range_is_read(void **unused)
{
    const char *text = "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"5\","
                       "\"mod_revision\":\"7\",\"version\":\"3\",\"value\":\"YmFy\"},"
                       "{\"key\":\"ZW1wdHk=\",\"mod_revision\":\"6\"}],\"count\":\"2\"}";
    struct etcd_range range;
    char err[256];

    (void)unused;
    assert_int_equal(etcd_parse_range(text, strlen(text), &range, NULL, err, sizeof(err)), 0);
    assert_int_equal(range.header.revision, 7);
    assert_true(range.header.cluster_id == 14841639068965178418ULL);
    assert_int_equal(range.n_kvs, 2);
    assert_string_equal(range.kvs[0].key, "foo");
    assert_string_equal((char *)range.kvs[0].value, "bar");
    assert_int_equal(range.kvs[0].mod_revision, 7);
    assert_string_equal(range.kvs[1].key, "empty");
    assert_int_equal(range.kvs[1].value_len, 0); /* an empty value is left out */
    assert_int_equal(range.count, 2);
    etcd_range_free(&range);
}

static void refused(const char *text, const char *reason)
{
    struct etcd_range range;
    char err[256] = "";

    assert_true(etcd_parse_range(text, strlen(text), &range, NULL, err, sizeof(err)) < 0);
    if (!strstr(err, reason))
        fail_msg("expected '%s' in '%s'", reason, err);
    assert_null(range.kvs);
}

static void what_is_malformed_is_refused(void **unused)
{
    (void)unused;
    refused("[]", "not a JSON object");
    refused("{" HEADER ",\"kvs\":[{\"key\":\"Zm9\"}]}", "'kvs'");  /* not base64 */
    refused("{" HEADER ",\"kvs\":[{\"key\":\"\"}]}", "'kvs'");     /* an empty key */
    refused("{" HEADER ",\"kvs\":[{\"key\":\"YQBi\"}]}", "'kvs'"); /* a NUL in a key */
    refused("{\"header\":{\"revision\":\"7x\"}}", "'header'");     /* not a number */
    refused("{\"header\":{\"revision\":\"-1\"}}", "'header'");     /* negative */
    refused("{" HEADER ",\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":[]}]}", "'kvs'");
}

static void errors_are_told_apart(void **unused)
{
    const char *unary = "{\"error\":\"etcdserver: no leader\",\"code\":14,"
                        "\"message\":\"etcdserver: no leader\"}";
    const char *streamed = "{\"error\":{\"grpc_code\":11,\"http_code\":400,"
                           "\"message\":\"mvcc: required revision has been compacted\"}}";
    struct etcd_error etcd_err;
    struct etcd_header header;
    struct etcd_watch_message watch;
    char err[256];

    (void)unused;
    assert_int_equal(etcd_parse_write(unary, strlen(unary), &header, &etcd_err, err, sizeof(err)),
                     -EREMOTE);
    assert_int_equal(etcd_err.grpc_code, ETCD_GRPC_UNAVAILABLE);
    assert_string_equal(etcd_err.message, "etcdserver: no leader");
    assert_int_equal(
        etcd_parse_watch(streamed, strlen(streamed), &watch, &etcd_err, err, sizeof(err)),
        -EREMOTE);
    assert_int_equal(etcd_err.grpc_code, ETCD_GRPC_OUT_OF_RANGE);
}

static void a_failed_compare_is_not_success(void **unused)
{
    const char *failed = "{" HEADER "}", *won = "{" HEADER ",\"succeeded\":true}";
    struct etcd_header header;
    bool succeeded = true;
    char err[256];

    (void)unused;
    assert_int_equal(
        etcd_parse_txn(failed, strlen(failed), &header, &succeeded, NULL, err, sizeof(err)), 0);
    assert_false(succeeded);
    assert_int_equal(etcd_parse_txn(won, strlen(won), &header, &succeeded, NULL, err, sizeof(err)),
                     0);
    assert_true(succeeded);
}

static void watch_events_and_compaction_are_read(void **unused)
{
    const char *events = "{\"result\":{" HEADER ",\"events\":[{\"kv\":{\"key\":\"YQ==\","
                         "\"mod_revision\":\"9\",\"value\":\"MQ==\"}},{\"type\":\"DELETE\","
                         "\"kv\":{\"key\":\"Yg==\",\"mod_revision\":\"10\"}}]}}";
    const char *compacted = "{\"result\":{" HEADER ",\"canceled\":true,\"compact_revision\":"
                            "\"10\",\"cancel_reason\":\"etcdserver: mvcc: required revision "
                            "has been compacted\"}}";
    struct etcd_watch_message message;
    char err[256];

    (void)unused;
    assert_int_equal(etcd_parse_watch(events, strlen(events), &message, NULL, err, sizeof(err)), 0);
    assert_int_equal(message.n_events, 2);
    assert_int_equal(message.events[0].type, ETCD_EVENT_PUT); /* PUT is left out */
    assert_int_equal(message.events[1].type, ETCD_EVENT_DELETE);
    assert_int_equal(message.events[1].kv.mod_revision, 10);
    etcd_watch_message_free(&message);
    assert_int_equal(
        etcd_parse_watch(compacted, strlen(compacted), &message, NULL, err, sizeof(err)), 0);
    assert_true(message.canceled);
    assert_int_equal(message.compact_revision, 10);
    assert_non_null(strstr(message.cancel_reason, "compacted"));
    etcd_watch_message_free(&message);
}

/* What member/list and member/add answer (the gateway writes ids as decimal strings, leaves
 * out isLearner when false and clientURLs for a member that never started). */
static void member_lists_are_read(void **unused)
{
    static const char text[] =
        "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":\"3\"},"
        "\"member\":{\"ID\":\"18446744073709551615\",\"peerURLs\":[\"https://[::1]:2380\"],"
        "\"isLearner\":true},"
        "\"members\":[{\"ID\":\"12\",\"name\":\"n1\",\"peerURLs\":[\"https://10.0.0.1:2380\"],"
        "\"clientURLs\":[\"https://10.0.0.1:2379\"]},"
        "{\"ID\":\"18446744073709551615\",\"peerURLs\":[\"https://[::1]:2380\"],"
        "\"isLearner\":true}]}";
    struct etcd_members members;
    struct etcd_error etcd_err;
    char err[256];

    (void)unused;
    assert_int_equal(etcd_parse_members(text, strlen(text), &members, &etcd_err, err, sizeof(err)),
                     0);
    assert_true(members.added_id == UINT64_MAX);
    assert_int_equal(members.n, 2);
    assert_string_equal(members.members[0].name, "n1");
    assert_string_equal(members.members[0].client_url, "https://10.0.0.1:2379");
    assert_false(members.members[0].learner);
    assert_string_equal(members.members[1].name, "");
    assert_string_equal(members.members[1].client_url, "");
    assert_true(members.members[1].learner);
    /* A member without an id, or with a name that is not a string: refused. */
    static const char *const bad[] = {"{\"members\":[{\"name\":\"n1\"}]}",
                                      "{\"members\":[{\"ID\":\"1\",\"name\":5}]}"};

    for (size_t i = 0; i < 2; i++)
        assert_int_equal(
            etcd_parse_members(bad[i], strlen(bad[i]), &members, &etcd_err, err, sizeof(err)),
            -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_are_base64_with_numbers_as_strings),
        cmocka_unit_test(a_txn_compares_mod_revisions),
        cmocka_unit_test(a_prefix_ends_at_its_last_byte_plus_one),
        cmocka_unit_test(limits_are_kept),
        cmocka_unit_test(a_range_is_read),
        cmocka_unit_test(what_is_malformed_is_refused),
        cmocka_unit_test(errors_are_told_apart),
        cmocka_unit_test(a_failed_compare_is_not_success),
        cmocka_unit_test(watch_events_and_compaction_are_read),
        cmocka_unit_test(member_lists_are_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
