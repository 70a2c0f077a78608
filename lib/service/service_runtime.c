/* Signals, the notify protocol's handshakes and options, shared by every service. */
#include "service_runtime.h"

#include "cv_error.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

int service_runtime_open(struct service_runtime *rt, const char *program, int log_level)
{
    const char *ident = getenv("CERTVISOR_SERVICE");

    *rt = (struct service_runtime){.program = program};
    log_setup(ident && *ident ? ident : program, LOG_TARGET_AUTO, NULL, log_level);
    signal(SIGPIPE, SIG_IGN);
    rt->base = event_base_new();
    if (!rt->base) {
        log_error("Cannot set up the event loop");
        return -1;
    }
    return 0;
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* ERRNO= takes an errno: certvisor's own codes (lib/cv_error.h) and the rest say EINVAL. */
static int errno_of(int r)
{
    return r <= -CV_ERROR_FIRST || r >= 0 ? EINVAL : -r;
}

static void on_hangup(evutil_socket_t signal_number, short what, void *arg)
{
    struct service_runtime *rt = arg;
    char err[1024] = "";
    int r;

    (void)signal_number;
    (void)what;
    if (!rt->reload) {
        log_notice("SIGHUP ignored: %s reads its files at start; %s", rt->program,
                   rt->no_reload_hint ? rt->no_reload_hint : "restart it to apply a change");
        return;
    }
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    r = rt->reload(rt->data, err, sizeof(err));
    if (r < 0) {
        log_error("Reload failed, exiting so that the agent rolls back: %s", err);
        sd_notifyf(0, "STATUS=Reload failed: %s\nERRNO=%d", err, errno_of(r));
        service_runtime_exit(rt, 1);
        return;
    }
    sd_notify(0, "READY=1");
}

static void on_stop(evutil_socket_t signal_number, short what, void *arg)
{
    struct service_runtime *rt = arg;

    (void)what;
    log_info("Stopping (signal %d)", (int)signal_number);
    sd_notify(0, "STOPPING=1");
    service_runtime_exit(rt, 0);
}

int service_runtime_watch_signals(struct service_runtime *rt, service_reload_fn reload, void *data,
                                  const char *no_reload_hint)
{
    static const int numbers[3] = {SIGTERM, SIGINT, SIGHUP};

    rt->reload = reload;
    rt->data = data;
    rt->no_reload_hint = no_reload_hint;
    for (size_t i = 0; i < 3; i++) {
        rt->signals[i] =
            evsignal_new(rt->base, numbers[i], numbers[i] == SIGHUP ? on_hangup : on_stop, rt);
        if (!rt->signals[i] || evsignal_add(rt->signals[i], NULL) < 0) {
            log_error("Cannot watch signals");
            return -1;
        }
    }
    return 0;
}

void service_runtime_ready(struct service_runtime *rt, const char *status_format, ...)
{
    char status[512];
    va_list ap;

    (void)rt;
    if (!status_format) {
        sd_notify(0, "READY=1");
        return;
    }
    va_start(ap, status_format);
    vsnprintf(status, sizeof(status), status_format, ap);
    va_end(ap);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

int service_runtime_run(struct service_runtime *rt)
{
    if (event_base_dispatch(rt->base) < 0) {
        log_error("The event loop failed");
        return 1;
    }
    return rt->exit_status;
}

void service_runtime_exit(struct service_runtime *rt, int status)
{
    rt->exit_status = status;
    event_base_loopexit(rt->base, NULL);
}

void service_runtime_close(struct service_runtime *rt)
{
    for (size_t i = 0; i < 3; i++) {
        if (rt->signals[i])
            event_free(rt->signals[i]);
        rt->signals[i] = NULL;
    }
    if (rt->base)
        event_base_free(rt->base);
    rt->base = NULL;
}

long service_option_number(const char *program, const char *option, const char *text, long min,
                           long max)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max) {
        fprintf(stderr, "%s: %s %s: not a number from %ld to %ld\n", program, option, text, min,
                max);
        exit(2);
    }
    return value;
}

int service_option_port(const char *program, const char *option, const char *text)
{
    return (int)service_option_number(program, option, text, 0, 65535);
}
