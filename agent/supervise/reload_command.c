/* Running a service's reload_command (systemd's ExecReload): spawn, capture, reap, report. */
#include "reload_command.h"

#include "output.h"
#include "service_impl.h"
#include "spawn.h"
#include "supervisor_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Enough of the end of its stderr for the last line of any message worth showing. */
#define TAIL_BYTES 512

struct reload_run {
    int stderr_fd; /* the read end of its stderr, -1 once at its end */
    struct event *stderr_event;
    int status_fd; /* the exec-status pipe (spawn.h) */
    char tail[TAIL_BYTES];
    size_t tail_len;
};

static void keep_tail(struct reload_run *run, const char *data, size_t len)
{
    if (len >= TAIL_BYTES) {
        memcpy(run->tail, data + len - TAIL_BYTES, TAIL_BYTES);
        run->tail_len = TAIL_BYTES;
        return;
    }
    if (run->tail_len + len > TAIL_BYTES) {
        size_t drop = run->tail_len + len - TAIL_BYTES;

        memmove(run->tail, run->tail + drop, run->tail_len - drop);
        run->tail_len -= drop;
    }
    memcpy(run->tail + run->tail_len, data, len);
    run->tail_len += len;
}

/* Reads what is there; the bytes go to the service's log and the tail. Returns false at the end. */
static bool read_stderr(struct service *service, struct reload_run *run)
{
    char chunk[4096];
    ssize_t n;

    while ((n = read(run->stderr_fd, chunk, sizeof(chunk))) > 0) {
        output_write(service->output, OUTPUT_STDERR, chunk, (size_t)n);
        keep_tail(run, chunk, (size_t)n);
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
}

static void close_stderr(struct reload_run *run)
{
    if (run->stderr_event) {
        event_free(run->stderr_event);
        run->stderr_event = NULL;
    }
    if (run->stderr_fd >= 0) {
        close(run->stderr_fd);
        run->stderr_fd = -1;
    }
}

static void on_stderr(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;

    (void)fd;
    (void)what;
    if (!read_stderr(service, service->reload_run))
        close_stderr(service->reload_run);
}

static void run_free(struct reload_run *run)
{
    if (!run)
        return;
    close_stderr(run);
    if (run->status_fd >= 0)
        close(run->status_fd);
    free(run);
}

int reload_command_start(struct service *service, char *err, size_t err_len)
{
    struct reload_run *run = calloc(1, sizeof(*run));
    struct spawn_request request = {
        .config = service->config,
        .argv = service->config->reload_argv,
        .notify_socket = NULL, /* it reports by its exit status, not by the notify protocol */
        .stdout_fd = output_child_fd(service->output, OUTPUT_STDOUT),
    };
    int pipe_fds[2];
    pid_t pid;
    int r;

    if (!run)
        return -ENOMEM;
    run->stderr_fd = run->status_fd = -1;
    if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot create a pipe for the reload command: %s", strerror(-r));
        free(run);
        return r;
    }
    run->stderr_fd = pipe_fds[0];
    request.stderr_fd = pipe_fds[1];
    r = spawn_service(&request, &pid, &run->status_fd, err, err_len);
    close(pipe_fds[1]); /* the child has its copy: the end of its stderr is our EOF */
    if (r < 0) {
        run_free(run);
        return r;
    }
    fcntl(run->stderr_fd, F_SETFL, O_NONBLOCK);
    run->stderr_event = event_new(service->supervisor->base, run->stderr_fd, EV_READ | EV_PERSIST,
                                  on_stderr, service);
    if (run->stderr_event)
        event_add(run->stderr_event, NULL);
    service->reload_run = run;
    service->reload_pid = pid;
    return 0;
}

/* The last non-empty line of the tail, with control characters made visible. */
static void last_line(const struct reload_run *run, char *buf, size_t len)
{
    size_t end = run->tail_len, start, n;

    while (end > 0 &&
           (run->tail[end - 1] == '\n' || run->tail[end - 1] == '\r' || run->tail[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && run->tail[start - 1] != '\n')
        start--;
    n = end - start < len - 1 ? end - start : len - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)run->tail[start + i];

        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[n] = '\0';
}

static void describe_status(int wait_status, char *buf, size_t len)
{
    if (WIFEXITED(wait_status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(wait_status));
    else if (WIFSIGNALED(wait_status))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(wait_status),
                 strsignal(WTERMSIG(wait_status)));
    else
        snprintf(buf, len, "ended with wait status %d", wait_status);
}

int reload_command_finish(struct service *service, int wait_status, char *why, size_t why_len)
{
    struct reload_run *run = service->reload_run;
    const char *program = service->config->reload_argv ? service->config->reload_argv[0] : "?";
    char exec_error[512] = "", line[TAIL_BYTES + 1] = "", status[96];

    service->reload_pid = 0;
    service->reload_run = NULL;
    if (!run) {
        *why = '\0';
        return 0;
    }
    /* The process is gone, but its last bytes may still wait in the pipe. */
    if (run->stderr_fd >= 0)
        read_stderr(service, run);
    spawn_read_failure_of(run->status_fd, service->config, program, exec_error, sizeof(exec_error));
    last_line(run, line, sizeof(line));
    run_free(run);
    if (*exec_error) {
        snprintf(why, why_len, "reload command %s", exec_error);
        return -EIO;
    }
    if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
        *why = '\0';
        return 0;
    }
    describe_status(wait_status, status, sizeof(status));
    snprintf(why, why_len, "reload command %s %s%s%s", program, status, *line ? ": " : "", line);
    return -EIO;
}

void reload_command_kill(struct service *service)
{
    if (service->reload_pid > 0 && kill(-service->reload_pid, SIGKILL) < 0 && errno == ESRCH)
        kill(service->reload_pid, SIGKILL); /* not yet the leader of its own group */
}

void reload_command_abandon(struct service *service)
{
    reload_command_kill(service);
    run_free(service->reload_run);
    service->reload_run = NULL;
    service->reload_pid = 0;
}
