/*
 * The record of the services' processes that lets a new agent take them over: the text of
 * run_dir/services.json, and the supervisor's part of the state a re-exec hands over. This
 * is the reader only (pure: no process is touched), so that it can be fuzzed on its own;
 * adopt.c writes the records and acts on what this reads.
 */
#ifndef CERTVISOR_RECORDS_H
#define CERTVISOR_RECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SERVICE_RECORDS_VERSION 1
/* Far above what any configuration writes (about 300 bytes per service). */
#define SERVICE_RECORDS_MAX_BYTES (1024 * 1024)
/* A record list longer than this is refused whole: no configuration has that many services. */
#define SERVICE_RECORDS_MAX 4096

/* One service's process as the agent that recorded it saw it. */
struct service_record {
    const char *name;              /* borrowed from the parsed JSON */
    pid_t pid;                     /* > 1 */
    unsigned long long start_time; /* /proc/<pid>/stat field 22, in clock ticks since boot */
    const char *state;             /* service_state_name() of its state then */
    const char *settings;          /* SHA-256 of its settings, in hex */
    uint64_t loaded_usec;          /* wall clock of the last time it read its files */
    unsigned restarts;             /* spawns after its first (0 in an older record) */
    unsigned crashes;              /* of those, revivals after an unasked exit (likewise) */
    const char *binary;            /* "dev:ino:mtime_ns" of the command file it runs, or "" */
};

struct service_records {
    json_t *root; /* owns the strings the records borrow */
    struct service_record *items;
    size_t n;
    size_t malformed;              /* records skipped for a missing or wrong field */
    const char **operator_stopped; /* services stopped by hand, borrowed from root */
    size_t n_operator_stopped;
};

/*
 * Reads the record from its JSON text (at most SERVICE_RECORDS_MAX_BYTES). A malformed
 * record is skipped and counted; a text that is not JSON, not this version, or too large is
 * refused whole with err saying why. Returns 0 or -EINVAL; free with service_records_free().
 */
int service_records_parse(const char *text, size_t len, struct service_records *out, char *err,
                          size_t err_len);

/* The same from a parsed object (takes a reference to root). */
int service_records_from_json(json_t *root, struct service_records *out, char *err, size_t err_len);

void service_records_free(struct service_records *records);

#endif
