/* Join tokens and the CA's public key hash (join_token.h). */
#include "join_token.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
#define ALPHABET_LEN 36

static bool token_chars(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!text[i] || !memchr(alphabet, text[i], ALPHABET_LEN))
            return false;
    return true;
}

bool join_token_id_valid(const char *id)
{
    return id && strlen(id) == JOIN_TOKEN_ID_LEN && token_chars(id, JOIN_TOKEN_ID_LEN);
}

/* len characters, each uniform over the alphabet: bytes at or above 252 (7 x 36) are drawn
 * again rather than folded, which would favour the first four characters. */
static int random_chars(char *out, size_t len)
{
    size_t n = 0;

    while (n < len) {
        unsigned char bytes[32];

        if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
            ERR_clear_error();
            return -EIO;
        }
        for (size_t i = 0; i < sizeof(bytes) && n < len; i++)
            if (bytes[i] < 7 * ALPHABET_LEN)
                out[n++] = alphabet[bytes[i] % ALPHABET_LEN];
        OPENSSL_cleanse(bytes, sizeof(bytes));
    }
    out[len] = '\0';
    return 0;
}

int join_token_generate(char id[JOIN_TOKEN_ID_LEN + 1], char secret[JOIN_TOKEN_SECRET_LEN + 1])
{
    int r = random_chars(id, JOIN_TOKEN_ID_LEN);

    return r < 0 ? r : random_chars(secret, JOIN_TOKEN_SECRET_LEN);
}

int join_token_parse(const char *text, char id[JOIN_TOKEN_ID_LEN + 1],
                     char secret[JOIN_TOKEN_SECRET_LEN + 1], char *err, size_t err_len)
{
    if (!text || strlen(text) != JOIN_TOKEN_TEXT_LEN || text[JOIN_TOKEN_ID_LEN] != '.' ||
        !token_chars(text, JOIN_TOKEN_ID_LEN) ||
        !token_chars(text + JOIN_TOKEN_ID_LEN + 1, JOIN_TOKEN_SECRET_LEN)) {
        snprintf(err, err_len,
                 "a join token is <id>.<secret>: 6 and 16 lowercase letters and digits "
                 "('certvisorctl cluster token create' on a node of the cluster prints one)");
        return -EINVAL;
    }
    memcpy(id, text, JOIN_TOKEN_ID_LEN);
    id[JOIN_TOKEN_ID_LEN] = '\0';
    memcpy(secret, text + JOIN_TOKEN_ID_LEN + 1, JOIN_TOKEN_SECRET_LEN);
    secret[JOIN_TOKEN_SECRET_LEN] = '\0';
    return 0;
}

static void hex_of(const unsigned char *bytes, size_t len, char *hex)
{
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
}

void join_token_secret_sha256(const char *secret, char hex[65])
{
    unsigned char digest[32];

    SHA256((const unsigned char *)secret, strlen(secret), digest);
    hex_of(digest, sizeof(digest), hex);
}

bool join_token_secret_matches(const char *secret, const char *expected_hex)
{
    char hex[65];
    bool same;

    if (strlen(expected_hex) != 64)
        return false;
    join_token_secret_sha256(secret, hex);
    same = CRYPTO_memcmp(hex, expected_hex, 64) == 0;
    OPENSSL_cleanse(hex, sizeof(hex));
    return same;
}

int join_ttl_parse(const char *text, long *ret_seconds, char *err, size_t err_len)
{
    static const struct {
        char unit;
        long seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t digits = text ? strspn(text, "0123456789") : 0;
    long value = 0, scale = 1;

    if (digits > 0 && digits <= 7) {
        value = strtol(text, NULL, 10);
        if (text[digits] != '\0') {
            scale = 0;
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (text[digits] == units[i].unit && text[digits + 1] == '\0')
                    scale = units[i].seconds;
        }
    }
    if (digits == 0 || digits > 7 || scale == 0 || value * scale < JOIN_TTL_MIN_S ||
        value * scale > JOIN_TTL_MAX_S) {
        snprintf(err, err_len,
                 "--ttl takes a lifetime such as 30m, 1h or 2d (s, m, h, d; plain seconds), "
                 "from %ld s to %ld days",
                 JOIN_TTL_MIN_S, JOIN_TTL_MAX_S / 86400);
        return -EINVAL;
    }
    *ret_seconds = value * scale;
    return 0;
}

int join_ca_cert_hash(const char *ca_pem, size_t len, char *out, size_t out_len, char *err,
                      size_t err_len)
{
    BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(ca_pem, (int)len) : NULL;
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    unsigned char *spki = NULL, digest[32];
    int spki_len = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki) : -1;
    char hex[65];

    BIO_free(bio);
    X509_free(cert);
    ERR_clear_error();
    if (spki_len <= 0 || out_len < JOIN_CA_HASH_TEXT_LEN + 1) {
        OPENSSL_free(spki);
        snprintf(err, err_len, "the cluster CA certificate cannot be read");
        return -EINVAL;
    }
    SHA256(spki, (size_t)spki_len, digest);
    OPENSSL_free(spki);
    hex_of(digest, sizeof(digest), hex);
    snprintf(out, out_len, "sha256:%s", hex);
    return 0;
}
