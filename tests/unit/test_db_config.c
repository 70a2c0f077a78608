/* Unit tests for the rendered database list: round trip, name order, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db_config.h"

#include "cv_error.h"

#include <stdlib.h>
#include <string.h>

static void renders_in_name_order_and_reads_back(void **state)
{
    struct db_config dbs[2] = {
        {.name = "orders",
         .listen = "0.0.0.0",
         .port = 12001,
         .advertise = "db.example.com",
         .shard = "127.0.0.1:30002",
         .shard_tls = true,
         .shard_cert_file = "/s/cert.pem",
         .shard_key_file = "/s/key.pem",
         .shard_ca_file = "/s/ca.pem",
         .tls_mode = DB_TLS_REPLICA_SSL,
         .client_verify = TLS_VERIFY_REQUIRE,
         .client_ca_file = "/c/ca.pem"},
        {.name = "db1",
         .listen = "127.0.0.1",
         .port = 12000,
         .shard = "[::1]:30001",
         .tls_mode = DB_TLS_ENABLED},
    };
    struct db_list list = {dbs, 2}, back;
    char err[256], host[64];
    char *text = db_list_render(&list);
    int port;

    (void)state;
    assert_non_null(text);
    assert_true(strstr(text, "[db1]") < strstr(text, "[orders]"));
    assert_int_equal(db_list_parse(text, &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.dbs[0].name, "db1");
    assert_string_equal(back.dbs[1].client_ca_file, "/c/ca.pem");
    assert_int_equal(back.dbs[1].tls_mode, DB_TLS_REPLICA_SSL);
    assert_int_equal(back.dbs[1].client_verify, TLS_VERIFY_REQUIRE);
    assert_true(back.dbs[1].shard_tls);
    assert_null(back.dbs[0].advertise);
    assert_int_equal(db_split_address(back.dbs[0].shard, host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 30001);
    assert_non_null(db_list_find(&back, "orders"));
    assert_null(db_list_find(&back, "nope"));
    db_list_clear(&back);
    free(text);
}

static void refusals_name_the_line_and_the_problem(void **state)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"port = 1\n", "line 1: a setting before the first [database] heading"},
        {"[Bad]\nport = 1\nshard = a:1\n", "line 1: 'Bad' is not a database name"},
        {"[a]\nport = 70000\n", "line 2: port '70000' is not a port number"},
        {"[a]\nshard = h:1\n", "line 1: database 'a' needs port and shard"},
        {"[a]\nport = 1\nshard = ::1:5\n", "shard '::1:5' is not host:port"},
        {"[a]\nport = 1\nshard = h:1\nshard_tls = yes\n", "shard_tls needs shard_cert_file"},
        {"[a]\nport = 1\nshard = h:1\nclient_verify = require\n",
         "client_verify needs client_ca_file"},
        {"[a]\nport = 1\nshard = h:1\n[b]\nport = 1\nshard = h:2\n",
         "database 'b' uses port 1, as 'a' does"},
        {"[a]\nport = 1\nshard = h:1\n[a]\nport = 2\nshard = h:1\n",
         "line 4: database 'a' is listed twice"},
        {"[a]\ncolour = blue\n", "line 2: unknown setting 'colour'"},
        {"[a]\ntls_mode = maybe\n", "tls_mode 'maybe' is not enabled, disabled or replica_ssl"},
        {"[a]\nshard = h:1\nshard = h:2\n", "line 3: shard is set twice"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct db_list list;
        char err[256] = "";

        assert_int_equal(db_list_parse(cases[i].text, &list, err, sizeof(err)), CV_EINVALID_TLS);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].needle);
        assert_null(list.dbs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_in_name_order_and_reads_back),
        cmocka_unit_test(refusals_name_the_line_and_the_problem),
    };
    return cmocka_run_group_tests_name("db_config", tests, NULL, NULL);
}
