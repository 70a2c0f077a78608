/*
 * Unit tests for what a change reaches: for each policy setting and for a certificate
 * replacement, exactly which services' rendered files change (the services the apply pipeline
 * then reloads), computed with real certificates in a temporary store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "certs.h"
#include "cv_error.h"
#include "conf_certs.h"
#include "policy.h"
#include "render_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The node of the tests: each service with its plane and certificate. */
static const struct {
    const char *name;
    const char *certificate;
    enum tls_plane plane;
    enum render_format format;
    bool http; /* serves plain HTTP while http_support is enabled, as the REST API does */
} node[] = {
    {"cm", "cm", TLS_PLANE_CONTROL, RENDER_CERTVISOR, false},
    {"api", "api", TLS_PLANE_CONTROL, RENDER_CERTVISOR, true},
    {"proxy", "proxy", TLS_PLANE_DATA, RENDER_CERTVISOR, false},
    {"redis", "data_internode_encryption", TLS_PLANE_DATA, RENDER_REDIS, false},
    {"sentinel", "proxy", TLS_PLANE_SENTINEL, RENDER_CERTVISOR, false},
    {"exporter", "metrics_exporter", TLS_PLANE_CONTROL, RENDER_CERTVISOR, false},
};
#define NODE_SIZE (sizeof(node) / sizeof(node[0]))

struct fixture {
    char dir[64];
    struct certs *certs;
    struct policy policy;
    struct tls_spec specs[NODE_SIZE];
    struct service_config services[NODE_SIZE];
    char outputs[NODE_SIZE][128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct cert_settings settings;
    char err[512];
    int made = 0;

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "plan");
    assert_int_equal(cert_settings_default(&settings), 0);
    assert_int_equal(certs_open(fx->dir, (gid_t)-1, &fx->certs, err, sizeof(err)), 0);
    assert_int_equal(certs_bootstrap(fx->certs, &settings, &made, err, sizeof(err)), 0);
    cert_settings_clear(&settings);
    assert_int_equal(policy_init(&fx->policy), 0);
    for (size_t i = 0; i < NODE_SIZE; i++) {
        bool changed;

        snprintf(fx->outputs[i], sizeof(fx->outputs[i]), "%s/tls/%s.conf", fx->dir, node[i].name);
        fx->specs[i] = (struct tls_spec){
            .certificate = (char *)node[i].certificate,
            .plane = node[i].plane,
            .format = node[i].format,
            .output = fx->outputs[i],
            .verify_peer = TLS_VERIFY_NONE,
            .port = node[i].format == RENDER_REDIS ? 12443 : 0,
            .http = node[i].http,
        };
        fx->services[i].name = (char *)node[i].name;
        fx->services[i].tls = &fx->specs[i];
        fx->services[i].n_tls = 1;
        /* What the services run with before the change. */
        struct render_inputs inputs = {fx->certs, &fx->policy, NULL, NULL, 0};

        assert_int_equal(
            render_files_write(&inputs, &fx->services[i], (gid_t)-1, &changed, err, sizeof(err)),
            0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    policy_clear(&fx->policy);
    certs_free(fx->certs);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* The services whose files the change would rewrite, space-separated, in the node's order. */
static void affected(struct fixture *fx, const struct policy *policy,
                     const struct render_override *override, char *buf, size_t len)
{
    struct render_inputs inputs = {fx->certs, policy, override, NULL, 0};
    struct rendered_set set = {0};
    char err[512];
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < NODE_SIZE; i++)
        assert_int_equal(render_files_compute(&inputs, &fx->services[i], &set, err, sizeof(err)),
                         0);
    assert_int_equal(rendered_set_validate(&set, &inputs, err, sizeof(err)), 0);
    for (size_t i = 0; i < NODE_SIZE; i++)
        if (rendered_set_changes(&set, &fx->services[i]))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", node[i].name);
    rendered_set_clear(&set);
}

static void each_setting_reaches_exactly_its_plane(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        enum policy_setting setting;
        const char *value;
        const char *expected;
    } cases[] = {
        {POLICY_MIN_CONTROL_TLS_VERSION, "1.3", "cm api exporter"},
        /* The sentinel follows the data plane's minimum unless it has its own. */
        {POLICY_MIN_DATA_TLS_VERSION, "1.3", "proxy redis sentinel"},
        {POLICY_MIN_SENTINEL_TLS_VERSION, "1.3", "sentinel"},
        {POLICY_CONTROL_CIPHER_SUITES, "ECDHE-ECDSA-AES256-GCM-SHA384", "cm api exporter"},
        {POLICY_DATA_CIPHER_LIST, "ECDHE-ECDSA-AES256-GCM-SHA384", "proxy redis"},
        {POLICY_CONTROL_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384", "cm api exporter"},
        {POLICY_DATA_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384", "proxy redis"},
        {POLICY_SENTINEL_CIPHER_SUITES, "ECDHE-ECDSA-AES256-GCM-SHA384", "sentinel"},
        /* sentinel_tls_mode is rendered for the sentinel; http_support for the sections that
         * ask for it (http = true), not for the rest of the control plane. */
        {POLICY_SENTINEL_TLS_MODE, "required", "sentinel"},
        {POLICY_HTTP_SUPPORT, "disabled", "api"},
        /* The value in force already: nothing changes. */
        {POLICY_MIN_CONTROL_TLS_VERSION, "1.2", ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy changed;
        char got[256], err[512], warn[512];

        assert_int_equal(policy_copy(&changed, &fx->policy), 0);
        assert_int_equal(policy_check(&changed, cases[i].setting, cases[i].value, err, sizeof(err),
                                      warn, sizeof(warn)),
                         0);
        assert_int_equal(
            policy_set(&changed, cases[i].setting, cases[i].value, POLICY_FROM_RUNTIME, NULL, 0),
            0);
        affected(fx, &changed, NULL, got, sizeof(got));
        if (strcmp(got, cases[i].expected) != 0)
            fail_msg("%s = %s reaches \"%s\", expected \"%s\"",
                     policy_setting_name(cases[i].setting), cases[i].value, got, cases[i].expected);
        policy_clear(&changed);
    }
}

static void a_certificate_reaches_every_service_that_serves_it(void **state)
{
    struct fixture *fx = *state;
    struct render_override override = {0};
    char *cert = NULL, *key = NULL, err[512], got[256];
    struct cert_settings settings;
    unsigned generation;

    assert_int_equal(cert_settings_default(&settings), 0);
    assert_int_equal(certs_issue(fx->certs, &settings, "proxy", &cert, &key, err, sizeof(err)), 0);
    assert_int_equal(certstore_stage(fx->certs->store, "proxy", cert, strlen(cert), key,
                                     strlen(key), true, &generation, err, sizeof(err)),
                     0);
    override.n = 1;
    override.certs[0].name = "proxy";
    override.certs[0].generation = generation;
    affected(fx, &fx->policy, &override, got, sizeof(got));
    assert_string_equal(got, "proxy sentinel");
    /* Two certificates of one batch: the union, each service once. */
    override.n = 2;
    override.certs[1].name = "cm";
    override.certs[1].generation = generation; /* any staged generation will do */
    assert_int_equal(certstore_stage(fx->certs->store, "cm", cert, strlen(cert), key, strlen(key),
                                     true, &override.certs[1].generation, err, sizeof(err)),
                     0);
    affected(fx, &fx->policy, &override, got, sizeof(got));
    assert_string_equal(got, "cm proxy sentinel");
    free(cert);
    free(key);
    cert_settings_clear(&settings);
}

/* A database list is rendered for the services that ask for it, with the files it needs. */
static void databases_reach_the_services_that_serve_them(void **state)
{
    struct fixture *fx = *state;
    struct database_decl dbs[1] = {{
        .name = "db1",
        .listen = "127.0.0.1",
        .port = 12000,
        .shard = "127.0.0.1:12100",
        .shard_tls = true,
        .tls_mode = DB_TLS_ENABLED,
        .client_auth = TLS_VERIFY_REQUIRE,
        .client_trust = "mtls_trusted_ca",
        .source = "db.conf:1",
    }};
    struct render_inputs inputs = {fx->certs, &fx->policy, NULL, dbs, 1};
    struct service_config proxy = {.name = "proxy"};
    struct rendered_set set = {0};
    char output[160], err[1024];

    snprintf(output, sizeof(output), "%s/proxy/databases.conf", fx->dir);
    proxy.databases_output = output;
    /* Its client trust is not set: refused, naming the database and the fix. */
    assert_true(render_files_compute(&inputs, &proxy, &set, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "database 'db1' (db.conf:1): client_trust 'mtls_trusted_ca' is "
                                "not set"));
    rendered_set_clear(&set);
    dbs[0].client_trust = "cluster_ca";
    assert_int_equal(render_files_compute(&inputs, &proxy, &set, err, sizeof(err)), 0);
    assert_int_equal(set.n_files, 1);
    assert_null(set.files[0].spec);
    assert_true(set.files[0].changed && rendered_set_changes(&set, &proxy));
    assert_non_null(strstr(set.files[0].text, "[db1]\nlisten = 127.0.0.1\nport = 12000\n"));
    assert_non_null(strstr(set.files[0].text, "certs/data_internode_encryption/1/cert.pem"));
    assert_non_null(strstr(set.files[0].text, "client_verify = require"));
    assert_non_null(strstr(set.files[0].text, fx->certs->ca_export_path));
    /* The proxy would load it: the CA file and the shard's client context are checked. */
    assert_int_equal(rendered_set_validate(&set, &inputs, err, sizeof(err)), 0);
    rendered_set_clear(&set);
    /* A CA file that holds no certificate is refused before anything is written. */
    dbs[0].client_trust = "/dev/null";
    assert_int_equal(render_files_compute(&inputs, &proxy, &set, err, sizeof(err)), 0);
    assert_int_equal(rendered_set_validate(&set, &inputs, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "client_ca_file /dev/null holds no certificate"));
    rendered_set_clear(&set);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(each_setting_reaches_exactly_its_plane),
        TEST(a_certificate_reaches_every_service_that_serves_it),
        TEST(databases_reach_the_services_that_serve_them),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
