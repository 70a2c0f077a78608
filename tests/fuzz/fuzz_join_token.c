/* Fuzzes what a join reads from outside (agent/cluster/join_token.c): the token a joiner
 * presents, a --ttl, and a CA certificate a peer sends. The first byte picks the reader. */
#include "fuzz_util.h"
#include "join_token.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[4096], err[512];
    size_t len;

    if (size < 1)
        return 0;
    len = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    switch (data[0] % 3) {
    case 0: {
        char id[JOIN_TOKEN_ID_LEN + 1], secret[JOIN_TOKEN_SECRET_LEN + 1], hex[65];

        if (join_token_parse(text, id, secret, err, sizeof(err)) == 0) {
            FUZZ_CHECK(join_token_id_valid(id) && strlen(secret) == JOIN_TOKEN_SECRET_LEN);
            join_token_secret_sha256(secret, hex);
            FUZZ_CHECK(join_token_secret_matches(secret, hex));
        }
        break;
    }
    case 1: {
        long seconds = 0;

        if (join_ttl_parse(text, &seconds, err, sizeof(err)) == 0)
            FUZZ_CHECK(seconds >= JOIN_TTL_MIN_S && seconds <= JOIN_TTL_MAX_S);
        break;
    }
    default: {
        char hash[JOIN_CA_HASH_TEXT_LEN + 1];

        if (join_ca_cert_hash((const char *)data + 1, size - 1, hash, sizeof(hash), err,
                              sizeof(err)) == 0)
            FUZZ_CHECK(strlen(hash) == JOIN_CA_HASH_TEXT_LEN && strncmp(hash, "sha256:", 7) == 0);
        break;
    }
    }
    return 0;
}
