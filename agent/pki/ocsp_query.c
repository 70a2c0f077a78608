/* Asking an OCSP responder for a certificate's status, and checking the answer. */
#include "ocsp_query.h"

#include "fsutil.h"
#include "tls_context.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The clock skew allowed between this node and the responder. */
#define OCSP_SKEW_SECONDS 300

const char *ocsp_cert_status_name(enum ocsp_cert_status status)
{
    switch (status) {
    case OCSP_STATUS_GOOD:
        return "GOOD";
    case OCSP_STATUS_REVOKED:
        return "REVOKED";
    case OCSP_STATUS_UNKNOWN:
        return "UNKNOWN";
    default:
        return "NONE";
    }
}

__attribute__((format(printf, 4, 5))) static int fail(int r, char *err, size_t err_len,
                                                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return r;
}

static STACK_OF(X509) * read_certs(const char *path)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    BIO *in = BIO_new_file(path, "r");
    X509 *cert;

    if (!certs || !in) {
        BIO_free(in);
        sk_X509_free(certs);
        return NULL;
    }
    while ((cert = PEM_read_bio_X509(in, NULL, NULL, NULL)))
        if (!sk_X509_push(certs, cert))
            X509_free(cert);
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(in);
    if (sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        return NULL;
    }
    return certs;
}

/* The first certificate of certs (from index from) that issued leaf, with a reference. */
static X509 *find_issuer(STACK_OF(X509) * certs, int from, X509 *leaf)
{
    for (int i = from; certs && i < sk_X509_num(certs); i++)
        if (X509_check_issued(sk_X509_value(certs, i), leaf) == X509_V_OK) {
            X509_up_ref(sk_X509_value(certs, i));
            return sk_X509_value(certs, i);
        }
    return NULL;
}

void ocsp_subject_clear(struct ocsp_subject *subject)
{
    X509_free(subject->leaf);
    X509_free(subject->issuer);
    sk_X509_pop_free(subject->chain, X509_free);
    X509_STORE_free(subject->trust);
    memset(subject, 0, sizeof(*subject));
}

int ocsp_subject_load(const char *cert_path, const char *ca_path, struct ocsp_subject *subject,
                      char *err, size_t err_len)
{
    STACK_OF(X509) *ca = NULL;
    int r = -EINVAL;

    memset(subject, 0, sizeof(*subject));
    subject->chain = read_certs(cert_path);
    if (!subject->chain)
        return fail(-EINVAL, err, err_len, "%s: no certificate can be read", cert_path);
    subject->leaf = sk_X509_shift(subject->chain);
    subject->issuer = find_issuer(subject->chain, 0, subject->leaf);
    if (!subject->issuer && (ca = read_certs(ca_path)))
        subject->issuer = find_issuer(ca, 0, subject->leaf);
    if (!subject->issuer) {
        fail(-EINVAL, err, err_len,
             "the issuer of the proxy certificate is neither in its chain nor the cluster CA: "
             "set the certificate with its issuing CA after it in certificate_file");
        goto out;
    }
    /* The issuer is the anchor: the answer must come from it or from whom it delegated to. */
    subject->trust = X509_STORE_new();
    if (!subject->trust || X509_STORE_add_cert(subject->trust, subject->issuer) != 1) {
        fail(-ENOMEM, err, err_len, "out of memory");
        goto out;
    }
    X509_STORE_set_flags(subject->trust, X509_V_FLAG_PARTIAL_CHAIN);
    r = 0;
out:
    sk_X509_pop_free(ca, X509_free);
    if (r < 0)
        ocsp_subject_clear(subject);
    return r;
}

int ocsp_responder_url(X509 *leaf, char *buf, size_t len, char *err, size_t err_len)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(leaf);
    const char *url = NULL;
    int r;

    for (int i = 0; urls && i < sk_OPENSSL_STRING_num(urls) && !url; i++)
        if (strncmp(sk_OPENSSL_STRING_value(urls, i), "http://", 7) == 0)
            url = sk_OPENSSL_STRING_value(urls, i);
    if (!url)
        r = fail(-ENOENT, err, err_len,
                 urls ? "the proxy certificate names no http:// OCSP responder in its Authority "
                        "Information Access (only %s)"
                      : "the proxy certificate names no OCSP responder (it has no Authority "
                        "Information Access OCSP URI)%s",
                 urls ? sk_OPENSSL_STRING_value(urls, 0) : "");
    else if (strlen(url) >= len)
        r = fail(-ENAMETOOLONG, err, err_len, "the OCSP responder URL is longer than %zu bytes",
                 len - 1);
    else
        r = (snprintf(buf, len, "%s", url), 0);
    X509_email_free(urls);
    return r;
}

void ocsp_responder_of_file(const char *cert_path, char *buf, size_t len)
{
    BIO *in = BIO_new_file(cert_path, "r");
    X509 *leaf = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    char err[256];

    if (!leaf || ocsp_responder_url(leaf, buf, len, err, sizeof(err)) < 0)
        snprintf(buf, len, "%s", "");
    X509_free(leaf);
    BIO_free(in);
    ERR_clear_error();
}

static time_t to_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;

    return t && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

int ocsp_answer_check(const unsigned char *der, size_t len, const struct ocsp_subject *subject,
                      OCSP_REQUEST *request, struct ocsp_answer *answer, char *err, size_t err_len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *response =
        len <= OCSP_RESPONSE_MAX ? d2i_OCSP_RESPONSE(NULL, &p, (long)len) : NULL;
    ASN1_GENERALIZEDTIME *revoked_at = NULL, *this_update = NULL, *next_update = NULL;
    OCSP_BASICRESP *basic = NULL;
    OCSP_CERTID *id = NULL;
    int status, reason = -1, r = -EBADMSG;
    char why[256];

    memset(answer, 0, sizeof(*answer));
    if (!response || p != der + len) {
        fail(r, err, err_len, "the answer is not one DER OCSP response (%zu bytes, at most %d)",
             len, OCSP_RESPONSE_MAX);
        goto out;
    }
    status = OCSP_response_status(response);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        fail(r, err, err_len, "the responder refused the request: %s",
             OCSP_response_status_str(status));
        goto out;
    }
    basic = OCSP_response_get1_basic(response);
    if (!basic) {
        fail(r, err, err_len, "the response holds no basic OCSP response");
        goto out;
    }
    /* 1: echoed; 2, 3, -1: no nonce on one side (many responders send cached answers). */
    if (request && OCSP_check_nonce(request, basic) == 0) {
        fail(r, err, err_len, "the response's nonce is not the request's (a replayed answer?)");
        goto out;
    }
    if (OCSP_basic_verify(basic, subject->chain, subject->trust, 0) <= 0) {
        tls_error_string(why, sizeof(why));
        fail(r, err, err_len,
             "the response is not signed by the certificate's issuer or a responder it "
             "delegated to (%s)",
             why);
        goto out;
    }
    id = OCSP_cert_to_id(NULL, subject->leaf, subject->issuer);
    if (!id || OCSP_resp_find_status(basic, id, &status, &reason, &revoked_at, &this_update,
                                     &next_update) != 1) {
        fail(r, err, err_len, "the response holds no status for this certificate");
        goto out;
    }
    if (OCSP_check_validity(this_update, next_update, OCSP_SKEW_SECONDS, -1) != 1) {
        fail(r, err, err_len,
             "the response is not valid now (its thisUpdate is in the future or "
             "its nextUpdate has passed)");
        goto out;
    }
    answer->status = status == V_OCSP_CERTSTATUS_GOOD      ? OCSP_STATUS_GOOD
                     : status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_STATUS_REVOKED
                                                           : OCSP_STATUS_UNKNOWN;
    answer->produced_at = to_time(OCSP_resp_get0_produced_at(basic));
    answer->this_update = to_time(this_update);
    answer->next_update = to_time(next_update);
    answer->revocation_time = to_time(revoked_at);
    answer->revocation_reason = status == V_OCSP_CERTSTATUS_REVOKED ? reason : -1;
    r = 0;
out:
    ERR_clear_error();
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(response);
    return r;
}

/* The request for the subject's certificate, with a fresh nonce. */
static OCSP_REQUEST *make_request(const struct ocsp_subject *subject)
{
    OCSP_REQUEST *request = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, subject->leaf, subject->issuer);

    if (!request || !id || !OCSP_request_add0_id(request, id)) {
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(request);
        return NULL;
    }
    if (OCSP_request_add1_nonce(request, NULL, -1) != 1) {
        OCSP_REQUEST_free(request);
        return NULL;
    }
    return request;
}

/* POSTs the request to url; returns the answer's DER (malloc'd), or NULL with an error. */
static unsigned char *ask(const char *url, OCSP_REQUEST *request, int timeout, size_t *ret_len,
                          char *err, size_t err_len)
{
    char *host = NULL, *port = NULL, *path = NULL;
    BIO *body = NULL, *reply = NULL;
    unsigned char *der = NULL;
    char why[256];
    int use_ssl = 0, n;

    if (!OSSL_HTTP_parse_url(url, &use_ssl, NULL, &host, &port, NULL, &path, NULL, NULL) ||
        use_ssl) {
        fail(0, err, err_len, "the OCSP responder URL %s cannot be used (http:// only)", url);
        goto out;
    }
    body = ASN1_item_i2d_mem_bio(ASN1_ITEM_rptr(OCSP_REQUEST), (const ASN1_VALUE *)request);
    if (!body) {
        fail(0, err, err_len, "out of memory");
        goto out;
    }
    /* No proxy from the environment: the agent's own environment is not the operator's. */
    reply = OSSL_HTTP_transfer(NULL, host, port, path, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                               NULL, "application/ocsp-request", body, "application/ocsp-response",
                               1, OCSP_RESPONSE_MAX, timeout, 0);
    if (!reply) {
        tls_error_string(why, sizeof(why));
        fail(0, err, err_len, "the OCSP responder %s did not answer within %d s (%s)", url, timeout,
             why);
        goto out;
    }
    der = malloc(OCSP_RESPONSE_MAX);
    n = der ? BIO_read(reply, der, OCSP_RESPONSE_MAX) : -1;
    if (n <= 0) {
        free(der);
        der = NULL;
        fail(0, err, err_len, "the OCSP responder %s sent an empty answer", url);
        goto out;
    }
    *ret_len = (size_t)n;
out:
    ERR_clear_error();
    BIO_free(reply);
    BIO_free(body);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return der;
}

/* read_back: checks the answer kept at out_path, and removes it once it no longer holds. */
static void read_back(struct ocsp_query *query, const struct ocsp_subject *subject)
{
    int fd = open(query->out_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *der = NULL;
    size_t len = 0;

    if (fd < 0) {
        query->result = errno == ENOENT ? 0 : -errno; /* none kept: NONE */
        if (query->result < 0)
            fail(0, query->error, sizeof(query->error), "%s: %s", query->out_path, strerror(errno));
        return;
    }
    query->result = fs_read_all(fd, OCSP_RESPONSE_MAX, &der, &len);
    close(fd);
    if (query->result == 0)
        query->result = ocsp_answer_check((const unsigned char *)der, len, subject, NULL,
                                          &query->answer, query->error, sizeof(query->error));
    free(der);
    if (query->result < 0 && unlink(query->out_path) == 0)
        query->removed = true;
}

void ocsp_query_run(struct ocsp_query *query)
{
    struct ocsp_subject subject;
    OCSP_REQUEST *request = NULL;
    unsigned char *der = NULL;
    size_t len = 0;

    query->result = ocsp_subject_load(query->cert_path, query->ca_path, &subject, query->error,
                                      sizeof(query->error));
    if (query->result < 0)
        return;
    query->result =
        ocsp_responder_url(subject.leaf, query->responder_url, sizeof(query->responder_url),
                           query->error, sizeof(query->error));
    if (query->read_back) {
        query->error[0] = '\0';
        read_back(query, &subject);
        goto out;
    }
    if (query->result < 0)
        goto out;
    request = make_request(&subject);
    if (!request) {
        query->result = fail(-ENOMEM, query->error, sizeof(query->error), "out of memory");
        goto out;
    }
    der = ask(query->responder_url, request, query->timeout_seconds, &len, query->error,
              sizeof(query->error));
    if (!der) {
        query->result = -EHOSTUNREACH;
        goto out;
    }
    query->result = ocsp_answer_check(der, len, &subject, request, &query->answer, query->error,
                                      sizeof(query->error));
    if (query->result == 0)
        query->result =
            fs_write_atomic(query->out_path, der, len, 0644, query->error, sizeof(query->error));
    query->written = query->result == 0;
out:
    free(der);
    OCSP_REQUEST_free(request);
    ocsp_subject_clear(&subject);
}
