/* Building an SSL_CTX from a rendered TLS configuration, and swapping it on reload. */
#include "tls_context.h"

#include "cv_error.h"
#include "tls_stapling.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Servers resume only sessions that this context made. */
#define TLS_SESSION_ID_CONTEXT "certvisor"

struct tls_context_holder {
    char *path;
    enum tls_role role;
    SSL_CTX *ctx; /* the holder's own reference */
};

void tls_error_string(char *buf, size_t len)
{
    size_t used = 0;
    unsigned long code;

    if (len)
        buf[0] = '\0';
    /* Keeps draining when buf is full: the queue is emptied either way. */
    while ((code = ERR_get_error()) != 0) {
        char one[256];
        int n;

        if (used + 1 >= len)
            continue;
        ERR_error_string_n(code, one, sizeof(one));
        n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", one);
        if (n < 0 || (size_t)n >= len - used)
            used = len - 1;
        else
            used += (size_t)n;
    }
}

/*
 * Writes the message, then ": " and OpenSSL's reasons when its queue holds any
 * (the queue is emptied). Returns CV_EINVALID_TLS.
 */
static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    size_t used;

    if (err_len == 0) {
        ERR_clear_error();
        return CV_EINVALID_TLS;
    }
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    used = strlen(err);
    if (ERR_peek_error() != 0 && used + 3 < err_len) {
        memcpy(err + used, ": ", 3);
        tls_error_string(err + used + 2, err_len - used - 2);
    }
    ERR_clear_error();
    return CV_EINVALID_TLS;
}

static const char *version_name(int version)
{
    switch (version) {
    case TLS1_VERSION:
        return "1.0";
    case TLS1_1_VERSION:
        return "1.1";
    case TLS1_2_VERSION:
        return "1.2";
    case TLS1_3_VERSION:
        return "1.3";
    default:
        return "?";
    }
}

/* Keys must not be encrypted: never prompt on a terminal for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

static int use_cert_and_key(SSL_CTX *ctx, const struct tls_config *config, char *err,
                            size_t err_len)
{
    EVP_PKEY *key;
    BIO *bio;

    if (SSL_CTX_use_certificate_chain_file(ctx, config->cert_file) != 1)
        return fail(err, err_len, "cert_file %s: cannot load it", config->cert_file);
    bio = BIO_new_file(config->key_file, "r");
    if (!bio)
        return fail(err, err_len, "key_file %s: cannot read it", config->key_file);
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!key)
        return fail(err, err_len, "key_file %s: no unencrypted PEM private key in it",
                    config->key_file);
    /* A key of the certificate's type is checked against it here, another type below. */
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        EVP_PKEY_free(key);
        return fail(err, err_len, "key_file %s does not match cert_file %s", config->key_file,
                    config->cert_file);
    }
    EVP_PKEY_free(key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(err, err_len, "key_file %s does not match cert_file %s", config->key_file,
                    config->cert_file);
    return 0;
}

/*
 * Up to TLS 1.2 a cipher names the kind of key the server signs with (aRSA,
 * aECDSA): the kind of this context's key, or NID_undef when that does not
 * narrow the ciphers (a client, or a key of a kind not listed here).
 */
static int key_auth_nid(SSL_CTX *ctx, enum tls_role role, const char **ret_kind,
                        const char **ret_example)
{
    EVP_PKEY *key = SSL_CTX_get0_privatekey(ctx);

    if (role != TLS_ROLE_SERVER || !key)
        return NID_undef;
    if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        *ret_kind = "RSA";
        *ret_example = "ECDHE-RSA-AES128-GCM-SHA256";
        return NID_auth_rsa;
    }
    if (EVP_PKEY_is_a(key, "EC") || EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
        *ret_kind = "ECDSA";
        *ret_example = "ECDHE-ECDSA-AES128-GCM-SHA256";
        return NID_auth_ecdsa;
    }
    return NID_undef;
}

/*
 * Checks that connections at the minimum version have a cipher: one of the
 * TLS 1.2-and-below list when the minimum is below 1.3, a TLS 1.3 suite
 * otherwise, after the version range and the security level have had their say.
 * Below 1.3, a server's list must also hold a cipher for its certificate's
 * kind of key: an ECDSA certificate with only ECDHE-RSA ciphers would leave
 * every TLS 1.2 client without a handshake.
 */
static int check_usable_ciphers(SSL_CTX *ctx, const struct tls_config *config, enum tls_role role,
                                int min_version, char *err, size_t err_len)
{
    bool want_tls13 = min_version >= TLS1_3_VERSION;
    const char *key_kind = NULL, *example = NULL;
    int auth = want_tls13 ? NID_undef : key_auth_nid(ctx, role, &key_kind, &example);
    STACK_OF(SSL_CIPHER) * supported;
    int usable = 0, for_version = 0;
    SSL *ssl = SSL_new(ctx);

    if (!ssl) {
        fail(err, err_len, "cannot create a TLS connection");
        return -ENOMEM;
    }
    supported = SSL_get1_supported_ciphers(ssl);
    for (int i = 0; supported && i < sk_SSL_CIPHER_num(supported); i++) {
        /* TLS 1.3 suites leave the key exchange to the protocol: "any". */
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(supported, i);
        bool tls13 = SSL_CIPHER_get_kx_nid(cipher) == NID_kx_any;

        if (tls13 != want_tls13)
            continue;
        for_version++;
        if (auth == NID_undef || SSL_CIPHER_get_auth_nid(cipher) == auth)
            usable++;
    }
    sk_SSL_CIPHER_free(supported);
    SSL_free(ssl);
    ERR_clear_error();
    if (usable)
        return 0;
    if (want_tls13)
        return fail(err, err_len, "no cipher in '%s' is usable with TLS 1.3",
                    config->ciphersuites ? config->ciphersuites : OSSL_default_ciphersuites());
    if (for_version)
        return fail(err, err_len,
                    "no cipher in '%s' can be used with the %s key of %s: clients without TLS 1.3 "
                    "could not connect; add ciphers for %s keys (such as %s), or make the minimum "
                    "TLS 1.3",
                    config->ciphers ? config->ciphers : OSSL_default_cipher_list(), key_kind,
                    config->cert_file, key_kind, example);
    return fail(err, err_len, "no cipher in '%s' is usable with TLS %s and above",
                config->ciphers ? config->ciphers : OSSL_default_cipher_list(),
                version_name(min_version));
}

bool tls_ca_file_empty(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

static int set_verification(SSL_CTX *ctx, const struct tls_config *config, enum tls_role role,
                            char *err, size_t err_len)
{
    bool nobody = config->ca_file && tls_ca_file_empty(config->ca_file);
    STACK_OF(X509_NAME) * names;

    if (config->ca_file && !nobody &&
        SSL_CTX_load_verify_locations(ctx, config->ca_file, NULL) != 1)
        return fail(err, err_len, "ca_file %s: cannot load CA certificates from it",
                    config->ca_file);
    /*
     * Every certificate of ca_file is a trust anchor, a CA's or not: an operator
     * who trusts one peer's own certificate (a replication peer's syncer or proxy
     * certificate, pinned in a trust list) means that certificate, not its issuer.
     */
    if (config->ca_file)
        X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    if (config->verify_peer == TLS_VERIFY_NONE)
        return 0;
    if (!config->ca_file)
        return fail(err, err_len, "verify_peer = %s needs a ca_file",
                    config->verify_peer == TLS_VERIFY_REQUIRE ? "require" : "optional");
    if (role == TLS_ROLE_CLIENT) {
        /*
         * A server always sends a certificate. optional still verifies it (see
         * SSL_get_verify_result) but does not fail the handshake.
         */
        if (config->verify_peer == TLS_VERIFY_REQUIRE)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        return 0;
    }
    SSL_CTX_set_verify(
        ctx,
        SSL_VERIFY_PEER |
            (config->verify_peer == TLS_VERIFY_REQUIRE ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    if (nobody)
        return 0; /* every client certificate is refused: there is nothing to chain to */
    names = SSL_load_client_CA_file(config->ca_file);
    if (!names)
        return fail(err, err_len, "ca_file %s: no CA certificate to name to clients",
                    config->ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);
    return 0;
}

static int configure(SSL_CTX *ctx, const struct tls_config *config, enum tls_role role,
                     int min_version, char *err, size_t err_len)
{
    int r;

    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1)
        return fail(err, err_len, "min_version %s: cannot be set", config->min_version);
    if (config->ciphers && SSL_CTX_set_cipher_list(ctx, config->ciphers) != 1)
        return fail(err, err_len, "ciphers '%s': not a usable cipher list", config->ciphers);
    if (config->ciphersuites && SSL_CTX_set_ciphersuites(ctx, config->ciphersuites) != 1)
        return fail(err, err_len, "ciphersuites '%s': not a usable list of TLS 1.3 suites",
                    config->ciphersuites);
    /*
     * After the cipher list (whose @SECLEVEL would change it) and before the
     * certificate (which is checked against it).
     */
    if (config->security_level >= 0)
        SSL_CTX_set_security_level(ctx, config->security_level);
    else if (min_version < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, 0);
    /*
     * DHE suites (the Mozilla intermediate list has two) are offered only with DH parameters:
     * without them OpenSSL drops them silently, and a DHE-only list locks TLS 1.2 clients out.
     * auto picks the RFC 7919 group that matches the certificate key's strength (ffdhe2048 for
     * RSA-2048), so the usable-cipher check below counts only what is really offered.
     */
    if (role == TLS_ROLE_SERVER && SSL_CTX_set_dh_auto(ctx, 1) != 1)
        return fail(err, err_len, "cannot enable DH parameters for DHE ciphers");
    r = use_cert_and_key(ctx, config, err, err_len);
    if (r < 0)
        return r;
    r = check_usable_ciphers(ctx, config, role, min_version, err, err_len);
    if (r < 0)
        return r;
    r = set_verification(ctx, config, role, err, err_len);
    if (r < 0)
        return r;
    if (role == TLS_ROLE_SERVER && config->ocsp_response) {
        r = tls_stapling_attach(ctx, config->ocsp_response, err, err_len);
        if (r < 0)
            return r;
    }
    if (role == TLS_ROLE_SERVER &&
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SESSION_ID_CONTEXT,
                                       sizeof(TLS_SESSION_ID_CONTEXT) - 1) != 1)
        return fail(err, err_len, "cannot set the session id context");
    return 0;
}

int tls_context_build(const struct tls_config *config, enum tls_role role, SSL_CTX **ret_ctx,
                      char *err, size_t err_len)
{
    SSL_CTX *ctx;
    int min_version, r;

    ERR_clear_error();
    if (!config->cert_file)
        return fail(err, err_len, "cert_file is not set");
    if (!config->key_file)
        return fail(err, err_len, "key_file is not set");
    if (!config->min_version)
        return fail(err, err_len, "min_version is not set");
    if (tls_version_parse(config->min_version, &min_version) < 0)
        return fail(err, err_len, "min_version '%s' is not a TLS version (1, 1.1, 1.2 or 1.3)",
                    config->min_version);
    if (config->security_level < -1 || config->security_level > 5)
        return fail(err, err_len, "security_level %d is not a number from 0 to 5",
                    config->security_level);
    ctx = SSL_CTX_new(role == TLS_ROLE_SERVER ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        fail(err, err_len, "cannot create a TLS context");
        return -ENOMEM;
    }
    r = configure(ctx, config, role, min_version, err, err_len);
    if (r < 0) {
        SSL_CTX_free(ctx);
        return r;
    }
    *ret_ctx = ctx;
    return 0;
}

/* Reads the file at path and builds a context from it; errors name path. */
static int build_from_file(const char *path, enum tls_role role, SSL_CTX **ret_ctx, char *err,
                           size_t err_len)
{
    struct tls_config *config;
    char message[1024];
    int r = tls_config_read(path, &config, err, err_len);

    if (r < 0)
        return r;
    r = tls_context_build(config, role, ret_ctx, message, sizeof(message));
    tls_config_free(config);
    if (r < 0)
        snprintf(err, err_len, "%s: %s", path, message);
    return r;
}

int tls_holder_new(const char *path, enum tls_role role, struct tls_context_holder **ret_holder,
                   char *err, size_t err_len)
{
    struct tls_context_holder *holder = calloc(1, sizeof(*holder));
    int r;

    if (!holder || !(holder->path = strdup(path))) {
        free(holder);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
    }
    holder->role = role;
    r = build_from_file(path, role, &holder->ctx, err, err_len);
    if (r < 0) {
        free(holder->path);
        free(holder);
        return r;
    }
    *ret_holder = holder;
    return 0;
}

int tls_holder_reload(struct tls_context_holder *holder, char *err, size_t err_len)
{
    SSL_CTX *ctx;
    int r = build_from_file(holder->path, holder->role, &ctx, err, err_len);

    if (r < 0)
        return r;
    /* Connections made with the old context hold references of their own. */
    SSL_CTX_free(holder->ctx);
    holder->ctx = ctx;
    return 0;
}

SSL_CTX *tls_holder_get(struct tls_context_holder *holder)
{
    SSL_CTX_up_ref(holder->ctx);
    return holder->ctx;
}

void tls_holder_free(struct tls_context_holder *holder)
{
    if (!holder)
        return;
    SSL_CTX_free(holder->ctx);
    free(holder->path);
    free(holder);
}

void tls_cert_fingerprint(X509 *cert, char *buf, size_t len)
{
    static const char digits[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t at = 0;

    if (len == 0)
        return;
    if (!cert || !X509_digest(cert, EVP_sha256(), md, &n)) {
        ERR_clear_error();
        n = 0;
    }
    /* Only whole "AB" pairs, so a short buffer holds a prefix rather than half a byte. */
    for (unsigned int i = 0; i < n && at + (i ? 3 : 2) < len; i++) {
        if (i)
            buf[at++] = ':';
        buf[at++] = digits[md[i] >> 4];
        buf[at++] = digits[md[i] & 0xf];
    }
    buf[at] = '\0';
}
