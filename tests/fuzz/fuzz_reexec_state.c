/* Fuzzes the state a re-exec hands to the new binary (agent/daemon/reexec_state.c): whatever an
 * older or a broken binary wrote, the new one must refuse it or read it within bounds. */
#include "fuzz_util.h"
#include "reexec_state.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[REEXEC_MAX_FDS];
    struct reexec_state state;
    char err[256];
    size_t n;
    int r = reexec_state_parse((const char *)data, size, &state, err, sizeof(err));

    if (r < 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        FUZZ_CHECK(state.root == NULL && state.control_fd == -1);
        return 0;
    }
    /* The descriptors the new binary keeps: never 0-2, never one twice. */
    n = reexec_state_fds(&state, fds);
    FUZZ_CHECK(n <= REEXEC_MAX_FDS);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(fds[i] >= 3 && fds[i] < REEXEC_MAX_FD);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(fds[i] != fds[j]);
    }
    FUZZ_CHECK(state.binary && state.version);
    for (size_t i = 0; i < state.records.n; i++)
        FUZZ_CHECK(state.records.items[i].pid > 1);
    reexec_state_free(&state);
    return 0;
}
