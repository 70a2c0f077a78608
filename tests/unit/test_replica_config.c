/*
 * Unit tests for Replica Of's configuration: the replica_ keys of the rendered database list,
 * and the conf.d database section's replica_of and authentication_ssl_client_certs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "config.h"
#include "cv_error.h"
#include "db_config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void replica_keys_render_and_read_back(void **state)
{
    struct db_config dbs[2] = {
        {.name = "db2",
         .listen = "127.0.0.1",
         .port = 13000,
         .shard = "127.0.0.1:13100",
         .replica_source = "source.example.com:12000",
         .replica_ca_file = "/t/db2/3/cert.pem",
         .replica_server_name = "db1.source.example.com",
         .replica_verify_hostname = true,
         .replica_local_port = 13200},
        {.name = "db1", .port = 12000, .shard = "127.0.0.1:12100"},
    };
    struct db_list list = {dbs, 2}, back;
    char err[256], *first;
    char *text = db_list_render(&list);

    (void)state;
    assert_non_null(text);
    assert_non_null(strstr(text, "replica_source = source.example.com:12000\n"
                                 "replica_ca_file = /t/db2/3/cert.pem\n"
                                 "replica_server_name = db1.source.example.com\n"
                                 "replica_verify_hostname = yes\n"
                                 "replica_local_port = 13200\n"));
    /* A database that is not a replica renders as it always did. */
    first = strndup(strstr(text, "[db1]"), (size_t)(strstr(text, "[db2]") - strstr(text, "[db1]")));
    assert_non_null(first);
    assert_null(strstr(first, "replica_"));
    free(first);
    assert_int_equal(db_list_parse(text, &back, err, sizeof(err)), 0);
    assert_null(back.dbs[0].replica_source);
    assert_string_equal(back.dbs[1].replica_source, "source.example.com:12000");
    assert_string_equal(back.dbs[1].replica_ca_file, "/t/db2/3/cert.pem");
    assert_string_equal(back.dbs[1].replica_server_name, "db1.source.example.com");
    assert_true(back.dbs[1].replica_verify_hostname);
    assert_int_equal(back.dbs[1].replica_local_port, 13200);
    db_list_clear(&back);
    free(text);
}

static void replica_keys_are_checked(void **state)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"replica_source = h:1\n",
         "replica_source 'h:1' needs the form host:port and replica_ca_file"},
        {"replica_source = nope\nreplica_ca_file = /c\n", "needs the form host:port"},
        {"replica_ca_file = /c\n", "replica_ settings need replica_source"},
        {"replica_verify_hostname = maybe\n", "replica_verify_hostname 'maybe' is not yes or no"},
        {"replica_local_port = 0\n", "replica_local_port '0' is not a port number"},
    };
    char text[512], err[256];
    struct db_list list;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "[db2]\nport = 1\nshard = h:2\n%s", cases[i].text);
        assert_int_equal(db_list_parse(text, &list, err, sizeof(err)), CV_EINVALID_TLS);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
    }
}

struct fixture {
    char dir[64];
    char main_path[PATH_MAX];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char conf_d[PATH_MAX];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "replica");
    snprintf(fx->main_path, sizeof(fx->main_path), "%s/certvisor.conf", fx->dir);
    snprintf(conf_d, sizeof(conf_d), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(conf_d, 0755), 0);
    unit_write_file(fx->dir, "certvisor.conf", "");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static void sections_read(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config = NULL;
    char *error = NULL;
    const struct database_decl *db1, *db2;

    unit_write_file(fx->dir, "conf.d/db.conf",
                    "database db1 {\n"
                    "    port = 12000\n"
                    "    shard = \"127.0.0.1:12100\"\n"
                    "    tls_mode = replica_ssl\n"
                    "    authentication_ssl_client_certs = \"peers\"\n"
                    "}\n"
                    "database db2 {\n"
                    "    port = 13000\n"
                    "    shard = \"127.0.0.1:13100\"\n"
                    "    replica_of {\n"
                    "        source = \"source.example.com:12000\"\n"
                    "    }\n"
                    "}\n");
    assert_int_equal(config_load(fx->main_path, NULL, &config, &error), 0);
    db1 = &config->databases[0];
    db2 = &config->databases[1];
    assert_int_equal(db1->client_auth, TLS_VERIFY_REQUIRE);
    assert_string_equal(db1->client_trust, "peers");
    assert_null(db1->replica);
    assert_non_null(db2->replica);
    assert_string_equal(db2->replica->source, "source.example.com:12000");
    assert_string_equal(db2->replica->server_cert, "db2"); /* the database's own list */
    assert_false(db2->replica->verify_hostname);
    assert_null(db2->replica->server_name);
    assert_int_equal(db2->replica->local_port, 0);
    config_free(config);
}

static void sections_refused(void **state)
{
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"replica_of {\n}\n", "replica_of: source is required as \"host:port\""},
        {"replica_of {\n source = \"h\"\n}\n", "replica_of: source is required"},
        {"replica_of {\n source = \"h:1\"\n server_cert = \"proxy\"\n}\n",
         "replica_of: server_cert 'proxy' is a certificate the node serves with"},
        {"replica_of {\n source = \"h:1\"\n server_name = \"10.0.0.1\"\n}\n",
         "server_name '10.0.0.1' is not a host name"},
        {"replica_of {\n source = \"h:1\"\n local_port = 70000\n}\n",
         "local_port 70000 is not a port number"},
        {"replica_of {\n source = \"h:1\"\n}\nreplica_of {\n source = \"h:2\"\n}\n",
         "replica_of is given more than once"},
        {"client_trust = \"cluster_ca\"\nauthentication_ssl_client_certs = \"peers\"\n",
         "client_trust and authentication_ssl_client_certs are one setting"},
        {"authentication_ssl_client_certs = \"a b\"\n", "client_trust 'a b' is not"},
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_config *config = NULL;
        char text[1024], *error = NULL;

        snprintf(text, sizeof(text), "database db2 {\nport = 1\nshard = \"h:2\"\n%s}\n",
                 cases[i].body);
        unit_write_file(fx->dir, "conf.d/db.conf", text);
        assert_int_equal(config_load(fx->main_path, NULL, &config, &error), CV_ECONFIG);
        if (!strstr(error, cases[i].needle) || !strstr(error, "db.conf:1: database 'db2': "))
            fail_msg("case %zu: '%s' lacks '%s'", i, error, cases[i].needle);
        free(error);
    }
    /* A database name that cannot name a trust list needs server_cert. */
    {
        struct agent_config *config = NULL;
        char *error = NULL;

        unit_write_file(fx->dir, "conf.d/db.conf",
                        "database my-db {\nport = 1\nshard = \"h:2\"\n"
                        "replica_of {\n source = \"h:1\"\n}\n}\n");
        assert_int_equal(config_load(fx->main_path, NULL, &config, &error), CV_ECONFIG);
        assert_non_null(strstr(error, "server_cert is required (the database's name 'my-db'"));
        free(error);
    }
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replica_keys_render_and_read_back),
        cmocka_unit_test(replica_keys_are_checked),
        TEST(sections_read),
        TEST(sections_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
