/*
 * What lets the services outlive the agent: a record of every service's process, kept in
 * run_dir/services.json (written from the loop after each change, by rename, so that a
 * reader never sees half of it), and, at start-up, the adoption of the processes it lists
 * that are still the same processes (pid and start time).
 *
 * An adopted process is not the new agent's child (its parent died, the kernel handed it
 * to init or to systemd), so its exit comes through a pidfd and its status is unknown. It
 * keeps what it read: a rendered file changed while the agent was away (a change that
 * died between its commit and the reloads) is read again by a reload, and changed
 * settings mean a restart through the usual plan.
 */
#include "service_impl.h"
#include "supervisor_impl.h"

#include "fsutil.h"
#include "log.h"
#include "procscan.h"
#include "records.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RECORDS_NAME "services.json"

static void records_path(const struct supervisor *sup, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" RECORDS_NAME, sup->config->run_dir);
}

/* SHA-256 of the settings, in hex: the file never holds them (environment values). */
static void settings_digest(const struct service_config *config, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;

    out[0] = '\0';
    if (!EVP_Q_digest(NULL, "SHA256", NULL, config->fingerprint, strlen(config->fingerprint), md,
                      &md_len))
        return;
    for (size_t i = 0; i < md_len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static json_t *service_record(const struct service *service)
{
    unsigned long long start_time;
    char digest[65], binary[80];

    /* Read once per process (spawn, adoption, hand-over), not at every pass. */
    start_time = service->start_time;
    if (service->pid <= 0 || (!start_time && procscan_start_time(service->pid, &start_time) < 0))
        return NULL;
    settings_digest(service->config, digest);
    binary_identity_format(&service->binary, binary, sizeof(binary));
    return json_pack("{s:s, s:i, s:I, s:s, s:s, s:I, s:I, s:I, s:s}", "name", service->config->name,
                     "pid", (int)service->pid, "start_time", (json_int_t)start_time, "state",
                     service_state_name(service->fsm.state), "settings", digest, "loaded_usec",
                     (json_int_t)service->loaded_usec, "restarts", (json_int_t)service->restarts,
                     "crashes", (json_int_t)service->crashes, "binary", binary);
}

json_t *supervisor_records(const struct supervisor *sup)
{
    json_t *list = json_array(), *stopped = json_array();

    for (size_t i = 0; list && stopped && i < sup->n_services; i++) {
        const struct service *service = sup->services[i];
        json_t *record = service_record(service);

        if (record)
            json_array_append_new(list, record);
        /* A service stopped by hand stays stopped under the next agent too. */
        if (service->operator_stopped && !service->remove_when_stopped)
            json_array_append_new(stopped, json_string(service->config->name));
    }
    if (!list || !stopped) {
        json_decref(list);
        json_decref(stopped);
        return NULL;
    }
    return json_pack("{s:i, s:o, s:o}", "version", SERVICE_RECORDS_VERSION, "services", list,
                     "operator_stopped", stopped);
}

static int write_records(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    int fd, r;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    r = fs_write_all(fd, text, strlen(text));
    close(fd);
    /* No fsync (fs_write_atomic() has one, which the loop must not wait for): run_dir is a
     * tmpfs, and what a power cut loses, the services lose too. */
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

void supervisor_write_records(struct supervisor *sup)
{
    char path[PATH_MAX], *text = NULL;
    json_t *root;
    int r;

    if (!sup->records_owned)
        return;
    root = supervisor_records(sup);
    if (root)
        text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) {
        log_warning("Cannot record the services' processes: out of memory");
        return;
    }
    if (sup->records_text && strcmp(sup->records_text, text) == 0) {
        free(text);
        return;
    }
    records_path(sup, path, sizeof(path));
    r = write_records(path, text);
    if (r < 0) {
        log_warning("Cannot write %s: %s; an agent started after this one dies cannot adopt "
                    "the services",
                    path, strerror(-r));
        free(text);
        return;
    }
    free(sup->records_text);
    sup->records_text = text;
}

/* The record's process, if it is still the one recorded: a pidfd for it, else -1. */
static int open_recorded_process(pid_t pid, unsigned long long start_time)
{
    unsigned long long now;
    int pidfd;

    if (pid <= 1 || procscan_start_time(pid, &now) < 0 || now != start_time)
        return -1;
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -1;
    /* The pid may have ended and been reused between the check and the open: check again,
     * now that the pidfd holds whichever process it is. */
    if (procscan_start_time(pid, &now) < 0 || now != start_time) {
        close(pidfd);
        return -1;
    }
    return pidfd;
}

/* True when one of the files the agent renders for the service changed at or after
 * loaded_usec, so that the process has not read it. */
static bool rendered_since(const struct service_config *config, uint64_t loaded_usec)
{
    const char *outputs[64];
    size_t n = 0;

    for (size_t t = 0; t < config->n_tls && n < 62; t++)
        outputs[n++] = config->tls[t].output;
    outputs[n++] = config->databases_output;
    outputs[n++] = config->replicas_output;
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        if (!outputs[i] || stat(outputs[i], &st) < 0)
            continue;
        if ((uint64_t)st.st_mtim.tv_sec * 1000000u + (uint64_t)st.st_mtim.tv_nsec / 1000u >=
            loaded_usec)
            return true;
    }
    return false;
}

/* What the adopted service needs now: nothing, a reload or a restart. */
static void converge(struct supervisor *sup, struct service *service, const char *state,
                     const char *settings)
{
    char digest[65];

    settings_digest(service->config, digest);
    if (strcmp(state, service_state_name(SERVICE_RUNNING)) != 0) {
        log_notice("Service '%s' was %s when the previous agent stopped: restarting it",
                   service->config->name, state);
        supervisor_mark_restart(sup, service);
    } else if (strcmp(settings, digest) != 0) {
        log_notice("Service '%s': its settings changed while the agent was stopped: restarting "
                   "it",
                   service->config->name);
        supervisor_mark_restart(sup, service);
    } else if (service_binary_replaced(service)) {
        service_upgrade(sup, service, "its binary was replaced (an upgrade)");
    } else if (rendered_since(service->config, service->loaded_usec)) {
        if (service_config_can_reload(service->config)) {
            log_notice("Service '%s': its TLS files changed after it last read them: reloading it",
                       service->config->name);
            service_reload(service);
        } else {
            log_notice("Service '%s': its TLS files changed after it last read them, and it "
                       "has no reload: restarting it",
                       service->config->name);
            supervisor_mark_restart(sup, service);
        }
    }
}

/* Stops a recorded process that is not taken over (its caller says why). */
static void stop_recorded(pid_t pid, int pidfd)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) == 0)
        kill(-pid, SIGTERM);
}

static void adopt_record(struct supervisor *sup, const struct service_record *record,
                         const char *how, size_t *adopted)
{
    struct service_adoption adoption = {record->pid,     record->loaded_usec, record->restarts,
                                        record->crashes, record->start_time,  how};
    struct service *service;
    int pidfd = open_recorded_process(record->pid, record->start_time);

    if (pidfd < 0) {
        log_info("Service '%s': its process %d ended while the agent was stopped", record->name,
                 (int)record->pid);
        return;
    }
    service = supervisor_find(sup, record->name);
    if (!service) {
        log_notice("The previous agent's service '%s' (pid %d) is not in the configuration any "
                   "more: stopping it",
                   record->name, (int)record->pid);
        stop_recorded(record->pid, pidfd);
        close(pidfd);
        return;
    }
    if (service->fsm.state != SERVICE_STOPPED || service->pid ||
        service_adopt(service, &adoption, pidfd) < 0) {
        log_warning("Cannot adopt service '%s' (pid %d): stopping it", record->name,
                    (int)record->pid);
        stop_recorded(record->pid, pidfd);
        close(pidfd);
        return;
    }
    (*adopted)++;
    binary_identity_parse(record->binary, &service->binary);
    converge(sup, service, record->state, record->settings);
}

size_t supervisor_adopt_records(struct supervisor *sup, const struct service_records *records,
                                const char *how)
{
    size_t adopted = 0;
    bool was_scheduling;

    sup->records_owned = true;
    if (records->malformed)
        log_warning("Ignored %zu malformed entr%s in the services' record", records->malformed,
                    records->malformed == 1 ? "y" : "ies");
    /* No pass may run before every record is taken: it would start a service whose process
     * is only further down the list (its port still held). The caller schedules after. */
    was_scheduling = sup->scheduling;
    sup->scheduling = true;
    for (size_t i = 0; i < records->n; i++)
        adopt_record(sup, &records->items[i], how, &adopted);
    for (size_t i = 0; i < records->n_operator_stopped; i++) {
        struct service *service = supervisor_find(sup, records->operator_stopped[i]);

        if (service && !service->pid) {
            log_info("Service '%s' stays stopped: it was stopped by hand", service->config->name);
            supervisor_mark_stop(service, true);
        }
    }
    sup->scheduling = was_scheduling;
    return adopted;
}

/* The agent's own file: a regular file of its user (a service's user cannot plant one). */
static int read_records_file(const char *path, char **text, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK), r;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
        r = -EPERM;
    else
        r = fs_read_all(fd, SERVICE_RECORDS_MAX_BYTES, text, len);
    close(fd);
    return r;
}

size_t supervisor_adopt(struct supervisor *sup)
{
    struct service_records records;
    char path[PATH_MAX], *text = NULL, err[256];
    size_t adopted, len = 0;
    int r;

    records_path(sup, path, sizeof(path));
    sup->records_owned = true;
    r = read_records_file(path, &text, &len);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        log_warning("Cannot read %s: %s; no service is adopted", path,
                    r == -EPERM ? "not a regular file of the agent's user" : strerror(-r));
        return 0;
    }
    r = service_records_parse(text, len, &records, err, sizeof(err));
    free(text);
    if (r < 0) {
        log_warning("Ignored %s: %s", path, err);
        return 0;
    }
    adopted = supervisor_adopt_records(sup, &records, "adopted from the previous agent");
    service_records_free(&records);
    return adopted;
}
