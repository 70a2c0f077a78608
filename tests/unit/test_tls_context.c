/*
 * Unit tests for building SSL contexts from a TLS configuration and swapping them on reload,
 * with real handshakes between in-process ends of a socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cv_error.h"
#include "tls_config.h"
#include "tls_context.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A tiny PKI: two CAs, leaves issued by them, and keys that match nothing. */
struct fixture {
    char dir[64];
    char ca[PATH_MAX];         /* the trusted CA */
    char server_crt[PATH_MAX]; /* CN=server, issued by ca, leaf then ca */
    char server_key[PATH_MAX];
    char server2_crt[PATH_MAX]; /* CN=server2, issued by ca */
    char server2_key[PATH_MAX];
    char client_crt[PATH_MAX]; /* CN=client, issued by ca */
    char client_key[PATH_MAX];
    char other_ca[PATH_MAX];     /* a CA nobody trusts */
    char stranger_crt[PATH_MAX]; /* CN=stranger, issued by other_ca */
    char stranger_key[PATH_MAX];
    char rsa_key[PATH_MAX];       /* an RSA key: another type than the certificates' */
    char rsa_crt[PATH_MAX];       /* CN=rsa-server, issued by ca for rsa_key */
    char encrypted_key[PATH_MAX]; /* server's key, encrypted */
    char conf[PATH_MAX];          /* dir/tls.conf, for the holder */
};

static void path_in(const struct fixture *fx, char *path, const char *name)
{
    assert_true(snprintf(path, PATH_MAX, "%s/%s", fx->dir, name) < PATH_MAX);
}

static EVP_PKEY *make_key(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");

    assert_non_null(key);
    return key;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* A CA certificate when issuer is NULL (self-signed), a server and client leaf otherwise. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(cert);
    assert_non_null(name);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(cert, name), 1);
    assert_int_equal(X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name), 1);
    X509_NAME_free(name);
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    if (!issuer) {
        add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(cert, cert, NID_subject_key_identifier, "hash");
    } else {
        add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature");
        add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(cert, issuer, NID_subject_alt_name, "DNS:localhost");
        add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
    }
    assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return cert;
}

static void write_certs(const char *path, X509 *first, X509 *second)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, first), 1);
    if (second)
        assert_int_equal(PEM_write_X509(f, second), 1);
    assert_int_equal(fclose(f), 0);
}

static void write_key(const char *path, EVP_PKEY *key, const char *passphrase)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, passphrase ? EVP_aes_256_cbc() : NULL,
                                          (const unsigned char *)passphrase,
                                          passphrase ? (int)strlen(passphrase) : 0, NULL, NULL),
                     1);
    assert_int_equal(fclose(f), 0);
}

/* Issues a leaf named cn from ca into crt (leaf then CA) and key. */
static void make_leaf(const char *cn, X509 *ca, EVP_PKEY *ca_key, const char *crt, const char *key,
                      const char *encrypted_key)
{
    EVP_PKEY *leaf_key = make_key();
    X509 *leaf = make_cert(cn, leaf_key, ca, ca_key);

    write_certs(crt, leaf, ca);
    write_key(key, leaf_key, NULL);
    if (encrypted_key)
        write_key(encrypted_key, leaf_key, "secret");
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    EVP_PKEY *ca_key, *other_key, *rsa;
    X509 *ca, *other, *rsa_leaf;

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "tlsctx");
    path_in(fx, fx->ca, "ca.pem");
    path_in(fx, fx->server_crt, "server.crt");
    path_in(fx, fx->server_key, "server.key");
    path_in(fx, fx->server2_crt, "server2.crt");
    path_in(fx, fx->server2_key, "server2.key");
    path_in(fx, fx->client_crt, "client.crt");
    path_in(fx, fx->client_key, "client.key");
    path_in(fx, fx->other_ca, "other-ca.pem");
    path_in(fx, fx->stranger_crt, "stranger.crt");
    path_in(fx, fx->stranger_key, "stranger.key");
    path_in(fx, fx->rsa_key, "rsa.key");
    path_in(fx, fx->rsa_crt, "rsa.crt");
    path_in(fx, fx->encrypted_key, "encrypted.key");
    path_in(fx, fx->conf, "tls.conf");

    ca_key = make_key();
    ca = make_cert("certvisor test CA", ca_key, NULL, NULL);
    write_certs(fx->ca, ca, NULL);
    make_leaf("server", ca, ca_key, fx->server_crt, fx->server_key, fx->encrypted_key);
    make_leaf("server2", ca, ca_key, fx->server2_crt, fx->server2_key, NULL);
    make_leaf("client", ca, ca_key, fx->client_crt, fx->client_key, NULL);
    other_key = make_key();
    other = make_cert("untrusted CA", other_key, NULL, NULL);
    write_certs(fx->other_ca, other, NULL);
    make_leaf("stranger", other, other_key, fx->stranger_crt, fx->stranger_key, NULL);
    rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);
    write_key(fx->rsa_key, rsa, NULL);
    rsa_leaf = make_cert("rsa-server", rsa, ca, ca_key);
    write_certs(fx->rsa_crt, rsa_leaf, ca);
    X509_free(rsa_leaf);
    EVP_PKEY_free(rsa);
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    unit_remove_tree(fx->dir);
    free(fx);
    /* Nothing a test did may leave errors behind for the next one. */
    assert_int_equal(ERR_peek_error(), 0);
    return 0;
}

/* A server configuration with the server certificate and no options. */
static struct tls_config server_config(struct fixture *fx, const char *min_version)
{
    struct tls_config config = {
        .cert_file = fx->server_crt,
        .key_file = fx->server_key,
        .min_version = (char *)min_version,
        .security_level = -1,
        .verify_peer = TLS_VERIFY_NONE,
    };

    return config;
}

static SSL_CTX *build(const struct tls_config *config, enum tls_role role)
{
    SSL_CTX *ctx = NULL;
    char err[1024] = "";

    if (tls_context_build(config, role, &ctx, err, sizeof(err)) != 0)
        fail_msg("tls_context_build: %s", err);
    assert_non_null(ctx);
    assert_string_equal(err, "");
    return ctx;
}

/* Builds a context that must fail; returns the message. */
static const char *build_fails(const struct tls_config *config, enum tls_role role)
{
    static char err[1024];
    SSL_CTX *ctx = NULL;

    err[0] = '\0';
    assert_int_equal(tls_context_build(config, role, &ctx, err, sizeof(err)), CV_EINVALID_TLS);
    assert_null(ctx);
    assert_int_equal(ERR_peek_error(), 0); /* the queue went into the message */
    return err;
}

/* A client context not built by the code under test: no certificate, no verification. */
static SSL_CTX *plain_client(int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    assert_non_null(ctx);
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    return ctx;
}

/* A client that speaks TLS 1.0 only, as an old client would. */
static SSL_CTX *tls10_client(void)
{
    SSL_CTX *ctx = plain_client(TLS1_VERSION);

    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    SSL_CTX_set_security_level(ctx, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
    return ctx;
}

struct conn {
    SSL *client;
    SSL *server;
    int fds[2];
    char why[1024]; /* which end failed the handshake and OpenSSL's reason */
};

static void conn_open(struct conn *c, SSL_CTX *server_ctx, SSL_CTX *client_ctx)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c->fds), 0);
    c->server = SSL_new(server_ctx);
    c->client = SSL_new(client_ctx);
    assert_non_null(c->server);
    assert_non_null(c->client);
    assert_int_equal(SSL_set_fd(c->server, c->fds[0]), 1);
    assert_int_equal(SSL_set_fd(c->client, c->fds[1]), 1);
    SSL_set_accept_state(c->server);
    SSL_set_connect_state(c->client);
}

static void conn_close(struct conn *c)
{
    SSL_free(c->client);
    SSL_free(c->server);
    close(c->fds[0]);
    close(c->fds[1]);
}

/* Steps one end; returns 1 when done, 0 to go on, -1 when it failed (c->why says why). */
static int step(struct conn *c, SSL *ssl, const char *end)
{
    int r = SSL_do_handshake(ssl);
    int e;
    size_t used;

    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    used = (size_t)snprintf(c->why, sizeof(c->why), "%s: error %d: ", end, e);
    tls_error_string(c->why + used, sizeof(c->why) - used);
    return -1;
}

/* Runs the handshake on both ends until both complete (0) or one fails (-1). */
static int handshake(struct conn *c)
{
    bool client_done = false, server_done = false;

    for (int i = 0; i < 100 && !(client_done && server_done); i++) {
        int r;

        if (!client_done) {
            r = step(c, c->client, "client");
            if (r < 0)
                return -1;
            client_done = r == 1;
        }
        if (!server_done) {
            r = step(c, c->server, "server");
            if (r < 0)
                return -1;
            server_done = r == 1;
        }
    }
    if (!(client_done && server_done)) {
        snprintf(c->why, sizeof(c->why), "no progress");
        return -1;
    }
    return 0;
}

static void assert_handshake_ok(struct conn *c)
{
    if (handshake(c) != 0)
        fail_msg("handshake failed: %s", c->why);
}

/* Asserts that the handshake fails at end ("client" or "server") with reason in the message. */
static void assert_handshake_fails(struct conn *c, const char *end, const char *reason)
{
    assert_int_equal(handshake(c), -1);
    if (strncmp(c->why, end, strlen(end)) != 0 || !strstr(c->why, reason))
        fail_msg("expected %s to fail with '%s', got: %s", end, reason, c->why);
}

/* Reads exactly len bytes from ssl (non-blocking; everything is already sent in-process). */
static void read_exactly(SSL *ssl, char *buf, int len)
{
    int got = 0;

    for (int i = 0; i < 10 && got < len; i++) {
        int n = SSL_read(ssl, buf + got, len - got);

        if (n > 0)
            got += n;
        else
            assert_int_equal(SSL_get_error(ssl, n), SSL_ERROR_WANT_READ);
    }
    assert_int_equal(got, len);
}

/* Sends a message each way over an established connection. */
static void assert_data_flows(struct conn *c)
{
    char buf[16];

    assert_int_equal(SSL_write(c->client, "ping", 4), 4);
    read_exactly(c->server, buf, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(SSL_write(c->server, "pong!", 5), 5);
    read_exactly(c->client, buf, 5);
    assert_memory_equal(buf, "pong!", 5);
}

static const char *common_name(X509 *cert, char *buf, int len)
{
    assert_non_null(cert);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, len) >
                0);
    return buf;
}

/* The CN of the certificate the client was shown. */
static const char *peer_name(struct conn *c)
{
    static char buf[64];

    return common_name(SSL_get0_peer_certificate(c->client), buf, sizeof(buf));
}

static void builds_server_and_client_contexts(void **state)
{
    struct fixture *fx = *state;
    struct tls_config server = server_config(fx, "1.2");
    struct tls_config client = server;
    SSL_CTX *server_ctx, *client_ctx;
    char buf[64];
    struct conn c;

    server_ctx = build(&server, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_min_proto_version(server_ctx), TLS1_2_VERSION);
    assert_true(SSL_CTX_get_options(server_ctx) & SSL_OP_NO_RENEGOTIATION);
    assert_string_equal(common_name(SSL_CTX_get0_certificate(server_ctx), buf, sizeof(buf)),
                        "server");
    assert_int_equal(SSL_CTX_get_verify_mode(server_ctx), SSL_VERIFY_NONE);

    /* A client built the same way, verifying the server against the CA. */
    client.cert_file = fx->client_crt;
    client.key_file = fx->client_key;
    client.ca_file = fx->ca;
    client.verify_peer = TLS_VERIFY_REQUIRE;
    client_ctx = build(&client, TLS_ROLE_CLIENT);
    assert_int_equal(SSL_CTX_get_verify_mode(client_ctx), SSL_VERIFY_PEER);
    assert_string_equal(common_name(SSL_CTX_get0_certificate(client_ctx), buf, sizeof(buf)),
                        "client");

    conn_open(&c, server_ctx, client_ctx);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_version(c.client), TLS1_3_VERSION);
    assert_int_equal(SSL_get_verify_result(c.client), X509_V_OK);
    assert_string_equal(peer_name(&c), "server");
    /* The server did not ask for the client's certificate. */
    assert_null(SSL_get0_peer_certificate(c.server));
    assert_data_flows(&c);
    conn_close(&c);
    SSL_CTX_free(client_ctx);

    /* A client that requires verification refuses a server its CA did not issue. */
    client.ca_file = fx->other_ca;
    client_ctx = build(&client, TLS_ROLE_CLIENT);
    conn_open(&c, server_ctx, client_ctx);
    assert_handshake_fails(&c, "client", "certificate verify failed");
    conn_close(&c);
    SSL_CTX_free(client_ctx);

    /* optional verifies too, but leaves the verdict to the caller. */
    client.verify_peer = TLS_VERIFY_OPTIONAL;
    client_ctx = build(&client, TLS_ROLE_CLIENT);
    assert_int_equal(SSL_CTX_get_verify_mode(client_ctx), SSL_VERIFY_NONE);
    conn_open(&c, server_ctx, client_ctx);
    assert_handshake_ok(&c);
    assert_int_not_equal(SSL_get_verify_result(c.client), X509_V_OK);
    conn_close(&c);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
}

static void mismatched_key_is_rejected(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    char expected[3 * PATH_MAX];
    const char *err;

    /* Another key of the same type (EC P-256). */
    config.key_file = fx->client_key;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(snprintf(expected, sizeof(expected), "key_file %s does not match cert_file %s: ",
                         fx->client_key, fx->server_crt) < (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);
    assert_non_null(strstr(err, "key values mismatch"));

    /* A key of another type (RSA for an EC certificate). */
    config.key_file = fx->rsa_key;
    err = build_fails(&config, TLS_ROLE_CLIENT);
    assert_true(snprintf(expected, sizeof(expected), "key_file %s does not match cert_file %s",
                         fx->rsa_key, fx->server_crt) < (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);
}

static void unreadable_files_are_named(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    char missing[PATH_MAX];
    char expected[2 * PATH_MAX];
    const char *err;

    path_in(fx, missing, "missing.pem");
    config.cert_file = missing;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(snprintf(expected, sizeof(expected), "cert_file %s: cannot load it: ", missing) <
                (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);
    assert_non_null(strstr(err, "No such file or directory"));

    /* A key file is not a certificate. */
    config.cert_file = fx->server_key;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_non_null(strstr(err, fx->server_key));

    config = server_config(fx, "1.2");
    config.key_file = missing;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(snprintf(expected, sizeof(expected), "key_file %s: cannot read it: ", missing) <
                (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);

    /* An encrypted key is refused without asking for a passphrase on a terminal. */
    config.key_file = fx->encrypted_key;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(snprintf(expected, sizeof(expected),
                         "key_file %s: no unencrypted PEM private key in it",
                         fx->encrypted_key) < (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);

    config = server_config(fx, "1.2");
    config.ca_file = missing;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(snprintf(expected, sizeof(expected), "ca_file %s: cannot load CA certificates",
                         missing) < (int)sizeof(expected));
    assert_true(strncmp(err, expected, strlen(expected)) == 0);
}

static void bad_settings_are_rejected(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    const char *err;

    config.ciphers = "NOT-A-CIPHER:ALSO-NOT";
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_true(strncmp(err, "ciphers 'NOT-A-CIPHER:ALSO-NOT': ", 33) == 0);
    assert_non_null(strstr(err, "no cipher match"));

    config = server_config(fx, "1.3");
    config.ciphersuites = "TLS_NOT_A_SUITE";
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_non_null(strstr(err, "'TLS_NOT_A_SUITE'"));

    config = server_config(fx, "1.4");
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_string_equal(err, "min_version '1.4' is not a TLS version (1, 1.1, 1.2 or 1.3)");

    config = server_config(fx, "1.2");
    config.security_level = 6;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_string_equal(err, "security_level 6 is not a number from 0 to 5");

    config = server_config(fx, "1.2");
    config.verify_peer = TLS_VERIFY_REQUIRE;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_string_equal(err, "verify_peer = require needs a ca_file");

    /* A level the certificate's key is too weak for (P-256 gives 128 bits; level 4 wants 192). */
    config = server_config(fx, "1.2");
    config.security_level = 4;
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_non_null(strstr(err, fx->server_crt));
    assert_non_null(strstr(err, "too small"));
}

static void cipher_list_must_be_usable_at_the_minimum_version(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.3");
    SSL_CTX *ctx, *client;
    const char *err;
    struct conn c;

    /* Only anonymous ciphers, which the security level disables: fine when TLS 1.3 is the floor. */
    config.ciphers = "aNULL";
    ctx = build(&config, TLS_ROLE_SERVER);
    client = plain_client(0);
    conn_open(&c, ctx, client);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_version(c.server), TLS1_3_VERSION);
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(ctx);

    /* With TLS 1.2 allowed, a TLS 1.2 client would find no cipher. */
    config.min_version = "1.2";
    assert_string_equal(build_fails(&config, TLS_ROLE_SERVER),
                        "no cipher in 'aNULL' is usable with TLS 1.2 and above");
    assert_string_equal(build_fails(&config, TLS_ROLE_CLIENT),
                        "no cipher in 'aNULL' is usable with TLS 1.2 and above");

    /* TLS 1.0-era ciphers are not usable at a minimum of 1.3, so only the suites count there. */
    config = server_config(fx, "1.3");
    config.ciphersuites = "";
    assert_string_equal(build_fails(&config, TLS_ROLE_SERVER),
                        "no cipher in '' is usable with TLS 1.3");

    /*
     * Ciphers for RSA keys only, with the ECDSA certificate: a TLS 1.2 client would find no
     * cipher the server can sign with. A client has no key to match, so it builds.
     */
    config = server_config(fx, "1.2");
    config.ciphers = "ECDHE-RSA-AES128-GCM-SHA256";
    err = build_fails(&config, TLS_ROLE_SERVER);
    assert_non_null(strstr(err, "can be used with the ECDSA key of"));
    assert_non_null(strstr(err, fx->server_crt));
    assert_non_null(strstr(err, "such as ECDHE-ECDSA-AES128-GCM-SHA256"));
    ctx = build(&config, TLS_ROLE_CLIENT);
    SSL_CTX_free(ctx);
    /* The same list with TLS 1.3 as the floor: the suites alone count. */
    config.min_version = "1.3";
    ctx = build(&config, TLS_ROLE_SERVER);
    SSL_CTX_free(ctx);

    /* A list that suits TLS 1.2 works, and the TLS 1.2 handshake uses it. */
    config = server_config(fx, "1.2");
    config.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    ctx = build(&config, TLS_ROLE_SERVER);
    client = plain_client(TLS1_2_VERSION);
    conn_open(&c, ctx, client);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_version(c.server), TLS1_2_VERSION);
    assert_string_equal(SSL_get_cipher_name(c.server), "ECDHE-ECDSA-AES128-GCM-SHA256");
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(ctx);
}

/* The Mozilla intermediate list, as the operators' guide gives it for cipher_suites. */
#define MOZILLA_INTERMEDIATE                                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/* A TLS 1.2 handshake with a client that offers only cipher; the server's choice must be it. */
static void assert_tls12_cipher_works(SSL_CTX *server, const char *cipher)
{
    SSL_CTX *client = plain_client(TLS1_2_VERSION);
    struct conn c;

    assert_int_equal(SSL_CTX_set_cipher_list(client, cipher), 1);
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_string_equal(SSL_get_cipher_name(c.server), cipher);
    conn_close(&c);
    SSL_CTX_free(client);
}

/*
 * A DHE suite the list names is offered, not dropped for want of DH parameters: with the Mozilla
 * list a DHE-only TLS 1.2 client connects, and a DHE-only list is not a lock-out.
 */
static void dhe_ciphers_of_the_list_are_offered(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    SSL_CTX *ctx;

    config.cert_file = fx->rsa_crt;
    config.key_file = fx->rsa_key;
    config.ciphers = MOZILLA_INTERMEDIATE;
    ctx = build(&config, TLS_ROLE_SERVER);
    assert_tls12_cipher_works(ctx, "DHE-RSA-AES128-GCM-SHA256");
    assert_tls12_cipher_works(ctx, "DHE-RSA-AES256-GCM-SHA384");
    assert_tls12_cipher_works(ctx, "ECDHE-RSA-AES128-GCM-SHA256");
    SSL_CTX_free(ctx);
    config.ciphers = "DHE-RSA-AES256-GCM-SHA384";
    ctx = build(&config, TLS_ROLE_SERVER);
    assert_tls12_cipher_works(ctx, "DHE-RSA-AES256-GCM-SHA384");
    SSL_CTX_free(ctx);
}

static void minimum_version_is_enforced(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.3");
    SSL_CTX *server, *client;
    struct conn c;

    /* A 1.3 server refuses a client capped at 1.2. */
    server = build(&config, TLS_ROLE_SERVER);
    client = plain_client(TLS1_2_VERSION);
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "unsupported protocol");
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(server);

    /* A 1.2 server and a default client agree on 1.3. */
    config.min_version = "1.2";
    server = build(&config, TLS_ROLE_SERVER);
    client = plain_client(0);
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_version(c.client), TLS1_3_VERSION);
    assert_int_equal(SSL_version(c.server), TLS1_3_VERSION);
    assert_data_flows(&c);
    conn_close(&c);
    SSL_CTX_free(client);

    /* ... and it refuses a TLS 1.0 client. */
    client = tls10_client();
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "unsupported protocol");
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(server);
}

static void tls10_minimum_lowers_the_security_level(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.0");
    SSL_CTX *server, *client;
    struct conn c;

    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_security_level(server), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(server), TLS1_VERSION);
    client = tls10_client();
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_version(c.server), TLS1_VERSION);
    assert_int_equal(SSL_version(c.client), TLS1_VERSION);
    assert_data_flows(&c);
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(server);

    /* "1" and "1.1" lower it too; a level given explicitly is kept. */
    config.min_version = "1.1";
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_security_level(server), 0);
    SSL_CTX_free(server);
    config.min_version = "1";
    config.security_level = 1;
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_security_level(server), 1);
    SSL_CTX_free(server);
    /* A cipher string's @SECLEVEL does not undo the lowering. */
    config.security_level = -1;
    config.ciphers = "DEFAULT:@SECLEVEL=2";
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_security_level(server), 0);
    SSL_CTX_free(server);
    /* At 1.2 and above OpenSSL's default stays, and an explicit level is applied. */
    config = server_config(fx, "1.2");
    server = build(&config, TLS_ROLE_SERVER);
    assert_true(SSL_CTX_get_security_level(server) >= 1);
    SSL_CTX_free(server);
    config.security_level = 3;
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_security_level(server), 3);
    SSL_CTX_free(server);
}

/* A client context with a certificate, built by the code under test. */
static SSL_CTX *client_with_cert(const char *crt, const char *key)
{
    struct tls_config config = {
        .cert_file = (char *)crt,
        .key_file = (char *)key,
        .min_version = "1.2",
        .security_level = -1,
        .verify_peer = TLS_VERIFY_NONE,
    };

    return build(&config, TLS_ROLE_CLIENT);
}

static void verify_peer_require_needs_a_client_certificate(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    SSL_CTX *server, *client;
    STACK_OF(X509_NAME) * names;
    char buf[64];
    struct conn c;

    config.ca_file = fx->ca;
    config.verify_peer = TLS_VERIFY_REQUIRE;
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_verify_mode(server),
                     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    /* The server names the CA it accepts to clients. */
    names = SSL_CTX_get_client_CA_list(server);
    assert_int_equal(sk_X509_NAME_num(names), 1);
    assert_true(X509_NAME_get_text_by_NID(sk_X509_NAME_value(names, 0), NID_commonName, buf,
                                          sizeof(buf)) > 0);
    assert_string_equal(buf, "certvisor test CA");

    /* No certificate: refused. */
    client = plain_client(0);
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "peer did not return a certificate");
    conn_close(&c);
    SSL_CTX_free(client);

    /* A certificate from ca_file: accepted, and the server sees who it is. */
    client = client_with_cert(fx->client_crt, fx->client_key);
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_int_equal(SSL_get_verify_result(c.server), X509_V_OK);
    assert_string_equal(common_name(SSL_get0_peer_certificate(c.server), buf, sizeof(buf)),
                        "client");
    assert_data_flows(&c);
    conn_close(&c);
    SSL_CTX_free(client);

    /* A certificate from another CA: refused. */
    client = client_with_cert(fx->stranger_crt, fx->stranger_key);
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "certificate verify failed");
    conn_close(&c);
    SSL_CTX_free(client);

    /* The same over TLS 1.2, where the client learns of it during the handshake. */
    client = client_with_cert(fx->stranger_crt, fx->stranger_key);
    assert_int_equal(SSL_CTX_set_max_proto_version(client, TLS1_2_VERSION), 1);
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "certificate verify failed");
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(server);
}

static void verify_peer_optional_accepts_no_certificate(void **state)
{
    struct fixture *fx = *state;
    struct tls_config config = server_config(fx, "1.2");
    SSL_CTX *server, *client;
    char buf[64];
    struct conn c;

    config.ca_file = fx->ca;
    config.verify_peer = TLS_VERIFY_OPTIONAL;
    server = build(&config, TLS_ROLE_SERVER);
    assert_int_equal(SSL_CTX_get_verify_mode(server), SSL_VERIFY_PEER);

    client = plain_client(0);
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_null(SSL_get0_peer_certificate(c.server));
    conn_close(&c);
    SSL_CTX_free(client);

    client = client_with_cert(fx->client_crt, fx->client_key);
    conn_open(&c, server, client);
    assert_handshake_ok(&c);
    assert_string_equal(common_name(SSL_get0_peer_certificate(c.server), buf, sizeof(buf)),
                        "client");
    conn_close(&c);
    SSL_CTX_free(client);

    /* A certificate that is sent is verified. */
    client = client_with_cert(fx->stranger_crt, fx->stranger_key);
    conn_open(&c, server, client);
    assert_handshake_fails(&c, "server", "certificate verify failed");
    conn_close(&c);
    SSL_CTX_free(client);
    SSL_CTX_free(server);

    /* Without a ca_file there is nothing to verify against. */
    config.ca_file = NULL;
    assert_string_equal(build_fails(&config, TLS_ROLE_SERVER),
                        "verify_peer = optional needs a ca_file");
}

static void error_string_drains_the_queue(void **state)
{
    char small[24];
    char buf[1024];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    (void)state;
    assert_non_null(ctx);
    ERR_clear_error();
    tls_error_string(buf, sizeof(buf));
    assert_string_equal(buf, "");

    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/cert.pem"), 0);
    assert_int_not_equal(ERR_peek_error(), 0);
    tls_error_string(buf, sizeof(buf));
    assert_int_equal(ERR_peek_error(), 0);
    assert_non_null(strstr(buf, "No such file or directory"));
    assert_non_null(strstr(buf, "; ")); /* several entries, one line */
    assert_null(strchr(buf, '\n'));

    /* A short buffer is cut, and the queue is still emptied. */
    assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/cert.pem"), 0);
    tls_error_string(small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, buf, sizeof(small) - 1);
    assert_int_equal(ERR_peek_error(), 0);
    SSL_CTX_free(ctx);
}

/* Writes the holder's configuration file: the given certificate and key, TLS 1.2 and up. */
static void write_holder_config(const struct fixture *fx, const char *crt, const char *key)
{
    struct tls_config config = {
        .cert_file = (char *)crt,
        .key_file = (char *)key,
        .min_version = "1.2",
        .security_level = -1,
        .verify_peer = TLS_VERIFY_NONE,
    };
    char err[512];

    if (tls_config_write(fx->conf, &config, err, sizeof(err)) != 0)
        fail_msg("tls_config_write: %s", err);
}

/* A new connection from the holder's current context; returns the CN the client saw. */
static const char *serve_once(struct tls_context_holder *holder, SSL_CTX *client)
{
    SSL_CTX *ctx = tls_holder_get(holder);
    static char name[64];
    struct conn c;

    conn_open(&c, ctx, client);
    SSL_CTX_free(ctx); /* the connection holds its own reference */
    assert_handshake_ok(&c);
    assert_data_flows(&c);
    snprintf(name, sizeof(name), "%s", peer_name(&c));
    conn_close(&c);
    return name;
}

static void holder_reload_swaps_the_certificate(void **state)
{
    struct fixture *fx = *state;
    struct tls_context_holder *holder = NULL;
    SSL_CTX *client = plain_client(0);
    SSL_CTX *before, *after;
    char err[1024] = "";
    char buf[64];
    struct conn old;

    write_holder_config(fx, fx->server_crt, fx->server_key);
    assert_int_equal(tls_holder_new(fx->conf, TLS_ROLE_SERVER, &holder, err, sizeof(err)), 0);
    assert_non_null(holder);
    assert_string_equal(serve_once(holder, client), "server");

    /* A connection made before the reload. */
    before = tls_holder_get(holder);
    conn_open(&old, before, client);
    assert_handshake_ok(&old);
    assert_string_equal(peer_name(&old), "server");

    write_holder_config(fx, fx->server2_crt, fx->server2_key);
    assert_int_equal(tls_holder_reload(holder, err, sizeof(err)), 0);
    after = tls_holder_get(holder);
    assert_ptr_not_equal(after, before);
    assert_string_equal(common_name(SSL_CTX_get0_certificate(after), buf, sizeof(buf)), "server2");
    assert_string_equal(serve_once(holder, client), "server2");

    /* The old connection keeps its context and keeps working. */
    assert_ptr_equal(SSL_get_SSL_CTX(old.server), before);
    assert_string_equal(common_name(SSL_get_certificate(old.server), buf, sizeof(buf)), "server");
    assert_data_flows(&old);
    SSL_CTX_free(before);
    SSL_CTX_free(after);
    /* Even with the holder gone, the connection's references keep its context alive. */
    tls_holder_free(holder);
    assert_data_flows(&old);
    conn_close(&old);
    SSL_CTX_free(client);
}

static void failed_reload_keeps_the_old_context(void **state)
{
    struct fixture *fx = *state;
    struct tls_context_holder *holder = NULL;
    SSL_CTX *client = plain_client(0);
    SSL_CTX *current, *now;
    char err[1024] = "";
    char prefix[PATH_MAX + 8];

    write_holder_config(fx, fx->server_crt, fx->server_key);
    assert_int_equal(tls_holder_new(fx->conf, TLS_ROLE_SERVER, &holder, err, sizeof(err)), 0);
    current = tls_holder_get(holder);
    assert_true(snprintf(prefix, sizeof(prefix), "%s: ", fx->conf) < (int)sizeof(prefix));

    /* A key that does not match: the message names the configuration file and the files. */
    write_holder_config(fx, fx->server2_crt, fx->server_key);
    assert_int_equal(tls_holder_reload(holder, err, sizeof(err)), CV_EINVALID_TLS);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(err, "does not match cert_file"));
    assert_non_null(strstr(err, fx->server2_crt));
    now = tls_holder_get(holder);
    assert_ptr_equal(now, current);
    SSL_CTX_free(now);
    assert_string_equal(serve_once(holder, client), "server");

    /* A file that does not parse. */
    unit_write_file(fx->dir, "tls.conf",
                    "cert_file = x\nkey_file = y\nmin_version = 1.2\nbogus = 1\n");
    assert_int_equal(tls_holder_reload(holder, err, sizeof(err)), CV_EINVALID_TLS);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(err, "line 4: unknown setting 'bogus'"));
    assert_string_equal(serve_once(holder, client), "server");

    /* A file that is gone. */
    assert_int_equal(unlink(fx->conf), 0);
    assert_int_equal(tls_holder_reload(holder, err, sizeof(err)), -ENOENT);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    now = tls_holder_get(holder);
    assert_ptr_equal(now, current);
    SSL_CTX_free(now);
    assert_string_equal(serve_once(holder, client), "server");

    /* Fixed: the next reload takes. */
    write_holder_config(fx, fx->server2_crt, fx->server2_key);
    assert_int_equal(tls_holder_reload(holder, err, sizeof(err)), 0);
    assert_string_equal(serve_once(holder, client), "server2");

    SSL_CTX_free(current);
    tls_holder_free(holder);
    SSL_CTX_free(client);
}

static void holder_new_fails_cleanly(void **state)
{
    struct fixture *fx = *state;
    struct tls_context_holder *holder = NULL;
    char err[1024] = "";

    assert_int_equal(tls_holder_new(fx->conf, TLS_ROLE_SERVER, &holder, err, sizeof(err)), -ENOENT);
    assert_null(holder);
    assert_non_null(strstr(err, fx->conf));

    write_holder_config(fx, fx->server_crt, fx->client_key);
    assert_int_equal(tls_holder_new(fx->conf, TLS_ROLE_SERVER, &holder, err, sizeof(err)),
                     CV_EINVALID_TLS);
    assert_null(holder);
    assert_non_null(strstr(err, "does not match"));
    tls_holder_free(NULL);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(builds_server_and_client_contexts),
        TEST(mismatched_key_is_rejected),
        TEST(unreadable_files_are_named),
        TEST(bad_settings_are_rejected),
        TEST(cipher_list_must_be_usable_at_the_minimum_version),
        TEST(dhe_ciphers_of_the_list_are_offered),
        TEST(minimum_version_is_enforced),
        TEST(tls10_minimum_lowers_the_security_level),
        TEST(verify_peer_require_needs_a_client_certificate),
        TEST(verify_peer_optional_accepts_no_certificate),
        cmocka_unit_test(error_string_drains_the_queue),
        TEST(holder_reload_swaps_the_certificate),
        TEST(failed_reload_keeps_the_old_context),
        TEST(holder_new_fails_cleanly),
    };
#undef TEST
    return cmocka_run_group_tests_name("tls_context", tests, NULL, NULL);
}
