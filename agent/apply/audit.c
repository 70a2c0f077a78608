/* The audit log: one line per change, to the agent's log, to state_dir/audit.log and to a ring of
 * recent entries. */
#include "audit.h"

#include "audit_file.h"
#include "certs.h"
#include "config.h"
#include "log.h"
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_PENDING_NAME "audit.pending"
#define AUDIT_PENDING_MAX (64 * 1024) /* a batch's description; more is cut (the log has it) */

struct audit_entry {
    time_t time;
    char *who;
    char *message;
};

struct audit_ring {
    struct audit_entry entries[AUDIT_RING_SIZE];
    size_t next;  /* where the next entry goes */
    size_t count; /* how many are kept (up to AUDIT_RING_SIZE) */
    struct audit_file *file;
    char *state_dir;
    struct offload *offload;
    bool sync_running; /* an fdatasync of the file is on the worker */
    bool sync_again;   /* entries were written since it started */
    bool write_failed; /* logged once until a write succeeds again */
    char *pending;     /* audit.pending being built (audit_pending_*) */
    size_t pending_len;
};

/* Keeps an entry in the ring; takes message. */
static void ring_add(struct audit_ring *ring, time_t when, const char *who, char *message)
{
    struct audit_entry *entry = &ring->entries[ring->next];

    free(entry->who);
    free(entry->message);
    entry->time = when;
    entry->who = strdup(who);
    entry->message = message;
    ring->next = (ring->next + 1) % AUDIT_RING_SIZE;
    if (ring->count < AUDIT_RING_SIZE)
        ring->count++;
}

static const struct audit_entry *ring_newest(const struct audit_ring *ring, size_t i)
{
    return &ring->entries[(ring->next + AUDIT_RING_SIZE - 1 - i) % AUDIT_RING_SIZE];
}

/* --- the fsync, off the loop --- */

struct sync_job {
    struct audit_ring *ring;
    int fd; /* a duplicate: a rotation may close the ring's own meanwhile */
    int result;
};

static void request_sync(struct audit_ring *ring);

static void sync_work(void *data)
{
    struct sync_job *job = data;

    job->result = fdatasync(job->fd) < 0 ? -errno : 0;
}

static void sync_done(void *data, bool cancelled)
{
    struct sync_job *job = data;
    struct audit_ring *ring = job->ring;

    close(job->fd);
    if (!cancelled) {
        ring->sync_running = false;
        if (job->result < 0)
            log_warning("Cannot sync the audit log in %s: %s", ring->state_dir,
                        strerror(-job->result));
        if (ring->sync_again)
            request_sync(ring);
    }
    free(job);
}

/*
 * One fdatasync at a time on the worker; entries written while it runs are
 * covered by the next one. Without a worker, the kernel's writeback syncs the
 * file (within about 30 s by default); an agent crash loses nothing either way.
 */
static void request_sync(struct audit_ring *ring)
{
    struct sync_job *job;

    if (!ring->offload || !ring->file)
        return;
    if (ring->sync_running) {
        ring->sync_again = true;
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job)
        return;
    job->ring = ring;
    job->fd = fcntl(audit_file_fd(ring->file), F_DUPFD_CLOEXEC, 0);
    if (job->fd < 0 || offload_submit(ring->offload, sync_work, sync_done, job) < 0) {
        if (job->fd >= 0)
            close(job->fd);
        free(job);
        return;
    }
    ring->sync_running = true;
    ring->sync_again = false;
}

/* --- recording --- */

static void record(struct audit_ring *ring, time_t when, const char *who, char *message)
{
    int r;

    log_notice("audit: %s %s", who, message ? message : "(out of memory)");
    if (!ring || !message) {
        free(message);
        return;
    }
    if (ring->file) {
        r = audit_file_append(ring->file, when, who, message);
        if (r < 0 && !ring->write_failed)
            log_error("Cannot write the audit log in %s: %s; the agent's log keeps the entries "
                      "(lines starting with \"audit:\")",
                      ring->state_dir, strerror(-r));
        ring->write_failed = r < 0;
        if (r == 0)
            request_sync(ring);
    }
    ring_add(ring, when, who, message);
}

void audit_record(struct audit_ring *ring, const char *who, const char *fmt, ...)
{
    char *message = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    record(ring, time(NULL), who, message);
}

json_t *audit_recent(const struct audit_ring *ring, size_t limit)
{
    json_t *list = json_array();

    for (size_t i = 0; ring && i < ring->count && i < limit; i++) {
        const struct audit_entry *entry = ring_newest(ring, i);

        json_array_append_new(list, json_pack("{s:I, s:s?, s:s}", "time", (json_int_t)entry->time,
                                              "who", entry->who, "message", entry->message));
    }
    return list;
}

void audit_free(struct audit_ring *ring)
{
    if (!ring)
        return;
    for (size_t i = 0; i < AUDIT_RING_SIZE; i++) {
        free(ring->entries[i].who);
        free(ring->entries[i].message);
    }
    audit_file_close(ring->file);
    free(ring->state_dir);
    free(ring->pending);
    free(ring);
}

/* --- the change under way --- */

static void pending_path(const struct audit_ring *ring, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" AUDIT_PENDING_NAME, ring->state_dir);
}

static void pending_append(struct audit_ring *ring, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void pending_append(struct audit_ring *ring, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!ring->pending && !(ring->pending = malloc(AUDIT_PENDING_MAX)))
        return;
    va_start(ap, fmt);
    n = vsnprintf(ring->pending + ring->pending_len, AUDIT_PENDING_MAX - ring->pending_len, fmt,
                  ap);
    va_end(ap);
    /* A line that does not fit is left out whole: the reader never sees half of one. */
    if (n > 0 && ring->pending_len + (size_t)n < AUDIT_PENDING_MAX)
        ring->pending_len += (size_t)n;
    else
        ring->pending[ring->pending_len] = '\0';
}

void audit_pending_change(struct audit_ring *ring, const char *who, const char *what)
{
    char line[AUDIT_FILE_LINE_MAX];

    if (!ring)
        return;
    audit_file_format(line, sizeof(line), time(NULL), who, what);
    pending_append(ring, "change\t%s", line);
}

void audit_pending_generation(struct audit_ring *ring, enum audit_store store, const char *name,
                              unsigned generation)
{
    if (ring)
        pending_append(ring, "generation\t%s\t%s\t%u\n",
                       store == AUDIT_STORE_TRUST ? "trust" : "certs", name, generation);
}

void audit_pending_removal(struct audit_ring *ring, const char *name)
{
    if (ring)
        pending_append(ring, "removal\tcerts\t%s\n", name);
}

/* Appends text to audit.pending (creating it 0640), fsynced when durable. */
static int pending_write_text(struct audit_ring *ring, const char *text, size_t len, int flags,
                              bool durable)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd, r = 0;

    pending_path(ring, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0640);
    if (fd < 0)
        return -errno;
    n = write(fd, text, len);
    if (n < 0)
        r = -errno;
    else if ((size_t)n != len)
        r = -ENOSPC;
    /* Before the first switch, like the commit journal: a power cut must not keep the switch
     * and lose the description. One per change, next to the commit's own fsyncs. */
    if (r == 0 && durable && fdatasync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

void audit_pending_write(struct audit_ring *ring)
{
    int r;

    if (!ring)
        return;
    if (!ring->state_dir || !ring->pending_len) {
        ring->pending_len = 0;
        return;
    }
    r = pending_write_text(ring, ring->pending, ring->pending_len, O_TRUNC, true);
    if (r < 0)
        log_warning("Cannot write %s/" AUDIT_PENDING_NAME ": %s; if the agent stops before this "
                    "change is finished, its audit line is missing",
                    ring->state_dir, strerror(-r));
    ring->pending_len = 0;
}

void audit_pending_committed(struct audit_ring *ring)
{
    static const char mark[] = "committed\n";

    if (ring && ring->state_dir)
        pending_write_text(ring, mark, sizeof(mark) - 1, O_APPEND, false);
}

void audit_pending_clear(struct audit_ring *ring)
{
    char path[PATH_MAX];

    if (!ring || !ring->state_dir)
        return;
    ring->pending_len = 0;
    pending_path(ring, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_warning("Cannot remove %s: %s", path, strerror(errno));
}

/* --- start-up --- */

static void load_entry(void *data, time_t when, const char *who, const char *message)
{
    char *copy = strdup(message);

    if (copy)
        ring_add(data, when, who, copy);
}

/* What an audit.pending left by a stopped agent says, and whether that change took effect. */
struct interrupted {
    char *changes[64]; /* the "change" lines' audit-format text */
    size_t n_changes;
    size_t n_refs;      /* generations and removals listed */
    size_t n_in_effect; /* of them, current or gone */
    bool committed;
};

static bool generation_current(const struct certs *certs, const char *store, const char *name,
                               unsigned generation)
{
    struct certstore *s = !certs ? NULL : strcmp(store, "trust") == 0 ? certs->trust : certs->store;
    unsigned current;

    return s && certstore_current(s, name, &current) == 0 && current == generation;
}

static void parse_pending_line(const struct certs *certs, char *line, struct interrupted *what)
{
    char store[16], name[128];
    unsigned generation, current;

    if (strncmp(line, "change\t", 7) == 0) {
        if (what->n_changes < sizeof(what->changes) / sizeof(what->changes[0]))
            what->changes[what->n_changes++] = strdup(line + 7);
    } else if (sscanf(line, "generation\t%15s\t%127s\t%u", store, name, &generation) == 3) {
        what->n_refs++;
        what->n_in_effect += generation_current(certs, store, name, generation);
    } else if (sscanf(line, "removal\t%15s\t%127s", store, name) == 2) {
        what->n_refs++;
        what->n_in_effect += certs && certstore_current(certs->store, name, &current) == -ENOENT;
    } else if (strcmp(line, "committed") == 0) {
        what->committed = true;
    }
}

/* True when the ring's newest entries already hold this change's line (the agent died after
 * writing it, before removing audit.pending). */
static bool already_audited(const struct audit_ring *ring, const char *who, const char *what)
{
    for (size_t i = 0; i < ring->count && i < 64; i++) {
        const struct audit_entry *entry = ring_newest(ring, i);
        size_t len = strlen(what);

        if (entry->who && strcmp(entry->who, who) == 0 &&
            strncmp(entry->message, "changed ", 8) == 0 &&
            strncmp(entry->message + 8, what, len) == 0 && entry->message[8 + len] == ':')
            return true;
    }
    return false;
}

static void audit_interrupted(struct audit_ring *ring, struct interrupted *what)
{
    /* Every generation of one commit switches together (the journal rolls a half-made one
     * forward), so one current generation means the whole change is in force. */
    bool in_effect = what->n_refs ? what->n_in_effect > 0 : what->committed;

    for (size_t i = 0; i < what->n_changes; i++) {
        char *who, *message;
        time_t when;

        if (!what->changes[i])
            continue;
        if (audit_file_parse(what->changes[i], &when, &who, &message) < 0)
            continue;
        if (!in_effect)
            log_info("A change of %s was interrupted before it took effect: %s", who, message);
        else if (!already_audited(ring, who, message))
            audit_record(ring, who,
                         "changed %s: interrupted when the agent stopped; in force after the "
                         "restart (completed at start-up)",
                         message);
    }
}

static void recover_pending(struct audit_ring *ring, const struct certs *certs)
{
    struct interrupted what = {0};
    char path[PATH_MAX], *line = NULL;
    size_t cap = 0;
    ssize_t len;
    FILE *f;

    pending_path(ring, path, sizeof(path));
    f = fopen(path, "re");
    if (!f)
        return;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        parse_pending_line(certs, line, &what);
    }
    free(line);
    fclose(f);
    audit_interrupted(ring, &what);
    for (size_t i = 0; i < what.n_changes; i++)
        free(what.changes[i]);
    audit_pending_clear(ring);
}

int audit_open(const char *state_dir, const struct certs *certs, struct offload *offload,
               struct audit_ring **ret_ring, char *err, size_t err_len)
{
    struct audit_ring *ring = calloc(1, sizeof(*ring));
    char path[PATH_MAX];
    int r;

    if (!ring || !(ring->state_dir = strdup(state_dir))) {
        free(ring);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    ring->offload = offload;
    snprintf(path, sizeof(path), "%s/" AUDIT_LOG_NAME, ring->state_dir);
    r = audit_file_read(path, AUDIT_LOG_KEPT, load_entry, ring);
    if (r < 0)
        snprintf(err, err_len, "cannot read the audit log %s: %s", path, strerror(-r));
    else
        r = audit_file_open(path, AUDIT_LOG_MAX_BYTES, AUDIT_LOG_KEPT, &ring->file, err, err_len);
    if (r < 0) {
        audit_free(ring);
        return r;
    }
    recover_pending(ring, certs);
    *ret_ring = ring;
    return 0;
}
