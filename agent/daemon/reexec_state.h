/*
 * The state a re-exec hands to the new binary (reexec.c), as JSON in a memfd: the
 * descriptors it keeps open (control socket, notify socket, the requests waiting for the
 * answer, the output FIFOs, the control connections between requests), the agent's counters, and
 * the services' record (records.h). This is the reader only, pure, so that it can be fuzzed: a new
 * binary must never trust what an older one wrote.
 */
#ifndef CERTVISOR_REEXEC_STATE_H
#define CERTVISOR_REEXEC_STATE_H

#include "records.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define REEXEC_STATE_VERSION 1
/* The services' record and a few numbers: far below this. */
#define REEXEC_STATE_MAX_BYTES (2 * 1024 * 1024)
#define REEXEC_MAX_REPLIES 8 /* daemon-reexec requests answered by the new binary */
#define REEXEC_MAX_FIFOS 512 /* output FIFOs held open across the exec (two per service) */
#define REEXEC_MAX_CONNS 512 /* idle control connections kept open across the exec */
/* Every descriptor a state can name. */
#define REEXEC_MAX_FDS (2 + REEXEC_MAX_REPLIES + REEXEC_MAX_FIFOS + REEXEC_MAX_CONNS)
#define REEXEC_MAX_FD (1 << 20)

struct reexec_state {
    json_t *root;        /* owns the strings below */
    const char *binary;  /* what was executed */
    const char *version; /* the version that wrote the state */
    uint64_t began_usec; /* CLOCK_MONOTONIC when the old binary began the exec */
    uint64_t reexecs;    /* re-execs before this one */
    int64_t started_at;  /* wall clock of the first start */
    int control_fd;      /* the listening control socket, or -1 */
    int notify_fd;       /* the notify socket, or -1 */
    int reply_fds[REEXEC_MAX_REPLIES];
    size_t n_reply_fds;
    int fifo_fds[REEXEC_MAX_FIFOS];
    size_t n_fifo_fds;
    int conn_fds[REEXEC_MAX_CONNS]; /* control connections between requests */
    size_t n_conn_fds;
    struct service_records records;
};

/*
 * Reads the state from its text. Every descriptor number is checked (3 to REEXEC_MAX_FD,
 * none twice), every count bounded; anything wrong refuses the whole state with err saying
 * what. Returns 0 or a negative errno; free with reexec_state_free().
 */
int reexec_state_parse(const char *text, size_t len, struct reexec_state *out, char *err,
                       size_t err_len);

/* Every descriptor the state names, in ascending order, into fds (room for REEXEC_MAX_FDS);
 * returns how many. */
size_t reexec_state_fds(const struct reexec_state *state, int *fds);

void reexec_state_free(struct reexec_state *state);

#endif
