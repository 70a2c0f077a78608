/* The certificates a node has: their names, what they are for, and which the agent generates. */
#include "cert_names.h"

#include <pthread.h>
#include <string.h>

const struct cert_name cert_names[] = {
    {"api", "REST API", CERT_PURPOSE_SERVER, true, true, true, false},
    {"cm", "Admin console", CERT_PURPOSE_SERVER, true, true, true, false},
    {"proxy", "Database endpoints", CERT_PURPOSE_SERVER, true, true, true, false},
    {"syncer", "Replica Of and Active-Active sync", CERT_PURPOSE_CLIENT, true, true, true, false},
    {"metrics_exporter", "Prometheus metrics", CERT_PURPOSE_SERVER, true, true, true, false},
    {"ccs_internode_encryption", "Control-plane internode", CERT_PURPOSE_SERVER, true, true, true,
     true},
    {"data_internode_encryption", "Data-plane internode", CERT_PURPOSE_SERVER, true, true, true,
     true},
    {"ldap_client", "LDAP client (optional)", CERT_PURPOSE_CLIENT, false, false, true, false},
    {"mtls_trusted_ca", "CA for client certificates (optional)", CERT_PURPOSE_CA_BUNDLE, false,
     false, false, false},
    {"ldap_server_ca", "CA of the LDAP directory (optional)", CERT_PURPOSE_CA_BUNDLE, false, false,
     false, false},
};

const size_t cert_names_count = sizeof(cert_names) / sizeof(cert_names[0]);

const struct cert_name *cert_name_lookup(const char *name)
{
    for (size_t i = 0; i < cert_names_count; i++)
        if (strcmp(cert_names[i].name, name) == 0)
            return &cert_names[i];
    return NULL;
}

/* Large enough for every name and its separator; a unit test holds the table to it. */
static char names_list[256];
static pthread_once_t names_list_once = PTHREAD_ONCE_INIT;

static void build_names_list(void)
{
    size_t at = 0;

    for (size_t i = 0; i < cert_names_count; i++) {
        size_t n = strlen(cert_names[i].name);

        if (at + n + 3 > sizeof(names_list))
            break;
        if (i > 0) {
            memcpy(names_list + at, ", ", 2);
            at += 2;
        }
        memcpy(names_list + at, cert_names[i].name, n);
        at += n;
    }
    names_list[at] = '\0';
}

const char *cert_names_list(void)
{
    /* Once, and safely from the offload worker too. */
    pthread_once(&names_list_once, build_names_list);
    return names_list;
}
