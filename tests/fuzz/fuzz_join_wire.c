/* Fuzzes what a join reads from the other side (lib/join_wire.c): the joiner's request (what the
 * REST API's /v1/join/admit takes from anyone), the peer's answer (what the joiner reads from
 * the node it joins through), the membership file and the CA answer of /v1/join/ca. The first byte
 * picks the reader; what reads must encode and read back the same. */
#include "fuzz_util.h"
#include "join_wire.h"

#include <stdlib.h>
#include <string.h>

static void request_round_trip(const char *text, size_t len)
{
    struct join_request request, again;
    char err[512], *encoded;

    if (join_request_decode(text, len, &request, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        join_request_clear(&request);
        return;
    }
    FUZZ_CHECK(request.client_port != request.peer_port && request.csr[0] && request.csr[1]);
    encoded = join_request_encode(&request);
    FUZZ_CHECK(encoded &&
               join_request_decode(encoded, strlen(encoded), &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(strcmp(again.address, request.address) == 0 &&
               strcmp(again.csr[1], request.csr[1]) == 0);
    free(encoded);
    join_request_clear(&again);
    join_request_clear(&request);
}

static void answer_round_trip(const char *text, size_t len)
{
    struct join_answer answer, again;
    char err[512], *encoded;

    if (join_answer_decode(text, len, &answer, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        join_answer_clear(&answer);
        return;
    }
    FUZZ_CHECK(answer.n_members >= 1 && answer.n_members <= JOIN_MAX_MEMBERS &&
               answer.member_id != 0 && join_name_valid(answer.node));
    encoded = join_answer_encode(&answer);
    FUZZ_CHECK(encoded &&
               join_answer_decode(encoded, strlen(encoded), &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(again.member_id == answer.member_id && again.n_members == answer.n_members &&
               memcmp(again.data_key, answer.data_key, sizeof(answer.data_key)) == 0);
    free(encoded);
    join_answer_clear(&again);
    join_answer_clear(&answer);
}

static void membership_round_trip(const char *text, size_t len)
{
    struct join_membership membership, again;
    char err[512], *encoded;

    if (join_membership_decode(text, len, &membership, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    encoded = join_membership_encode(&membership);
    FUZZ_CHECK(encoded &&
               join_membership_decode(encoded, strlen(encoded), &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(memcmp(&again, &membership, sizeof(again)) == 0);
    free(encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data + 1;

    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 3: {
        char *pem = join_ca_answer_pem(text, size - 1);

        FUZZ_CHECK(!pem || (strlen(pem) > 0 && strlen(pem) <= JOIN_MAX_PEM));
        free(pem);
        break;
    }
    case 0:
        request_round_trip(text, size - 1);
        break;
    case 1:
        answer_round_trip(text, size - 1);
        break;
    default:
        membership_round_trip(text, size - 1);
        break;
    }
    return 0;
}
