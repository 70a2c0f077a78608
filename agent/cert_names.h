/* The certificates a node has: their names, what they are for, and which the agent generates. */
#ifndef CERTVISOR_CERT_NAMES_H
#define CERTVISOR_CERT_NAMES_H

#include "x509_check.h"

#include <stdbool.h>
#include <stddef.h>

struct cert_name {
    const char *name;
    enum cert_purpose purpose;
    bool generated; /* made and renewed by the agent from the cluster CA */
    bool has_key;
};

/* The internal cluster CA's name in the store (not an operator-visible certificate). */
#define CERT_CLUSTER_CA "cluster_ca"

/* The operator's CA for client certificates (REST API sign-in, databases' clients). */
#define CERT_MTLS_TRUSTED_CA "mtls_trusted_ca"

/* Every name, generated ones first. */
extern const struct cert_name cert_names[];
extern const size_t cert_names_count;

/* Returns the entry for name, or NULL: any other name is rejected. */
const struct cert_name *cert_name_lookup(const char *name);

/* "api, cm, proxy, ..." for messages. */
const char *cert_names_list(void);

#endif
