/*
 * Join tokens (issue 17), shaped as kubeadm's bootstrap tokens: "<id>.<secret>", six and
 * sixteen characters of [a-z0-9]. The id names the token (join/<id> in the store, spec.h) and
 * may be shown; the secret proves that a joiner holds the token and is kept only as its
 * SHA-256. Sixteen random characters are 82 bits: no offline guess from the hash beats asking
 * the peer, so a fast hash is enough (a password would need a slow one).
 *
 * With a token goes the SHA-256 of the cluster CA's public key (its DER SubjectPublicKeyInfo,
 * as kubeadm's --discovery-token-ca-cert-hash): the joiner checks the peer's CA against it
 * before it sends the token. Pure functions; the parsers take outside input
 * (tests/fuzz/fuzz_join_token.c).
 */
#ifndef CERTVISOR_CLUSTER_JOIN_TOKEN_H
#define CERTVISOR_CLUSTER_JOIN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define JOIN_TOKEN_ID_LEN 6
#define JOIN_TOKEN_SECRET_LEN 16
#define JOIN_TOKEN_TEXT_LEN (JOIN_TOKEN_ID_LEN + 1 + JOIN_TOKEN_SECRET_LEN)
#define JOIN_TTL_DEFAULT_S 3600L
#define JOIN_TTL_MIN_S 60L
#define JOIN_TTL_MAX_S (7L * 24 * 3600)
#define JOIN_CA_HASH_TEXT_LEN (7 + 64) /* "sha256:" and 64 hex digits */
#define JOIN_DESCRIPTION_MAX 255       /* bytes of a token's description (spec.h holds 256) */

/* Six characters of [a-z0-9]. */
bool join_token_id_valid(const char *id);

/* A new token from the random generator. Returns 0, or -EIO when it failed. */
int join_token_generate(char id[JOIN_TOKEN_ID_LEN + 1], char secret[JOIN_TOKEN_SECRET_LEN + 1]);

/* "<id>.<secret>" into its parts. Returns 0, or -EINVAL with err naming the expected form
 * (never echoing the text: it may be a mistyped secret). */
int join_token_parse(const char *text, char id[JOIN_TOKEN_ID_LEN + 1],
                     char secret[JOIN_TOKEN_SECRET_LEN + 1], char *err, size_t err_len);

/* Lowercase hex of SHA-256 of the secret. */
void join_token_secret_sha256(const char *secret, char hex[65]);

/* Whether secret hashes to expected_hex, compared in constant time. */
bool join_token_secret_matches(const char *secret, const char *expected_hex);

/* A lifetime: "90s", "30m", "1h", "2d" or plain seconds, between JOIN_TTL_MIN_S and
 * JOIN_TTL_MAX_S. Returns 0, or -EINVAL with err saying the form and the bounds. */
int join_ttl_parse(const char *text, long *ret_seconds, char *err, size_t err_len);

/* "sha256:<hex>" of the public key of the first certificate of ca_pem. Returns 0, or
 * -EINVAL with err. */
int join_ca_cert_hash(const char *ca_pem, size_t len, char *out, size_t out_len, char *err,
                      size_t err_len);

#endif
