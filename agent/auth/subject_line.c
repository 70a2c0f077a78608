/* A user's certificate subject line ("CN=ops, OU=Platform, O=Example"): parsed and matched. */
#include "subject_line.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The attribute types a subject line may name: those of distinguished names in practice. */
static const int known_nids[] = {
    NID_commonName,
    NID_organizationalUnitName,
    NID_organizationName,
    NID_localityName,
    NID_stateOrProvinceName,
    NID_countryName,
    NID_pkcs9_emailAddress,
    NID_domainComponent,
    NID_userId,
    NID_serialNumber,
    NID_title,
    NID_givenName,
    NID_surname,
    NID_streetAddress,
    NID_postalCode,
    NID_initials,
    NID_pseudonym,
    NID_generationQualifier,
    NID_dnQualifier,
    NID_name,
};

/* Spellings operators use that are neither OpenSSL's short nor its long name. */
static const struct {
    const char *word;
    int nid;
} aliases[] = {{"E", NID_pkcs9_emailAddress},
               {"EMAIL", NID_pkcs9_emailAddress},
               {"S", NID_stateOrProvinceName}};

static bool known(int nid)
{
    for (size_t i = 0; i < sizeof(known_nids) / sizeof(known_nids[0]); i++)
        if (known_nids[i] == nid)
            return true;
    return false;
}

static int type_nid(const char *type)
{
    for (size_t i = 0; i < sizeof(known_nids) / sizeof(known_nids[0]); i++)
        if (strcasecmp(type, OBJ_nid2sn(known_nids[i])) == 0 ||
            strcasecmp(type, OBJ_nid2ln(known_nids[i])) == 0)
            return known_nids[i];
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(type, aliases[i].word) == 0)
            return aliases[i].nid;
    return NID_undef;
}

void subject_line_free(struct subject_line *line)
{
    if (!line)
        return;
    for (size_t i = 0; i < line->n; i++)
        free(line->attrs[i].value);
    free(line);
}

/*
 * Reads one "TYPE=value" starting at *pos up to an unescaped ',' or the end,
 * into type and value (each at least SUBJECT_LINE_MAX + 1). Leaves *pos after
 * the separator, and *ret_separator true when there was one (an escaped comma
 * at the end of a value is not one). Returns 0 or -EINVAL with a message.
 */
static int read_rdn(const char *text, size_t *pos, char *type, char *value, bool *ret_separator,
                    char *err, size_t err_len)
{
    size_t i = *pos, t = 0, v = 0, kept = 0; /* kept: value length up to its last escaped byte */

    while (text[i] == ' ')
        i++;
    while (text[i] && text[i] != '=' && text[i] != ',') {
        if (!isalnum((unsigned char)text[i]) && text[i] != '.' && text[i] != ' ') {
            snprintf(err, err_len, "'%c' at position %zu cannot be part of an attribute type",
                     text[i], i + 1);
            return -EINVAL;
        }
        type[t++] = text[i++];
    }
    while (t > 0 && type[t - 1] == ' ')
        t--;
    type[t] = '\0';
    if (text[i] != '=' || t == 0) {
        snprintf(err, err_len,
                 "expected TYPE=value at position %zu (attributes are separated by commas, "
                 "e.g. \"CN=ops, OU=Platform, O=Example\")",
                 *pos + 1);
        return -EINVAL;
    }
    i++;
    while (text[i] == ' ')
        i++;
    while (text[i] && text[i] != ',') {
        char ch = text[i];

        if (ch == '+') {
            snprintf(err, err_len,
                     "unescaped '+' at position %zu: multi-valued attributes are not supported "
                     "(write \\+ for a plus sign in a value)",
                     i + 1);
            return -EINVAL;
        }
        if (ch == '\\') {
            int hi = OPENSSL_hexchar2int((unsigned char)text[i + 1]),
                lo = hi >= 0 ? OPENSSL_hexchar2int((unsigned char)text[i + 2]) : -1;

            if (hi >= 0 && lo >= 0 && hi + lo == 0) {
                snprintf(err, err_len, "\\00 at position %zu: a value cannot hold a NUL", i + 1);
                return -EINVAL;
            }
            if (hi >= 0 && lo >= 0) {
                value[v++] = (char)(hi * 16 + lo);
                i += 3;
            } else if (text[i + 1] && strchr(",+\"\\<>;=# ", text[i + 1])) {
                value[v++] = text[i + 1];
                i += 2;
            } else {
                snprintf(err, err_len, "'\\' at position %zu escapes nothing that needs it", i + 1);
                return -EINVAL;
            }
            kept = v;
            continue;
        }
        value[v++] = ch;
        i++;
        if (ch != ' ')
            kept = v;
    }
    value[kept] = '\0'; /* blanks before the separator are not part of the value */
    *ret_separator = text[i] == ',';
    *pos = text[i] == ',' ? i + 1 : i;
    return 0;
}

static bool has_control_character(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* True for well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const unsigned char *p)
{
    while (*p) {
        unsigned cp, extra;

        if (*p < 0x80) {
            p++;
            continue;
        }
        if ((*p & 0xe0) == 0xc0)
            cp = *p & 0x1f, extra = 1;
        else if ((*p & 0xf0) == 0xe0)
            cp = *p & 0x0f, extra = 2;
        else if ((*p & 0xf8) == 0xf0)
            cp = *p & 0x07, extra = 3;
        else
            return false;
        for (unsigned i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += extra + 1;
    }
    return true;
}

static int check_value(int nid, const char *type, const char *value, char *err, size_t err_len)
{
    if (!*value) {
        snprintf(err, err_len, "%s has an empty value", type);
        return -EINVAL;
    }
    if (has_control_character(value) || !utf8_valid((const unsigned char *)value)) {
        snprintf(err, err_len, "%s holds a control character or bytes that are not UTF-8", type);
        return -EINVAL;
    }
    if (nid == NID_countryName && (strlen(value) != 2 || !isalpha((unsigned char)value[0]) ||
                                   !isalpha((unsigned char)value[1]))) {
        snprintf(err, err_len, "C='%s' is not a two-letter country code", value);
        return -EINVAL;
    }
    return 0;
}

int subject_line_parse(const char *text, struct subject_line **ret_line, char *err, size_t err_len)
{
    struct subject_line *line;
    char type[SUBJECT_LINE_MAX + 1], value[SUBJECT_LINE_MAX + 1];
    size_t pos = 0, cns = 0, len = strlen(text);
    bool separator = false;
    int r = 0;

    if (len == 0 || len > SUBJECT_LINE_MAX || has_control_character(text)) {
        snprintf(err, err_len,
                 len == 0 ? "the subject line is empty (e.g. \"CN=ops, OU=Platform, O=Example\")"
                 : len > SUBJECT_LINE_MAX ? "the subject line is longer than 1024 characters"
                                          : "the subject line holds a control character");
        return -EINVAL;
    }
    line = calloc(1, sizeof(*line));
    if (!line)
        return -ENOMEM;
    while (r == 0 && pos < len) {
        int nid;

        r = read_rdn(text, &pos, type, value, &separator, err, err_len);
        if (r < 0)
            break;
        nid = type_nid(type);
        if (nid == NID_undef) {
            snprintf(err, err_len,
                     "'%s' is not an attribute type of a subject (use CN, OU, O, L, ST, C, "
                     "emailAddress, DC, UID, ...)",
                     type);
            r = -EINVAL;
            break;
        }
        r = check_value(nid, type, value, err, err_len);
        if (r == 0 && line->n == SUBJECT_LINE_MAX_ATTRS) {
            snprintf(err, err_len, "the subject line has more than %d attributes",
                     SUBJECT_LINE_MAX_ATTRS);
            r = -EINVAL;
        }
        if (r < 0)
            break;
        line->attrs[line->n].nid = nid;
        line->attrs[line->n].value = strdup(value);
        if (!line->attrs[line->n++].value)
            r = -ENOMEM;
        cns += nid == NID_commonName;
        if (r == 0 && pos == len && separator) {
            snprintf(err, err_len, "the subject line ends with a comma");
            r = -EINVAL;
        }
    }
    if (r == 0 && cns != 1) {
        snprintf(err, err_len,
                 cns ? "the subject line has more than one CN"
                     : "the subject line has no CN (the common name names the user)");
        r = -EINVAL;
    }
    if (r < 0) {
        subject_line_free(line);
        return r;
    }
    *ret_line = line;
    return 0;
}

/* Appends value with RFC 4514's escapes to out (which has room for 3 * strlen + 1). */
static void put_escaped(char *out, const char *value)
{
    size_t len = strlen(value), o = strlen(out);

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];

        if (strchr(",+\"\\<>;=", ch) || (ch == ' ' && (i == 0 || i == len - 1)) ||
            (ch == '#' && i == 0)) {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

char *subject_line_format(const struct subject_line *line)
{
    size_t size = 1;
    char *out;

    for (size_t i = 0; i < line->n; i++)
        size += strlen(OBJ_nid2sn(line->attrs[i].nid)) + 3 + 2 * strlen(line->attrs[i].value);
    out = calloc(1, size);
    if (!out)
        return NULL;
    for (size_t i = 0; i < line->n; i++) {
        if (i)
            strcat(out, ", ");
        strcat(out, OBJ_nid2sn(line->attrs[i].nid));
        strcat(out, "=");
        put_escaped(out, line->attrs[i].value);
    }
    return out;
}

const char *subject_line_cn(const struct subject_line *line)
{
    for (size_t i = 0; i < line->n; i++)
        if (line->attrs[i].nid == NID_commonName)
            return line->attrs[i].value;
    return "";
}

int subject_match_parse(const char *text, enum subject_match *ret_how)
{
    if (strcmp(text, "san_cn") == 0)
        *ret_how = SUBJECT_MATCH_SAN_CN;
    else if (strcmp(text, "full_subject") == 0)
        *ret_how = SUBJECT_MATCH_FULL_SUBJECT;
    else
        return -EINVAL;
    return 0;
}

/* True when the ASN.1 string is exactly text (UTF-8, no embedded NUL). */
static bool asn1_equals(const ASN1_STRING *string, const char *text, bool ignore_case)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, string);
    bool equal = len >= 0 && (size_t)len == strlen(text) &&
                 memchr(utf8, '\0', (size_t)len) == NULL &&
                 (ignore_case ? strncasecmp((char *)utf8, text, (size_t)len) == 0
                              : memcmp(utf8, text, (size_t)len) == 0);

    OPENSSL_free(utf8);
    return equal;
}

static bool matches_full_subject(const struct subject_line *line, X509 *cert)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    bool used[SUBJECT_LINE_MAX_ATTRS] = {false};
    int count = X509_NAME_entry_count(name);

    if (count < 0 || (size_t)count != line->n)
        return false;
    /* Equality is exact, so taking the first unused equal attribute never misses a matching. */
    for (int e = 0; e < count; e++) {
        const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, e);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
        bool found = false;

        if (!known(nid))
            return false; /* an attribute no subject line can name */
        for (size_t i = 0; i < line->n && !found; i++) {
            if (used[i] || line->attrs[i].nid != nid ||
                !asn1_equals(X509_NAME_ENTRY_get_data(entry), line->attrs[i].value, false))
                continue;
            used[i] = found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

static bool matches_san_cn(const struct subject_line *line, X509 *cert)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    const char *cn = subject_line_cn(line);
    GENERAL_NAMES *sans;
    bool found = false;

    for (int e = -1; !found && (e = X509_NAME_get_index_by_NID(name, NID_commonName, e)) >= 0;)
        found = asn1_equals(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, e)), cn, false);
    sans = found ? NULL : X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && !found && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *san = sk_GENERAL_NAME_value(sans, i);

        if (san->type == GEN_DNS)
            found = asn1_equals(san->d.dNSName, cn, true);
        else if (san->type == GEN_EMAIL)
            found = asn1_equals(san->d.rfc822Name, cn, false);
    }
    GENERAL_NAMES_free(sans);
    return found;
}

bool subject_line_matches(const struct subject_line *line, X509 *cert, enum subject_match how)
{
    return how == SUBJECT_MATCH_FULL_SUBJECT ? matches_full_subject(line, cert)
                                             : matches_san_cn(line, cert);
}
