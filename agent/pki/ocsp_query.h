/*
 * Asking an OCSP responder for a certificate's status, and checking the answer (RFC 6960):
 * the work of agent/apply/stapling.c's offload jobs. Everything here runs on a worker thread
 * and touches only what its query owns; the checks are also what the fuzz target drives.
 */
#ifndef CERTVISOR_OCSP_QUERY_H
#define CERTVISOR_OCSP_QUERY_H

#include <limits.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The largest answer taken from a responder (and the largest file read back). */
#define OCSP_RESPONSE_MAX (64 * 1024)

/* What a responder says of a certificate; NONE: no verified answer is held. */
enum ocsp_cert_status {
    OCSP_STATUS_NONE,
    OCSP_STATUS_GOOD,
    OCSP_STATUS_REVOKED,
    OCSP_STATUS_UNKNOWN
};

/* "NONE", "GOOD", "REVOKED", "UNKNOWN": the REST API's and the CLI's words. */
const char *ocsp_cert_status_name(enum ocsp_cert_status status);

/* A verified answer, as the status commands show it (times: 0 when the answer has none). */
struct ocsp_answer {
    enum ocsp_cert_status status;
    time_t produced_at, this_update, next_update;
    time_t revocation_time;
    int revocation_reason; /* OCSP_REVOKED_STATUS_*, -1 when none is given */
};

/* The certificate asked about and what its answer must chain to. */
struct ocsp_subject {
    X509 *leaf;
    X509 *issuer;
    STACK_OF(X509) * chain; /* the certificate file's others: a delegated signer may be there */
    X509_STORE *trust;      /* the issuer (a trust anchor by itself) and the cluster CA */
};

/*
 * Loads the subject from a certificate file (leaf, then its chain) and ca_path (the cluster
 * CA, which issued the generated certificates): the issuer is the first of the chain, then of
 * ca_path, that issued the leaf. Errors say which is missing. Free with ocsp_subject_clear().
 */
int ocsp_subject_load(const char *cert_path, const char *ca_path, struct ocsp_subject *subject,
                      char *err, size_t err_len);
void ocsp_subject_clear(struct ocsp_subject *subject);

/* The http:// OCSP responder the leaf's Authority Information Access names, or an error. */
int ocsp_responder_url(X509 *leaf, char *buf, size_t len, char *err, size_t err_len);

/* The responder URL of the leaf in a certificate file ("" with none, or unreadable): quick
 * enough for the loop (one PEM read, no signature checked). */
void ocsp_responder_of_file(const char *cert_path, char *buf, size_t len);

/*
 * Checks a DER answer for the subject: a successful response, exactly the DER given, signed by
 * the issuer or a responder it delegated to (OCSP_basic_verify), the request's nonce echoed
 * when the responder echoes one (request NULL: an answer read back from disk), a status for
 * this very certificate, and valid now (five minutes of clock skew). Returns 0 with the
 * answer, or -EBADMSG with the reason in err.
 */
int ocsp_answer_check(const unsigned char *der, size_t len, const struct ocsp_subject *subject,
                      OCSP_REQUEST *request, struct ocsp_answer *answer, char *err, size_t err_len);

/* One job for a worker: ask (or, with read_back, only re-check the stored answer). */
struct ocsp_query {
    /* in */
    char cert_path[PATH_MAX]; /* the generation's certificate file */
    char ca_path[PATH_MAX];   /* the cluster CA */
    char out_path[PATH_MAX];  /* where a verified answer is written (atomically) */
    int timeout_seconds;
    bool read_back; /* check the answer already at out_path, without asking */
    /* out */
    int result; /* 0, or a negative errno with error */
    char responder_url[512];
    char error[768];
    struct ocsp_answer answer;
    bool written; /* a new answer is at out_path */
    bool removed; /* read_back: the stored answer was no longer valid and was removed */
};

/* Runs the query (on a worker thread: it blocks for up to timeout_seconds). */
void ocsp_query_run(struct ocsp_query *query);

#endif
