/* Describing certificates for operators: subject, issuer, names, expiry, key, fingerprint. */
#include "cert_info.h"

#include "x509_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

static json_t *name_string(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    json_t *s;

    if (!bio)
        return NULL;
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    len = BIO_get_mem_data(bio, &data);
    s = json_stringn(data ? data : "", (size_t)(len > 0 ? len : 0));
    BIO_free(bio);
    return s;
}

static json_t *time_string(const ASN1_TIME *t, struct tm *ret_tm)
{
    char buf[64];
    struct tm tm;

    if (!ASN1_TIME_to_tm(t, &tm))
        return json_string("?");
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (ret_tm)
        *ret_tm = tm;
    return json_string(buf);
}

static json_t *sans_array(X509 *cert)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    json_t *array = json_array();

    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        char buf[300];

        if (gn->type == GEN_DNS) {
            snprintf(buf, sizeof(buf), "DNS:%.*s", ASN1_STRING_length(gn->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(gn->d.dNSName));
            json_array_append_new(array, json_string(buf));
        } else if (gn->type == GEN_IPADD) {
            int len = ASN1_STRING_length(gn->d.iPAddress);
            char ip[INET6_ADDRSTRLEN];

            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), ip,
                          sizeof(ip))) {
                snprintf(buf, sizeof(buf), "IP:%s", ip);
                json_array_append_new(array, json_string(buf));
            }
        }
    }
    GENERAL_NAMES_free(names);
    return array;
}

static json_t *key_string(X509 *cert)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    char group[64] = "";
    char buf[96];

    if (!key)
        return json_string("?");
    if (EVP_PKEY_is_a(key, "EC")) {
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL);
        snprintf(buf, sizeof(buf), "ECDSA %s",
                 strcmp(group, "prime256v1") == 0  ? "P-256"
                 : strcmp(group, "secp384r1") == 0 ? "P-384"
                 : strcmp(group, "secp521r1") == 0 ? "P-521"
                                                   : group);
    } else if (EVP_PKEY_is_a(key, "RSA")) {
        snprintf(buf, sizeof(buf), "RSA %d", EVP_PKEY_get_bits(key));
    } else {
        snprintf(buf, sizeof(buf), "%s", EVP_PKEY_get0_type_name(key));
    }
    return json_string(buf);
}

static json_t *serial_string(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    json_t *s = json_string(hex ? hex : "?");

    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

static X509 *first_certificate(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    ERR_clear_error();
    return cert;
}

int cert_info_fingerprint(const char *pem, size_t len, char *buf, size_t buf_len)
{
    X509 *cert = first_certificate(pem, len);

    if (!cert)
        return -EINVAL;
    x509_fingerprint(cert, buf, buf_len);
    X509_free(cert);
    return 0;
}

int cert_info_not_after(const char *pem, size_t len, time_t *ret_not_after)
{
    X509 *cert = first_certificate(pem, len);
    struct tm tm;
    int ok;

    if (!cert)
        return -EINVAL;
    ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    X509_free(cert);
    ERR_clear_error();
    if (!ok)
        return -EINVAL;
    *ret_not_after = timegm(&tm);
    return 0;
}

json_t *cert_info_describe(const char *pem, size_t len, time_t now)
{
    X509 *cert = first_certificate(pem, len);
    char fingerprint[96];
    struct tm not_after;
    json_t *info;
    time_t expires;

    if (!cert)
        return NULL;
    x509_fingerprint(cert, fingerprint, sizeof(fingerprint));
    info = json_object();
    json_object_set_new(info, "subject", name_string(X509_get_subject_name(cert)));
    json_object_set_new(info, "issuer", name_string(X509_get_issuer_name(cert)));
    json_object_set_new(info, "sans", sans_array(cert));
    json_object_set_new(info, "not_before", time_string(X509_get0_notBefore(cert), NULL));
    json_object_set_new(info, "not_after", time_string(X509_get0_notAfter(cert), &not_after));
    expires = timegm(&not_after);
    json_object_set_new(info, "days_left",
                        json_integer((json_int_t)((expires - now) / 86400 -
                                                  (expires < now && (expires - now) % 86400))));
    json_object_set_new(info, "key", key_string(cert));
    json_object_set_new(info, "fingerprint", json_string(fingerprint));
    json_object_set_new(info, "serial", serial_string(cert));
    X509_free(cert);
    return info;
}
