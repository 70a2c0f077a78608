/*
 * A service's binary replaced under it (a package upgrade): the agent notices when it adopts
 * the service (after its own re-exec, which an upgrade runs) and at each configuration
 * reload, by the identity of the command file it started the process from.
 *
 * A service that can hand over (upgrade_signal, the proxy) gets that signal: it starts the
 * new binary itself, passes it its listening sockets, and the new process announces
 * MAINPID= with READY=1, becoming the main process; the old one drains and exits (its exit is
 * only logged). No connection is refused and none is cut. Any other service is restarted in
 * dependency order, as a changed setting would be.
 */
#include "service_impl.h"
#include "supervisor_impl.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool identity_of(const char *path, struct binary_identity *id)
{
    struct stat st;

    memset(id, 0, sizeof(*id));
    if (!path || stat(path, &st) < 0)
        return false;
    *id = (struct binary_identity){true, st.st_dev, st.st_ino,
                                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec};
    return true;
}

void service_note_binary(struct service *service)
{
    identity_of(service->config->argv[0], &service->binary);
}

bool service_binary_replaced(const struct service *service)
{
    struct binary_identity now;

    /* A file that cannot be read now is not an upgrade: its restart could not start it. */
    if (!service->binary.known || !identity_of(service->config->argv[0], &now))
        return false;
    return now.dev != service->binary.dev || now.ino != service->binary.ino ||
           now.mtime_ns != service->binary.mtime_ns;
}

void binary_identity_format(const struct binary_identity *id, char *buf, size_t len)
{
    if (!id->known)
        snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, "%ju:%ju:%" PRId64, (uintmax_t)id->dev, (uintmax_t)id->ino,
                 id->mtime_ns);
}

bool binary_identity_parse(const char *text, struct binary_identity *id)
{
    uintmax_t dev, ino;
    int64_t mtime_ns;
    int used = 0;

    memset(id, 0, sizeof(*id));
    if (!text || sscanf(text, "%ju:%ju:%" SCNd64 "%n", &dev, &ino, &mtime_ns, &used) != 3 ||
        text[used] != '\0')
        return false;
    *id = (struct binary_identity){true, (dev_t)dev, (ino_t)ino, mtime_ns};
    return true;
}

bool service_handover_pending(const struct service *service)
{
    return service->handover_timer && evtimer_pending(service->handover_timer, NULL);
}

void service_handover_done(struct service *service)
{
    if (service->handover_timer)
        event_free(service->handover_timer);
    service->handover_timer = NULL;
}

static void on_handover_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct service *service = arg;

    (void)fd;
    (void)what;
    log_error("Service '%s': no new process took over within %.0f s of the upgrade signal; the "
              "running one (pid %d) goes on serving the old binary",
              service->config->name, service->config->policy.start_timeout, (int)service->pid);
    service_handover_done(service);
}

void service_handover_take(struct service *service, pid_t pid)
{
    pid_t old = service->pid;
    int r;

    if (pid == old)
        return;
    r = service_switch_main(service, pid);
    if (r < 0) {
        log_error("Service '%s': cannot watch its new process %d: %s; it keeps pid %d",
                  service->config->name, (int)pid, strerror(-r), (int)old);
        return;
    }
    service_handover_done(service);
    service_note_binary(service);
    service->load_begun_usec = service->loaded_usec = coarse_wall_usec();
    log_notice("Service '%s': pid %d took over from pid %d (its upgraded binary); pid %d "
               "finishes its connections",
               service->config->name, (int)pid, (int)old, (int)old);
    supervisor_records_changed(service->supervisor);
}

void service_upgrade(struct supervisor *sup, struct service *service, const char *why)
{
    struct timeval timeout = {(time_t)service->config->policy.start_timeout, 0};

    if (service->fsm.state != SERVICE_RUNNING || service_handover_pending(service))
        return;
    if (!service->config->upgrade_signal) {
        log_notice("Service '%s': %s: restarting it", service->config->name, why);
        supervisor_mark_restart(sup, service);
        return;
    }
    if (!service->handover_timer)
        service->handover_timer = evtimer_new(sup->base, on_handover_timeout, service);
    if (!service->handover_timer || evtimer_add(service->handover_timer, &timeout) < 0 ||
        kill(service->pid, service->config->upgrade_signal) < 0) {
        log_error("Service '%s': %s, and it cannot be asked to hand over (%s): restarting it",
                  service->config->name, why, strerror(errno));
        service_handover_done(service);
        supervisor_mark_restart(sup, service);
        return;
    }
    log_notice("Service '%s': %s: asking pid %d to hand over to a new process (%s)",
               service->config->name, why, (int)service->pid,
               sigabbrev_np(service->config->upgrade_signal));
}
