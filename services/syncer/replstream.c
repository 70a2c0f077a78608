/* Following a Redis replication stream as it passes: the handshake, the RDB, offsets and acks. */
#include "replstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void replstream_init(struct replstream *stream)
{
    static const struct resp_limits limits = {8, 1024, 1024};

    memset(stream, 0, sizeof(*stream));
    stream->source_offset = -1;
    stream->psync_offset = -1;
    stream->ack_offset = -1;
    resp_parser_init(&stream->parser, &limits);
}

static bool word_is(const struct resp_arg *arg, const char *word)
{
    return arg->len == strlen(word) && strncasecmp(arg->data, word, arg->len) == 0;
}

static bool parse_number(const struct resp_arg *arg, long long *ret)
{
    char *end;
    long long value = strtoll(arg->data, &end, 10);

    if (arg->len == 0 || end != arg->data + arg->len)
        return false;
    *ret = value;
    return true;
}

static void upstream_request(struct replstream *stream, const struct resp_request *req,
                             uint64_t now_ms)
{
    long long value;

    if (req->argc >= 3 && word_is(&req->argv[0], "PSYNC")) {
        stream->psync_offset = parse_number(&req->argv[2], &value) ? value : -1;
    } else if (req->argc >= 3 && word_is(&req->argv[0], "REPLCONF") &&
               word_is(&req->argv[1], "ACK") && parse_number(&req->argv[2], &value)) {
        stream->ack_offset = value;
        stream->ack_at_ms = now_ms;
    }
}

void replstream_upstream(struct replstream *stream, const char *data, size_t len, uint64_t now_ms)
{
    while (!stream->up_lost && len > 0) {
        size_t room = sizeof(stream->up) - stream->up_len;
        size_t take = len < room ? len : room;
        const struct resp_request *req;
        size_t used;
        char err[128];
        int r;

        memcpy(stream->up + stream->up_len, data, take);
        stream->up_len += take;
        data += take;
        len -= take;
        while ((r = resp_parse_request(&stream->parser, stream->up, stream->up_len, &req, &used,
                                       err, sizeof(err))) == 1) {
            upstream_request(stream, req, now_ms);
            memmove(stream->up, stream->up + used, stream->up_len - used);
            stream->up_len -= used;
        }
        /* A request larger than the buffer, or not a request: acks are no longer followed. */
        if (r < 0 || stream->up_len == sizeof(stream->up))
            stream->up_lost = true;
    }
}

/* A reply line of the handshake (without its line ending). */
static void reply_line(struct replstream *stream)
{
    const char *line = stream->line;

    if (strncmp(line, "+FULLRESYNC ", 12) == 0) {
        const char *space = strchr(line + 12, ' ');
        size_t id_len = space ? (size_t)(space - (line + 12)) : 0;

        if (!space || id_len >= sizeof(stream->replid)) {
            stream->phase = REPLSTREAM_LOST;
            return;
        }
        memcpy(stream->replid, line + 12, id_len);
        stream->replid[id_len] = '\0';
        stream->source_offset = strtoll(space + 1, NULL, 10);
        stream->full_sync = true;
        stream->phase = REPLSTREAM_RDB;
        stream->down = DOWN_RDB_HEADER;
    } else if (strncmp(line, "+CONTINUE", 9) == 0) {
        if (line[9] == ' ')
            snprintf(stream->replid, sizeof(stream->replid), "%.40s", line + 10);
        /* The stream goes on from the offset the replica asked for. */
        stream->source_offset = stream->psync_offset > 0 ? stream->psync_offset - 1 : -1;
        stream->phase = REPLSTREAM_STREAMING;
    }
    /* Anything else (+PONG, +OK, -ERR ...) belongs to the handshake. */
}

/* The "$<length>" or "$EOF:<mark>" line that opens the RDB. */
static void rdb_header(struct replstream *stream)
{
    const char *line = stream->line;

    if (strncmp(line, "$EOF:", 5) == 0 && strlen(line + 5) == REPLSTREAM_EOF_MARK) {
        memcpy(stream->mark, line + 5, REPLSTREAM_EOF_MARK);
        stream->tail_len = 0;
        stream->down = DOWN_RDB_EOF;
    } else if (line[0] == '$') {
        stream->rdb_left = strtoll(line + 1, NULL, 10);
        stream->down = DOWN_RDB_LENGTH;
        if (stream->rdb_left < 0)
            stream->phase = REPLSTREAM_LOST;
        else if (stream->rdb_left == 0)
            stream->phase = REPLSTREAM_STREAMING;
    } else {
        stream->phase = REPLSTREAM_LOST;
    }
}

/* Consumes one line's bytes; returns how many it took. A complete line is handled. */
static size_t take_line(struct replstream *stream, const char *data, size_t len, bool header)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (stream->line_len + 1 < sizeof(stream->line))
                stream->line[stream->line_len++] = data[i];
            continue;
        }
        if (stream->line_len && stream->line[stream->line_len - 1] == '\r')
            stream->line_len--;
        stream->line[stream->line_len] = '\0';
        /* Before the RDB, the source sends bare newlines to keep the replica waiting. */
        if (stream->line_len > 0) {
            if (header)
                rdb_header(stream);
            else
                reply_line(stream);
        }
        stream->line_len = 0;
        return i + 1;
    }
    return len;
}

/* Bytes of a diskless RDB: it ends with the 40-byte mark of its header. */
static size_t take_rdb_eof(struct replstream *stream, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (stream->tail_len == REPLSTREAM_EOF_MARK) {
            memmove(stream->tail, stream->tail + 1, REPLSTREAM_EOF_MARK - 1);
            stream->tail_len--;
        }
        stream->tail[stream->tail_len++] = data[i];
        if (stream->tail_len == REPLSTREAM_EOF_MARK &&
            memcmp(stream->tail, stream->mark, REPLSTREAM_EOF_MARK) == 0) {
            stream->phase = REPLSTREAM_STREAMING;
            return i + 1;
        }
    }
    return len;
}

void replstream_downstream(struct replstream *stream, const char *data, size_t len)
{
    while (len > 0) {
        size_t used;

        switch (stream->phase) {
        case REPLSTREAM_LOST:
            return;
        case REPLSTREAM_STREAMING:
            if (stream->source_offset >= 0)
                stream->source_offset += (long long)len;
            return;
        case REPLSTREAM_HANDSHAKE:
            used = take_line(stream, data, len, false);
            break;
        case REPLSTREAM_RDB:
        default:
            if (stream->down == DOWN_RDB_HEADER) {
                used = take_line(stream, data, len, true);
            } else if (stream->down == DOWN_RDB_LENGTH) {
                used = (long long)len < stream->rdb_left ? len : (size_t)stream->rdb_left;
                stream->rdb_left -= (long long)used;
                if (stream->rdb_left == 0)
                    stream->phase = REPLSTREAM_STREAMING;
            } else {
                used = take_rdb_eof(stream, data, len);
            }
            break;
        }
        data += used;
        len -= used;
    }
}
