/* Validation of the certificates, chains and keys operators hand the agent, one fix per message. */
#include "x509_check.h"

#include "cv_error.h"
#include "tls_context.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_SECONDS 86400
#define LABEL_MAX 48   /* longest PEM label we name in a message */
#define SUBJECT_MAX 96 /* a subject in a message is cut to this */
#define WHAT_MAX 192   /* "certificate 2 ('/CN=...') in the chain of 'proxy'" */
#define PEM_CERT_FIX                                                                               \
    "give the certificate in PEM form (the text with -----BEGIN CERTIFICATE----- lines)"

/* One call's inputs, so that the helpers take one argument for them. */
struct request {
    const char *name;
    enum cert_purpose purpose;
    const char *cert;
    size_t cert_len;
    const char *key;
    size_t key_len;
    time_t now;
};

/* A "-----BEGIN label-----" ... "-----END label-----" block inside the normalized text. */
struct pem_block {
    const char *start;
    size_t len; /* through the END line and its newline */
    char label[LABEL_MAX];
};

enum scan_result { SCAN_BLOCK, SCAN_DONE, SCAN_UNTERMINATED, SCAN_STRAY };

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t err_len, int code,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int out_of_memory(char *err, size_t err_len)
{
    return fail(err, err_len, -ENOMEM, "out of memory while checking the certificate");
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool only_whitespace(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_blank(p[i]) && p[i] != '\n')
            return false;
    return true;
}

/*
 * A NUL-terminated copy without a UTF-8 byte order mark (Windows editors add one, and it hides
 * the first BEGIN line from OpenSSL) and without blanks at the end of lines, which makes CRLF
 * files read like LF ones. The input holds no NUL byte (checked before).
 */
static char *normalize(const char *in, size_t len)
{
    char *out = malloc(len + 1), *o = out, *line = out;

    if (!out)
        return NULL;
    if (len >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        len -= 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '\n') {
            *o++ = in[i];
            continue;
        }
        while (o > line && is_blank(o[-1]))
            o--;
        *o++ = '\n';
        line = o;
    }
    while (o > line && is_blank(o[-1]))
        o--;
    *o = '\0';
    return out;
}

/* Keys are secret: their copies are wiped, not just freed. */
static void free_text(char *text, size_t alloc_len, bool secret)
{
    if (secret)
        OPENSSL_cleanse(text, alloc_len);
    free(text);
}

/*
 * DER certificates and keys are one ASN.1 SEQUENCE: 0x30, then a long-form length (0x81-0x84),
 * or for short keys (121 bytes for EC P-256) a short-form length that covers the input exactly.
 */
static bool looks_like_der(const char *in, size_t len)
{
    const unsigned char *u = (const unsigned char *)in;

    if (len < 4 || u[0] != 0x30)
        return false;
    return u[1] < 0x80 ? (size_t)u[1] + 2 == len : u[1] >= 0x81 && u[1] <= 0x84;
}

/*
 * One DER header at *p (before end): its tag, and the length of its contents in *ret_len. Moves
 * *p to the contents. Only the forms PKCS#12 files use: one-byte tags, definite lengths of up to
 * four bytes.
 */
static bool der_header(const unsigned char **p, const unsigned char *end, unsigned char *ret_tag,
                       size_t *ret_len)
{
    const unsigned char *q = *p;
    size_t len = 0;

    if (end - q < 2)
        return false;
    *ret_tag = q[0];
    if (q[1] < 0x80) {
        len = q[1];
        q += 2;
    } else {
        size_t n = q[1] & 0x7F;

        if (n == 0 || n > 4 || (size_t)(end - q) < 2 + n)
            return false;
        for (size_t i = 0; i < n; i++)
            len = len << 8 | q[2 + i];
        q += 2 + n;
    }
    *p = q;
    *ret_len = len;
    return true;
}

/*
 * A PKCS#12 file (RFC 7292: what Windows and Java tools export as .p12 or .pfx): a SEQUENCE whose
 * first element is the version, INTEGER 3, followed by a PKCS#7 ContentInfo, a SEQUENCE that
 * opens with the OID of pkcs7-data or pkcs7-signedData (1.2.840.113549.1.7.1 or .2). Only the
 * headers are read, so a file cut short is still recognized.
 */
static bool looks_like_pkcs12(const char *in, size_t len)
{
    static const unsigned char pkcs7[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07};
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    unsigned char tag;
    size_t n;

    if (!der_header(&p, end, &tag, &n) || tag != 0x30 || !der_header(&p, end, &tag, &n) ||
        tag != 0x02 || n != 1 || p >= end || *p != 3)
        return false;
    p++;
    if (!der_header(&p, end, &tag, &n) || tag != 0x30 || !der_header(&p, end, &tag, &n) ||
        tag != 0x06 || n != sizeof(pkcs7) + 1 || (size_t)(end - p) < n)
        return false;
    return memcmp(p, pkcs7, sizeof(pkcs7)) == 0 && (p[8] == 1 || p[8] == 2);
}

/* UTF-16 text, with or without a byte order mark: 2 little-endian, 1 big-endian, 0 not. */
static int utf16_order(const unsigned char *u, size_t len)
{
    if (len >= 2 && u[0] == 0xFF && u[1] == 0xFE)
        return 2;
    if (len >= 2 && u[0] == 0xFE && u[1] == 0xFF)
        return 1;
    /* Without a mark: ASCII characters, each with a zero byte on one side ("-\0-\0"). */
    if (len >= 4 && u[0] && !u[1] && u[2] && !u[3])
        return 2;
    if (len >= 4 && !u[0] && u[1] && !u[2] && u[3])
        return 1;
    return 0;
}

/*
 * The offset of the first byte that is not UTF-8 as RFC 3629 defines it (no overlong forms, no
 * surrogates, nothing past U+10FFFF, which is what JSON strings may carry), or len.
 */
static size_t utf8_valid_length(const unsigned char *u, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint32_t cp, min;
        size_t more;

        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if (u[i] >= 0xC2 && u[i] <= 0xDF)
            more = 1, cp = u[i] & 0x1F, min = 0x80;
        else if (u[i] >= 0xE0 && u[i] <= 0xEF)
            more = 2, cp = u[i] & 0x0F, min = 0x800;
        else if (u[i] >= 0xF0 && u[i] <= 0xF4)
            more = 3, cp = u[i] & 0x07, min = 0x10000;
        else
            return i;
        if (len - i <= more)
            return i;
        for (size_t k = 1; k <= more; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += more + 1;
    }
    return len;
}

int x509_check_text(const char *what, bool is_key, const char *file, const char *in, size_t len,
                    char *err, size_t err_len)
{
    const unsigned char *u = (const unsigned char *)in;
    const char *it = file ? file : "it", *f = file ? file : "FILE";
    const char *pem_fix = is_key ? "give the private key in PEM form" : PEM_CERT_FIX;
    int order = utf16_order(u, len);
    size_t valid;

    if (order)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: %s is UTF-16 text (as Windows tools save it); save it as "
                    "UTF-8 or ASCII, e.g. with: iconv -f UTF-16%s -t UTF-8 %s > %s.pem",
                    what, it, order == 2 ? "LE" : "BE", f, f);
    /* Before DER: a PKCS#12 file is DER too, but no openssl x509 command reads it. */
    if (looks_like_pkcs12(in, len))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: %s is PKCS#12 (a .p12/.pfx bundle of certificates and a key); "
                    "extract the certificates with: openssl pkcs12 -in %s -nokeys -out cert.pem, "
                    "and the key with: openssl pkcs12 -in %s -nocerts -nodes -out key.pem (add "
                    "-legacy if openssl says the algorithm is unsupported)",
                    what, it, f, f);
    if (looks_like_der(in, len))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: %s is DER (binary); convert it with: openssl %s -inform der "
                    "-in %s -out %s.pem",
                    what, it, is_key ? "pkey" : "x509", f, f);
    if (memchr(in, '\0', len))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: %s holds binary data (NUL bytes); %s", what, it, pem_fix);
    valid = utf8_valid_length(u, len);
    if (valid < len)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: %s holds binary data (byte %zu is not text: not UTF-8); save "
                    "it as UTF-8 or ASCII, or %s",
                    what, it, valid + 1, pem_fix);
    return 0;
}

/* The checks on the raw bytes, before any PEM parsing; what is "certificate 'x'" or a key. */
static int check_raw(const char *what, bool is_key, const char *in, size_t len, char *err,
                     size_t err_len)
{
    int r;

    if (len > X509_CHECK_MAX_INPUT)
        return fail(err, err_len, CV_EINVALID_CERT, "%s is larger than %d bytes; give only the %s",
                    what, X509_CHECK_MAX_INPUT,
                    is_key ? "private key" : "certificate and its chain");
    if (!in || only_whitespace(in, len))
        return fail(err, err_len, CV_EINVALID_CERT, "%s is empty; give the %s in PEM form", what,
                    is_key ? "private key" : "certificate");
    if ((r = x509_check_text(what, is_key, NULL, in, len, err, err_len)) < 0)
        return r;
    /* Base64 has no backslash: a "\n" is a line break escaped by JSON or a shell. */
    if (memmem(in, len, "\\n", 2))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s holds literal \\n escapes (a backslash and an n, as in a JSON string) "
                    "instead of line breaks; turn them back into line breaks, e.g. with: "
                    "sed 's/\\\\n/\\n/g' FILE > FILE.pem",
                    what);
    return 0;
}

static const char *line_end(const char *p)
{
    const char *nl = strchr(p, '\n');

    return nl ? nl : p + strlen(p);
}

static const char *next_line(const char *end)
{
    return *end ? end + 1 : end;
}

/* Copies the label of a "-----BEGIN LABEL-----" line; false when the line is not one. */
static bool begin_label(const char *p, const char *end, char *label)
{
    size_t n;

    if (end - p < 17 || strncmp(p, "-----BEGIN ", 11) != 0 || strncmp(end - 5, "-----", 5) != 0)
        return false;
    n = (size_t)(end - p) - 16;
    if (n >= LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[11 + i];

        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') && ch != ' ')
            return false;
    }
    memcpy(label, p + 11, n);
    label[n] = '\0';
    return true;
}

static bool is_end_line(const char *p, const char *end, const char *label)
{
    size_t n = strlen(label);

    return (size_t)(end - p) == n + 14 && strncmp(p, "-----END ", 9) == 0 &&
           memcmp(p + 9, label, n) == 0 && strncmp(p + 9 + n, "-----", 5) == 0;
}

/*
 * Finds the next PEM block from *pos. Text between blocks is skipped, as OpenSSL does ("Bag
 * Attributes" from pkcs12 exports, "subject=" lines); a line starting with "-----" that is not
 * a matching boundary means a damaged file. *pos moves past the block only when one is found.
 */
static enum scan_result next_block(const char **pos, struct pem_block *b)
{
    for (const char *p = *pos; *p; p = next_line(line_end(p))) {
        const char *end = line_end(p);

        if (!begin_label(p, end, b->label)) {
            if (strncmp(p, "-----", 5) == 0)
                return SCAN_STRAY;
            continue;
        }
        for (const char *q = next_line(end); *q; q = next_line(line_end(q))) {
            const char *q_end = line_end(q);

            if (strncmp(q, "-----", 5) != 0)
                continue;
            if (!is_end_line(q, q_end, b->label))
                return SCAN_UNTERMINATED;
            b->start = p;
            b->len = (size_t)(next_line(q_end) - p);
            *pos = p + b->len;
            return SCAN_BLOCK;
        }
        return SCAN_UNTERMINATED;
    }
    return SCAN_DONE;
}

static int scan_error(const char *what, enum scan_result r, const struct pem_block *b, char *err,
                      size_t err_len)
{
    if (r == SCAN_UNTERMINATED)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is cut short: its -----BEGIN %s----- line has no -----END %s----- line; "
                    "copy the whole file again",
                    what, b->label, b->label);
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s has a damaged PEM boundary (a \"-----\" line with no matching BEGIN or END); "
                "copy the whole file again",
                what);
}

static int check_tail(const char *what, const char *pos, char *err, size_t err_len)
{
    if (only_whitespace(pos, strlen(pos)))
        return 0;
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s has text after its last PEM block; remove everything after the last "
                "-----END line",
                what);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cert_label_error(const char *what, const char *label, char *err, size_t err_len)
{
    if (ends_with(label, "PRIVATE KEY"))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s contains a private key; give the key separately and only certificates "
                    "here",
                    what);
    if (ends_with(label, "CERTIFICATE REQUEST"))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is a certificate signing request, not a certificate; have the CA sign it "
                    "and give the certificate it returns",
                    what);
    if (strcmp(label, "PKCS7") == 0)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is PKCS#7, not PEM certificates; convert it with: openssl pkcs7 "
                    "-print_certs -in FILE -out FILE.pem",
                    what);
    return fail(err, err_len, CV_EINVALID_CERT, "%s holds a block of type %s; %s", what, label,
                PEM_CERT_FIX);
}

static BIO *block_bio(const struct pem_block *b)
{
    return BIO_new_mem_buf(b->start, (int)b->len);
}

/* Parses block number index (from 1) of what; extensions OpenSSL cannot decode are refused too. */
static int parse_cert(const char *what, const struct pem_block *b, int index, X509 **ret, char *err,
                      size_t err_len)
{
    BIO *bio = block_bio(b);
    X509 *x;

    if (!bio)
        return out_of_memory(err, err_len);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!x)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "PEM block %d of %s is not a valid certificate (damaged base64 or DER); "
                    "copy it again from what the CA sent",
                    index, what);
    /* Every later check reads extensions; one that does not decode would make them unreliable. */
    if (X509_get_extension_flags(x) & EXFLAG_INVALID) {
        X509_free(x);
        return fail(err, err_len, CV_EINVALID_CERT,
                    "PEM block %d of %s has an extension that cannot be decoded; have the CA "
                    "reissue the certificate",
                    index, what);
    }
    *ret = x;
    return 0;
}

/* Every CERTIFICATE block of text, in order, into certs; more than max (0: any) is refused. */
static int read_certs(const char *what, const char *text, int max, STACK_OF(X509) * certs,
                      char *err, size_t err_len)
{
    const char *pos = text;
    struct pem_block b;
    enum scan_result r;
    int ret;

    while ((r = next_block(&pos, &b)) == SCAN_BLOCK) {
        X509 *x = NULL;

        if (strcmp(b.label, "CERTIFICATE") != 0)
            return cert_label_error(what, b.label, err, err_len);
        if (max > 0 && sk_X509_num(certs) == max)
            return fail(err, err_len, CV_EINVALID_CERT,
                        "%s has more than %d certificates; give the certificate itself, then "
                        "its intermediate CAs in order (the root may follow), and nothing else",
                        what, max);
        if ((ret = parse_cert(what, &b, sk_X509_num(certs) + 1, &x, err, err_len)) < 0)
            return ret;
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            return out_of_memory(err, err_len);
        }
    }
    if (r != SCAN_DONE)
        return scan_error(what, r, &b, err, err_len);
    if (sk_X509_num(certs) == 0)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: it has no -----BEGIN CERTIFICATE----- line; %s", what,
                    PEM_CERT_FIX);
    return check_tail(what, pos, err, err_len);
}

static bool is_encrypted(const struct pem_block *b)
{
    return strcmp(b->label, "ENCRYPTED PRIVATE KEY") == 0 ||
           memmem(b->start, b->len, "\nProc-Type: 4,ENCRYPTED", 23) != NULL;
}

static bool is_supported_key_label(const char *label)
{
    return strcmp(label, "PRIVATE KEY") == 0 || strcmp(label, "RSA PRIVATE KEY") == 0 ||
           strcmp(label, "EC PRIVATE KEY") == 0;
}

static int key_label_error(const char *what, const char *label, char *err, size_t err_len)
{
    if (strcmp(label, "CERTIFICATE") == 0)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s holds a certificate; give only the private key here, and the "
                    "certificate separately",
                    what);
    if (ends_with(label, "PUBLIC KEY"))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is a public key; give the private key the certificate was made for", what);
    if (ends_with(label, "PRIVATE KEY"))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is a %s, which is not supported; give an unencrypted PKCS#8 (PRIVATE "
                    "KEY), RSA PRIVATE KEY or EC PRIVATE KEY",
                    what, label);
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s holds a block of type %s; give the private key in PEM form (-----BEGIN PRIVATE "
                "KEY-----)",
                what, label);
}

/* Finds the one private key block of text; "EC PARAMETERS" (from openssl ecparam) is ignored. */
static int find_key_block(const char *what, const char *text, struct pem_block *key, char *err,
                          size_t err_len)
{
    const char *pos = text;
    struct pem_block b;
    enum scan_result r;
    int keys = 0;

    while ((r = next_block(&pos, &b)) == SCAN_BLOCK) {
        if (strcmp(b.label, "EC PARAMETERS") == 0)
            continue;
        if (!ends_with(b.label, "PRIVATE KEY"))
            return key_label_error(what, b.label, err, err_len);
        if (keys++ == 0)
            *key = b;
    }
    if (r != SCAN_DONE)
        return scan_error(what, r, &b, err, err_len);
    if (keys == 0)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not PEM: it has no -----BEGIN PRIVATE KEY----- line; give the private "
                    "key in PEM form",
                    what);
    if (keys > 1)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s holds %d private keys; give only the one the certificate was made for",
                    what, keys);
    return check_tail(what, pos, err, err_len);
}

/* Never prompts: the agent has no terminal, and encrypted keys are refused before this. */
static int no_passphrase(char *buf, int size, int rwflag, void *data)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)data;
    return -1;
}

static int read_key(const char *what, const char *text, EVP_PKEY **ret_key, char *err,
                    size_t err_len)
{
    struct pem_block b;
    BIO *bio;
    int r = find_key_block(what, text, &b, err, err_len);

    if (r < 0)
        return r;
    if (is_encrypted(&b))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is encrypted with a passphrase; decrypt it with: openssl pkey -in key.pem "
                    "-out key-plain.pem",
                    what);
    if (!is_supported_key_label(b.label))
        return key_label_error(what, b.label, err, err_len);
    bio = block_bio(&b);
    if (!bio)
        return out_of_memory(err, err_len);
    *ret_key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!*ret_key)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not a valid private key (damaged base64 or DER); copy it again", what);
    return 0;
}

/* Reads the key input (when there is one) into *ret_key, wiping the copy it parsed. */
static int load_key(const struct request *req, EVP_PKEY **ret_key, char *err, size_t err_len)
{
    char what[WHAT_MAX], *text;
    int r;

    snprintf(what, sizeof(what), "the key of certificate '%s'", req->name);
    r = check_raw(what, true, req->key, req->key_len, err, err_len);
    if (r < 0)
        return r;
    text = normalize(req->key, req->key_len);
    if (!text)
        return out_of_memory(err, err_len);
    r = read_key(what, text, ret_key, err, err_len);
    free_text(text, req->key_len + 1, true);
    return r;
}

static int load_certs(const struct request *req, STACK_OF(X509) * certs, char *err, size_t err_len)
{
    char what[WHAT_MAX], *text;
    int r;

    snprintf(what, sizeof(what), "certificate '%s'", req->name);
    r = check_raw(what, false, req->cert, req->cert_len, err, err_len);
    if (r < 0)
        return r;
    text = normalize(req->cert, req->cert_len);
    if (!text)
        return out_of_memory(err, err_len);
    r = read_certs(what, text, req->purpose == CERT_PURPOSE_CA_BUNDLE ? 0 : X509_CHECK_MAX_CHAIN,
                   certs, err, err_len);
    free_text(text, req->cert_len + 1, false);
    return r;
}

/* How messages name certificate i of the input: the leaf by its logical name, others by subject. */
static void describe(const struct request *req, STACK_OF(X509) * certs, int i, char *buf,
                     size_t len)
{
    char subject[SUBJECT_MAX];

    if (i == 0 && req->purpose != CERT_PURPOSE_CA_BUNDLE) {
        snprintf(buf, len, "certificate '%s'", req->name);
        return;
    }
    if (!X509_NAME_oneline(X509_get_subject_name(sk_X509_value(certs, i)), subject,
                           sizeof(subject)))
        snprintf(subject, sizeof(subject), "?");
    if (req->purpose == CERT_PURPOSE_CA_BUNDLE)
        snprintf(buf, len, "CA certificate %d ('%s') of '%s'", i + 1, subject, req->name);
    else
        snprintf(buf, len, "certificate %d ('%s') in the chain of '%s'", i + 1, subject, req->name);
}

static int asn1_to_time(const ASN1_TIME *t, time_t *ret)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *ret = timegm(&tm);
    return 0;
}

/* "2026-12-04 10:00:00 UTC", or only the day for warnings. */
static void format_time(time_t t, bool with_time, char *buf, size_t len)
{
    struct tm tm;
    size_t n = 0;

    if (gmtime_r(&t, &tm))
        n = with_time ? strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm)
                      : strftime(buf, len, "%Y-%m-%d", &tm);
    if (n == 0)
        snprintf(buf, len, "?");
}

static int check_validity(const char *what, X509 *x, time_t now, char *err, size_t err_len)
{
    time_t not_before, not_after;
    char when[64], clock[64];

    if (asn1_to_time(X509_get0_notBefore(x), &not_before) < 0 ||
        asn1_to_time(X509_get0_notAfter(x), &not_after) < 0)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s has an unreadable validity period; have the CA reissue it", what);
    if (now > not_after) {
        format_time(not_after, true, when, sizeof(when));
        return fail(err, err_len, CV_ECERT_EXPIRED,
                    "%s expired on %s; replace it with a renewed certificate", what, when);
    }
    if (now < not_before) {
        format_time(not_before, true, when, sizeof(when));
        format_time(now, true, clock, sizeof(clock));
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not valid until %s; check this node's clock (it says %s) or wait "
                    "until then",
                    what, when, clock);
    }
    return 0;
}

static int check_ec_curve(const char *what, EVP_PKEY *pkey, char *err, size_t err_len)
{
    char group[64];
    int nid;

    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        NULL))
        snprintf(group, sizeof(group), "(explicit parameters)");
    nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1)
        return 0;
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s has an EC key on curve %s, which is not supported; use P-256, P-384 or P-521 "
                "(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem) "
                "and reissue the certificate",
                what, group);
}

static const char *key_type_name(const EVP_PKEY *pkey)
{
    const char *type = pkey ? EVP_PKEY_get0_type_name(pkey) : NULL;

    return type ? type : "unknown";
}

/* Only what every TLS client accepts: RSA of 2048 bits or more, or the three NIST curves. */
static int check_public_key(const char *what, X509 *x, char *err, size_t err_len)
{
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    int bits;

    if (pkey && EVP_PKEY_is_a(pkey, "EC"))
        return check_ec_curve(what, pkey, err, err_len);
    if (!pkey || !(EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")))
        return fail(
            err, err_len, CV_EINVALID_CERT,
            "%s has a key of type %s, which is not supported; use RSA of at least 2048 bits or "
            "EC on P-256, P-384 or P-521, and reissue the certificate",
            what, key_type_name(pkey));
    bits = EVP_PKEY_get_bits(pkey);
    if (bits >= 2048)
        return 0;
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s has a %d-bit RSA key, which is too weak; make a key of at least 2048 bits "
                "(openssl genrsa -out key.pem 2048) and reissue the certificate",
                what, bits);
}

static const char *weak_digest(int nid)
{
    switch (nid) {
    case NID_sha1:
        return "SHA-1";
    case NID_md5:
    case NID_md5_sha1:
        return "MD5";
    case NID_md4:
        return "MD4";
    case NID_md2:
        return "MD2";
    default:
        return NULL;
    }
}

/* A trust anchor's self-signature is never verified, so a SHA-1 root is harmless. */
static bool is_self_signed_ca(X509 *x)
{
    uint32_t flags = X509_get_extension_flags(x);

    return (flags & EXFLAG_SS) && (flags & EXFLAG_CA);
}

static int check_signature(const char *what, X509 *x, bool may_be_anchor, char *err, size_t err_len)
{
    int md_nid = NID_undef;
    const char *weak;

    if (may_be_anchor && is_self_signed_ca(x))
        return 0;
    X509_get_signature_info(x, &md_nid, NULL, NULL, NULL);
    weak = weak_digest(md_nid);
    if (!weak)
        return 0;
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s is signed with %s, which TLS clients reject; have the CA reissue it with "
                "SHA-256 or stronger",
                what, weak);
}

/* Validity, key and signature of every certificate, the leaf first. */
static int check_each(const struct request *req, STACK_OF(X509) * certs, char *err, size_t err_len)
{
    char what[WHAT_MAX];
    int r;

    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        bool anchor = i > 0 || req->purpose == CERT_PURPOSE_CA_BUNDLE;

        describe(req, certs, i, what, sizeof(what));
        if ((r = check_validity(what, x, req->now, err, err_len)) < 0 ||
            (r = check_public_key(what, x, err, err_len)) < 0 ||
            (r = check_signature(what, x, anchor, err, err_len)) < 0)
            return r;
    }
    return 0;
}

static bool is_ca(X509 *x)
{
    return (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
}

static int check_bundle(const struct request *req, STACK_OF(X509) * certs, char *err,
                        size_t err_len)
{
    char what[WHAT_MAX];

    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (is_ca(sk_X509_value(certs, i)))
            continue;
        describe(req, certs, i, what, sizeof(what));
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not a CA (no basicConstraints CA:TRUE); a trusted CA bundle holds only "
                    "CA certificates, so remove it",
                    what);
    }
    return 0;
}

static bool names_link(X509 *issuer, X509 *subject)
{
    return X509_NAME_cmp(X509_get_issuer_name(subject), X509_get_subject_name(issuer)) == 0;
}

/* Names alone are not enough: a renewed CA keeps its name but not its key. */
static bool issued(X509 *issuer, X509 *subject)
{
    EVP_PKEY *pkey = X509_get0_pubkey(issuer);

    return pkey && names_link(issuer, subject) && X509_verify(subject, pkey) == 1;
}

/* Whether the chain would link in another order: i's issuer elsewhere, or a reversed pair. */
static bool out_of_order(STACK_OF(X509) * certs, int i)
{
    X509 *child = sk_X509_value(certs, i - 1);

    if (issued(child, sk_X509_value(certs, i)))
        return true;
    for (int j = 0; j < sk_X509_num(certs); j++)
        if (j != i && j != i - 1 && issued(sk_X509_value(certs, j), child))
            return true;
    return false;
}

static int link_error(const struct request *req, STACK_OF(X509) * certs, int i, char *err,
                      size_t err_len)
{
    char child[WHAT_MAX], parent[WHAT_MAX];

    describe(req, certs, i - 1, child, sizeof(child));
    describe(req, certs, i, parent, sizeof(parent));
    if (names_link(sk_X509_value(certs, i), sk_X509_value(certs, i - 1)))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s has the name of the issuer of %s but the signature does not verify with "
                    "its key; use the CA certificate that actually issued it (a renewed CA keeps "
                    "its name but not its key)",
                    parent, child);
    if (out_of_order(certs, i))
        return fail(err, err_len, CV_EINVALID_CERT,
                    "the chain of certificate '%s' is out of order; put the certificate itself "
                    "first, then its issuer, then that issuer's issuer",
                    req->name);
    return fail(err, err_len, CV_EINVALID_CERT,
                "%s did not issue %s, so the chain does not link; each certificate after the "
                "first must be the issuer of the one before it: add the missing intermediate or "
                "remove the unrelated certificate",
                parent, child);
}

/* After the leaf, each certificate must be the CA that issued the one before it. */
static int check_chain(const struct request *req, STACK_OF(X509) * certs, char *err, size_t err_len)
{
    char what[WHAT_MAX];

    for (int i = 1; i < sk_X509_num(certs); i++) {
        if (!issued(sk_X509_value(certs, i), sk_X509_value(certs, i - 1)))
            return link_error(req, certs, i, err, err_len);
        if (is_ca(sk_X509_value(certs, i)))
            continue;
        describe(req, certs, i, what, sizeof(what));
        return fail(err, err_len, CV_EINVALID_CERT,
                    "%s is not a CA (no basicConstraints CA:TRUE); after the certificate itself "
                    "the file holds only the CAs that issued it",
                    what);
    }
    return 0;
}

/*
 * No extension means no restriction (RFC 5280 section 4.2.1.12), as OpenSSL and browsers read
 * it, and as "openssl x509 -req" issues by default; an extension that is present must name the
 * purpose.
 */
static int check_eku(const struct request *req, X509 *leaf, char *err, size_t err_len)
{
    bool client = req->purpose == CERT_PURPOSE_CLIENT;
    const char *usage = client ? "clientAuth" : "serverAuth";

    if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE))
        return 0;
    if (X509_get_extended_key_usage(leaf) & (client ? XKU_SSL_CLIENT : XKU_SSL_SERVER))
        return 0;
    return fail(err, err_len, CV_EINVALID_CERT,
                "certificate '%s' is not for %s: its extended key usage lacks it; have it "
                "reissued with extendedKeyUsage = %s",
                req->name, usage, usage);
}

static bool has_rsa_key(X509 *x)
{
    EVP_PKEY *pkey = X509_get0_pubkey(x);

    return pkey && (EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS"));
}

/* "keyCertSign, cRLSign": the key usages a certificate has, for a message; "none" when empty. */
static void key_usage_names(uint32_t usage, char *buf, size_t len)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {KU_NON_REPUDIATION, "nonRepudiation"},
        {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {KU_KEY_AGREEMENT, "keyAgreement"},
        {KU_KEY_CERT_SIGN, "keyCertSign"},
        {KU_CRL_SIGN, "cRLSign"},
        {KU_ENCIPHER_ONLY, "encipherOnly"},
        {KU_DECIPHER_ONLY, "decipherOnly"},
    };
    size_t used = 0;

    snprintf(buf, len, "none");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int n;

        if (!(usage & names[i].bit))
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/*
 * A server or client certificate must be an end entity that can sign the handshake: TLS clients
 * refuse a CA certificate as a peer's (Firefox: "CA certificate used as end-entity") and a key
 * usage without digitalSignature ("unsuitable certificate purpose"), which is what a CA
 * certificate given by mistake usually has. No keyUsage extension is no restriction (RFC 5280
 * section 4.2.1.3), as for the extended key usage; keyEncipherment (RSA key exchange) may come
 * with digitalSignature but does not replace it, since ECDHE and TLS 1.3 sign.
 */
static int check_leaf_usage(const struct request *req, X509 *leaf, char *err, size_t err_len)
{
    bool ca = is_ca(leaf), self_signed = (X509_get_extension_flags(leaf) & EXFLAG_SS) != 0;
    bool no_signature = (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
                        !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    const char *fix_usage =
        has_rsa_key(leaf) ? "digitalSignature, keyEncipherment" : "digitalSignature";
    char usages[160];

    key_usage_names(X509_get_key_usage(leaf), usages, sizeof(usages));
    if (ca && no_signature)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "certificate '%s' is a CA certificate (basicConstraints CA:TRUE) and its key "
                    "usage lacks digitalSignature (it has %s), so TLS clients refuse it as a "
                    "%s's certificate: issue a leaf certificate from that CA "
                    "(basicConstraints = CA:FALSE, keyUsage = %s) and give that",
                    req->name, usages, req->purpose == CERT_PURPOSE_CLIENT ? "client" : "server",
                    fix_usage);
    if (ca)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "certificate '%s' is a CA certificate (basicConstraints CA:TRUE), which TLS "
                    "clients refuse as a %s's certificate: %s",
                    req->name, req->purpose == CERT_PURPOSE_CLIENT ? "client" : "server",
                    self_signed ? "make a self-signed leaf with openssl req -x509 -addext "
                                  "basicConstraints=critical,CA:FALSE, or issue a leaf from a CA"
                                : "issue a leaf certificate (basicConstraints = CA:FALSE) from "
                                  "that CA and give that");
    if (no_signature)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "certificate '%s' has a key usage without digitalSignature (it has %s), so "
                    "TLS clients refuse it (unsuitable certificate purpose): have it reissued "
                    "with keyUsage = %s",
                    req->name, usages, fix_usage);
    return 0;
}

static int check_structure(const struct request *req, struct x509_checked *c, char *err,
                           size_t err_len)
{
    X509 *leaf = sk_X509_value(c->chain, 0);
    int r;

    if (req->purpose == CERT_PURPOSE_CA_BUNDLE)
        return check_bundle(req, c->chain, err, err_len);
    if ((r = check_chain(req, c->chain, err, err_len)) < 0 ||
        (r = check_eku(req, leaf, err, err_len)) < 0 ||
        (r = check_leaf_usage(req, leaf, err, err_len)) < 0)
        return r;
    if (c->key && EVP_PKEY_eq(X509_get0_pubkey(leaf), c->key) != 1)
        return fail(err, err_len, CV_EINVALID_CERT, "key does not match certificate '%s'",
                    req->name);
    return 0;
}

/* The warning names whichever certificate expires first, leaf or not. */
static void set_warning(const struct request *req, struct x509_checked *c, STACK_OF(X509) * certs)
{
    time_t soonest = 0, t;
    int which = -1;
    long long days;
    char what[WHAT_MAX], date[16]; /* sized so that the warning always fits */

    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (asn1_to_time(X509_get0_notAfter(sk_X509_value(certs, i)), &t) == 0 &&
            (which < 0 || t < soonest)) {
            soonest = t;
            which = i;
        }
    }
    if (which < 0 || soonest - req->now >= (time_t)X509_CHECK_WARN_DAYS * DAY_SECONDS)
        return;
    describe(req, certs, which, what, sizeof(what));
    format_time(soonest, false, date, sizeof(date));
    days = (long long)(soonest - req->now) / DAY_SECONDS;
    if (days == 0)
        snprintf(c->warning, sizeof(c->warning), "%s expires in less than a day (%s)", what, date);
    else
        snprintf(c->warning, sizeof(c->warning), "%s expires in %lld day%s (%s)", what, days,
                 days == 1 ? "" : "s", date);
}

/* Fills in what callers read besides the objects; c->chain still holds every certificate. */
static void summarize(const struct request *req, struct x509_checked *c)
{
    X509 *first = sk_X509_value(c->chain, 0);

    asn1_to_time(X509_get0_notBefore(first), &c->not_before);
    asn1_to_time(X509_get0_notAfter(first), &c->not_after);
    x509_fingerprint(first, c->fingerprint, sizeof(c->fingerprint));
    set_warning(req, c, c->chain);
    if (req->purpose != CERT_PURPOSE_CA_BUNDLE)
        c->leaf = sk_X509_shift(c->chain);
}

static int check_all(const struct request *req, struct x509_checked *c, char *err, size_t err_len)
{
    int r;

    if (req->purpose == CERT_PURPOSE_CA_BUNDLE && req->key)
        return fail(err, err_len, CV_EINVALID_CERT,
                    "certificate '%s' is a CA bundle and takes no key; give only the CA "
                    "certificates",
                    req->name);
    if ((r = load_certs(req, c->chain, err, err_len)) < 0)
        return r;
    if (req->key && (r = load_key(req, &c->key, err, err_len)) < 0)
        return r;
    if ((r = check_each(req, c->chain, err, err_len)) < 0 ||
        (r = check_structure(req, c, err, err_len)) < 0)
        return r;
    summarize(req, c);
    return 0;
}

int x509_check(const char *name, enum cert_purpose purpose, const char *cert_pem, size_t cert_len,
               const char *key_pem, size_t key_len, time_t now, struct x509_checked **ret_checked,
               char *err, size_t err_len)
{
    const struct request req = {name, purpose, cert_pem, cert_len, key_pem, key_len, now};
    struct x509_checked *c = calloc(1, sizeof(*c));
    int r;

    if (!c || !(c->chain = sk_X509_new_null())) {
        free(c);
        return out_of_memory(err, err_len);
    }
    r = check_all(&req, c, err, err_len);
    /* Whatever OpenSSL queued while parsing must not surface in a later, unrelated call. */
    ERR_clear_error();
    if (r < 0) {
        x509_checked_free(c);
        return r;
    }
    *ret_checked = c;
    return 0;
}

void x509_checked_free(struct x509_checked *checked)
{
    if (!checked)
        return;
    X509_free(checked->leaf);
    sk_X509_pop_free(checked->chain, X509_free);
    EVP_PKEY_free(checked->key);
    free(checked);
}

void x509_fingerprint(X509 *cert, char *buf, size_t len)
{
    tls_cert_fingerprint(cert, buf, len);
}
