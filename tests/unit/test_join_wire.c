/* Unit tests for what a join carries (lib/join_wire.c) and how the peer issues a joining node's
 * certificates (certs_issuer_sign_csr() in agent/pki/certs.c): both read what the other side
 * sent, which is outside input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "certs.h"
#include "conf_certs.h"
#include "join_wire.h"
#include "unit_util.h"
#include "x509_make.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char csr_text[] = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"
                               "-----END CERTIFICATE REQUEST-----\n";

static struct join_answer sample_answer(void)
{
    struct join_answer a = {.member_id = 12345678901234567890ULL, .n_members = 2};

    snprintf(a.cluster, sizeof(a.cluster), "prod");
    snprintf(a.uid, sizeof(a.uid), "00ff");
    snprintf(a.node, sizeof(a.node), "n2");
    a.members[0] = (struct join_member){"n1", "10.0.0.1", 2379, 2380};
    a.members[1] = (struct join_member){"n2", "fd00::2", 3379, 3380};
    a.cert[0] = a.cert[1] =
        (char *)"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    a.ca_value = (char *)"{\"name\": \"cluster_ca\"}";
    for (size_t i = 0; i < sizeof(a.data_key); i++)
        a.data_key[i] = (unsigned char)(i * 7 + 1);
    return a;
}

static void an_answer_reads_back_as_written(void **unused)
{
    struct join_answer a = sample_answer(), b;
    char *text = join_answer_encode(&a), err[512];

    (void)unused;
    assert_non_null(text);
    assert_int_equal(join_answer_decode(text, strlen(text), &b, err, sizeof(err)), 0);
    assert_true(b.member_id == a.member_id);
    assert_int_equal(b.n_members, 2);
    assert_string_equal(b.members[1].address, "fd00::2");
    assert_int_equal(b.members[1].peer_port, 3380);
    assert_memory_equal(b.data_key, a.data_key, sizeof(a.data_key));
    assert_string_equal(b.ca_value, a.ca_value);
    join_answer_clear(&b);
    free(text);
}

/* Replaces the first occurrence of from in text by to (into a new string). */
static char *edited(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    char *out;

    assert_non_null(at);
    out = malloc(strlen(text) + strlen(to) + 1);
    assert_non_null(out);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

static void a_bad_answer_is_refused_naming_the_field(void **unused)
{
    struct join_answer a = sample_answer(), b;
    char *text = join_answer_encode(&a), err[512];
    static const struct {
        const char *from, *to, *message;
    } cases[] = {
        {"\"10.0.0.1\"", "\"node1.example\"", "'address' is not an IP address"},
        {"\"name\":\"n1\"", "\"name\":\"n2\"", "'n2' is named twice"},
        {"\"node\":\"n2\"", "\"node\":\"n9\"", "the node 'n9' is not among the members"},
        {"\"client_port\":2379", "\"client_port\":0", "is not a port"},
        {"\"member_id\":\"12345678901234567890\"", "\"member_id\":\"12x\"", "'member_id'"},
        {"\"cluster\":\"prod\"", "\"cluster\":\"a/b\"", "'cluster' is not a name"},
        {"\"data_key\":\"", "\"data_key\":\"AAAA", "'data_key' is not the base64 of 32 bytes"},
    };

    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *bad = edited(text, cases[i].from, cases[i].to);

        err[0] = '\0';
        assert_int_equal(join_answer_decode(bad, strlen(bad), &b, err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].message))
            print_error("case %zu: %s\n", i, err);
        assert_non_null(strstr(err, cases[i].message));
        join_answer_clear(&b);
        free(bad);
    }
    free(text);
}

static void a_request_takes_a_token_or_nothing_and_checks_its_csrs(void **unused)
{
    struct join_request r = {.client_port = 2379, .peer_port = 2380}, back;
    char *text, *bad, err[512];

    (void)unused;
    snprintf(r.address, sizeof(r.address), "127.0.0.1");
    r.csr[0] = r.csr[1] = (char *)csr_text;
    text = join_request_encode(&r); /* no token: an administrator admits it */
    assert_null(strstr(text, "token"));
    assert_int_equal(join_request_decode(text, strlen(text), &back, err, sizeof(err)), 0);
    assert_string_equal(back.token, "");
    join_request_clear(&back);
    bad = edited(text, "\"peer_port\":2380", "\"peer_port\":2379");
    assert_int_equal(join_request_decode(bad, strlen(bad), &back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "must differ"));
    join_request_clear(&back);
    free(bad);
    bad = edited(text, "-----BEGIN CERTIFICATE REQUEST-----", "MIIB");
    assert_int_equal(join_request_decode(bad, strlen(bad), &back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is not one PEM text"));
    join_request_clear(&back);
    free(bad);
    free(text);
    /* Over the limit: refused before it is parsed. */
    text = calloc(1, JOIN_MAX_REQUEST + 2);
    memset(text, ' ', JOIN_MAX_REQUEST + 1);
    assert_int_equal(join_request_decode(text, JOIN_MAX_REQUEST + 1, &back, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "over the limit"));
    free(text);
}

/* --- the peer issuing for a joiner's CSR --- */

static char *make_csr(enum key_type type, const char *cn, EVP_PKEY **ret_key)
{
    struct x509_subject_spec spec = {.common_name = cn};
    X509_REQ *req = NULL;
    char err[256], *pem;

    assert_int_equal(x509_make_key(type, ret_key, err, sizeof(err)), 0);
    assert_int_equal(x509_make_csr(*ret_key, &spec, NULL, &req, err, sizeof(err)), 0);
    pem = x509_pem_of_csr(req);
    X509_REQ_free(req);
    return pem;
}

static void the_peer_issues_for_the_csrs_key_and_names_the_node_itself(void **unused)
{
    struct cert_settings settings;
    struct certs *certs = NULL;
    struct certs_issuer *issuer = NULL;
    const char *ips[] = {"10.0.0.4", "127.0.0.1"};
    char dir[64], err[512], *csr, *cert_pem = NULL, cn[64];
    EVP_PKEY *key = NULL;
    X509 *cert;
    BIO *bio;
    int made = 0;

    (void)unused;
    unit_make_tempdir(dir, sizeof(dir), "joinwire");
    assert_int_equal(cert_settings_default(&settings), 0);
    assert_int_equal(certs_open(dir, (gid_t)-1, &certs, err, sizeof(err)), 0);
    assert_int_equal(certs_bootstrap(certs, &settings, &made, err, sizeof(err)), 0);
    assert_int_equal(
        certs_issuer_new(certs, &settings, "ccs_internode_encryption", &issuer, err, sizeof(err)),
        0);
    csr = make_csr(KEY_EC_P256, "whatever-the-joiner-asks", &key);
    assert_int_equal(certs_issuer_sign_csr(issuer, csr, "n4", ips, 2, &cert_pem, err, sizeof(err)),
                     0);
    bio = BIO_new_mem_buf(cert_pem, -1);
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(cert);
    assert_int_equal(X509_check_private_key(cert, key), 1); /* the joiner's key, never sent */
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "n4");
    assert_int_equal(X509_check_ip_asc(cert, "10.0.0.4", 0), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    free(cert_pem);
    free(csr);

    /* A CSR that is not one, or for a key too weak: refused, nothing issued. */
    cert_pem = NULL;
    assert_int_not_equal(
        certs_issuer_sign_csr(issuer, csr_text, "n4", ips, 2, &cert_pem, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "the certificate request is not a PEM certificate request"));
    assert_null(cert_pem);
    certs_issuer_free(issuer);
    certs_free(certs);
    cert_settings_clear(&settings);
    unit_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_answer_reads_back_as_written),
        cmocka_unit_test(a_bad_answer_is_refused_naming_the_field),
        cmocka_unit_test(a_request_takes_a_token_or_nothing_and_checks_its_csrs),
        cmocka_unit_test(the_peer_issues_for_the_csrs_key_and_names_the_node_itself),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
