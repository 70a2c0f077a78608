/* A user's certificate subject line ("CN=ops, OU=Platform, O=Example"): parsed and matched. */
#ifndef CERTVISOR_SUBJECT_LINE_H
#define CERTVISOR_SUBJECT_LINE_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#define SUBJECT_LINE_MAX 1024 /* characters of a subject line */
#define SUBJECT_LINE_MAX_ATTRS 32

/* How a client certificate is matched to a subject line (mtls_client_cert_subject_validation_type).
 */
enum subject_match {
    SUBJECT_MATCH_SAN_CN,       /* the certificate's CN or a DNS/email SAN is the line's CN */
    SUBJECT_MATCH_FULL_SUBJECT, /* the certificate's subject is the line, attribute by attribute */
};

struct subject_attr {
    int nid;     /* NID_commonName, NID_organizationalUnitName, ... */
    char *value; /* UTF-8, unescaped */
};

/* A parsed subject line: its attributes in the order written. */
struct subject_line {
    size_t n;
    struct subject_attr attrs[SUBJECT_LINE_MAX_ATTRS];
};

/*
 * Parses "TYPE=value, TYPE=value, ...": attribute types by their short or
 * long names, any case (CN, OU, O, L, ST, C, emailAddress, DC, UID, ...);
 * values with RFC 4514 escapes (\, \+ \\ \" \= \; \< \> \# and \XX), blanks
 * around separators and values ignored. Exactly one CN; C is two letters;
 * no empty value, unknown type, unescaped '+' (multi-valued RDN) or control
 * character. Returns 0 with a new line, or -EINVAL with a message naming the
 * problem, or -ENOMEM.
 */
int subject_line_parse(const char *text, struct subject_line **ret_line, char *err, size_t err_len);

/* The canonical text: "CN=ops, OU=Platform, O=Example", short names, escaped values (malloc'd). */
char *subject_line_format(const struct subject_line *line);

void subject_line_free(struct subject_line *line);

/* The line's CN (there is always exactly one). */
const char *subject_line_cn(const struct subject_line *line);

/*
 * True when cert belongs to the line under how:
 *   SAN_CN        the certificate's CN, one of its DNS SANs (ASCII case-insensitive, as DNS
 *                 names are) or one of its email SANs equals the line's CN;
 *   FULL_SUBJECT  the certificate's subject has exactly the line's attributes, in any order,
 *                 each value equal byte for byte (case-sensitive).
 */
bool subject_line_matches(const struct subject_line *line, X509 *cert, enum subject_match how);

/* Parses "san_cn" or "full_subject". Returns 0 or -EINVAL. */
int subject_match_parse(const char *text, enum subject_match *ret_how);

#endif
