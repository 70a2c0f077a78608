/* Unit tests for the control protocol: the command table, encoding and decoding of messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "control_proto.h"
#include "cv_error.h"

#include <stdlib.h>
#include <string.h>

static void every_table_row_is_found_by_its_word(void **state)
{
    (void)state;
    for (int i = 0; i < CONTROL_CMD_COUNT; i++) {
        const struct control_command_info *row = &control_command_table[i];

        assert_non_null(row->word);
        assert_int_equal(control_command_lookup(row->word), i);
        assert_non_null(row->usage);
        assert_int_equal(strncmp(row->usage, row->word, strlen(row->word)), 0);
        assert_non_null(row->summary);
        assert_true(strlen(row->summary) > 0);
    }
}

static void the_table_has_the_documented_commands_and_access(void **state)
{
    static const struct {
        const char *word;
        enum control_command command;
        enum control_access access;
    } expected[] = {
        {"status", CONTROL_CMD_status, CONTROL_ACCESS_READ},
        {"start", CONTROL_CMD_start, CONTROL_ACCESS_ADMIN},
        {"stop", CONTROL_CMD_stop, CONTROL_ACCESS_ADMIN},
        {"restart", CONTROL_CMD_restart, CONTROL_ACCESS_ADMIN},
        {"reload", CONTROL_CMD_reload, CONTROL_ACCESS_ADMIN},
        {"pid", CONTROL_CMD_pid, CONTROL_ACCESS_READ},
        {"tail", CONTROL_CMD_tail, CONTROL_ACCESS_READ},
        {"avail", CONTROL_CMD_avail, CONTROL_ACCESS_READ},
        {"version", CONTROL_CMD_version, CONTROL_ACCESS_READ},
        {"daemon-reexec", CONTROL_CMD_daemon_reexec, CONTROL_ACCESS_ADMIN},
        {"metrics", CONTROL_CMD_metrics, CONTROL_ACCESS_READ},
        {"cluster certificate list", CONTROL_CMD_cluster_certificate_list, CONTROL_ACCESS_READ},
        {"cluster certificate show", CONTROL_CMD_cluster_certificate_show, CONTROL_ACCESS_READ},
        {"cluster certificate ca", CONTROL_CMD_cluster_certificate_ca, CONTROL_ACCESS_READ},
        {"cluster status", CONTROL_CMD_cluster_status, CONTROL_ACCESS_READ},
        {"cluster init", CONTROL_CMD_cluster_init, CONTROL_ACCESS_ADMIN},
        {"cluster token create", CONTROL_CMD_cluster_token_create, CONTROL_ACCESS_ADMIN},
        {"cluster token list", CONTROL_CMD_cluster_token_list, CONTROL_ACCESS_ADMIN},
        {"cluster token delete", CONTROL_CMD_cluster_token_delete, CONTROL_ACCESS_ADMIN},
        {"cluster join", CONTROL_CMD_cluster_join, CONTROL_ACCESS_ADMIN},
        {"cluster leave", CONTROL_CMD_cluster_leave, CONTROL_ACCESS_ADMIN},
        {"cluster remove", CONTROL_CMD_cluster_remove, CONTROL_ACCESS_ADMIN},
        {"cluster admit", CONTROL_CMD_cluster_admit, CONTROL_ACCESS_READ},
        {"cluster config show", CONTROL_CMD_cluster_config_show, CONTROL_ACCESS_READ},
        {"cluster certificate set", CONTROL_CMD_cluster_certificate_set, CONTROL_ACCESS_ADMIN},
        {"cluster certificate set-many", CONTROL_CMD_cluster_certificate_set_many,
         CONTROL_ACCESS_ADMIN},
        {"cluster certificate rotate", CONTROL_CMD_cluster_certificate_rotate,
         CONTROL_ACCESS_ADMIN},
        {"cluster certificate delete", CONTROL_CMD_cluster_certificate_delete,
         CONTROL_ACCESS_ADMIN},
        {"cluster certificate csr", CONTROL_CMD_cluster_certificate_csr, CONTROL_ACCESS_ADMIN},
        {"cluster config", CONTROL_CMD_cluster_config, CONTROL_ACCESS_ADMIN},
        {"cluster ocsp config", CONTROL_CMD_cluster_ocsp_config, CONTROL_ACCESS_READ},
        {"cluster ocsp config proxy", CONTROL_CMD_cluster_ocsp_config_proxy, CONTROL_ACCESS_ADMIN},
        {"cluster ocsp config set", CONTROL_CMD_cluster_ocsp_config_set, CONTROL_ACCESS_ADMIN},
        {"cluster ocsp status", CONTROL_CMD_cluster_ocsp_status, CONTROL_ACCESS_READ},
        {"cluster ocsp test", CONTROL_CMD_cluster_ocsp_test, CONTROL_ACCESS_ADMIN},
        {"cluster ldap show", CONTROL_CMD_cluster_ldap_show, CONTROL_ACCESS_ADMIN},
        {"cluster ldap config", CONTROL_CMD_cluster_ldap_config, CONTROL_ACCESS_ADMIN},
        {"cluster ldap test", CONTROL_CMD_cluster_ldap_test, CONTROL_ACCESS_ADMIN},
        {"audit", CONTROL_CMD_audit, CONTROL_ACCESS_READ},
        {"replica status", CONTROL_CMD_replica_status, CONTROL_ACCESS_READ},
        {"replica trust list", CONTROL_CMD_replica_trust_list, CONTROL_ACCESS_READ},
        {"replica trust add", CONTROL_CMD_replica_trust_add, CONTROL_ACCESS_ADMIN},
        {"replica trust remove", CONTROL_CMD_replica_trust_remove, CONTROL_ACCESS_ADMIN},
        {"user list", CONTROL_CMD_user_list, CONTROL_ACCESS_READ},
        {"user add", CONTROL_CMD_user_add, CONTROL_ACCESS_ADMIN},
        {"user passwd", CONTROL_CMD_user_passwd, CONTROL_ACCESS_ADMIN},
        {"user subject", CONTROL_CMD_user_subject, CONTROL_ACCESS_ADMIN},
        {"user delete", CONTROL_CMD_user_delete, CONTROL_ACCESS_ADMIN},
    };

    (void)state;
    assert_int_equal(CONTROL_CMD_COUNT, sizeof(expected) / sizeof(expected[0]));
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        assert_int_equal(control_command_lookup(expected[i].word), expected[i].command);
        assert_string_equal(control_command_table[expected[i].command].word, expected[i].word);
        assert_int_equal(control_command_table[expected[i].command].access, expected[i].access);
    }
}

static void typed_words_match_the_longest_command(void **state)
{
    char *list[] = {"cluster", "certificate", "list", "extra"};
    char *show[] = {"cluster", "certificate", "show", "proxy"};
    char *partial[] = {"cluster", "certificate"};
    char *plain[] = {"status", "web"};
    char *config[] = {"cluster", "config", "min_data_TLS_version", "1.3"};
    char *config_show[] = {"cluster", "config", "show"};
    int used = -1;

    (void)state;
    assert_int_equal(control_command_match(4, list, &used), CONTROL_CMD_cluster_certificate_list);
    assert_int_equal(used, 3);
    assert_int_equal(control_command_match(4, show, &used), CONTROL_CMD_cluster_certificate_show);
    assert_int_equal(used, 3);
    assert_int_equal(control_command_match(2, plain, &used), CONTROL_CMD_status);
    assert_int_equal(used, 1);
    assert_int_equal(control_command_match(4, config, &used), CONTROL_CMD_cluster_config);
    assert_int_equal(used, 2);
    assert_int_equal(control_command_match(3, config_show, &used), CONTROL_CMD_cluster_config_show);
    assert_int_equal(used, 3);
    used = -1;
    assert_int_equal(control_command_match(2, partial, &used), -1);
    assert_int_equal(used, -1);
}

static void unknown_words_are_not_commands(void **state)
{
    (void)state;
    assert_int_equal(control_command_lookup(""), -1);
    assert_int_equal(control_command_lookup("STATUS"), -1);
    assert_int_equal(control_command_lookup("stat"), -1);
    assert_int_equal(control_command_lookup("status "), -1);
    assert_int_equal(control_command_lookup("shutdown"), -1);
}

static void encode_writes_one_compact_line(void **state)
{
    json_t *message = json_pack("{s:s, s:[s,s], s:{s:b}}", "command", "start", "args", "web",
                                "multi\nline", "options", "wait", 1);
    size_t len = 0;
    char *line = control_encode(message, &len);

    (void)state;
    assert_non_null(line);
    assert_int_equal(len, strlen(line));
    assert_true(len > 1);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1)); /* the embedded newline is escaped */
    assert_null(strstr(line, ", "));          /* compact */
    free(line);
    json_decref(message);
}

static void encode_then_decode_round_trips(void **state)
{
    json_t *message =
        json_pack("{s:s, s:[s,s], s:{s:i, s:b}, s:s}", "command", "tail", "args", "web", "stderr",
                  "options", "lines", 20, "follow", 1, "note", "caf\xc3\xa9 \"quoted\" \\ tab\t");
    json_t *decoded = NULL;
    char err[256] = "";
    size_t len = 0;
    char *line = control_encode(message, &len);

    (void)state;
    assert_non_null(line);
    assert_int_equal(control_decode(line, len - 1, &decoded, err, sizeof(err)), 0);
    assert_non_null(decoded);
    assert_true(json_equal(message, decoded));
    assert_string_equal(json_string_value(json_object_get(decoded, "note")),
                        "caf\xc3\xa9 \"quoted\" \\ tab\t");
    json_decref(decoded);
    json_decref(message);
    free(line);
}

static void decode_takes_exactly_len_bytes(void **state)
{
    const char *buffer = "{\"exit\":0}garbage";
    json_t *decoded = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(control_decode(buffer, 10, &decoded, err, sizeof(err)), 0);
    assert_int_equal(json_integer_value(json_object_get(decoded, "exit")), 0);
    json_decref(decoded);
}

static void invalid_json_reports_the_position(void **state)
{
    const char *line = "{\"command\": \"status\", oops}";
    json_t *decoded = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(control_decode(line, strlen(line), &decoded, err, sizeof(err)), CV_EPROTOCOL);
    assert_null(decoded);
    /* jansson reports the byte offset just past the offending token */
    assert_non_null(strstr(err, "invalid JSON at position 26: "));
    assert_non_null(strstr(err, "near 'oops'"));
}

static void truncated_and_empty_input_are_invalid(void **state)
{
    json_t *decoded = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(control_decode("{\"command\":", 11, &decoded, err, sizeof(err)), CV_EPROTOCOL);
    assert_non_null(strstr(err, "invalid JSON at position"));
    assert_int_equal(control_decode("", 0, &decoded, err, sizeof(err)), CV_EPROTOCOL);
    assert_non_null(strstr(err, "invalid JSON at position 0"));
    assert_null(decoded);
}

static void duplicate_keys_are_rejected(void **state)
{
    const char *line = "{\"command\":\"start\",\"command\":\"stop\"}";
    json_t *decoded = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(control_decode(line, strlen(line), &decoded, err, sizeof(err)), CV_EPROTOCOL);
    assert_non_null(strstr(err, "invalid JSON"));
    assert_non_null(strstr(err, "duplicate"));
    assert_null(decoded);
}

static void non_objects_are_rejected(void **state)
{
    static const char *const arrays[] = {"[1,2,3]", "[]", "[{\"command\":\"status\"}]"};
    static const char *const scalars[] = {"\"status\"", "42", "null", "true"};
    json_t *decoded = NULL;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        err[0] = '\0';
        assert_int_equal(control_decode(arrays[i], strlen(arrays[i]), &decoded, err, sizeof(err)),
                         CV_EPROTOCOL);
        assert_string_equal(err, "message is not a JSON object");
        assert_null(decoded);
    }
    /* jansson itself refuses a bare scalar as a document */
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        err[0] = '\0';
        assert_int_equal(control_decode(scalars[i], strlen(scalars[i]), &decoded, err, sizeof(err)),
                         CV_EPROTOCOL);
        assert_true(strlen(err) > 0);
        assert_null(decoded);
    }
}

static void oversized_messages_are_rejected_unparsed(void **state)
{
    size_t len = CONTROL_MAX_MESSAGE + 1;
    char *line = malloc(len);
    json_t *decoded = NULL;
    char err[256] = "";

    (void)state;
    assert_non_null(line);
    memset(line, ' ', len);
    line[0] = '{';
    line[len - 1] = '}'; /* valid JSON, only too long */
    assert_int_equal(control_decode(line, len, &decoded, err, sizeof(err)), CV_EPROTOCOL);
    assert_null(decoded);
    assert_non_null(strstr(err, "exceeds the limit"));
    /* a message of exactly CONTROL_MAX_MESSAGE bytes is accepted */
    line[len - 2] = '}';
    assert_int_equal(control_decode(line, CONTROL_MAX_MESSAGE, &decoded, err, sizeof(err)), 0);
    assert_non_null(decoded);
    json_decref(decoded);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_table_row_is_found_by_its_word),
        cmocka_unit_test(the_table_has_the_documented_commands_and_access),
        cmocka_unit_test(typed_words_match_the_longest_command),
        cmocka_unit_test(unknown_words_are_not_commands),
        cmocka_unit_test(encode_writes_one_compact_line),
        cmocka_unit_test(encode_then_decode_round_trips),
        cmocka_unit_test(decode_takes_exactly_len_bytes),
        cmocka_unit_test(invalid_json_reports_the_position),
        cmocka_unit_test(truncated_and_empty_input_are_invalid),
        cmocka_unit_test(duplicate_keys_are_rejected),
        cmocka_unit_test(non_objects_are_rejected),
        cmocka_unit_test(oversized_messages_are_rejected_unparsed),
    };
    return cmocka_run_group_tests_name("control_proto", tests, NULL, NULL);
}
