/* Capture of a service's stdout and stderr: line splitting, the tail buffer, the log sinks. */
#include "output.h"

#include "sdproto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define OUTPUT_LINE_MAX 8192          /* longer lines are split */
#define OUTPUT_TAIL_BYTES (64 * 1024) /* the tail buffer's bound, whatever the line count */

/* A log file with size-based rotation; stdout and stderr may share one. */
struct log_file {
    char *path;
    int fd;
    off_t size;
    int refs;
};

struct tail_line {
    enum output_stream_id stream;
    size_t len;
    char text[];
};

struct follower {
    struct follower *next;
    int stream_filter;
    output_line_fn fn;
    void *data;
};

struct stream {
    struct output *owner;
    enum output_stream_id id;
    int read_fd;
    int write_fd;
    struct event *event;
    int journal_fd;        /* a journal stream for this service, or -1 */
    struct log_file *file; /* or NULL */
    char partial[OUTPUT_LINE_MAX];
    size_t partial_len;
};

struct output {
    char *name;
    struct output_settings settings;
    struct stream streams[2];
    struct tail_line **tail; /* ring of settings.tail_lines entries */
    size_t tail_head;        /* index of the oldest */
    size_t tail_count;
    size_t tail_bytes;
    struct follower *followers;
};

static int log_file_open(struct log_file *file)
{
    struct stat st;

    file->fd = open(file->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (file->fd < 0)
        return -errno;
    file->size = fstat(file->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

/* name.log -> name.log.1 -> ... -> name.log.N (dropped), then a fresh name.log. */
static void log_file_rotate(struct log_file *file, int backups)
{
    char from[4200], to[4200];

    for (int i = backups; i >= 1; i--) {
        snprintf(to, sizeof(to), "%s.%d", file->path, i);
        if (i == 1)
            snprintf(from, sizeof(from), "%s", file->path);
        else
            snprintf(from, sizeof(from), "%s.%d", file->path, i - 1);
        rename(from, to);
    }
    close(file->fd);
    if (backups == 0 && truncate(file->path, 0) < 0) {
        /* Keep appending; the next write retries the rotation. */
    }
    if (log_file_open(file) < 0)
        file->fd = -1;
}

static void log_file_write(struct output *output, struct log_file *file, const char *data,
                           size_t len)
{
    ssize_t n;

    if (file->fd < 0 && log_file_open(file) < 0)
        return;
    if (output->settings.max_bytes > 0 && file->size + (off_t)len > output->settings.max_bytes &&
        file->size > 0)
        log_file_rotate(file, output->settings.backups);
    if (file->fd < 0)
        return;
    n = write(file->fd, data, len);
    if (n > 0)
        file->size += n;
}

static void tail_push(struct output *output, enum output_stream_id stream, const char *line,
                      size_t len)
{
    size_t cap = (size_t)output->settings.tail_lines;
    struct tail_line *entry;

    if (cap == 0)
        return;
    /* Drop the oldest lines until both bounds hold with the new one. */
    while (output->tail_count &&
           (output->tail_count >= cap || output->tail_bytes + len > OUTPUT_TAIL_BYTES)) {
        struct tail_line *oldest = output->tail[output->tail_head];

        output->tail_bytes -= oldest->len;
        free(oldest);
        output->tail[output->tail_head] = NULL;
        output->tail_head = (output->tail_head + 1) % cap;
        output->tail_count--;
    }
    entry = malloc(sizeof(*entry) + len + 1);
    if (!entry)
        return;
    entry->stream = stream;
    entry->len = len;
    memcpy(entry->text, line, len);
    entry->text[len] = '\0';
    output->tail[(output->tail_head + output->tail_count) % cap] = entry;
    output->tail_count++;
    output->tail_bytes += len;
}

static void deliver_line(struct stream *stream, const char *line, size_t len)
{
    struct output *output = stream->owner;

    tail_push(output, stream->id, line, len);
    for (struct follower *f = output->followers, *next; f; f = next) {
        next = f->next; /* a follower may remove itself */
        if (f->stream_filter < 0 || f->stream_filter == (int)stream->id)
            f->fn(f->data, stream->id, line, len);
    }
}

/* Splits a chunk into lines, then hands the sinks whole lines in one write each. */
static void consume(struct stream *stream, const char *data, size_t len)
{
    const char *start = data;
    const char *end = data + len;
    const char *nl;

    /* Complete the line left over from the previous chunk, if any. */
    if (stream->partial_len) {
        nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;

        if (take > sizeof(stream->partial) - stream->partial_len)
            take = sizeof(stream->partial) - stream->partial_len;
        memcpy(stream->partial + stream->partial_len, data, take);
        stream->partial_len += take;
        start = data + take;
        if (start < end && *start == '\n')
            start++;
        else if (stream->partial_len < sizeof(stream->partial))
            goto sinks; /* still no end of line */
        deliver_line(stream, stream->partial, stream->partial_len);
        stream->partial_len = 0;
    }
    while (start < end) {
        nl = memchr(start, '\n', (size_t)(end - start));
        if (!nl && (size_t)(end - start) < sizeof(stream->partial)) {
            memcpy(stream->partial, start, (size_t)(end - start));
            stream->partial_len = (size_t)(end - start);
            break;
        }
        size_t line_len = nl ? (size_t)(nl - start) : sizeof(stream->partial);
        bool split = line_len > sizeof(stream->partial);

        /* A line longer than the limit is delivered in pieces of the limit. */
        if (split)
            line_len = sizeof(stream->partial);
        deliver_line(stream, start, line_len);
        start += line_len + (nl && !split ? 1 : 0);
    }
sinks:
    /* The sinks get the bytes as they came: the journal splits lines itself,
     * and a file keeps exactly what the service wrote. */
    if (stream->journal_fd >= 0 && write(stream->journal_fd, data, len) < 0) {
        /* journald gone: the tail buffer still has the lines */
    }
    if (stream->file)
        log_file_write(stream->owner, stream->file, data, len);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct stream *stream = arg;
    char chunk[65536];
    ssize_t n;

    (void)what;
    /* One read per wakeup: a flooding service cannot starve the others. */
    n = read(fd, chunk, sizeof(chunk));
    if (n > 0)
        consume(stream, chunk, (size_t)n);
}

static struct log_file *file_for(struct output *output, const char *path)
{
    struct log_file *file;

    for (int i = 0; i < 2; i++) {
        file = output->streams[i].file;
        if (file && strcmp(file->path, path) == 0) {
            file->refs++;
            return file;
        }
    }
    file = calloc(1, sizeof(*file));
    if (!file || !(file->path = strdup(path))) {
        free(file);
        return NULL;
    }
    file->refs = 1;
    if (log_file_open(file) < 0)
        file->fd = -1; /* retried on the next write */
    return file;
}

/*
 * The stream's FIFO, made if missing (0600: only the agent opens it by name; a service gets
 * the write end as its descriptor), opened for reading and then for writing, so that the
 * open for writing finds a reader and does not block.
 */
static int open_fifo(const struct output *output, enum output_stream_id id, int fds[2], char *err,
                     size_t err_len)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s.%s", output->settings.fifo_dir, output->name,
             id == OUTPUT_STDOUT ? "stdout" : "stderr");
    if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot make the output FIFO %s: %s", path, strerror(errno));
        return -errno;
    }
    if (lstat(path, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(err, err_len, "%s is not a FIFO of the agent's user: remove it", path);
        return -EEXIST;
    }
    fds[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    fds[1] = fds[0] < 0 ? -1 : open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fds[1] < 0) {
        int r = -errno;

        snprintf(err, err_len, "cannot open the output FIFO %s: %s", path, strerror(errno));
        if (fds[0] >= 0)
            close(fds[0]);
        return r;
    }
    /* The service's end blocks, as a pipe's does: a write must not fail for being early. */
    return 0;
}

static int stream_setup(struct output *output, struct event_base *base, struct stream *stream,
                        const struct output_target *target, char *err, size_t err_len)
{
    enum output_target_kind kind = target->kind;
    int fds[2];

    stream->owner = output;
    stream->read_fd = stream->write_fd = stream->journal_fd = -1;
    if (kind == OUTPUT_NULL)
        return 0;
    if (kind == OUTPUT_AUTO)
        kind = output->settings.journal_available ? OUTPUT_JOURNAL : OUTPUT_FILE;
    if (kind == OUTPUT_JOURNAL) {
        /* The journal stream credits every line to SYSLOG_IDENTIFIER=<service>. */
        stream->journal_fd = sdproto_journal_stream(output->name, LOG_INFO);
        if (stream->journal_fd < 0)
            kind = OUTPUT_FILE; /* no journald to talk to: keep the lines in the log file */
    }
    if (kind == OUTPUT_FILE) {
        stream->file = file_for(output, target->path);
        if (!stream->file)
            return -ENOMEM;
    }
    if (output->settings.fifo_dir) {
        int r = open_fifo(output, stream->id, fds, err, err_len);

        if (r < 0)
            return r;
    } else if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, err_len, "cannot create the output pipe: %s", strerror(errno));
        return -errno;
    }
    stream->read_fd = fds[0];
    stream->write_fd = fds[1];
    fcntl(stream->read_fd, F_SETFL, O_NONBLOCK);
    stream->event = event_new(base, stream->read_fd, EV_READ | EV_PERSIST, on_readable, stream);
    if (!stream->event || event_add(stream->event, NULL) < 0)
        return -ENOMEM;
    return 0;
}

int output_new(struct event_base *base, const struct service_config *config,
               const struct output_settings *settings, struct output **ret_output, char *err,
               size_t err_len)
{
    struct output *output = calloc(1, sizeof(*output));
    int r;

    if (!output)
        return -ENOMEM;
    for (int i = 0; i < 2; i++)
        output->streams[i].read_fd = output->streams[i].write_fd = output->streams[i].journal_fd =
            -1;
    output->settings = *settings;
    output->name = strdup(config->name);
    output->tail =
        calloc(settings->tail_lines > 0 ? (size_t)settings->tail_lines : 1, sizeof(*output->tail));
    if (!output->name || !output->tail) {
        output_free(output);
        return -ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        /* Before any setup can fail: output_free() closes what is not -1. */
        output->streams[i].id = (enum output_stream_id)i;
        output->streams[i].read_fd = output->streams[i].write_fd = -1;
        output->streams[i].journal_fd = -1;
    }
    r = stream_setup(output, base, &output->streams[OUTPUT_STDOUT], &config->stdout_target, err,
                     err_len);
    if (r == 0)
        r = stream_setup(output, base, &output->streams[OUTPUT_STDERR], &config->stderr_target, err,
                         err_len);
    output->settings.fifo_dir = NULL; /* the caller's string: needed only above */
    if (r < 0) {
        output_free(output);
        return r;
    }
    *ret_output = output;
    return 0;
}

void output_free(struct output *output)
{
    if (!output)
        return;
    for (int i = 0; i < 2; i++) {
        struct stream *stream = &output->streams[i];

        if (stream->event)
            event_free(stream->event);
        if (stream->read_fd >= 0)
            close(stream->read_fd);
        if (stream->write_fd >= 0)
            close(stream->write_fd);
        if (stream->journal_fd >= 0)
            close(stream->journal_fd);
        if (stream->file && --stream->file->refs == 0) {
            if (stream->file->fd >= 0)
                close(stream->file->fd);
            free(stream->file->path);
            free(stream->file);
        }
    }
    if (output->tail) {
        for (size_t i = 0; i < output->tail_count; i++)
            free(output->tail[(output->tail_head + i) % (size_t)output->settings.tail_lines]);
        free(output->tail);
    }
    while (output->followers) {
        struct follower *gone = output->followers;

        output->followers = gone->next;
        gone->fn(gone->data, OUTPUT_STDOUT, NULL, 0);
        free(gone);
    }
    free(output->name);
    free(output);
}

int output_child_fd(const struct output *output, enum output_stream_id stream)
{
    return output->streams[stream].write_fd;
}

void output_write(struct output *output, enum output_stream_id stream, const char *data, size_t len)
{
    if (output->streams[stream].write_fd >= 0)
        consume(&output->streams[stream], data, len);
}

void output_tail(const struct output *output, int n, int stream_filter, output_line_fn fn,
                 void *data)
{
    size_t cap = (size_t)output->settings.tail_lines;
    size_t matching = 0, skip;

    if (cap == 0)
        return;
    for (size_t i = 0; i < output->tail_count; i++) {
        const struct tail_line *line = output->tail[(output->tail_head + i) % cap];

        matching += stream_filter < 0 || stream_filter == (int)line->stream;
    }
    if (n == 0)
        return;
    skip = n > 0 && matching > (size_t)n ? matching - (size_t)n : 0;
    for (size_t i = 0; i < output->tail_count; i++) {
        const struct tail_line *line = output->tail[(output->tail_head + i) % cap];

        if (stream_filter >= 0 && stream_filter != (int)line->stream)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        fn(data, line->stream, line->text, line->len);
    }
}

int output_follow(struct output *output, int stream_filter, output_line_fn fn, void *data)
{
    struct follower *f = calloc(1, sizeof(*f));

    if (!f)
        return -ENOMEM;
    f->stream_filter = stream_filter;
    f->fn = fn;
    f->data = data;
    f->next = output->followers;
    output->followers = f;
    return 0;
}

void output_unfollow(struct output *output, output_line_fn fn, void *data)
{
    for (struct follower **p = &output->followers; *p; p = &(*p)->next) {
        if ((*p)->fn == fn && (*p)->data == data) {
            struct follower *gone = *p;

            *p = gone->next;
            free(gone);
            return;
        }
    }
}

void output_move_followers(struct output *from, struct output *to)
{
    struct follower **tail = &to->followers;

    while (*tail)
        tail = &(*tail)->next;
    *tail = from->followers;
    from->followers = NULL;
}
