/*
 * The certificates a node has: the one table of their names, what they are for, and which the
 * agent generates. The agent's checks and messages, certvisorctl (through the agent's answers)
 * and the console (through the REST API's certificate details) all read it from here.
 */
#ifndef CERTVISOR_CERT_NAMES_H
#define CERTVISOR_CERT_NAMES_H

#include "x509_check.h"

#include <stdbool.h>
#include <stddef.h>

struct cert_name {
    const char *name;
    const char *description;   /* what it is for, as the console and listings show it */
    enum cert_purpose purpose; /* the key usage it must have: server, client or CA bundle */
    bool generated;            /* made and renewed by the agent from the cluster CA */
    bool required;             /* always set: it cannot be deleted, only replaced or re-issued */
    bool has_key;
    bool per_node; /* each node has its own (issued for its address), not the cluster's one */
};

/* The internal cluster CA's name in the store (not an operator-visible certificate). */
#define CERT_CLUSTER_CA "cluster_ca"

/* The operator's CA for client certificates (REST API sign-in, databases' clients). */
#define CERT_MTLS_TRUSTED_CA "mtls_trusted_ca"

/* What sign-in by LDAP presents to the directory, and trusts it by (agent/auth/ldap_signin.c). */
#define CERT_LDAP_CLIENT "ldap_client"
#define CERT_LDAP_SERVER_CA "ldap_server_ca"

/* The certificate the proxy serves databases with: the one whose OCSP status is stapled. */
#define CERT_PROXY "proxy"

/* Every name, generated ones first. */
extern const struct cert_name cert_names[];
extern const size_t cert_names_count;

/* Returns the entry for name, or NULL: any other name is rejected. */
const struct cert_name *cert_name_lookup(const char *name);

/* "api, cm, proxy, ..." for messages: the table's names, in its order. */
const char *cert_names_list(void);

#endif
