/* Fuzzes subject_line: the certificate subject a REST API user signs in with. */
#include "fuzz_util.h"
#include "subject_line.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A certificate whose subject has exactly the line's attributes; NULL when ASN.1 refuses one. */
static X509 *cert_for(const struct subject_line *line)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    bool ok = cert && name;

    for (size_t i = 0; ok && i < line->n; i++)
        ok =
            X509_NAME_add_entry_by_NID(name, line->attrs[i].nid, MBSTRING_UTF8,
                                       (const unsigned char *)line->attrs[i].value, -1, -1, 0) == 1;
    ok = ok && X509_set_subject_name(cert, name) == 1;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct subject_line *line = NULL, *again = NULL;
    char *text = fuzz_string(data, size), *formatted, *formatted2, err[512];
    enum subject_match how;
    X509 *cert;

    (void)subject_match_parse(text, &how);
    if (subject_line_parse(text, &line, err, sizeof(err)) < 0) {
        free(text);
        return 0;
    }
    FUZZ_CHECK(line->n >= 1 && line->n <= SUBJECT_LINE_MAX_ATTRS);
    FUZZ_CHECK(*subject_line_cn(line));
    /* The canonical text reads back as the same line (when it still fits the limit). */
    formatted = subject_line_format(line);
    FUZZ_CHECK(formatted);
    if (strlen(formatted) <= SUBJECT_LINE_MAX) {
        if (subject_line_parse(formatted, &again, err, sizeof(err)) < 0) {
            fprintf(stderr, "'%s' formats as '%s', which does not parse: %s\n", text, formatted,
                    err);
            fuzz_fail("the canonical text of a subject line parses");
        }
        formatted2 = subject_line_format(again);
        FUZZ_CHECK(formatted2 && strcmp(formatted, formatted2) == 0);
        FUZZ_CHECK(strcmp(subject_line_cn(line), subject_line_cn(again)) == 0);
        free(formatted2);
        subject_line_free(again);
    }
    /* A certificate with exactly these attributes matches under both rules. */
    cert = cert_for(line);
    if (cert) {
        FUZZ_CHECK(subject_line_matches(line, cert, SUBJECT_MATCH_FULL_SUBJECT));
        FUZZ_CHECK(subject_line_matches(line, cert, SUBJECT_MATCH_SAN_CN));
        X509_free(cert);
    }
    free(formatted);
    subject_line_free(line);
    free(text);
    return 0;
}
