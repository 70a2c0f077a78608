/*
 * Unit tests for trust lists (agent/pki/trust.c): names and references, reading certificates,
 * changes staged, committed, rolled back and discarded in their own store, and the file a
 * reference renders to (an empty list: an empty file, which trusts nobody).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "certs.h"
#include "cv_error.h"
#include "tls_context.h"
#include "render_trust.h"
#include "trust.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    struct certs *certs;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "trust");
    assert_int_equal(certs_open(fx->dir, (gid_t)-1, &fx->certs, err, sizeof(err)), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    certs_free(fx->certs);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* A self-signed certificate valid from `from` to `to` days from now, as PEM (malloc'd). */
static char *make_pem(const char *cn, long from, long to, bool ca)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem;
    long len;

    assert_non_null(key);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)(random() & 0x7fffffff));
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, name);
    X509_gmtime_adj(X509_getm_notBefore(cert), from * 86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), to * 86400);
    X509_set_pubkey(cert, key);
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, cert);
    len = BIO_get_mem_data(bio, &data);
    pem = strndup(data, (size_t)len);
    BIO_free(bio);
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
    return pem;
}

static void fingerprint_of(const char *pem, char *buf, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

    tls_cert_fingerprint(cert, buf, len);
    X509_free(cert);
    BIO_free(bio);
}

static void names_and_references(void **state)
{
    char reason[256];

    (void)state;
    assert_true(trust_list_name_valid("db1"));
    assert_true(trust_list_name_valid("peer_cluster_2"));
    assert_false(trust_list_name_valid(""));
    assert_false(trust_list_name_valid("db-1")); /* the store's names: a-z, 0-9 and _ */
    assert_false(trust_list_name_valid("Db1"));
    assert_false(trust_list_name_valid("all"));
    assert_false(trust_list_name_valid("cluster_ca"));
    assert_false(trust_list_name_valid("proxy"));
    assert_false(trust_list_name_valid("mtls_trusted_ca"));
    assert_int_equal(trust_ref_check("db1", reason, sizeof(reason)), 0);
    assert_int_equal(trust_ref_check("cluster_ca", reason, sizeof(reason)), 0);
    assert_int_equal(trust_ref_check("mtls_trusted_ca", reason, sizeof(reason)), 0);
    assert_int_equal(trust_ref_check("/etc/peer-ca.pem", reason, sizeof(reason)), 0);
    assert_int_equal(trust_ref_check("syncer", reason, sizeof(reason)), -EINVAL);
    assert_non_null(strstr(reason, "a certificate the node serves with"));
    assert_int_equal(trust_ref_check("ca.pem", reason, sizeof(reason)), -EINVAL);
    assert_non_null(strstr(reason, "'ca.pem' is not mtls_trusted_ca, cluster_ca or an absolute"));
    assert_true(trust_ref_is_list("db1"));
    assert_false(trust_ref_is_list("cluster_ca"));
    assert_false(trust_ref_is_list("mtls_trusted_ca"));
    assert_false(trust_ref_is_list("/x.pem"));
}

static void parsing_takes_certificates_only(void **state)
{
    char *a = make_pem("A", -1, 10, true), *b = make_pem("B", -1, 10, false);
    char both[8192], err[256];
    struct trust_set set;

    (void)state;
    snprintf(both, sizeof(both), "%s\n%s", a, b);
    assert_int_equal(trust_set_parse(both, strlen(both), &set, err, sizeof(err)), 0);
    assert_int_equal(set.n, 2);
    trust_set_clear(&set);
    snprintf(both, sizeof(both), "%s-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
             a);
    assert_int_equal(trust_set_parse(both, strlen(both), &set, err, sizeof(err)), CV_EINVALID_CERT);
    assert_string_equal(err, "block 2 is not a certificate (PRIVATE KEY): trust lists take "
                             "certificates only");
    snprintf(both, sizeof(both), "%sgarbage\n", a);
    assert_int_equal(trust_set_parse(both, strlen(both), &set, err, sizeof(err)), CV_EINVALID_CERT);
    assert_string_equal(err, "text after certificate 1 is not a PEM certificate");
    assert_int_equal(trust_set_parse("  \n", 3, &set, err, sizeof(err)), CV_EINVALID_CERT);
    assert_string_equal(err, "no certificate in it");
    assert_int_equal(trust_set_parse("MIIB", 4, &set, err, sizeof(err)), CV_EINVALID_CERT);
    free(a);
    free(b);
}

/* Runs one request as the pipeline does, up to (not including) the commit. */
static int prepare(struct fixture *fx, struct trust_batch *batch, enum trust_op op, const char *pem,
                   const char *fingerprint, json_t **ret_changes, const char **ret_reason,
                   char *err, size_t err_len)
{
    struct trust_request *request =
        trust_request_new(op, "db1", pem, pem ? strlen(pem) : 0, fingerprint);
    char warning[256] = "";
    json_t *changes = json_array();
    int r = trust_prepare(batch, fx->certs->trust, request, changes, warning, sizeof(warning),
                          ret_reason, err, err_len);

    trust_request_free(request);
    if (ret_changes)
        *ret_changes = changes;
    else
        json_decref(changes);
    return r;
}

static size_t count_in_list(struct fixture *fx)
{
    struct trust_set set;
    size_t n;

    assert_int_equal(trust_list_load(fx->certs->trust, "db1", &set), 0);
    n = set.n;
    trust_set_clear(&set);
    return n;
}

static void add_commit_and_remove(void **state)
{
    struct fixture *fx = *state;
    char *a = make_pem("A", -1, 100, true), *b = make_pem("B", -1, 100, true);
    char fa[TLS_FINGERPRINT_MAX], fb[TLS_FINGERPRINT_MAX], prefix[16], err[512];
    struct trust_batch batch = {0};
    const char *reason;
    json_t *changes;

    fingerprint_of(a, fa, sizeof(fa));
    fingerprint_of(b, fb, sizeof(fb));
    assert_int_equal(count_in_list(fx), 0);
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, a, NULL, &changes, &reason, err, sizeof(err)),
                     0);
    assert_int_equal(batch.n, 1);
    assert_true(batch.changes[0].staged);
    assert_int_equal(count_in_list(fx), 0); /* staged, not current */
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(changes, 0), "fingerprints"), 0)),
                        fa);
    json_decref(changes);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    trust_batch_succeed(&batch);
    assert_int_equal(count_in_list(fx), 1);
    /* The same again: nothing staged, "unchanged". */
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, a, NULL, &changes, &reason, err, sizeof(err)),
                     0);
    assert_int_equal(batch.n, 0);
    assert_true(json_is_true(json_object_get(json_array_get(changes, 0), "unchanged")));
    json_decref(changes);
    /* A second one, then removal by a prefix of its fingerprint, colons or not, any case. */
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, b, NULL, NULL, &reason, err, sizeof(err)), 0);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    trust_batch_succeed(&batch);
    assert_int_equal(count_in_list(fx), 2);
    snprintf(prefix, sizeof(prefix), "%.2s%.2s%.2s%.2s", fb, fb + 3, fb + 6, fb + 9);
    prefix[0] = (char)tolower((unsigned char)prefix[0]);
    assert_int_equal(
        prepare(fx, &batch, TRUST_REMOVE, NULL, prefix, NULL, &reason, err, sizeof(err)), 0);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    trust_batch_succeed(&batch);
    assert_int_equal(count_in_list(fx), 1);
    /* What is refused. */
    assert_int_equal(prepare(fx, &batch, TRUST_REMOVE, NULL, "AB", NULL, &reason, err, sizeof(err)),
                     CV_EUSAGE);
    assert_int_equal(
        prepare(fx, &batch, TRUST_REMOVE, NULL, "ABCDEF0123", NULL, &reason, err, sizeof(err)),
        CV_EINVALID_CERT);
    assert_string_equal(reason, "not_trusted");
    assert_non_null(strstr(err, "trust list 'db1' holds no such certificate"));
    assert_int_equal(prepare(fx, &batch, TRUST_REMOVE, b, NULL, NULL, &reason, err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_int_equal(batch.n, 0);
    /* Removing the last one empties the list: it goes when the change succeeds. */
    assert_int_equal(prepare(fx, &batch, TRUST_REMOVE, a, NULL, NULL, &reason, err, sizeof(err)),
                     0);
    assert_true(batch.changes[0].removed);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    trust_batch_succeed(&batch);
    assert_int_equal(count_in_list(fx), 0);
    free(a);
    free(b);
}

static void dates_are_checked(void **state)
{
    struct fixture *fx = *state;
    char *old = make_pem("Old", -20, -1, true), *early = make_pem("Early", 2, 20, true);
    struct trust_batch batch = {0};
    const char *reason;
    char err[512];

    assert_int_equal(prepare(fx, &batch, TRUST_ADD, old, NULL, NULL, &reason, err, sizeof(err)),
                     CV_ECERT_EXPIRED);
    assert_string_equal(reason, "expired");
    assert_non_null(strstr(err, "has expired"));
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, early, NULL, NULL, &reason, err, sizeof(err)),
                     CV_ECERT_EXPIRED);
    assert_non_null(strstr(err, "is not valid yet"));
    assert_int_equal(batch.n, 0);
    free(old);
    free(early);
}

static void rollback_and_discard_leave_the_list_as_it_was(void **state)
{
    struct fixture *fx = *state;
    char *a = make_pem("A", -1, 100, true), *b = make_pem("B", -1, 100, true);
    struct trust_batch batch = {0};
    struct render_override override = {0};
    struct render_inputs in = {.certs = fx->certs, .override = &override};
    char path[PATH_MAX], current[PATH_MAX], err[512];
    const char *reason;
    unsigned generation;

    assert_int_equal(prepare(fx, &batch, TRUST_ADD, a, NULL, NULL, &reason, err, sizeof(err)), 0);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    trust_batch_succeed(&batch);
    assert_int_equal(
        trust_ref_file(&in, "client_trust", "db1", current, sizeof(current), err, sizeof(err)), 0);
    /* A change renders from its staged bundle; a dry run (discard) leaves nothing behind. */
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, b, NULL, NULL, &reason, err, sizeof(err)), 0);
    trust_batch_override(&batch, &override);
    assert_int_equal(
        trust_ref_file(&in, "client_trust", "db1", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_not_equal(path, current);
    trust_batch_discard(&batch);
    assert_int_equal(access(path, F_OK), -1);
    /* Committed, then rolled back: the old bundle current again, the new one gone after. */
    assert_int_equal(prepare(fx, &batch, TRUST_ADD, b, NULL, NULL, &reason, err, sizeof(err)), 0);
    assert_int_equal(trust_batch_commit(&batch, err, sizeof(err)), 0);
    assert_int_equal(count_in_list(fx), 2);
    trust_batch_restore(&batch);
    trust_batch_discard(&batch);
    assert_int_equal(count_in_list(fx), 1);
    assert_int_equal(certstore_current(fx->certs->trust, "db1", &generation), 0);
    override.n_trusts = 0;
    assert_int_equal(
        trust_ref_file(&in, "client_trust", "db1", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, current);
    free(a);
    free(b);
}

static void an_empty_list_renders_to_a_file_that_trusts_nobody(void **state)
{
    struct fixture *fx = *state;
    struct render_inputs in = {.certs = fx->certs};
    char path[PATH_MAX], err[512];
    struct stat st;

    assert_int_equal(
        trust_ref_file(&in, "server_cert", "peers", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, fx->certs->trust_empty_path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_true(tls_ca_file_empty(path));
    /* A store certificate that is not set is an error with its fix. */
    assert_int_equal(trust_ref_file(&in, "client_trust", "mtls_trusted_ca", path, sizeof(path), err,
                                    sizeof(err)),
                     -ENOENT);
    assert_string_equal(err, "client_trust 'mtls_trusted_ca' is not set (set it with "
                             "'certvisorctl cluster certificate set mtls_trusted_ca "
                             "certificate_file <ca.pem>', or change client_trust)");
    assert_int_equal(
        trust_ref_file(&in, "client_trust", "/etc/x.pem", path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/etc/x.pem");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_references),
        cmocka_unit_test(parsing_takes_certificates_only),
        TEST(add_commit_and_remove),
        TEST(dates_are_checked),
        TEST(rollback_and_discard_leave_the_list_as_it_was),
        TEST(an_empty_list_renders_to_a_file_that_trusts_nobody),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
