/* The node's certificates at run time: first-start generation and where each is served from. */
#include "certs.h"

#include "cert_names.h"
#include "cv_error.h"
#include "fsutil.h"
#include "log.h"
#include "x509_make.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define X509_CN_MAX 64 /* RFC 5280's upper bound on a common name */

int certs_open(const char *state_dir, gid_t key_group, struct certs **ret_certs, char *err,
               size_t err_len)
{
    struct certs *certs = calloc(1, sizeof(*certs));
    char root[PATH_MAX];
    int r;

    if (!certs)
        return -ENOMEM;
    snprintf(root, sizeof(root), "%s/certs", state_dir);
    if (asprintf(&certs->ca_export_path, "%s/ca.pem", state_dir) < 0) {
        certs->ca_export_path = NULL;
        certs_free(certs);
        return -ENOMEM;
    }
    r = certstore_open(root, key_group, &certs->store, err, err_len);
    if (r == 0)
        r = certstore_recover(certs->store, err, err_len);
    snprintf(root, sizeof(root), "%s/trust", state_dir);
    if (r == 0)
        r = certstore_open(root, key_group, &certs->trust, err, err_len);
    if (r == 0)
        r = certstore_recover(certs->trust, err, err_len);
    /* An empty trust list trusts nobody: services get an empty file (lib/tls_context.h). */
    if (r == 0 && asprintf(&certs->trust_empty_path, "%s/empty.pem", root) < 0) {
        certs->trust_empty_path = NULL;
        r = -ENOMEM;
    }
    if (r == 0)
        r = fs_write_atomic(certs->trust_empty_path, "", 0, 0644, err, err_len);
    if (r < 0) {
        certs_free(certs);
        return r;
    }
    *ret_certs = certs;
    return 0;
}

void certs_free(struct certs *certs)
{
    if (!certs)
        return;
    certstore_free(certs->store);
    certstore_free(certs->trust);
    free(certs->trust_empty_path);
    free(certs->ca_export_path);
    free(certs);
}

int certs_current_files(struct certs *certs, const char *name, char *cert_path, size_t cert_len,
                        char *key_path, size_t key_len)
{
    unsigned generation;
    int r = certstore_current(certs->store, name, &generation);

    return r < 0 ? r
                 : certstore_paths(certs->store, name, generation, cert_path, cert_len, key_path,
                                   key_len);
}

/* Stages and commits a certificate and key made here. */
static int store_pair(struct certs *certs, const char *name, X509 *cert, EVP_PKEY *key,
                      bool key_for_services, char *err, size_t err_len)
{
    char *cert_pem = x509_pem_of_cert(cert);
    char *key_pem = x509_pem_of_key(key);
    unsigned generation;
    int r = -ENOMEM;

    if (cert_pem && key_pem)
        r = certstore_stage(certs->store, name, cert_pem, strlen(cert_pem), key_pem,
                            strlen(key_pem), key_for_services, &generation, err, err_len);
    if (r == 0 && (r = certstore_set_origin(certs->store, name, generation, "generated")) < 0)
        snprintf(err, err_len, "cannot record where '%s' came from: %s", name, strerror(-r));
    if (r == 0)
        r = certstore_commit(certs->store, name, generation, err, err_len);
    free(cert_pem);
    if (key_pem)
        OPENSSL_clear_free(key_pem, strlen(key_pem));
    return r;
}

/* Reads the CA back from the store (it may have been made by an earlier run). */
static int load_ca(struct certs *certs, X509 **ret_cert, EVP_PKEY **ret_key, char *err,
                   size_t err_len)
{
    char *cert_pem = NULL, *key_pem = NULL;
    size_t cert_len = 0, key_len = 0;
    unsigned generation;
    BIO *bio;
    int r = certstore_current(certs->store, CERT_CLUSTER_CA, &generation);

    if (r == 0)
        r = certstore_read_cert(certs->store, CERT_CLUSTER_CA, generation, &cert_pem, &cert_len);
    if (r == 0)
        r = certstore_read_key(certs->store, CERT_CLUSTER_CA, generation, &key_pem, &key_len);
    if (r == 0) {
        bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
        *ret_cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        bio = BIO_new_mem_buf(key_pem, (int)key_len);
        *ret_key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!*ret_cert || !*ret_key) {
            X509_free(*ret_cert);
            EVP_PKEY_free(*ret_key);
            snprintf(err, err_len, "the cluster CA in the store cannot be read back");
            r = CV_EINVALID_CERT;
        }
    } else if (r != -ENOENT) {
        snprintf(err, err_len, "cannot read the cluster CA: %s", strerror(-r));
    }
    free(cert_pem);
    if (key_pem)
        OPENSSL_clear_free(key_pem, key_len);
    return r;
}

static int make_ca(struct certs *certs, const struct cert_settings *settings, X509 **ret_cert,
                   EVP_PKEY **ret_key, char *err, size_t err_len)
{
    char cn[X509_CN_MAX + 1];
    int r = x509_make_key(settings->key_type, ret_key, err, err_len);

    snprintf(cn, sizeof(cn), "certvisor cluster CA %s", settings->cluster_fqdn);
    if (r == 0)
        r = x509_make_ca(*ret_key, cn, settings->ca_validity_days, ret_cert, err, err_len);
    /* The CA's key is the most sensitive: never readable by the service group. */
    if (r == 0)
        r = store_pair(certs, CERT_CLUSTER_CA, *ret_cert, *ret_key, false, err, err_len);
    if (r < 0) {
        X509_free(*ret_cert);
        EVP_PKEY_free(*ret_key);
        *ret_cert = NULL;
        *ret_key = NULL;
    }
    return r;
}

/* The names every generated certificate carries: the cluster's, the node's, and extras. */
struct san_list {
    char *owned[8];
    const char *dns[64];
    size_t n_dns;
    const char *ips[32];
    size_t n_ips;
};

static void san_add(const char **list, size_t *n, size_t cap, const char *value)
{
    if (*n < cap)
        list[(*n)++] = value;
}

static int san_build(const struct cert_settings *settings, struct san_list *sans)
{
    char hostname[256] = "";

    memset(sans, 0, sizeof(*sans));
    if (asprintf(&sans->owned[0], "*.%s", settings->cluster_fqdn) < 0 ||
        asprintf(&sans->owned[1], "internal.%s", settings->cluster_fqdn) < 0)
        return -ENOMEM;
    if (!settings->node_hostname && gethostname(hostname, sizeof(hostname) - 1) == 0)
        sans->owned[2] = strdup(hostname);
    san_add(sans->dns, &sans->n_dns, 64, settings->cluster_fqdn);
    san_add(sans->dns, &sans->n_dns, 64, sans->owned[0]);
    san_add(sans->dns, &sans->n_dns, 64, sans->owned[1]);
    if (settings->node_hostname || sans->owned[2])
        san_add(sans->dns, &sans->n_dns, 64,
                settings->node_hostname ? settings->node_hostname : sans->owned[2]);
    /* The loopback by name too, as clients on the node write it (curl https://localhost:...). */
    san_add(sans->dns, &sans->n_dns, 64, "localhost");
    for (char **p = settings->extra_dns_names; p && *p; p++)
        san_add(sans->dns, &sans->n_dns, 64, *p);
    san_add(sans->ips, &sans->n_ips, 32, "127.0.0.1");
    san_add(sans->ips, &sans->n_ips, 32, "::1");
    for (char **p = settings->extra_ip_addresses; p && *p; p++)
        san_add(sans->ips, &sans->n_ips, 32, *p);
    return 0;
}

static void san_free(struct san_list *sans)
{
    for (size_t i = 0; i < sizeof(sans->owned) / sizeof(sans->owned[0]); i++)
        free(sans->owned[i]);
}

/* The subject of a generated certificate: the cluster's name (when it fits a CN) and the SANs. */
static void subject_of(const struct cert_settings *settings, const char *name,
                       const struct san_list *sans, struct x509_subject_spec *spec)
{
    *spec = (struct x509_subject_spec){
        .common_name =
            strlen(settings->cluster_fqdn) <= X509_CN_MAX ? settings->cluster_fqdn : name,
        .dns_names = sans->dns,
        .n_dns_names = sans->n_dns,
        .ip_addresses = sans->ips,
        .n_ip_addresses = sans->n_ips,
    };
}

static int make_leaf(struct certs *certs, const char *name, const struct cert_settings *settings,
                     X509 *ca_cert, EVP_PKEY *ca_key, const struct san_list *sans, char *err,
                     size_t err_len)
{
    struct x509_subject_spec spec;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int r;

    subject_of(settings, name, sans, &spec);
    r = x509_make_key(settings->key_type, &key, err, err_len);
    if (r == 0)
        r = x509_make_leaf(ca_cert, ca_key, key, &spec, settings->validity_days, &cert, err,
                           err_len);
    if (r == 0)
        r = store_pair(certs, name, cert, key, true, err, err_len);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}

/* A subject spec whose strings it owns: what a worker thread may read (agent/core/offload.h). */
struct owned_spec {
    char *common_name; /* NULL: the certificate's name */
    char **dns;
    size_t n_dns;
    char **ips;
    size_t n_ips;
};

static void owned_spec_clear(struct owned_spec *owned)
{
    free(owned->common_name);
    for (size_t i = 0; i < owned->n_dns; i++)
        free(owned->dns[i]);
    for (size_t i = 0; i < owned->n_ips; i++)
        free(owned->ips[i]);
    free(owned->dns);
    free(owned->ips);
    memset(owned, 0, sizeof(*owned));
}

static char **copy_strings(const char *const *from, size_t n)
{
    char **to = calloc(n + 1, sizeof(*to));

    for (size_t i = 0; to && i < n; i++) {
        to[i] = strdup(from[i]);
        if (!to[i]) {
            while (i-- > 0)
                free(to[i]);
            free(to);
            return NULL;
        }
    }
    return to;
}

/* Copies spec; a common name equal to name is left to the view (the name goes with the job). */
static int owned_spec_copy(struct owned_spec *owned, const struct x509_subject_spec *spec,
                           const char *name)
{
    memset(owned, 0, sizeof(*owned));
    if (strcmp(spec->common_name, name) != 0 && !(owned->common_name = strdup(spec->common_name)))
        return -ENOMEM;
    owned->dns = copy_strings(spec->dns_names, spec->n_dns_names);
    owned->n_dns = owned->dns ? spec->n_dns_names : 0;
    owned->ips = copy_strings(spec->ip_addresses, spec->n_ip_addresses);
    owned->n_ips = owned->ips ? spec->n_ip_addresses : 0;
    if (!owned->dns || !owned->ips) {
        owned_spec_clear(owned);
        return -ENOMEM;
    }
    return 0;
}

static struct x509_subject_spec owned_spec_view(const struct owned_spec *owned, const char *name)
{
    return (struct x509_subject_spec){
        .common_name = owned->common_name ? owned->common_name : name,
        .dns_names = (const char *const *)owned->dns,
        .n_dns_names = owned->n_dns,
        .ip_addresses = (const char *const *)owned->ips,
        .n_ip_addresses = owned->n_ips,
    };
}

struct certs_issuer {
    char *name;
    enum key_type key_type;
    int validity_days;
    struct owned_spec spec;
    char *ca_cert_pem;
    size_t ca_cert_len;
    char *ca_key_pem; /* wiped on free */
    size_t ca_key_len;
};

void certs_issuer_free(struct certs_issuer *issuer)
{
    if (!issuer)
        return;
    free(issuer->name);
    owned_spec_clear(&issuer->spec);
    free(issuer->ca_cert_pem);
    if (issuer->ca_key_pem)
        OPENSSL_clear_free(issuer->ca_key_pem, issuer->ca_key_len);
    free(issuer);
}

int certs_issuer_new(struct certs *certs, const struct cert_settings *settings, const char *name,
                     struct certs_issuer **ret_issuer, char *err, size_t err_len)
{
    struct certs_issuer *issuer = calloc(1, sizeof(*issuer));
    struct x509_subject_spec spec;
    struct san_list sans;
    unsigned generation;
    int r;

    if (err_len)
        *err = '\0';
    if (!issuer || !(issuer->name = strdup(name))) {
        free(issuer);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    issuer->key_type = settings->key_type;
    issuer->validity_days = settings->validity_days;
    r = certstore_current(certs->store, CERT_CLUSTER_CA, &generation);
    if (r == -ENOENT)
        snprintf(err, err_len, "the cluster CA is not set");
    else if (r < 0)
        snprintf(err, err_len, "cannot read the cluster CA: %s", strerror(-r));
    if (r == 0)
        r = certstore_read_cert(certs->store, CERT_CLUSTER_CA, generation, &issuer->ca_cert_pem,
                                &issuer->ca_cert_len);
    if (r == 0)
        r = certstore_read_key(certs->store, CERT_CLUSTER_CA, generation, &issuer->ca_key_pem,
                               &issuer->ca_key_len);
    if (r < 0 && !*err)
        snprintf(err, err_len, "cannot read the cluster CA: %s", strerror(-r));
    if (r == 0) {
        r = san_build(settings, &sans);
        if (r == 0) {
            subject_of(settings, name, &sans, &spec);
            r = owned_spec_copy(&issuer->spec, &spec, name);
        }
        san_free(&sans);
        if (r < 0)
            snprintf(err, err_len, "out of memory");
    }
    if (r < 0) {
        certs_issuer_free(issuer);
        return r;
    }
    *ret_issuer = issuer;
    return 0;
}

/* Parses the CA's PEM copies: each issue has objects of its own, shared with no other thread. */
static int parse_ca(const struct certs_issuer *issuer, X509 **ret_cert, EVP_PKEY **ret_key,
                    char *err, size_t err_len)
{
    BIO *bio = BIO_new_mem_buf(issuer->ca_cert_pem, (int)issuer->ca_cert_len);

    *ret_cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bio = BIO_new_mem_buf(issuer->ca_key_pem, (int)issuer->ca_key_len);
    *ret_key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (*ret_cert && *ret_key)
        return 0;
    X509_free(*ret_cert);
    EVP_PKEY_free(*ret_key);
    *ret_cert = NULL;
    *ret_key = NULL;
    snprintf(err, err_len, "the cluster CA in the store cannot be read back");
    return CV_EINVALID_CERT;
}

int certs_issuer_issue(const struct certs_issuer *issuer, char **ret_cert_pem, char **ret_key_pem,
                       char *err, size_t err_len)
{
    struct x509_subject_spec spec = owned_spec_view(&issuer->spec, issuer->name);
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    char *cert_pem = NULL, *key_pem = NULL;
    int r = parse_ca(issuer, &ca_cert, &ca_key, err, err_len);

    if (r == 0)
        r = x509_make_key(issuer->key_type, &key, err, err_len);
    if (r == 0)
        r = x509_make_leaf(ca_cert, ca_key, key, &spec, issuer->validity_days, &cert, err, err_len);
    if (r == 0) {
        cert_pem = x509_pem_of_cert(cert);
        key_pem = x509_pem_of_key(key);
        if (!cert_pem || !key_pem) {
            free(cert_pem);
            if (key_pem)
                OPENSSL_clear_free(key_pem, strlen(key_pem));
            snprintf(err, err_len, "out of memory");
            r = -ENOMEM;
        }
    }
    if (r == 0) {
        *ret_cert_pem = cert_pem;
        *ret_key_pem = key_pem;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return r;
}

/* The CSR's public key, once its signature checked and its type one the agent makes. */
static EVP_PKEY *csr_public_key(const char *csr_pem, char *err, size_t err_len)
{
    BIO *bio = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = req ? X509_REQ_get_pubkey(req) : NULL;
    const char *problem = NULL;

    BIO_free(bio);
    if (!req)
        problem = "is not a PEM certificate request";
    else if (!key)
        problem = "holds no public key the agent can read";
    else if (X509_REQ_verify(req, key) != 1)
        problem = "is not signed by its own key";
    else if (!(EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 256) &&
             !(EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= 2048))
        problem = "is for a key that is neither ECDSA P-256 nor RSA of 2048 bits or more";
    X509_REQ_free(req);
    if (problem) {
        snprintf(err, err_len, "the certificate request %s", problem);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int certs_issuer_sign_csr(const struct certs_issuer *issuer, const char *csr_pem,
                          const char *common_name, const char *const *ip_addresses,
                          size_t n_ip_addresses, char **ret_cert_pem, char *err, size_t err_len)
{
    struct x509_subject_spec spec = {
        .common_name = common_name, .ip_addresses = ip_addresses, .n_ip_addresses = n_ip_addresses};
    EVP_PKEY *ca_key = NULL, *key = csr_public_key(csr_pem, err, err_len);
    X509 *ca_cert = NULL, *cert = NULL;
    int r = key ? parse_ca(issuer, &ca_cert, &ca_key, err, err_len) : CV_EINVALID_CERT;

    if (r == 0)
        r = x509_make_leaf(ca_cert, ca_key, key, &spec, issuer->validity_days, &cert, err, err_len);
    if (r == 0 && !(*ret_cert_pem = x509_pem_of_cert(cert))) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
    }
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return r;
}

int certs_issue(struct certs *certs, const struct cert_settings *settings, const char *name,
                char **ret_cert_pem, char **ret_key_pem, char *err, size_t err_len)
{
    struct certs_issuer *issuer = NULL;
    int r = certs_issuer_new(certs, settings, name, &issuer, err, err_len);

    *ret_cert_pem = NULL;
    *ret_key_pem = NULL;
    if (r == 0)
        r = certs_issuer_issue(issuer, ret_cert_pem, ret_key_pem, err, err_len);
    certs_issuer_free(issuer);
    return r;
}

/* An IP address goes in as one, anything else as a DNS name. */
static bool is_ip_address(const char *text)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
}

struct certs_csr {
    char *name;
    enum key_type key_type;
    struct owned_spec spec;
    char *subject_dn; /* NULL: the spec's common name */
    struct certstore_target target;
};

void certs_csr_free(struct certs_csr *csr)
{
    if (!csr)
        return;
    free(csr->name);
    owned_spec_clear(&csr->spec);
    free(csr->subject_dn);
    free(csr);
}

int certs_csr_new(struct certs *certs, const struct cert_settings *settings, const char *name,
                  const char *subject_dn, const char *const *sans_given, size_t n_sans_given,
                  struct certs_csr **ret_csr, char *err, size_t err_len)
{
    struct certs_csr *csr = calloc(1, sizeof(*csr));
    const char *dns[64], *ips[32];
    struct x509_subject_spec spec;
    struct san_list sans;
    int r = csr ? san_build(settings, &sans) : -ENOMEM;

    if (r == 0) {
        subject_of(settings, name, &sans, &spec);
        if (n_sans_given > 0) {
            /* The operator's names replace the node's defaults. */
            spec.n_dns_names = spec.n_ip_addresses = 0;
            for (size_t i = 0; i < n_sans_given; i++) {
                if (is_ip_address(sans_given[i]) && spec.n_ip_addresses < 32)
                    ips[spec.n_ip_addresses++] = sans_given[i];
                else if (!is_ip_address(sans_given[i]) && spec.n_dns_names < 64)
                    dns[spec.n_dns_names++] = sans_given[i];
            }
            spec.dns_names = dns;
            spec.ip_addresses = ips;
        }
        r = owned_spec_copy(&csr->spec, &spec, name);
    }
    if (csr)
        san_free(&sans);
    if (r == 0 &&
        (!(csr->name = strdup(name)) || (subject_dn && !(csr->subject_dn = strdup(subject_dn)))))
        r = -ENOMEM;
    if (r < 0) {
        snprintf(err, err_len, "out of memory");
        certs_csr_free(csr);
        return r;
    }
    csr->key_type = settings->key_type;
    certstore_target_of(certs->store, &csr->target);
    *ret_csr = csr;
    return 0;
}

int certs_csr_make(const struct certs_csr *csr, char **ret_csr_pem, char *err, size_t err_len)
{
    struct x509_subject_spec spec = owned_spec_view(&csr->spec, csr->name);
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    char *key_pem = NULL, *csr_pem = NULL;
    int r = x509_make_key(csr->key_type, &key, err, err_len);

    if (r == 0)
        r = x509_make_csr(key, &spec, csr->subject_dn, &req, err, err_len);
    if (r == 0) {
        key_pem = x509_pem_of_key(key);
        csr_pem = x509_pem_of_csr(req);
        r = key_pem && csr_pem ? 0 : -ENOMEM;
        if (r < 0)
            snprintf(err, err_len, "out of memory");
    }
    /* The key stays in the store, waiting for the certificate the CSR comes back as. */
    if (r == 0)
        r = certstore_write_pending_key_at(&csr->target, csr->name, key_pem, strlen(key_pem), err,
                                           err_len);
    if (r == 0)
        *ret_csr_pem = csr_pem;
    else
        free(csr_pem);
    if (key_pem)
        OPENSSL_clear_free(key_pem, strlen(key_pem));
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return r;
}

static int export_ca(struct certs *certs, X509 *ca_cert, char *err, size_t err_len)
{
    char *pem = x509_pem_of_cert(ca_cert);
    int r;

    if (!pem)
        return -ENOMEM;
    r = fs_write_atomic(certs->ca_export_path, pem, strlen(pem), 0644, err, err_len);
    free(pem);
    return r;
}

int certs_export_ca(struct certs *certs, char *err, size_t err_len)
{
    char *pem = NULL;
    size_t len = 0;
    unsigned generation;
    int r = certstore_current(certs->store, CERT_CLUSTER_CA, &generation);

    if (r == 0)
        r = certstore_read_cert(certs->store, CERT_CLUSTER_CA, generation, &pem, &len);
    if (r < 0) {
        snprintf(err, err_len, "cannot read the cluster CA: %s", strerror(-r));
        return r;
    }
    r = fs_write_atomic(certs->ca_export_path, pem, len, 0644, err, err_len);
    free(pem);
    return r;
}

int certs_bootstrap(struct certs *certs, const struct cert_settings *settings, int *ret_made,
                    char *err, size_t err_len)
{
    struct san_list sans;
    EVP_PKEY *ca_key = NULL;
    X509 *ca_cert = NULL;
    unsigned generation;
    int made = 0;
    int r = load_ca(certs, &ca_cert, &ca_key, err, err_len);

    if (r == -ENOENT) {
        r = make_ca(certs, settings, &ca_cert, &ca_key, err, err_len);
        made += r == 0;
    }
    if (r < 0)
        return r;
    r = san_build(settings, &sans);
    for (size_t i = 0; r == 0 && i < cert_names_count; i++) {
        const char *name = cert_names[i].name;

        if (!cert_names[i].generated || certstore_current(certs->store, name, &generation) == 0)
            continue;
        r = make_leaf(certs, name, settings, ca_cert, ca_key, &sans, err, err_len);
        if (r == 0) {
            log_info("Generated certificate '%s' from the cluster CA", name);
            made++;
        }
    }
    san_free(&sans);
    if (r == 0)
        r = export_ca(certs, ca_cert, err, err_len);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    if (r == 0)
        *ret_made = made;
    return r;
}
