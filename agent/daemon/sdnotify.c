/* The agent's own side of systemd's protocol: READY, STATUS, RELOADING, STOPPING, WATCHDOG. */
#include "sdnotify.h"

#include "log.h"
#include "service.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sdproto.h"

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* Sent from the event loop, so a wedged loop stops the pings and systemd steps in. */
    sdproto_notify("WATCHDOG=1");
}

int sdnotify_init(struct agent *agent)
{
    uint64_t usec = sdproto_watchdog_usec();

    agent->under_systemd = getenv("NOTIFY_SOCKET") != NULL;
    if (usec > 0) {
        struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};

        agent->watchdog_timer = event_new(agent->base, -1, EV_PERSIST, on_watchdog, agent);
        if (!agent->watchdog_timer || event_add(agent->watchdog_timer, &tv) < 0)
            return -1;
        log_info("Watchdog enabled: pinging every %.1fs", (double)usec / 2e6);
    }
    return 0;
}

/* Sends a message that systemd must not miss, and says so when it could not be sent. */
static void notify_important(const char *message)
{
    int r = sdproto_notify(message);

    if (r < 0)
        log_warning("Cannot tell systemd '%s': %s", message, strerror(-r));
}

void sdnotify_ready(struct agent *agent)
{
    (void)agent;
    notify_important("READY=1");
}

void sdnotify_status(struct agent *agent, const char *status)
{
    static char last[512];
    char message[512];

    /* Services change state often; systemd only needs to hear when the line changes. */
    if (!agent->under_systemd || strcmp(last, status) == 0)
        return;
    snprintf(last, sizeof(last), "%s", status);
    snprintf(message, sizeof(message), "STATUS=%s", status);
    sdproto_notify(message);
}

void sdnotify_reloading(struct agent *agent)
{
    char message[64];

    (void)agent;
    /* MONOTONIC_USEC lets systemd's notify-reload match this reload to its request. */
    snprintf(message, sizeof(message), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)monotonic_usec());
    notify_important(message);
}

void sdnotify_stopping(struct agent *agent)
{
    (void)agent;
    notify_important("STOPPING=1");
}

void sdnotify_free(struct agent *agent)
{
    if (agent->watchdog_timer)
        event_free(agent->watchdog_timer);
    agent->watchdog_timer = NULL;
}
