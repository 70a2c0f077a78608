/*
 * Fuzzes certificate and key validation (agent/pki/x509_check.c): PEM parsing, the DER, PKCS#12
 * and UTF-16 detection, chains, keys and their match.
 *
 * The input is one byte of choices (purpose, whether a key is given), then the certificate
 * text, then, after a line "--key--", the key text.
 */
#include "cv_error.h"
#include "fuzz_util.h"
#include "x509_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2030-01-01: the seeds' certificates are valid then; a fixed time keeps runs repeatable. */
#define FUZZ_X509_NOW ((time_t)1893456000)

static const char separator[] = "\n--key--\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum cert_purpose purposes[] = {CERT_PURPOSE_SERVER, CERT_PURPOSE_CLIENT,
                                                 CERT_PURPOSE_CA_BUNDLE};
    struct x509_checked *checked = NULL;
    const char *text, *sep, *key = NULL;
    size_t cert_len, key_len = 0;
    char *cert_copy, *key_copy = NULL, err[1024];
    enum cert_purpose purpose;
    int r;

    if (size < 1 || size > X509_CHECK_MAX_INPUT + 64)
        return 0;
    purpose = purposes[data[0] % 3];
    text = (const char *)data + 1;
    cert_len = size - 1;
    sep = memmem(text, cert_len, separator, sizeof(separator) - 1);
    if (sep) {
        key = sep + sizeof(separator) - 1;
        key_len = (size_t)(text + cert_len - key);
        cert_len = (size_t)(sep - text);
    }
    /* Copies of exactly their size, so that ASan sees any read past either. */
    cert_copy = malloc(cert_len ? cert_len : 1);
    FUZZ_CHECK(cert_copy);
    memcpy(cert_copy, text, cert_len);
    if (key) {
        key_copy = malloc(key_len ? key_len : 1);
        FUZZ_CHECK(key_copy);
        memcpy(key_copy, key, key_len);
    }
    (void)x509_check_text("certificate 'fuzz'", false, NULL, cert_copy, cert_len, err, sizeof(err));
    r = x509_check("fuzz", purpose, cert_copy, cert_len, key_copy, key_len, FUZZ_X509_NOW, &checked,
                   err, sizeof(err));
    if (getenv("FUZZ_VERBOSE")) /* to see what the validator made of a reproducer */
        fprintf(stderr, "x509_check: %d %s\n", r, r == 0 ? checked->warning : err);
    if (r == 0) {
        FUZZ_CHECK(checked);
        FUZZ_CHECK(purpose == CERT_PURPOSE_CA_BUNDLE ? checked->chain != NULL
                                                     : checked->leaf != NULL);
        FUZZ_CHECK(strlen(checked->fingerprint) == 95);
        FUZZ_CHECK(checked->not_before <= checked->not_after);
        if (checked->leaf) {
            char fingerprint[96];

            x509_fingerprint(checked->leaf, fingerprint, sizeof(fingerprint));
            FUZZ_CHECK(strcmp(fingerprint, checked->fingerprint) == 0);
        }
        x509_checked_free(checked);
    } else {
        /* Every refusal names its problem. */
        FUZZ_CHECK(r == CV_EINVALID_CERT || r == CV_ECERT_EXPIRED || r == -ENOMEM);
        FUZZ_CHECK(err[0] != '\0');
    }
    free(key_copy);
    free(cert_copy);
    return 0;
}
