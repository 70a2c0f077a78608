/* Stapling an OCSP response in a server's handshakes, from the DER file the agent writes. */
#include "tls_stapling.h"

#include "cv_error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ocsp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What a context staples: the response as served, and the end of its validity. */
struct staple {
    unsigned char *der;
    long len;
    time_t next_update; /* 0: the response names none (valid until replaced) */
};

static int staple_index = -1;
static CRYPTO_ONCE staple_index_once = CRYPTO_ONCE_STATIC_INIT;

static void free_staple(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct staple *staple = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (!staple)
        return;
    OPENSSL_free(staple->der);
    OPENSSL_free(staple);
}

static void make_staple_index(void)
{
    staple_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_staple);
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t err_len, const char *fmt,
                                                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return CV_EINVALID_TLS;
}

/* Called in each handshake: the response for a client that asked, while it is valid. */
static int on_status_request(SSL *ssl, void *arg)
{
    const struct staple *staple = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_index);
    unsigned char *copy;

    (void)arg;
    if (!staple || SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp)
        return SSL_TLSEXT_ERR_NOACK;
    if (staple->next_update && time(NULL) > staple->next_update)
        return SSL_TLSEXT_ERR_NOACK; /* expired: a client would refuse it, and rightly */
    /* The handshake takes the buffer and frees it. */
    copy = OPENSSL_memdup(staple->der, (size_t)staple->len);
    if (!copy || SSL_set_tlsext_status_ocsp_resp(ssl, copy, staple->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Reads the file whole, within TLS_OCSP_RESPONSE_MAX. Returns 0, -ENOENT, or an error. */
static int read_response(const char *path, unsigned char **ret_der, long *ret_len, char *err,
                         size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    unsigned char *der = NULL;
    struct stat st;
    ssize_t n;

    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd < 0)
        return fail(err, err_len, "ocsp_response %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        st.st_size > TLS_OCSP_RESPONSE_MAX) {
        close(fd);
        return fail(err, err_len, "ocsp_response %s: not a regular file of 1 to %d bytes", path,
                    TLS_OCSP_RESPONSE_MAX);
    }
    der = OPENSSL_malloc((size_t)st.st_size);
    if (!der) {
        close(fd);
        return fail(err, err_len, "ocsp_response %s: out of memory", path);
    }
    n = read(fd, der, (size_t)st.st_size);
    close(fd);
    if (n != st.st_size) {
        OPENSSL_free(der);
        return fail(err, err_len, "ocsp_response %s: short read", path);
    }
    *ret_der = der;
    *ret_len = (long)n;
    return 0;
}

/* The response's one status for ctx's certificate: its nextUpdate (0 when none), or an error. */
static int check_response(SSL_CTX *ctx, const unsigned char *der, long len, const char *path,
                          time_t *ret_next_update, char *err, size_t err_len)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *response = d2i_OCSP_RESPONSE(NULL, &p, len);
    OCSP_BASICRESP *basic = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    ASN1_GENERALIZEDTIME *next = NULL;
    ASN1_INTEGER *serial = NULL;
    OCSP_SINGLERESP *single;
    struct tm tm;
    int r = CV_EINVALID_TLS;

    if (!response || p != der + len) {
        fail(err, err_len, "ocsp_response %s: not a DER OCSP response", path);
        goto out;
    }
    if (OCSP_response_status(response) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
        !(basic = OCSP_response_get1_basic(response)) || OCSP_resp_count(basic) != 1) {
        fail(err, err_len, "ocsp_response %s: not a successful response with one status", path);
        goto out;
    }
    single = OCSP_resp_get0(basic, 0);
    OCSP_id_get0_info(NULL, NULL, NULL, &serial, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(single));
    if (!leaf || !serial || ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf)) != 0) {
        fail(err, err_len, "ocsp_response %s: is not for this certificate (its serial number)",
             path);
        goto out;
    }
    OCSP_single_get0_status(single, NULL, NULL, NULL, &next);
    *ret_next_update = 0;
    if (next) {
        if (ASN1_TIME_to_tm(next, &tm) != 1) {
            fail(err, err_len, "ocsp_response %s: its nextUpdate cannot be read", path);
            goto out;
        }
        *ret_next_update = timegm(&tm);
    }
    r = 0;
out:
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(response);
    return r;
}

int tls_stapling_attach(SSL_CTX *ctx, const char *path, char *err, size_t err_len)
{
    struct staple *staple;
    unsigned char *der = NULL;
    time_t next_update;
    long len = 0;
    int r;

    if (!CRYPTO_THREAD_run_once(&staple_index_once, make_staple_index) || staple_index < 0)
        return fail(err, err_len, "cannot set up OCSP stapling");
    r = read_response(path, &der, &len, err, err_len);
    if (r == -ENOENT)
        return 0; /* nothing fetched yet: nothing to staple */
    if (r < 0)
        return r;
    r = check_response(ctx, der, len, path, &next_update, err, err_len);
    if (r < 0 || !(staple = OPENSSL_zalloc(sizeof(*staple)))) {
        OPENSSL_free(der);
        return r < 0 ? r : fail(err, err_len, "ocsp_response %s: out of memory", path);
    }
    staple->der = der;
    staple->len = len;
    staple->next_update = next_update;
    SSL_CTX_set_ex_data(ctx, staple_index, staple);
    SSL_CTX_set_tlsext_status_cb(ctx, on_status_request);
    return 0;
}
