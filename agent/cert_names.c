/* The certificates a node has: their names, what they are for, and which the agent generates. */
#include "cert_names.h"

#include <string.h>

const struct cert_name cert_names[] = {
    {"api", CERT_PURPOSE_SERVER, true, true},
    {"cm", CERT_PURPOSE_SERVER, true, true},
    {"proxy", CERT_PURPOSE_SERVER, true, true},
    {"syncer", CERT_PURPOSE_CLIENT, true, true},
    {"metrics_exporter", CERT_PURPOSE_SERVER, true, true},
    {"ccs_internode_encryption", CERT_PURPOSE_SERVER, true, true},
    {"data_internode_encryption", CERT_PURPOSE_SERVER, true, true},
    {"ldap_client", CERT_PURPOSE_CLIENT, false, true},
    {"mtls_trusted_ca", CERT_PURPOSE_CA_BUNDLE, false, false},
};

const size_t cert_names_count = sizeof(cert_names) / sizeof(cert_names[0]);

const struct cert_name *cert_name_lookup(const char *name)
{
    for (size_t i = 0; i < cert_names_count; i++)
        if (strcmp(cert_names[i].name, name) == 0)
            return &cert_names[i];
    return NULL;
}

const char *cert_names_list(void)
{
    return "api, cm, proxy, syncer, metrics_exporter, ccs_internode_encryption, "
           "data_internode_encryption, ldap_client, mtls_trusted_ca";
}
