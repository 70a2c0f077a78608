/* Describing certificates for operators: subject, issuer, names, expiry, key, fingerprint. */
#ifndef CERTVISOR_CERT_INFO_H
#define CERTVISOR_CERT_INFO_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/*
 * Describes the first certificate of a PEM text as a JSON object: subject,
 * issuer (RFC 2253), sans (array of "DNS:x" / "IP:y"), not_before and
 * not_after ("YYYY-MM-DD HH:MM:SS UTC"), days_left (from now, may be
 * negative), key ("ECDSA P-256", "RSA 2048"), fingerprint (SHA-256) and
 * serial (hex). Returns the object, or NULL when the text holds no
 * certificate.
 */
json_t *cert_info_describe(const char *pem, size_t len, time_t now);

/*
 * Writes the SHA-256 fingerprint of the first certificate of a PEM text into
 * buf (at least 96 bytes), whatever its validity. Returns 0, or -EINVAL when
 * the text holds no certificate.
 */
int cert_info_fingerprint(const char *pem, size_t len, char *buf, size_t buf_len);

/*
 * Sets *ret_not_after to the end of validity of the first certificate of a
 * PEM text (Unix time). Returns 0, or -EINVAL when the text holds no
 * certificate or its date cannot be read.
 */
int cert_info_not_after(const char *pem, size_t len, time_t *ret_not_after);

#endif
