/* Following a Redis replication stream as it passes: the handshake, the RDB, offsets and acks. */
#ifndef CERTVISOR_SYNCER_REPLSTREAM_H
#define CERTVISOR_SYNCER_REPLSTREAM_H

#include "resp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the syncer learns from the bytes it carries, without changing them.
 * Upstream (replica to source) are requests: PING, REPLCONF, PSYNC <replid>
 * <offset>, then REPLCONF ACK <offset> every second. Downstream (source to
 * replica) are the replies, then +FULLRESYNC <replid> <offset> and an RDB
 * ("$<length>" or, diskless, "$EOF:<40-byte mark>" ... mark), or +CONTINUE;
 * then the command stream, each byte of which advances the source's offset.
 */
enum replstream_phase {
    REPLSTREAM_HANDSHAKE, /* PING, REPLCONF, PSYNC and their replies */
    REPLSTREAM_RDB,       /* a full resynchronization: the snapshot is on its way */
    REPLSTREAM_STREAMING, /* the command stream: the link is up */
    REPLSTREAM_LOST,      /* something unexpected: offsets are no longer followed */
};

#define REPLSTREAM_LINE_MAX 256
#define REPLSTREAM_EOF_MARK 40
#define REPLSTREAM_UP_MAX 4096 /* the longest request followed upstream */

struct replstream {
    enum replstream_phase phase;
    /* downstream */
    enum { DOWN_REPLY, DOWN_RDB_HEADER, DOWN_RDB_LENGTH, DOWN_RDB_EOF } down;
    char line[REPLSTREAM_LINE_MAX];
    size_t line_len;
    long long rdb_left;
    char mark[REPLSTREAM_EOF_MARK];
    char tail[REPLSTREAM_EOF_MARK]; /* the last bytes of a diskless RDB, to find the mark */
    size_t tail_len;
    char replid[41];
    long long source_offset; /* -1 until known */
    bool full_sync;          /* this connection began with +FULLRESYNC (else +CONTINUE) */
    /* upstream */
    struct resp_parser parser;
    char up[REPLSTREAM_UP_MAX];
    size_t up_len;
    bool up_lost;
    long long psync_offset; /* what PSYNC asked for; -1 for "PSYNC ? -1" */
    long long ack_offset;   /* the replica's last REPLCONF ACK; -1 until one came */
    uint64_t ack_at_ms;
};

void replstream_init(struct replstream *stream);

/* Bytes from the replica (the local shard) to the source, as they are forwarded. */
void replstream_upstream(struct replstream *stream, const char *data, size_t len, uint64_t now_ms);

/* Bytes from the source to the replica, as they are forwarded. */
void replstream_downstream(struct replstream *stream, const char *data, size_t len);

#endif
