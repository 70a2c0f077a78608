/* Fuzzes the readers of the values a cluster keeps in etcd (agent/cluster/spec.c): meta,
 * certificates, the policy and nodes' status are written by other nodes, so they are outside
 * input, and so are the join tokens (join/<id>). The first byte picks the reader; what is
 * accepted is encoded again and must read back the same. */
#include "fuzz_util.h"
#include "spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void cert_round_trip(const char *text, size_t len)
{
    struct spec_cert cert, again;
    char err[256];
    char *encoded;

    if (spec_cert_decode(text, len, &cert, err, sizeof(err)) < 0) {
        FUZZ_CHECK(cert.cert_pem == NULL && cert.sealed_key == NULL);
        spec_cert_clear(&cert);
        return;
    }
    FUZZ_CHECK(cert.removed || (cert.cert_pem && strlen(cert.cert_pem) == cert.cert_len));
    encoded = spec_cert_encode(&cert);
    if (encoded) {
        FUZZ_CHECK(spec_cert_decode(encoded, strlen(encoded), &again, err, sizeof(err)) == 0);
        FUZZ_CHECK(again.removed == cert.removed && again.sealed_len == cert.sealed_len);
        FUZZ_CHECK(strcmp(again.name, cert.name) == 0);
        spec_cert_clear(&again);
        free(encoded);
    }
    spec_cert_clear(&cert);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data + 1;
    char err[256];
    size_t len;

    if (size < 1)
        return 0;
    len = size - 1;
    switch (data[0] % 5) {
    case 0:
        cert_round_trip(text, len);
        break;
    case 1: {
        struct spec_meta meta;

        if (spec_meta_decode(text, len, &meta, err, sizeof(err)) == 0)
            FUZZ_CHECK(meta.schema == SPEC_SCHEMA && meta.uid[0] && meta.check[0]);
        break;
    }
    case 2: {
        static struct spec_policy policy;

        if (spec_policy_decode(text, len, &policy, err, sizeof(err)) == 0)
            FUZZ_CHECK(policy.n <= SPEC_MAX_POLICY_SETTINGS);
        break;
    }
    case 4: {
        struct spec_join join, again;
        char *encoded;

        if (spec_join_decode(text, len, &join, err, sizeof(err)) < 0)
            break;
        FUZZ_CHECK(strlen(join.id) == SPEC_JOIN_ID_LEN && join.expires >= join.created);
        encoded = spec_join_encode(&join);
        if (encoded) {
            FUZZ_CHECK(spec_join_decode(encoded, strlen(encoded), &again, err, sizeof(err)) == 0);
            FUZZ_CHECK(memcmp(&join, &again, sizeof(join)) == 0);
            free(encoded);
        }
        break;
    }
    default: {
        struct spec_status status;
        char key[256], list[SPEC_MAX_NAME];

        if (spec_status_decode(text, len, &status, err, sizeof(err)) == 0)
            FUZZ_CHECK(status.node[0] && status.revision >= 0);
        /* A key etcd returns: a trust list's name is taken from it only when it is one. */
        if (len < sizeof(key)) {
            memcpy(key, text, len);
            key[len] = '\0';
            if (spec_trust_list_of(key, "/certvisor/c/", list, sizeof(list)) == 0)
                FUZZ_CHECK(list[0] && !strchr(list, '/'));
        }
        break;
    }
    }
    return 0;
}
