/* Keeping certificates from expiring: generated ones are re-issued, the others are warned about. */
#include "renewal.h"

#include "apply.h"
#include "apply_hooks.h"
#include "cert_info.h"
#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "log.h"

#include <event2/event.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENEWAL_FIRST_CHECK_S 2       /* after start-up, once the services had a moment */
#define RENEWAL_CHECK_INTERVAL_S 3600 /* certificates are counted in days: hourly is plenty */

/* What was last done about one certificate, so a warning is not repeated every hour. */
struct renewal_memory {
    char fingerprint[96]; /* of the certificate the entry is about */
    int warned_at;        /* the smallest threshold warned about, or 0 */
    bool rotating;        /* a rotation is queued or under way */
};

struct renewal {
    struct agent *agent;
    struct event *timer;
    struct renewal_memory memory[16];
};

struct rotation {
    struct renewal *renewal;
    size_t index;
};

static void on_rotated(void *data, int exit_status, json_t *reply)
{
    struct rotation *rotation = data;
    const char *name = cert_names[rotation->index].name;
    const char *reason = json_string_value(json_object_get(reply, "reason"));

    rotation->renewal->memory[rotation->index].rotating = false;
    if (exit_status == 0)
        log_notice("Renewal: certificate '%s' re-issued from the cluster CA", name);
    else if (reason && strcmp(reason, "not_all_nodes_updated") == 0)
        /* In force here and in the store: a node that is down applies it when it is back. */
        log_notice("Renewal: certificate '%s' re-issued from the cluster CA; %s", name,
                   json_string_value(json_object_get(reply, "error")));
    else
        log_error("Renewal: certificate '%s' could not be re-issued: %s (next try in an hour)",
                  name, json_string_value(json_object_get(reply, "error")));
    json_decref(reply);
    free(rotation);
}

static void rotate(struct renewal *renewal, size_t index, long days_left)
{
    struct rotation *rotation = calloc(1, sizeof(*rotation));
    struct apply_request *request = apply_rotate(cert_names[index].name);

    if (!rotation || !request) {
        free(rotation);
        log_error("Renewal: out of memory");
        return;
    }
    rotation->renewal = renewal;
    rotation->index = index;
    renewal->memory[index].rotating = true;
    log_notice("Renewal: certificate '%s' has %ld days left; re-issuing it", cert_names[index].name,
               days_left);
    apply_submit(renewal->agent, request, "renewal", false, on_rotated, rotation);
}

/* The smallest threshold that days_left has reached, or 0 when none. */
static int threshold_reached(const struct cert_settings *settings, long days_left)
{
    int reached = 0;

    for (size_t i = 0; i < settings->n_warn_days; i++)
        if (days_left <= settings->warn_days[i] && (!reached || settings->warn_days[i] < reached))
            reached = settings->warn_days[i];
    return reached;
}

static void warn(struct renewal *renewal, size_t index, json_t *info, const char *origin,
                 long days_left)
{
    struct renewal_memory *memory = &renewal->memory[index];
    const char *name = cert_names[index].name;
    int reached = threshold_reached(&renewal->agent->config->certs, days_left);

    if (!reached || (memory->warned_at && memory->warned_at <= reached))
        return;
    memory->warned_at = reached;
    if (days_left < 0)
        log_warning("Certificate '%s' (%s) expired on %s: replace it now", name, origin,
                    json_string_value(json_object_get(info, "not_after")));
    else
        log_warning("Certificate '%s' (%s) expires in %ld days, on %s: replace it (%s)", name,
                    origin, days_left, json_string_value(json_object_get(info, "not_after")),
                    strcmp(origin, "external") == 0
                        ? "renew the files it is read from"
                        : "certvisorctl cluster certificate set ... certificate_file <file>");
}

static void check_one(struct renewal *renewal, size_t index, time_t now)
{
    struct agent *agent = renewal->agent;
    struct certstore *store = agent->certs->store;
    const char *name = cert_names[index].name;
    struct renewal_memory *memory = &renewal->memory[index];
    char origin[32], *pem = NULL;
    unsigned generation;
    size_t len = 0;
    json_t *info;
    long days_left;

    if (certstore_current(store, name, &generation) < 0 ||
        certstore_read_cert(store, name, generation, &pem, &len) < 0)
        return;
    info = cert_info_describe(pem, len, now);
    free(pem);
    if (!info)
        return;
    /* A new certificate starts a new count of warnings. */
    if (strcmp(memory->fingerprint, json_string_value(json_object_get(info, "fingerprint"))) != 0) {
        snprintf(memory->fingerprint, sizeof(memory->fingerprint), "%s",
                 json_string_value(json_object_get(info, "fingerprint")));
        memory->warned_at = 0;
    }
    days_left = (long)json_integer_value(json_object_get(info, "days_left"));
    certstore_get_origin(store, name, generation, origin, sizeof(origin));
    if (cert_names[index].generated && strcmp(origin, "generated") == 0 &&
        !config_find_external_cert(agent->config, name)) {
        /* In a cluster, one node renews what every node shares: the others would publish
         * their own renewals of the same certificate, and all but the first would conflict. */
        bool ours =
            !agent->hooks.may_renew || agent->hooks.may_renew(agent, !cert_names[index].per_node);

        if (days_left <= agent->config->certs.renew_before_days && !memory->rotating && ours)
            rotate(renewal, index, days_left);
    } else {
        warn(renewal, index, info, origin, days_left);
    }
    json_decref(info);
}

void renewal_check(struct agent *agent)
{
    struct renewal *renewal = agent->renewal;
    time_t now = time(NULL) + apply_hook_clock_offset();

    if (!renewal || agent->shutting_down)
        return;
    for (size_t i = 0; i < cert_names_count && i < 16; i++)
        check_one(renewal, i, now);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct renewal *renewal = arg;
    struct timeval interval = {RENEWAL_CHECK_INTERVAL_S, 0};

    (void)fd;
    (void)what;
    renewal_check(renewal->agent);
    evtimer_add(renewal->timer, &interval);
}

int renewal_start(struct agent *agent)
{
    struct renewal *renewal = calloc(1, sizeof(*renewal));
    struct timeval first = {RENEWAL_FIRST_CHECK_S, 0};

    if (!renewal)
        return -ENOMEM;
    renewal->agent = agent;
    renewal->timer = evtimer_new(agent->base, on_timer, renewal);
    if (!renewal->timer) {
        free(renewal);
        return -ENOMEM;
    }
    agent->renewal = renewal;
    evtimer_add(renewal->timer, &first);
    return 0;
}

void renewal_free(struct agent *agent)
{
    if (!agent->renewal)
        return;
    event_free(agent->renewal->timer);
    free(agent->renewal);
    agent->renewal = NULL;
}
