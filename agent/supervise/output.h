/* Capture of a service's stdout and stderr: line splitting, the tail buffer, the log sinks. */
#ifndef CERTVISOR_OUTPUT_H
#define CERTVISOR_OUTPUT_H

#include "service_config.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

enum output_stream_id { OUTPUT_STDOUT, OUTPUT_STDERR };

/* Settings shared by every service's output. */
struct output_settings {
    bool journal_available; /* the agent runs under systemd with a journal */
    long max_bytes;         /* rotate a log file beyond this size; 0 never rotates */
    int backups;            /* rotated files kept: name.log.1 ... name.log.N */
    int tail_lines;         /* lines kept for tail */
    /*
     * Where the streams' FIFOs go (<dir>/<service>.stdout, .stderr), or NULL for anonymous
     * pipes. A FIFO outlives the agent: a service that outlived it keeps writing into the
     * same FIFO, and the next agent opens it again and reads on (what was written while no
     * agent read is lost: the write fails with EPIPE, and SIGPIPE is ignored in services).
     */
    const char *fifo_dir;
};

struct output;

/*
 * Called for every captured line (without its newline) of a followed service,
 * and once with line NULL when the output goes away for good (the follower
 * must not call output_unfollow() then).
 */
typedef void (*output_line_fn)(void *data, enum output_stream_id stream, const char *line,
                               size_t len);

/*
 * Creates the pipes (or opens the FIFOs) and starts reading them. They live as
 * long as the output, so grandchildren that keep a service's stdout keep being
 * captured across restarts. Returns 0, or a negative errno (message in err).
 */
int output_new(struct event_base *base, const struct service_config *config,
               const struct output_settings *settings, struct output **ret_output, char *err,
               size_t err_len);

void output_free(struct output *output);

/* The write end a child gets for a stream, or -1 when the stream goes to /dev/null. */
int output_child_fd(const struct output *output, enum output_stream_id stream);

/*
 * Takes bytes for a stream from elsewhere than the service's own process (its
 * reload command's stderr), as if the service had written them: the log
 * sinks, the tail buffer and the followers get them. Dropped for a stream
 * that goes to /dev/null.
 */
void output_write(struct output *output, enum output_stream_id stream, const char *data,
                  size_t len);

/* Calls fn with each of the last n kept lines (all when n < 0), oldest first. */
void output_tail(const struct output *output, int n, int stream_filter, output_line_fn fn,
                 void *data);

/* Adds or removes a follower. stream_filter is an output_stream_id, or -1 for both. */
int output_follow(struct output *output, int stream_filter, output_line_fn fn, void *data);
void output_unfollow(struct output *output, output_line_fn fn, void *data);

/* Moves every follower of from to to (when a service's output is replaced). */
void output_move_followers(struct output *from, struct output *to);

#endif
