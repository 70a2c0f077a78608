/* Making keys, the internal cluster CA, the certificates it issues, and CSRs (OpenSSL 3). */
#include "x509_make.h"

#include "cv_error.h"
#include "tls_context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define MAX_DAYS 36500        /* a century; beyond that a typo is likelier than intent */
#define MAX_CN_CHARS 64       /* ub-common-name in RFC 5280 */
#define MAX_DNS_NAME 253      /* RFC 1035, without the trailing dot */
#define SERIAL_BYTES 16       /* 128 bits, as the CA/Browser Forum asks for (at least 64) */
#define BACKDATE_SECONDS 3600 /* tolerates clocks a little behind ours */

static const struct {
    enum key_type type;
    const char *word;
    int rsa_bits; /* 0 for EC */
} key_types[] = {
    {KEY_EC_P256, "ecdsa-p256", 0},
    {KEY_RSA_2048, "rsa-2048", 2048},
    {KEY_RSA_3072, "rsa-3072", 3072},
    {KEY_RSA_4096, "rsa-4096", 4096},
};

#define N_KEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

/* Moves OpenSSL's error queue onto the end of err, so the message says what OpenSSL saw. */
static void append_openssl_errors(char *err, size_t err_len)
{
    size_t used = err && err_len ? strnlen(err, err_len) : 0;
    char reasons[1024];

    /* Drains the queue even when err is full: stale errors would blame the next caller. */
    tls_error_string(reasons, sizeof(reasons));
    if (err && *reasons && used + 1 < err_len)
        snprintf(err + used, err_len - used, ": %s", reasons);
}

/* Formats the message, appends OpenSSL's reasons, and returns code for the caller to pass on. */
__attribute__((format(printf, 4, 5))) static int fail(int code, char *err, size_t err_len,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (err && err_len) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    append_openssl_errors(err, err_len);
    return code;
}

int key_type_parse(const char *word, enum key_type *ret_type)
{
    if (!word)
        return -EINVAL;
    for (size_t i = 0; i < N_KEY_TYPES; i++) {
        if (strcmp(word, key_types[i].word) == 0) {
            *ret_type = key_types[i].type;
            return 0;
        }
    }
    return -EINVAL;
}

const char *key_type_word(enum key_type type)
{
    for (size_t i = 0; i < N_KEY_TYPES; i++)
        if (key_types[i].type == type)
            return key_types[i].word;
    return "unknown";
}

int x509_make_key(enum key_type type, EVP_PKEY **ret_key, char *err, size_t err_len)
{
    EVP_PKEY *key = NULL;
    size_t i;

    ERR_clear_error();
    for (i = 0; i < N_KEY_TYPES && key_types[i].type != type; i++)
        ;
    if (i == N_KEY_TYPES)
        return fail(CV_EINVALID_CERT, err, err_len, "unknown key type %d", (int)type);
    if (key_types[i].rsa_bits)
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)key_types[i].rsa_bits);
    else
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!key)
        return fail(CV_EINVALID_CERT, err, err_len, "cannot generate a %s key", key_types[i].word);
    *ret_key = key;
    return 0;
}

static int check_days(int days, char *err, size_t err_len)
{
    if (days < 1 || days > MAX_DAYS)
        return fail(-EINVAL, err, err_len, "validity of %d days is out of range (1 to %d)", days,
                    MAX_DAYS);
    return 0;
}

/* Counts UTF-8 characters, since the 64 of ub-common-name are characters, not bytes. */
static size_t utf8_chars(const char *text)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

static int add_common_name(X509_NAME *name, const char *common_name, char *err, size_t err_len)
{
    size_t chars;

    if (!common_name || !*common_name)
        return fail(-EINVAL, err, err_len, "a common name is needed");
    chars = utf8_chars(common_name);
    if (chars > MAX_CN_CHARS)
        return fail(-EINVAL, err, err_len,
                    "common name \"%s\" is %zu characters long; at most %d are allowed (the "
                    "subjectAltNames can be longer)",
                    common_name, chars, MAX_CN_CHARS);
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)common_name, -1, -1, 0))
        return fail(-EINVAL, err, err_len, "invalid common name \"%s\"", common_name);
    return 0;
}

/* Adds one "key=value" piece (unescaped, modified in place) of the one-line DN dn. */
static int add_dn_component(X509_NAME *name, const char *dn, char *component, int index, char *err,
                            size_t err_len)
{
    char *eq = strchr(component, '=');
    ASN1_OBJECT *obj;
    int ok;

    if (!*component)
        return fail(-EINVAL, err, err_len, "invalid subject \"%s\": component %d is empty", dn,
                    index);
    if (!eq || eq == component)
        return fail(-EINVAL, err, err_len,
                    "invalid subject \"%s\": component %d (\"%s\") is not key=value", dn, index,
                    component);
    *eq = '\0';
    if (!eq[1])
        return fail(-EINVAL, err, err_len, "invalid subject \"%s\": %s has an empty value", dn,
                    component);
    obj = OBJ_txt2obj(component, 0);
    if (!obj) {
        ERR_clear_error(); /* "unknown object name" says less than we do */
        return fail(-EINVAL, err, err_len,
                    "invalid subject \"%s\": unknown attribute \"%s\" (use names such as C, ST, "
                    "L, O, OU, CN)",
                    dn, component);
    }
    ok = X509_NAME_add_entry_by_OBJ(name, obj, MBSTRING_UTF8, (const unsigned char *)(eq + 1), -1,
                                    -1, 0);
    ASN1_OBJECT_free(obj);
    if (!ok)
        return fail(-EINVAL, err, err_len, "invalid subject \"%s\": cannot set %s=\"%s\"", dn,
                    component, eq + 1);
    return 0;
}

/*
 * Parses "/O=Example/CN=host" into name, in order; a backslash makes the next
 * character literal, so "\/" puts a slash in a value.
 */
static int parse_subject_dn(const char *dn, X509_NAME *name, char *err, size_t err_len)
{
    char *component;
    const char *p;
    int index = 0, r = 0;

    if (dn[0] != '/')
        return fail(-EINVAL, err, err_len,
                    "invalid subject \"%s\": it must start with '/', as in "
                    "\"/O=Example/CN=host.example.com\"",
                    dn);
    component = malloc(strlen(dn) + 1);
    if (!component)
        return fail(-ENOMEM, err, err_len, "out of memory");
    for (p = dn + 1; r == 0; p++) {
        char *w = component;

        for (; *p && *p != '/'; p++) {
            if (*p == '\\' && !*++p) {
                r = fail(-EINVAL, err, err_len, "invalid subject \"%s\": it ends with '\\'", dn);
                break;
            }
            *w++ = *p;
        }
        if (r < 0)
            break;
        *w = '\0';
        r = add_dn_component(name, dn, component, ++index, err, err_len);
        if (!*p)
            break;
    }
    free(component);
    return r;
}

/* Letters, digits, '-', '.', '_', and "*." only as the first label: A-labels, never raw UTF-8. */
static bool dns_name_ok(const char *dns)
{
    size_t len = strlen(dns);

    if (len == 0 || len > MAX_DNS_NAME || dns[0] == '.' || dns[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = dns[i];

        if (c == '*' && i == 0 && dns[1] == '.')
            continue;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

/* Appends gen to gens unless an equal name is already there; takes gen either way. */
static int push_unique(GENERAL_NAMES *gens, GENERAL_NAME *gen)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i), gen) == 0) {
            GENERAL_NAME_free(gen);
            return 0;
        }
    }
    if (!sk_GENERAL_NAME_push(gens, gen)) {
        GENERAL_NAME_free(gen);
        return -ENOMEM;
    }
    return 0;
}

static int push_dns(GENERAL_NAMES *gens, const char *dns, char *err, size_t err_len)
{
    GENERAL_NAME *gen;
    ASN1_IA5STRING *ia5;

    if (!dns || !dns_name_ok(dns))
        return fail(-EINVAL, err, err_len,
                    "invalid DNS name \"%s\" for subjectAltName (letters, digits, '-', '.', '_' "
                    "and a leading \"*.\" only)",
                    dns ? dns : "(null)");
    gen = GENERAL_NAME_new();
    ia5 = ASN1_IA5STRING_new();
    if (!gen || !ia5 || !ASN1_STRING_set(ia5, dns, -1)) {
        GENERAL_NAME_free(gen);
        ASN1_IA5STRING_free(ia5);
        return fail(-ENOMEM, err, err_len, "out of memory");
    }
    GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
    if (push_unique(gens, gen) < 0)
        return fail(-ENOMEM, err, err_len, "out of memory");
    return 0;
}

static int push_ip(GENERAL_NAMES *gens, const char *ip, char *err, size_t err_len)
{
    ASN1_OCTET_STRING *bytes = ip ? a2i_IPADDRESS(ip) : NULL;
    GENERAL_NAME *gen;

    if (!bytes) {
        ERR_clear_error(); /* a2i_IPADDRESS queues nothing useful */
        return fail(-EINVAL, err, err_len, "invalid IP address \"%s\" for subjectAltName",
                    ip ? ip : "(null)");
    }
    gen = GENERAL_NAME_new();
    if (!gen) {
        ASN1_OCTET_STRING_free(bytes);
        return fail(-ENOMEM, err, err_len, "out of memory");
    }
    GENERAL_NAME_set0_value(gen, GEN_IPADD, bytes);
    if (push_unique(gens, gen) < 0)
        return fail(-ENOMEM, err, err_len, "out of memory");
    return 0;
}

/*
 * The spec's names as GENERAL_NAMES, or NULL in *ret_gens when there are none.
 * Built directly rather than through a "DNS:a,IP:b" string, so that a name
 * holding a comma cannot smuggle in another entry.
 */
static int make_san(const struct x509_subject_spec *spec, GENERAL_NAMES **ret_gens, char *err,
                    size_t err_len)
{
    GENERAL_NAMES *gens;
    int r = 0;

    *ret_gens = NULL;
    if (spec->n_dns_names == 0 && spec->n_ip_addresses == 0)
        return 0;
    gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return fail(-ENOMEM, err, err_len, "out of memory");
    for (size_t i = 0; r == 0 && i < spec->n_dns_names; i++)
        r = push_dns(gens, spec->dns_names[i], err, err_len);
    for (size_t i = 0; r == 0 && i < spec->n_ip_addresses; i++)
        r = push_ip(gens, spec->ip_addresses[i], err, err_len);
    if (r < 0) {
        GENERAL_NAMES_free(gens);
        return r;
    }
    *ret_gens = gens;
    return 0;
}

/* A random positive serial: 128 random bits with the top one cleared, never zero. */
static int set_random_serial(X509 *cert, char *err, size_t err_len)
{
    unsigned char bytes[SERIAL_BYTES];
    BIGNUM *bn = NULL;
    int r = 0;

    do {
        BN_free(bn);
        bn = NULL;
        if (RAND_bytes(bytes, sizeof(bytes)) != 1)
            return fail(CV_EINVALID_CERT, err, err_len, "cannot draw a random serial number");
        bytes[0] &= 0x7F; /* DER INTEGERs are signed; serials must be positive */
        bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
        if (!bn)
            return fail(-ENOMEM, err, err_len, "out of memory");
    } while (BN_is_zero(bn));
    if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        r = fail(-ENOMEM, err, err_len, "cannot set the serial number");
    BN_free(bn);
    OPENSSL_cleanse(bytes, sizeof(bytes));
    return r;
}

/* The part every certificate shares: version 3, serial, validity, CN subject, public key. */
static int start_cert(EVP_PKEY *key, const char *common_name, int days, X509 **ret_cert, char *err,
                      size_t err_len)
{
    X509 *cert;
    int r;

    if ((r = check_days(days, err, err_len)) < 0)
        return r;
    if (!key)
        return fail(-EINVAL, err, err_len, "no key for the certificate \"%s\"",
                    common_name ? common_name : "");
    cert = X509_new();
    if (!cert)
        return fail(-ENOMEM, err, err_len, "out of memory");
    if ((r = add_common_name(X509_get_subject_name(cert), common_name, err, err_len)) < 0 ||
        (r = set_random_serial(cert, err, err_len)) < 0)
        goto fail;
    /* Valid from an hour ago, for days days from then. */
    if (!X509_set_version(cert, X509_VERSION_3) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -BACKDATE_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), days, -BACKDATE_SECONDS, NULL) ||
        !X509_set_pubkey(cert, key)) {
        r = fail(CV_EINVALID_CERT, err, err_len, "cannot prepare the certificate for \"%s\"",
                 common_name);
        goto fail;
    }
    *ret_cert = cert;
    return 0;
fail:
    X509_free(cert);
    return r;
}

/* An extension in openssl.cnf syntax; the values are fixed strings, never operator input. */
struct conf_ext {
    int nid;
    const char *value;
};

static int add_conf_exts(X509 *cert, X509V3_CTX *ctx, const struct conf_ext *exts, size_t n,
                         char *err, size_t err_len)
{
    for (size_t i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, exts[i].nid, exts[i].value);
        int ok = ext && X509_add_ext(cert, ext, -1); /* adds a copy */

        X509_EXTENSION_free(ext);
        if (!ok)
            return fail(CV_EINVALID_CERT, err, err_len, "cannot add %s \"%s\"",
                        OBJ_nid2sn(exts[i].nid), exts[i].value);
    }
    return 0;
}

static int add_san(X509 *cert, const struct x509_subject_spec *spec, char *err, size_t err_len)
{
    GENERAL_NAMES *gens;
    int r = make_san(spec, &gens, err, err_len);

    if (r < 0 || !gens)
        return r;
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        r = fail(CV_EINVALID_CERT, err, err_len, "cannot add the subjectAltName");
    GENERAL_NAMES_free(gens);
    return r;
}

static int sign_cert(X509 *cert, EVP_PKEY *key, const char *common_name, char *err, size_t err_len)
{
    if (X509_sign(cert, key, EVP_sha256()) <= 0)
        return fail(CV_EINVALID_CERT, err, err_len, "cannot sign the certificate for \"%s\"",
                    common_name);
    return 0;
}

int x509_make_ca(EVP_PKEY *key, const char *common_name, int days, X509 **ret_cert, char *err,
                 size_t err_len)
{
    static const struct conf_ext exts[] = {
        {NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_key_identifier, "hash"},
    };
    X509V3_CTX ctx;
    X509 *cert;
    int r;

    ERR_clear_error();
    if ((r = start_cert(key, common_name, days, &cert, err, err_len)) < 0)
        return r;
    if (!X509_set_issuer_name(cert, X509_get_subject_name(cert))) {
        r = fail(-ENOMEM, err, err_len, "out of memory");
        goto fail;
    }
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if ((r = add_conf_exts(cert, &ctx, exts, sizeof(exts) / sizeof(exts[0]), err, err_len)) < 0 ||
        (r = sign_cert(cert, key, common_name, err, err_len)) < 0)
        goto fail;
    *ret_cert = cert;
    return 0;
fail:
    X509_free(cert);
    return r;
}

/* Refuses to issue from a CA that is not one, or with a key that is not its key. */
static int check_issuer(X509 *ca_cert, EVP_PKEY *ca_key, char *err, size_t err_len)
{
    if (!ca_cert || !ca_key)
        return fail(-EINVAL, err, err_len, "no CA certificate or key to issue from");
    if (X509_check_ca(ca_cert) == 0)
        return fail(CV_EINVALID_CERT, err, err_len,
                    "the issuing certificate is not a CA (no basicConstraints CA:TRUE)");
    if (X509_check_private_key(ca_cert, ca_key) != 1)
        return fail(CV_EINVALID_CERT, err, err_len, "the CA key does not match the CA certificate");
    return 0;
}

int x509_make_leaf(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *key,
                   const struct x509_subject_spec *spec, int days, X509 **ret_cert, char *err,
                   size_t err_len)
{
    struct conf_ext exts[] = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth,clientAuth"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid,issuer"},
    };
    X509V3_CTX ctx;
    X509 *cert;
    int r;

    ERR_clear_error();
    if (!spec)
        return fail(-EINVAL, err, err_len, "no names for the certificate");
    if ((r = check_issuer(ca_cert, ca_key, err, err_len)) < 0 ||
        (r = start_cert(key, spec->common_name, days, &cert, err, err_len)) < 0)
        return r;
    /* RSA key exchange (TLS 1.2's RSA suites) encrypts to the key; ECDSA keys only sign. */
    if (EVP_PKEY_is_a(key, "RSA"))
        exts[1].value = "critical,digitalSignature,keyEncipherment";
    if (!X509_set_issuer_name(cert, X509_get_subject_name(ca_cert))) {
        r = fail(-ENOMEM, err, err_len, "out of memory");
        goto fail;
    }
    X509V3_set_ctx(&ctx, ca_cert, cert, NULL, NULL, 0);
    if ((r = add_conf_exts(cert, &ctx, exts, sizeof(exts) / sizeof(exts[0]), err, err_len)) < 0 ||
        (r = add_san(cert, spec, err, err_len)) < 0 ||
        (r = sign_cert(cert, ca_key, spec->common_name, err, err_len)) < 0)
        goto fail;
    *ret_cert = cert;
    return 0;
fail:
    X509_free(cert);
    return r;
}

/* The extensions a CSR asks for: the spec's subjectAltNames and both extended key usages. */
static int make_csr_exts(X509_REQ *csr, const struct x509_subject_spec *spec,
                         STACK_OF(X509_EXTENSION) * *ret, char *err, size_t err_len)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *eku;
    X509V3_CTX ctx;
    GENERAL_NAMES *gens;
    int r = make_san(spec, &gens, err, err_len);

    if (r < 0)
        return r;
    if (gens && X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        r = fail(CV_EINVALID_CERT, err, err_len, "cannot add the subjectAltName");
    GENERAL_NAMES_free(gens);
    if (r == 0) {
        X509V3_set_ctx(&ctx, NULL, NULL, csr, NULL, 0);
        eku = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
        if (!eku || !X509v3_add_ext(&exts, eku, -1))
            r = fail(CV_EINVALID_CERT, err, err_len, "cannot add the extended key usage");
        X509_EXTENSION_free(eku); /* X509v3_add_ext adds a copy */
    }
    if (r < 0) {
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return r;
    }
    *ret = exts;
    return 0;
}

static int set_csr_subject(X509_REQ *csr, const struct x509_subject_spec *spec,
                           const char *subject_dn, char *err, size_t err_len)
{
    X509_NAME *name = X509_NAME_new();
    int r;

    if (!name)
        return fail(-ENOMEM, err, err_len, "out of memory");
    if (subject_dn)
        r = parse_subject_dn(subject_dn, name, err, err_len);
    else
        r = add_common_name(name, spec->common_name, err, err_len);
    if (r == 0 && !X509_REQ_set_subject_name(csr, name)) /* copies name */
        r = fail(-ENOMEM, err, err_len, "out of memory");
    X509_NAME_free(name);
    return r;
}

int x509_make_csr(EVP_PKEY *key, const struct x509_subject_spec *spec, const char *subject_dn,
                  X509_REQ **ret_csr, char *err, size_t err_len)
{
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_REQ *csr;
    int r;

    ERR_clear_error();
    if (!key || !spec)
        return fail(-EINVAL, err, err_len, "no key or names for the CSR");
    csr = X509_REQ_new();
    if (!csr)
        return fail(-ENOMEM, err, err_len, "out of memory");
    if ((r = set_csr_subject(csr, spec, subject_dn, err, err_len)) < 0 ||
        (r = make_csr_exts(csr, spec, &exts, err, err_len)) < 0)
        goto out;
    if (!X509_REQ_set_version(csr, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(csr, key) ||
        !X509_REQ_add_extensions(csr, exts)) {
        r = fail(CV_EINVALID_CERT, err, err_len, "cannot prepare the CSR");
        goto out;
    }
    if (X509_REQ_sign(csr, key, EVP_sha256()) <= 0) {
        r = fail(CV_EINVALID_CERT, err, err_len, "cannot sign the CSR");
        goto out;
    }
    *ret_csr = csr;
    csr = NULL;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(csr);
    return r;
}

/*
 * Copies a memory BIO's contents into a NUL-terminated string. secret chooses
 * OPENSSL_malloc, so that the OPENSSL_clear_free the header asks of callers
 * is the matching free; plain malloc otherwise.
 */
static char *bio_to_string(BIO *bio, bool secret)
{
    char *data, *text;
    long len = BIO_get_mem_data(bio, &data);

    if (len <= 0)
        return NULL;
    text = secret ? OPENSSL_malloc((size_t)len + 1) : malloc((size_t)len + 1);
    if (!text)
        return NULL;
    memcpy(text, data, (size_t)len);
    text[len] = '\0';
    return text;
}

char *x509_pem_of_cert(X509 *cert)
{
    BIO *bio = cert ? BIO_new(BIO_s_mem()) : NULL;
    char *text = NULL;

    if (bio && PEM_write_bio_X509(bio, cert))
        text = bio_to_string(bio, false);
    BIO_free(bio);
    return text;
}

char *x509_pem_of_csr(X509_REQ *csr)
{
    BIO *bio = csr ? BIO_new(BIO_s_mem()) : NULL;
    char *text = NULL;

    if (bio && PEM_write_bio_X509_REQ(bio, csr))
        text = bio_to_string(bio, false);
    BIO_free(bio);
    return text;
}

char *x509_pem_of_key(EVP_PKEY *key)
{
    /* A secure-memory BIO wipes its buffer when it grows and when it is freed. */
    BIO *bio = key ? BIO_new(BIO_s_secmem()) : NULL;
    char *text = NULL;

    if (bio && PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        text = bio_to_string(bio, true);
    BIO_free(bio);
    return text;
}
