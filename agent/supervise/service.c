/* A supervised service at run time: its process, state machine, timers, output and waiters. */
#include "service_impl.h"

#include "cv_error.h"
#include "log.h"
#include "notify.h"
#include "output.h"
#include "procscan.h"
#include "reload_command.h"
#include "spawn.h"
#include "supervisor_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t coarse_wall_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct timeval timeval_from(double seconds)
{
    struct timeval tv;

    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    service_dispatch(arg, FSM_TIMEOUT);
}

/* A reload is bounded by start_timeout, or by this when the service may take forever to start. */
#define RELOAD_TIMEOUT_DEFAULT 90.0

/* How long a reload command killed at the timeout may take to be reaped. */
#define RELOAD_KILL_GRACE 5.0

static double reload_timeout(const struct service *service)
{
    return service->config->policy.start_timeout > 0 ? service->config->policy.start_timeout
                                                     : RELOAD_TIMEOUT_DEFAULT;
}

/* A reload is over: its waiters hear how, and a pass runs, since its end may be what the
 * agent's readiness waited for (the reload of an adopted service). */
static void reload_ended(struct service *service, int result, const char *why)
{
    service_complete_waiters(service, WAIT_RELOADED, result, why);
    supervisor_schedule(service->supervisor);
}

static void on_reload_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;
    char why[600];

    (void)fd;
    (void)what;
    if (service->reload == RELOAD_COMMAND && !service->reload_timed_out) {
        struct timeval grace = timeval_from(RELOAD_KILL_GRACE);

        /* The waiters hear of it once it is reaped (service_handle_reload_exit): a rollback's
         * reload must not find the killed command still there. */
        log_warning("Service '%s': reload command %s did not finish within %gs; killing it",
                    service->config->name, service->config->reload_argv[0],
                    reload_timeout(service));
        reload_command_kill(service);
        service->reload_timed_out = true;
        evtimer_add(service->reload_timer, &grace);
        return;
    }
    if (service->reload == RELOAD_COMMAND) {
        /* Not even SIGKILL ended it (stuck in the kernel): stop waiting. Its pid stays known,
         * so a new reload is refused until it is reaped. */
        service->reload_timed_out = false;
        service->reload = RELOAD_IDLE;
        snprintf(why, sizeof(why),
                 "reload command %s did not finish within %gs, nor end when killed",
                 service->config->reload_argv[0], reload_timeout(service));
        log_error("Service '%s': %s", service->config->name, why);
        reload_ended(service, -ETIMEDOUT, why);
        return;
    }
    snprintf(why, sizeof(why), "did not confirm the reload (RELOADING=1, then READY=1) within %gs",
             reload_timeout(service));
    service->reload = RELOAD_IDLE;
    log_error("Service '%s' %s", service->config->name, why);
    reload_ended(service, -ETIMEDOUT, why);
}

static struct output_settings output_settings_of(const struct supervisor *sup)
{
    struct output_settings settings = {
        .journal_available = sup->under_systemd && log_stderr_is_journal(),
        .max_bytes = sup->config->service_log_max_bytes,
        .backups = sup->config->service_log_backups,
        .tail_lines = sup->config->tail_lines,
        .fifo_dir = sup->fifo_dir,
    };
    return settings;
}

int service_new(struct supervisor *sup, struct service_config *config, struct service **ret_service)
{
    struct service *service = calloc(1, sizeof(*service));
    struct output_settings settings = output_settings_of(sup);
    char err[256];
    int r;

    if (!service)
        return -ENOMEM;
    service->supervisor = sup;
    service->config = config;
    service->exec_status_fd = -1;
    service->adopted.pidfd = -1;
    service->draining.pidfd = -1;
    service->state_since_usec = monotonic_usec();
    service->state_since_wall = time(NULL);
    service->timer = evtimer_new(sup->base, on_timer, service);
    service->reload_timer = evtimer_new(sup->base, on_reload_timeout, service);
    if (!service->timer || !service->reload_timer) {
        service->config = NULL;
        service_free(service);
        return -ENOMEM;
    }
    r = output_new(sup->base, config, &settings, &service->output, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot capture the output of service '%s': %s", config->name, err);
        service->config = NULL;
        service_free(service);
        return r;
    }
    *ret_service = service;
    return 0;
}

static void close_exec_status(struct service *service)
{
    if (service->exec_status_event) {
        event_free(service->exec_status_event);
        service->exec_status_event = NULL;
    }
    if (service->exec_status_fd >= 0) {
        close(service->exec_status_fd);
        service->exec_status_fd = -1;
    }
}

static void pid_watch_stop(struct pid_watch *watch)
{
    if (watch->event) {
        event_free(watch->event);
        watch->event = NULL;
    }
    if (watch->pidfd >= 0) {
        close(watch->pidfd);
        watch->pidfd = -1;
    }
}

/* Watches pidfd (taken on success, replacing what watch held): fn(arg) when the process exits. */
static int pid_watch_start(struct pid_watch *watch, struct event_base *base, int pidfd,
                           event_callback_fn fn, void *arg)
{
    struct event *event = event_new(base, pidfd, EV_READ, fn, arg);

    if (!event || event_add(event, NULL) < 0) {
        if (event)
            event_free(event);
        return -ENOMEM;
    }
    pid_watch_stop(watch);
    watch->event = event;
    watch->pidfd = pidfd;
    return 0;
}

static void forget_adopted(struct service *service)
{
    pid_watch_stop(&service->adopted);
}

void service_draining_ended(struct service *service)
{
    log_info("Service '%s': its previous process %d ended after the hand-over",
             service->config->name, (int)service->draining_pid);
    service->draining_pid = 0;
    pid_watch_stop(&service->draining);
}

/* A draining process adopted after a crash is not the agent's child: its exit comes only
 * through its pidfd. A child is reaped here or in supervisor_reap(), whichever comes first. */
static void on_draining_exit(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;
    int status;

    (void)fd;
    (void)what;
    waitpid(service->draining_pid, &status, WNOHANG);
    service_draining_ended(service);
}

/* Watches the previous main process after a hand-over until it exits (best effort: without
 * a pidfd, a child's exit still comes through supervisor_reap()). */
static void watch_draining(struct service *service, pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    pid_watch_stop(&service->draining);
    service->draining_pid = pid;
    if (pidfd >= 0 && pid_watch_start(&service->draining, service->supervisor->base, pidfd,
                                      on_draining_exit, service) < 0)
        close(pidfd);
}

void service_free(struct service *service)
{
    if (!service)
        return;
    forget_adopted(service);
    pid_watch_stop(&service->draining);
    service_handover_done(service);
    service_complete_waiters(service, WAIT_READY, CV_ENO_SUCH_SERVICE, "removed");
    service_complete_waiters(service, WAIT_STOPPED, 0, NULL);
    service_complete_waiters(service, WAIT_RELOADED, CV_ENO_SUCH_SERVICE, "removed");
    reload_command_abandon(service);
    close_exec_status(service);
    if (service->timer)
        event_free(service->timer);
    if (service->reload_timer)
        event_free(service->reload_timer);
    output_free(service->output);
    json_decref(service->stats);
    service_config_free(service->config);
    service_config_free(service->next_config);
    free(service);
}

int service_wait(struct service *service, enum wait_goal goal, service_wait_fn fn, void *data)
{
    struct service_waiter *waiter = calloc(1, sizeof(*waiter));
    struct service_waiter **tail = &service->waiters;

    if (!waiter)
        return -ENOMEM;
    waiter->goal = goal;
    waiter->fn = fn;
    waiter->data = data;
    /* Appended, so waiters complete in the order they were registered. */
    while (*tail)
        tail = &(*tail)->next;
    *tail = waiter;
    return 0;
}

void service_complete_waiters(struct service *service, enum wait_goal goal, int result,
                              const char *why)
{
    struct service_waiter *done = NULL, **done_tail = &done;

    /* Unlink first: a callback may register new waiters on this service. */
    for (struct service_waiter **p = &service->waiters; *p;) {
        if ((*p)->goal == goal) {
            *done_tail = *p;
            *p = (*p)->next;
            done_tail = &(*done_tail)->next;
            *done_tail = NULL;
        } else {
            p = &(*p)->next;
        }
    }
    while (done) {
        struct service_waiter *next = done->next;

        done->fn(service, done->data, result, why);
        free(done);
        done = next;
    }
}

/* Swaps in a configuration that a reload left waiting for the service to stop. */
static void adopt_next_config(struct service *service)
{
    struct output_settings settings = output_settings_of(service->supervisor);
    struct output *output;
    char err[256];

    if (!service->next_config)
        return;
    if (output_new(service->supervisor->base, service->next_config, &settings, &output, err,
                   sizeof(err)) < 0) {
        log_error("Cannot capture the output of service '%s': %s; keeping the old streams",
                  service->config->name, err);
    } else {
        output_move_followers(service->output, output);
        output_free(service->output);
        service->output = output;
    }
    service_config_free(service->config);
    service->config = service->next_config;
    service->next_config = NULL;
}

static void on_exec_status(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;

    (void)what;
    if (spawn_read_failure(fd, service->config, service->exec_error, sizeof(service->exec_error))) {
        log_error("Service '%s': %s", service->config->name, service->exec_error);
        close_exec_status(service);
        return; /* the exit of the child drives the state machine */
    }
    close_exec_status(service); /* EOF without data: exec() succeeded */
    service_dispatch(service, FSM_SPAWNED);
}

/* Starts the process. Returns false when nothing could be started (exec_error says why). */
static bool spawn(struct service *service)
{
    struct spawn_request request = {
        .config = service->config,
        .notify_socket = service->supervisor->config->notify_socket,
        .stdout_fd = output_child_fd(service->output, OUTPUT_STDOUT),
        .stderr_fd = output_child_fd(service->output, OUTPUT_STDERR),
    };
    char err[512];
    int status_fd;
    pid_t pid;

    service->exec_error[0] = '\0';
    service->status_text[0] = '\0';
    if (spawn_service(&request, &pid, &status_fd, err, sizeof(err)) < 0) {
        snprintf(service->exec_error, sizeof(service->exec_error), "%s", err);
        log_error("Cannot start service '%s': %s", service->config->name, err);
        return false;
    }
    if (service->settled_once || service->restarts || service->fsm.failures) {
        service->restarts++;
        /* Apart, so that restarts the agent was asked for (a change, an operator) do not read
         * as a crash loop: only a revival after an exit or failure nobody asked for counts. */
        if (service->reviving)
            service->crashes++;
    }
    service->reviving = false;
    service->pid = pid;
    service->session = pid; /* spawn_service() made it the leader of a session of its own */
    if (procscan_start_time(pid, &service->start_time) < 0)
        service->start_time = 0;
    service_note_binary(service);
    service->load_begun_usec = coarse_wall_usec();
    service->exec_status_fd = status_fd;
    service->exec_status_event =
        event_new(service->supervisor->base, status_fd, EV_READ, on_exec_status, service);
    if (service->exec_status_event)
        event_add(service->exec_status_event, NULL);
    log_info("Started service '%s' (pid %d)", service->config->name, (int)pid);
    return true;
}

static void signal_group(struct service *service, int signo)
{
    if (service->pid > 0 && kill(-service->session, signo) < 0 && errno == ESRCH)
        kill(service->pid, signo); /* not yet the leader of its own group */
}

static void note_reason(struct service *service, const struct fsm_effects *effects,
                        const char *exit_text);
static void apply_effects(struct service *service, const struct fsm_effects *effects);

/*
 * Nothing was started (no fork, or no such user): the state machine hears it as
 * an exit before readiness, so it backs off and retries or goes FATAL.
 */
static void fail_before_start(struct service *service)
{
    struct fsm_event event = {FSM_EXIT, false, -1};
    struct fsm_effects effects;

    fsm_step(&service->fsm, &service->config->policy, &event, &effects);
    note_reason(service, &effects, service->exec_error);
    apply_effects(service, &effects); /* only cancel and arm follow an exit while starting */
}

static void apply_effects(struct service *service, const struct fsm_effects *effects)
{
    if (effects->actions & FSM_DO_CANCEL_TIMER)
        event_del(service->timer);
    if (effects->actions & FSM_DO_SIGNAL_STOP)
        signal_group(service, service->config->stop_signal);
    if (effects->actions & FSM_DO_KILL) {
        log_warning("Service '%s' did not stop within %gs: sending SIGKILL", service->config->name,
                    service->config->policy.stop_timeout);
        signal_group(service, SIGKILL);
    }
    if (effects->actions & FSM_DO_SPAWN) {
        adopt_next_config(service);
        if (!spawn(service)) {
            fail_before_start(service);
            return;
        }
    }
    if (effects->actions & FSM_DO_ARM_TIMER && service->fsm.state != SERVICE_FATAL) {
        struct timeval tv = timeval_from(effects->timer_seconds);

        evtimer_add(service->timer, &tv);
    }
}

static void note_reason(struct service *service, const struct fsm_effects *effects,
                        const char *exit_text)
{
    const struct fsm_policy *policy = &service->config->policy;
    char cause[sizeof(service->reason)];

    /* What ended it unasked is revived (unless the FSM gave up): such a spawn is a crash's. */
    if (effects->note == FSM_NOTE_EXITED_EARLY || effects->note == FSM_NOTE_START_TIMEOUT ||
        effects->note == FSM_NOTE_CRASHED || effects->note == FSM_NOTE_EXITED)
        service->reviving = !effects->gave_up;
    else if (effects->note == FSM_NOTE_STOPPED)
        service->reviving = false;
    switch (effects->note) {
    case FSM_NOTE_EXITED_EARLY:
        snprintf(cause, sizeof(cause), "%s before it was ready", exit_text);
        break;
    case FSM_NOTE_START_TIMEOUT:
        snprintf(cause, sizeof(cause), "was not ready within %gs", policy->start_timeout);
        break;
    case FSM_NOTE_CRASHED:
        snprintf(cause, sizeof(cause), "%s unexpectedly", exit_text);
        break;
    case FSM_NOTE_EXITED:
        snprintf(cause, sizeof(cause), "%s", exit_text);
        break;
    case FSM_NOTE_STOPPED:
        service->reason[0] = '\0';
        return;
    default:
        return;
    }
    if (effects->gave_up)
        snprintf(service->reason, sizeof(service->reason),
                 "gave up after %d failed starts; last: %.190s", service->fsm.failures, cause);
    else
        snprintf(service->reason, sizeof(service->reason), "%s", cause);
}

/* After every step: timestamps, logs, waiters and the scheduler (whose observer tells the agent).
 */
static void after_transition(struct service *service, enum service_state before)
{
    enum service_state now = service->fsm.state;
    const char *name = service->config->name;

    if (now == before)
        return;
    service->state_since_usec = monotonic_usec();
    service->state_since_wall = time(NULL);
    if (now == SERVICE_RUNNING) {
        service->ready_at_usec = service->state_since_usec;
        service->loaded_usec = service->load_begun_usec;
        log_info("Service '%s' is ready (pid %d)", name, (int)service->pid);
    } else if (now == SERVICE_BACKOFF) {
        log_warning("Service '%s' %s; retrying in %gs", name, service->reason,
                    fsm_backoff_delay(&service->config->policy, service->fsm.failures));
    } else if (now == SERVICE_FATAL) {
        log_error("Service '%s' is FATAL: %s", name, service->reason);
    } else if (now == SERVICE_EXITED) {
        log_notice("Service '%s' %s", name, service->reason);
    } else if (now == SERVICE_STOPPED) {
        log_info("Service '%s' stopped", name);
    }
    if (now == SERVICE_RUNNING || now == SERVICE_FATAL || now == SERVICE_EXITED)
        service->settled_once = true;
    if (before == SERVICE_RUNNING && service->reload != RELOAD_IDLE) {
        if (service->reload == RELOAD_COMMAND)
            reload_command_kill(service); /* nothing left for it to reload */
        service->reload_timed_out = false;
        service->reload = RELOAD_IDLE;
        event_del(service->reload_timer);
        service_complete_waiters(service, WAIT_RELOADED, -ECHILD, "exited during the reload");
    }
    if (now == SERVICE_RUNNING)
        service_complete_waiters(service, WAIT_READY, 0, NULL);
    else if (now == SERVICE_FATAL || now == SERVICE_EXITED ||
             (now == SERVICE_STOPPED && !service->pending_start))
        service_complete_waiters(service, WAIT_READY, -ECHILD,
                                 *service->reason ? service->reason : "stopped");
    if (!service_state_active(now) && now != SERVICE_BACKOFF) {
        adopt_next_config(service);
        service_complete_waiters(service, WAIT_STOPPED, 0, NULL);
    }
    supervisor_schedule(service->supervisor);
}

void service_dispatch(struct service *service, enum fsm_event_kind kind)
{
    struct fsm_event event = {kind, false, -1};
    struct fsm_effects effects;
    enum service_state before = service->fsm.state;

    fsm_step(&service->fsm, &service->config->policy, &event, &effects);
    note_reason(service, &effects, NULL);
    apply_effects(service, &effects);
    after_transition(service, before);
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "ended with wait status %d", status);
}

static bool exit_expected(const struct service_config *config, int status)
{
    if (!WIFEXITED(status))
        return false;
    for (size_t i = 0; i < config->n_exit_codes; i++)
        if (config->exit_codes[i] == WEXITSTATUS(status))
            return true;
    return false;
}

/* status_known: false for an adopted process, whose status went to its real parent. */
static void handle_exit(struct service *service, int wait_status, bool status_known)
{
    struct fsm_event event = {FSM_EXIT, status_known && exit_expected(service->config, wait_status),
                              -1};
    enum service_state before = service->fsm.state;
    struct fsm_effects effects;
    char exit_text[520];

    forget_adopted(service); /* reaped as a child after all: its pidfd has nothing to add */
    /* The exit may be reaped before the status pipe is read: read it now. */
    if (service->exec_status_fd >= 0) {
        spawn_read_failure(service->exec_status_fd, service->config, service->exec_error,
                           sizeof(service->exec_error));
        close_exec_status(service);
    }
    if (*service->exec_error)
        snprintf(exit_text, sizeof(exit_text), "%s", service->exec_error);
    else if (!status_known)
        snprintf(exit_text, sizeof(exit_text),
                 "exited (status unknown: adopted from the previous agent, so not its child)");
    else
        describe_exit(wait_status, exit_text, sizeof(exit_text));
    /* Nothing of a service outlives its main process: the rest of its
     * process group and session goes with it. */
    if (service->session > 1) {
        kill(-service->session, SIGKILL);
        procscan_signal_session(service->session, SIGKILL);
    }
    if (before == SERVICE_RUNNING)
        event.run_seconds = (double)(monotonic_usec() - service->ready_at_usec) / 1e6;
    log_debug("Service '%s' (pid %d) %s", service->config->name, (int)service->pid, exit_text);
    service->pid = 0;
    service->session = 0;
    service->start_time = 0;
    service->draining_pid = 0;
    pid_watch_stop(&service->draining);
    service_handover_done(service);
    json_decref(service->stats); /* a new process starts from nothing */
    service->stats = NULL;
    fsm_step(&service->fsm, &service->config->policy, &event, &effects);
    note_reason(service, &effects, exit_text);
    apply_effects(service, &effects);
    after_transition(service, before);
}

void service_handle_exit(struct service *service, int wait_status)
{
    handle_exit(service, wait_status, true);
}

static void on_adopted_exit(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;
    pid_t pid = service->pid;
    int status = 0;

    (void)fd;
    (void)what;
    forget_adopted(service);
    if (supervisor_read_handover(service->supervisor, service, pid)) {
        /* Its successor took over first: this was the draining process, gone already. */
        waitpid(pid, &status, WNOHANG);
        service_draining_ended(service);
        return;
    }
    /* Kept across a re-exec, it is still the agent's child, and its status is ours to read. */
    if (waitpid(service->pid, &status, WNOHANG) == service->pid) {
        handle_exit(service, status, true);
        return;
    }
    handle_exit(service, 0, false);
}

/* Watches the main process's exit through pidfd (taken on success). */
static int watch_pidfd(struct service *service, int pidfd)
{
    return pid_watch_start(&service->adopted, service->supervisor->base, pidfd, on_adopted_exit,
                           service);
}

int service_switch_main(struct service *service, pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    if (pidfd < 0)
        return -errno;
    /* Not (yet) the agent's child: its parent is the process it took over from. */
    if (watch_pidfd(service, pidfd) < 0) {
        close(pidfd);
        return -ENOMEM;
    }
    watch_draining(service, service->pid);
    service->pid = pid;
    if (procscan_start_time(pid, &service->start_time) < 0)
        service->start_time = 0;
    return 0;
}

int service_adopt(struct service *service, const struct service_adoption *adoption, int pidfd)
{
    enum service_state before = service->fsm.state;

    if (watch_pidfd(service, pidfd) < 0)
        return -ENOMEM;
    service->pid = adoption->pid;
    service->start_time = adoption->start_time;
    service->session = getsid(adoption->pid) > 0 ? getsid(adoption->pid) : adoption->pid;
    service->load_begun_usec = adoption->loaded_usec;
    service->restarts = adoption->restarts;
    service->crashes = adoption->crashes;
    service->pending_start = false;
    service->reload_action = RELOAD_ACTION_NONE;
    service_dispatch(service, FSM_ADOPTED);
    snprintf(service->reason, sizeof(service->reason), "%s", adoption->how);
    log_info("Service '%s' (pid %d) %s%s", service->config->name, (int)adoption->pid, adoption->how,
             before == SERVICE_STOPPED ? "" : " (it was not stopped: unexpected)");
    return 0;
}

/* Fails the reload before it began: the waiters hear why. Returns r. */
static int reload_refused(struct service *service, int r, const char *why)
{
    log_error("Cannot reload service '%s': %s", service->config->name, why);
    service_complete_waiters(service, WAIT_RELOADED, r, why);
    return r;
}

static int start_reload_command(struct service *service)
{
    char err[512], why[600];
    int r;

    /* Killed at a timeout but not reaped yet: one command at a time, or the pids get mixed up. */
    if (service->reload_pid > 0) {
        snprintf(why, sizeof(why), "the previous reload command (pid %d) has not ended yet",
                 (int)service->reload_pid);
        return reload_refused(service, -EBUSY, why);
    }
    r = reload_command_start(service, err, sizeof(err));
    if (r < 0) {
        snprintf(why, sizeof(why), "cannot run the reload command %s: %s",
                 service->config->reload_argv[0], err);
        return reload_refused(service, r, why);
    }
    service->reload = RELOAD_COMMAND;
    log_info("Reloading service '%s' (command %s, pid %d)", service->config->name,
             service->config->reload_argv[0], (int)service->reload_pid);
    return 0;
}

void service_handle_reload_exit(struct service *service, int wait_status)
{
    bool waited_on = service->reload == RELOAD_COMMAND;
    char why[1024];
    int r = reload_command_finish(service, wait_status, why, sizeof(why));

    if (!waited_on) {
        service->reload_timed_out = false;
        log_debug("Service '%s': a reload command nobody waits for any more ended",
                  service->config->name);
        return;
    }
    service->reload = RELOAD_IDLE;
    event_del(service->reload_timer);
    if (service->reload_timed_out) {
        service->reload_timed_out = false;
        snprintf(why, sizeof(why), "reload command %s did not finish within %gs: killed",
                 service->config->reload_argv[0], reload_timeout(service));
        r = -ETIMEDOUT;
    }
    if (r < 0) {
        log_error("Service '%s' did not reload: %s", service->config->name, why);
        reload_ended(service, r, why);
        return;
    }
    log_info("Service '%s' reloaded", service->config->name);
    service->loaded_usec = service->load_begun_usec;
    supervisor_records_changed(service->supervisor);
    reload_ended(service, 0, NULL);
}

int service_reload(struct service *service)
{
    struct timeval tv = timeval_from(reload_timeout(service));
    int r;

    if (service->fsm.state != SERVICE_RUNNING)
        return reload_refused(service, -ESRCH, "not running");
    if (service->reload != RELOAD_IDLE)
        return 0; /* the reload under way answers this request too */
    service->load_begun_usec = coarse_wall_usec();
    if (service->config->reload_argv) {
        r = start_reload_command(service);
        if (r == 0)
            evtimer_add(service->reload_timer, &tv);
        return r;
    }
    if (kill(service->pid, service->config->reload_signal) < 0)
        return reload_refused(service, -errno, "cannot send the reload signal");
    service->reload = RELOAD_SIGNALED;
    evtimer_add(service->reload_timer, &tv);
    log_info("Reloading service '%s' (signal %s)", service->config->name,
             signal_word(service->config->reload_signal)
                 ? signal_word(service->config->reload_signal)
                 : "?");
    return 0;
}

static void handle_ready(struct service *service)
{
    if (service->reload == RELOAD_RELOADING) {
        service->reload = RELOAD_IDLE;
        event_del(service->reload_timer);
        log_info("Service '%s' reloaded", service->config->name);
        service->loaded_usec = service->load_begun_usec;
        supervisor_records_changed(service->supervisor);
        reload_ended(service, 0, NULL);
    } else if (service->reload == RELOAD_IDLE) {
        service_dispatch(service, FSM_READY);
    }
    /* READY=1 while only signalled is not a reload confirmation: RELOADING=1 comes first. */
}

static void handle_mainpid(struct service *service, const char *value, size_t len)
{
    char text[16];
    pid_t pid;

    if (len == 0 || len >= sizeof(text))
        return;
    memcpy(text, value, len);
    text[len] = '\0';
    pid = (pid_t)atoi(text);
    /* Only a process of the service's own session may become its main process. */
    if (pid > 0 && getsid(pid) == service->session) {
        if (service_handover_pending(service))
            service_handover_take(service, pid);
        else
            log_debug("Service '%s' announced MAINPID=%d", service->config->name, (int)pid);
    } else {
        log_warning("Service '%s' sent MAINPID=%s, which is not one of its processes: ignored",
                    service->config->name, text);
    }
}

/*
 * CERTVISOR_STATS=<compact JSON object>: the service's own counters, kept as
 * they are for the metrics command. Anything else is dropped: the agent never
 * fails over what a service says about itself.
 */
static void handle_stats(struct service *service, const char *value, size_t len)
{
    json_error_t error;
    json_t *stats;

    if (len >= SERVICE_STATS_MAX) {
        log_debug("Service '%s' sent CERTVISOR_STATS of %zu bytes (at most %d): dropped",
                  service->config->name, len, SERVICE_STATS_MAX - 1);
        return;
    }
    stats = json_loadb(value, len, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object(stats)) {
        log_debug("Service '%s' sent CERTVISOR_STATS that is not a JSON object (%s): dropped",
                  service->config->name, stats ? "another JSON value" : error.text);
        json_decref(stats);
        return;
    }
    json_decref(service->stats);
    service->stats = stats;
}

void service_handle_notify(struct service *service, const char *message, pid_t sender)
{
    const char *value;
    size_t len;

    (void)sender;
    if ((value = notify_field(message, "STATUS", &len))) {
        if (len >= sizeof(service->status_text))
            len = sizeof(service->status_text) - 1;
        memcpy(service->status_text, value, len);
        service->status_text[len] = '\0';
    }
    if ((value = notify_field(message, "MAINPID", &len)))
        handle_mainpid(service, value, len);
    if ((value = notify_field(message, "CERTVISOR_STATS", &len)))
        handle_stats(service, value, len);
    if ((value = notify_field(message, "EXTEND_TIMEOUT_USEC", &len)) &&
        service->fsm.state == SERVICE_STARTING && service->config->policy.start_timeout > 0) {
        struct timeval tv = timeval_from(strtod(value, NULL) / 1e6);

        evtimer_add(service->timer, &tv);
    }
    if ((value = notify_field(message, "RELOADING", &len)) && len == 1 && *value == '1' &&
        service->fsm.state == SERVICE_RUNNING)
        service->reload = RELOAD_RELOADING;
    if ((value = notify_field(message, "STOPPING", &len)) && len == 1 && *value == '1')
        log_debug("Service '%s' is stopping", service->config->name);
    if ((value = notify_field(message, "READY", &len)) && len == 1 && *value == '1')
        handle_ready(service);
}

static void format_duration(uint64_t usec, char *buf, size_t len)
{
    unsigned long seconds = (unsigned long)(usec / 1000000u);
    unsigned long days = seconds / 86400;

    seconds %= 86400;
    if (days)
        snprintf(buf, len, "%lu day%s, %lu:%02lu:%02lu", days, days == 1 ? "" : "s", seconds / 3600,
                 seconds / 60 % 60, seconds % 60);
    else
        snprintf(buf, len, "%lu:%02lu:%02lu", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

void service_describe(const struct service *service, char *buf, size_t len)
{
    char when[64], uptime[48];
    struct tm tm;
    uint64_t now = monotonic_usec();

    localtime_r(&service->state_since_wall, &tm);
    strftime(when, sizeof(when), "%b %d %H:%M:%S", &tm);
    switch (service->fsm.state) {
    case SERVICE_RUNNING:
        format_duration(now - service->ready_at_usec, uptime, sizeof(uptime));
        snprintf(buf, len, "pid %d, uptime %s", (int)service->pid, uptime);
        break;
    case SERVICE_STARTING:
        snprintf(buf, len, "pid %d, waiting for readiness%s%s", (int)service->pid,
                 *service->status_text ? ": " : "", service->status_text);
        break;
    case SERVICE_STOPPING:
        snprintf(buf, len, "pid %d, stopping", (int)service->pid);
        break;
    case SERVICE_BACKOFF:
        snprintf(buf, len, "%s; retry %d of %d", service->reason, service->fsm.failures,
                 service->config->policy.start_retries);
        break;
    case SERVICE_STOPPED:
        if (*service->reason)
            snprintf(buf, len, "%s", service->reason);
        else
            snprintf(buf, len, service->settled_once ? "%s" : "Not started", when);
        break;
    case SERVICE_EXITED:
    case SERVICE_FATAL:
        snprintf(buf, len, "%s (%s)", service->reason, when);
        break;
    }
}
