/* The node's certificates at run time: first-start generation and where each is served from. */
#ifndef CERTVISOR_CERTS_H
#define CERTVISOR_CERTS_H

#include "certstore.h"
#include "cert_settings.h"

#include <stddef.h>
#include <sys/types.h>

struct certs {
    struct certstore *store;
    char *ca_export_path;    /* state_dir/ca.pem: the CA clients verify the node with */
    struct certstore *trust; /* state_dir/trust: the trust lists (agent/pki/trust.h) */
    char *trust_empty_path;  /* state_dir/trust/empty.pem: what an empty list renders to */
};

/*
 * Opens the store under state_dir/certs and the trust lists' under
 * state_dir/trust (key_group may read service keys and the lists; -1 for
 * none) and removes what an interrupted change left. Returns 0, or a negative
 * error with a message.
 */
int certs_open(const char *state_dir, gid_t key_group, struct certs **ret_certs, char *err,
               size_t err_len);

void certs_free(struct certs *certs);

/*
 * Makes what a node that has none needs: the internal cluster CA, then each
 * generated certificate (api, cm, proxy, ...) from it, per settings; a
 * certificate that exists is kept. Exports the CA certificate. Sets
 * *ret_made to how many certificates were made. Returns 0 or a negative
 * error with a message.
 */
int certs_bootstrap(struct certs *certs, const struct cert_settings *settings, int *ret_made,
                    char *err, size_t err_len);

/* Writes the current cluster CA's certificate to ca_export_path again (after the CA changed:
 * a node that joined a cluster took its CA). Returns 0 or a negative errno with a message. */
int certs_export_ca(struct certs *certs, char *err, size_t err_len);

/*
 * Issues a new certificate and key for name from the cluster CA, per
 * settings, without storing them (the apply pipeline stages them). The
 * caller frees the certificate and wipes the key (OPENSSL_clear_free).
 */
int certs_issue(struct certs *certs, const struct cert_settings *settings, const char *name,
                char **ret_cert_pem, char **ret_key_pem, char *err, size_t err_len);

/*
 * The same in two halves, for the offload workers (agent/core/offload.h):
 * certs_issuer_new() runs on the loop and copies what issuing needs (the
 * CA's certificate and key, the key type, the names) out of the store and
 * the settings; certs_issuer_issue() makes the key and the certificate from
 * those copies alone, so it may run on a worker thread, and is the slow half
 * (an RSA-4096 key takes seconds). certs_issuer_free() wipes the CA key.
 */
struct certs_issuer;

int certs_issuer_new(struct certs *certs, const struct cert_settings *settings, const char *name,
                     struct certs_issuer **ret_issuer, char *err, size_t err_len);
int certs_issuer_issue(const struct certs_issuer *issuer, char **ret_cert_pem, char **ret_key_pem,
                       char *err, size_t err_len);
void certs_issuer_free(struct certs_issuer *issuer);

/*
 * Issues, from the issuer's CA copy, a certificate for another node's key: the public key of
 * csr_pem (a PEM CSR whose signature is checked, ECDSA P-256 or RSA of 2048 bits or more),
 * named common_name, with ip_addresses as its subjectAltNames, valid as the issuer's settings
 * say. The names the CSR asks for are not taken: the caller says what the node is. Runs on a
 * worker like certs_issuer_issue(). Returns 0 or an error with a message.
 */
int certs_issuer_sign_csr(const struct certs_issuer *issuer, const char *csr_pem,
                          const char *common_name, const char *const *ip_addresses,
                          size_t n_ip_addresses, char **ret_cert_pem, char *err, size_t err_len);

/*
 * A CSR for name, in two halves like the issuer above. certs_csr_new() on the
 * loop copies the names, the key type and where the store is. certs_csr_make()
 * makes a new key, keeps it in the store as name's pending key (it never
 * leaves the store), and returns a CSR for it (malloc'd): subject_dn
 * ("/O=.../CN=...") or the cluster's name, and the given SANs (IP addresses
 * and DNS names) or the node's defaults when n_sans is 0. It works from the
 * copies alone, so a worker thread may run it.
 */
struct certs_csr;

int certs_csr_new(struct certs *certs, const struct cert_settings *settings, const char *name,
                  const char *subject_dn, const char *const *sans, size_t n_sans,
                  struct certs_csr **ret_csr, char *err, size_t err_len);
int certs_csr_make(const struct certs_csr *csr, char **ret_csr_pem, char *err, size_t err_len);
void certs_csr_free(struct certs_csr *csr);

/* The current files of name (key_path may be NULL). Returns 0, or -ENOENT when it has none. */
int certs_current_files(struct certs *certs, const char *name, char *cert_path, size_t cert_len,
                        char *key_path, size_t key_len);

#endif
