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

#include "cert_names.h"
#include "certs.h"
#include "cv_error.h"
#include "conf_certs.h"
#include "policy.h"
#include "render_files.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
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

/* --- the halves a rotation and a CSR run on the offload workers --- */

struct issue_thread {
    const struct certs_issuer *issuer;
    char *cert, *key;
    int r;
    char err[512];
};

static void *issue_on_thread(void *arg)
{
    struct issue_thread *t = arg;

    t->r = certs_issuer_issue(t->issuer, &t->cert, &t->key, t->err, sizeof(t->err));
    return NULL;
}

static X509 *parse_cert(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    assert_non_null(cert);
    return cert;
}

static EVP_PKEY *parse_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    assert_non_null(key);
    return key;
}

/*
 * A rotation's certificates are issued on the offload workers from what the loop copied out
 * of the store: two at once, with the store's CA moved away meanwhile, and each is the
 * cluster CA's and goes with its key.
 */
static void issuers_work_from_their_copies(void **state)
{
    struct fixture *fx = *state;
    struct issue_thread threads[2] = {0};
    const char *names[2] = {"proxy", "cm"};
    struct certs_issuer *issuers[2];
    struct cert_settings settings;
    char err[512], *ca_pem = NULL, ca_dir[128], moved[128];
    pthread_t ids[2];
    unsigned generation;
    size_t ca_len = 0;
    X509 *ca;

    assert_int_equal(cert_settings_default(&settings), 0);
    assert_int_equal(certstore_current(fx->certs->store, CERT_CLUSTER_CA, &generation), 0);
    assert_int_equal(
        certstore_read_cert(fx->certs->store, CERT_CLUSTER_CA, generation, &ca_pem, &ca_len), 0);
    ca = parse_cert(ca_pem);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            certs_issuer_new(fx->certs, &settings, names[i], &issuers[i], err, sizeof(err)), 0);
        threads[i].issuer = issuers[i];
    }
    snprintf(ca_dir, sizeof(ca_dir), "%s/certs/%s", fx->dir, CERT_CLUSTER_CA);
    snprintf(moved, sizeof(moved), "%s/moved-ca", fx->dir);
    assert_int_equal(rename(ca_dir, moved), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&ids[i], NULL, issue_on_thread, &threads[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(ids[i], NULL), 0);
    assert_int_equal(rename(moved, ca_dir), 0);
    for (int i = 0; i < 2; i++) {
        X509 *cert;
        EVP_PKEY *key;

        if (threads[i].r < 0)
            fail_msg("issuing '%s' failed: %s", names[i], threads[i].err);
        cert = parse_cert(threads[i].cert);
        key = parse_key(threads[i].key);
        assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
        assert_int_equal(X509_check_private_key(cert, key), 1);
        X509_free(cert);
        EVP_PKEY_free(key);
        free(threads[i].cert);
        OPENSSL_clear_free(threads[i].key, strlen(threads[i].key));
        certs_issuer_free(issuers[i]);
    }
    /* Without a CA there is nothing to copy: said on the loop, before any worker runs. */
    assert_int_equal(rename(ca_dir, moved), 0);
    assert_int_equal(certs_issuer_new(fx->certs, &settings, "proxy", &issuers[0], err, sizeof(err)),
                     -ENOENT);
    assert_string_equal(err, "the cluster CA is not set");
    assert_int_equal(rename(moved, ca_dir), 0);
    X509_free(ca);
    free(ca_pem);
    cert_settings_clear(&settings);
}

struct csr_thread {
    const struct certs_csr *csr;
    char *pem;
    int r;
    char err[512];
};

static void *csr_on_thread(void *arg)
{
    struct csr_thread *t = arg;

    t->r = certs_csr_make(t->csr, &t->pem, t->err, sizeof(t->err));
    return NULL;
}

/* A CSR is made on a worker from copies too, and its key is left pending in the store. */
static void a_csr_made_from_copies_keeps_its_key_pending(void **state)
{
    struct fixture *fx = *state;
    const char *sans[] = {"db.example.com", "10.0.0.7"};
    struct csr_thread t = {0};
    struct cert_settings settings;
    struct certs_csr *csr = NULL;
    char err[512], *key_pem = NULL, subject[256];
    size_t key_len = 0;
    X509_REQ *req;
    EVP_PKEY *key;
    pthread_t id;
    BIO *bio;

    assert_int_equal(cert_settings_default(&settings), 0);
    assert_int_equal(certs_csr_new(fx->certs, &settings, "proxy", "/O=Example/CN=proxy.example.com",
                                   sans, 2, &csr, err, sizeof(err)),
                     0);
    cert_settings_clear(&settings); /* the job holds copies */
    t.csr = csr;
    assert_int_equal(pthread_create(&id, NULL, csr_on_thread, &t), 0);
    assert_int_equal(pthread_join(id, NULL), 0);
    if (t.r < 0)
        fail_msg("making the CSR failed: %s", t.err);
    bio = BIO_new_mem_buf(t.pem, -1);
    req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    assert_non_null(req);
    X509_NAME_oneline(X509_REQ_get_subject_name(req), subject, sizeof(subject));
    assert_string_equal(subject, "/O=Example/CN=proxy.example.com");
    assert_int_equal(certstore_read_pending_key(fx->certs->store, "proxy", &key_pem, &key_len), 0);
    key = parse_key(key_pem);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    OPENSSL_clear_free(key_pem, key_len);
    free(t.pem);
    certs_csr_free(csr);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(each_setting_reaches_exactly_its_plane),
        TEST(a_certificate_reaches_every_service_that_serves_it),
        TEST(databases_reach_the_services_that_serve_them),
        TEST(issuers_work_from_their_copies),
        TEST(a_csr_made_from_copies_keeps_its_key_pending),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
