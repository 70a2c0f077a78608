/* OCSP stapling of the proxy certificate: asking, keeping, expiring, and reloading the proxy. */
#include "stapling.h"

#include "apply.h"
#include "cert_names.h"
#include "certs.h"
#include "certstore.h"
#include "config.h"
#include "log.h"
#include "ocsp_query.h"
#include "offload.h"
#include "render_files.h"
#include "service.h"
#include "service_config.h"
#include "service_fsm.h"
#include "supervisor.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_SECONDS 1 /* a reload waiting for the pipeline, a read-back: looked at again */
#define WAITERS_MAX 8   /* tests waiting for one answer */

struct stapling_job;

struct stapling {
    struct agent *agent;
    struct event *tick;
    /* the proxy certificate generation all of this is about (0: none known yet) */
    unsigned generation;
    char ocsp_path[PATH_MAX];
    struct ocsp_answer answer; /* the verified answer held (NONE: none) */
    char responder_url[512];
    char error[768]; /* why the last query failed, "" after a success */
    time_t last_query, next_query;
    unsigned failures_in_a_row;
    unsigned long queries, failures;
    bool reload_pending;  /* a new answer waits for the apply pipeline to be idle */
    unsigned reloads_out; /* reloads begun for an answer, not over yet */
    bool answer_ready;    /* the waiters hear of the answer once it is served */
    struct stapling_job *running;
    bool read_back_needed; /* the generation changed while a job ran */
    struct {
        void (*done)(void *data, int exit_status, json_t *reply);
        void *data;
    } waiters[WAITERS_MAX];
    size_t n_waiters;
};

struct stapling_job {
    struct ocsp_query query;
    struct stapling *owner; /* NULL once the agent stopped following it */
    unsigned generation;
};

static void format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (!t || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "%s", "");
}

static json_t *time_json(time_t t)
{
    char buf[32];

    format_time(t, buf, sizeof(buf));
    return json_string(buf);
}

static void follow_generation(struct stapling *s);

json_t *stapling_status(struct agent *agent)
{
    struct stapling *s = agent->stapling;
    static const struct ocsp_answer none;
    const struct ocsp_answer *a = s ? &s->answer : &none;

    if (s)
        follow_generation(s); /* a rotation a moment ago is not shown as the old one's status */

    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:I, s:I}", "cert_status",
                     ocsp_cert_status_name(a->status), "responder_url", s ? s->responder_url : "",
                     "produced_at", time_json(a->produced_at), "this_update",
                     time_json(a->this_update), "next_update", time_json(a->next_update),
                     "revocation_time", time_json(a->revocation_time), "error", s ? s->error : "",
                     "last_query", time_json(s ? s->last_query : 0), "next_query",
                     time_json(s ? s->next_query : 0), "queries", (json_int_t)(s ? s->queries : 0),
                     "failures", (json_int_t)(s ? s->failures : 0));
}

static bool enabled(const struct stapling *s)
{
    return policy_enabled(&s->agent->config->policy, POLICY_OCSP_FUNCTIONALITY);
}

json_t *stapling_metrics(struct agent *agent)
{
    struct stapling *s = agent->stapling;

    if (!s)
        return json_null();
    follow_generation(s);
    return json_pack("{s:b, s:s, s:I, s:I, s:I}", "enabled", enabled(s), "cert_status",
                     ocsp_cert_status_name(s->answer.status), "next_update",
                     (json_int_t)s->answer.next_update, "queries", (json_int_t)s->queries,
                     "failures", (json_int_t)s->failures);
}

static long setting(const struct stapling *s, enum policy_setting which)
{
    return policy_number(&s->agent->config->policy, which);
}

/* True when the service serves the proxy certificate from a file it can staple from. */
static bool staples(const struct service_config *config)
{
    for (size_t i = 0; i < config->n_tls; i++)
        if (strcmp(config->tls[i].certificate, CERT_PROXY) == 0 &&
            config->tls[i].format == RENDER_CERTVISOR)
            return true;
    return false;
}

static void answer_waiters(struct stapling *s, int result, const char *error)
{
    json_t *status = stapling_status(s->agent);

    for (size_t i = 0; i < s->n_waiters; i++) {
        json_t *reply = result == 0 ? json_pack("{s:i, s:O}", "exit", 0, "status", status)
                                    : json_pack("{s:i, s:s, s:s, s:O}", "exit", 1, "error", error,
                                                "reason", "ocsp_query_failed", "status", status);

        s->waiters[i].done(s->waiters[i].data, result == 0 ? 0 : 1, reply);
    }
    s->n_waiters = 0;
    json_decref(status);
}

/* A test's answer goes out once the new answer is served: its reloads are over. */
static void answer_when_served(struct stapling *s)
{
    if (s->answer_ready && !s->reload_pending && s->reloads_out == 0) {
        s->answer_ready = false;
        answer_waiters(s, 0, "");
    }
}

static void on_reloaded(struct service *service, void *data, int result, const char *why)
{
    struct stapling *s = data;

    s->reloads_out--;
    if (result < 0)
        log_warning("OCSP: %s did not reload to staple the new answer: %s", service_name(service),
                    why ? why : "unknown reason");
    else
        log_info("OCSP: %s reloaded and staples the new answer", service_name(service));
    answer_when_served(s);
}

/*
 * Reloads the services that staple: each re-reads its files and serves the new answer, keeping
 * its connections. Never a restart: one that cannot reload takes the answer at its next start.
 * Waits while a change is being applied, whose own reloads and rollbacks come first.
 */
static void reload_stapling_services(struct stapling *s)
{
    struct supervisor *sup = s->agent->supervisor;

    if (!apply_idle(s->agent)) {
        s->reload_pending = true;
        return;
    }
    s->reload_pending = false;
    for (size_t i = 0; sup && i < supervisor_count(sup); i++) {
        struct service *service = supervisor_service(sup, i);
        const struct service_config *config = service_config_of(service);

        if (!staples(config) || !service_config_can_reload(config) ||
            service_state_of(service) != SERVICE_RUNNING)
            continue;
        /* Waited for first: a reload that cannot begin tells its waiters at once. */
        if (service_wait(service, WAIT_RELOADED, on_reloaded, s) == 0)
            s->reloads_out++;
        service_reload(service);
    }
}

static void took_answer(struct stapling *s, const struct stapling_job *job)
{
    bool was_revoked = s->answer.status == OCSP_STATUS_REVOKED;

    s->answer = job->query.answer;
    if (s->answer.status == OCSP_STATUS_REVOKED && !was_revoked) {
        char at[32];

        format_time(s->answer.revocation_time, at, sizeof(at));
        log_error("OCSP: the responder %s says the proxy certificate is REVOKED (since %s, "
                  "reason %d); it is stapled as such: replace the certificate with 'certvisorctl "
                  "cluster certificate set proxy ...'",
                  s->responder_url, at, s->answer.revocation_reason);
    } else if (s->answer.status == OCSP_STATUS_UNKNOWN) {
        log_warning("OCSP: the responder %s does not know the proxy certificate (UNKNOWN)",
                    s->responder_url);
    } else if (was_revoked && s->answer.status == OCSP_STATUS_GOOD) {
        log_notice("OCSP: the proxy certificate is GOOD again");
    }
}

static void job_finished(struct stapling *s, struct stapling_job *job, time_t now)
{
    const struct ocsp_query *q = &job->query;

    snprintf(s->responder_url, sizeof(s->responder_url), "%s", q->responder_url);
    if (q->read_back) {
        if (q->result == 0 && q->answer.status != OCSP_STATUS_NONE) {
            took_answer(s, job);
            /* Asked again one query_frequency after the answer was made, or now. */
            s->next_query = s->answer.this_update + setting(s, POLICY_OCSP_QUERY_FREQUENCY);
        } else if (q->removed) {
            log_warning("OCSP: the stored answer for the proxy certificate was removed: %s",
                        q->error);
        }
        return;
    }
    s->queries++;
    s->last_query = now;
    if (q->result == 0) {
        s->error[0] = '\0';
        s->failures_in_a_row = 0;
        took_answer(s, job);
        s->next_query = now + setting(s, POLICY_OCSP_QUERY_FREQUENCY);
        if (q->written && enabled(s))
            reload_stapling_services(s);
        s->answer_ready = true;
        answer_when_served(s);
        return;
    }
    s->failures++;
    snprintf(s->error, sizeof(s->error), "%s", q->error);
    /* Retried sooner a few times, then at the normal pace: a responder down for long is not
     * hammered, and one that comes back is asked again within a minute or so. */
    if (++s->failures_in_a_row <= (unsigned)setting(s, POLICY_OCSP_RECOVERY_MAX_TRIES) &&
        q->result != -ENOENT) {
        s->next_query = now + setting(s, POLICY_OCSP_RECOVERY_FREQUENCY);
    } else {
        s->failures_in_a_row = 0;
        s->next_query = now + setting(s, POLICY_OCSP_QUERY_FREQUENCY);
    }
    log_warning("OCSP: %s (the answer held stays stapled until its nextUpdate)", q->error);
    answer_waiters(s, q->result, q->error);
}

static void schedule(struct stapling *s);

static void on_job_done(void *data, bool cancelled)
{
    struct stapling_job *job = data;
    struct stapling *s = job->owner;

    if (s)
        s->running = NULL;
    if (!cancelled && s && job->generation == s->generation)
        job_finished(s, job, time(NULL));
    else if (!cancelled && s && !job->query.read_back)
        answer_waiters(s, -ESTALE, /* a rotation came first: the answer is the old one's */
                       "the proxy certificate was replaced during the query: ask again");
    free(job);
    if (!cancelled && s)
        schedule(s);
}

static void run_job(void *data)
{
    ocsp_query_run(&((struct stapling_job *)data)->query);
}

static int submit(struct stapling *s, bool read_back)
{
    struct stapling_job *job = calloc(1, sizeof(*job));
    char cert_path[PATH_MAX];
    int r;

    if (!job)
        return -ENOMEM;
    r = certstore_paths(s->agent->certs->store, CERT_PROXY, s->generation, cert_path,
                        sizeof(cert_path), NULL, 0);
    if (r < 0) {
        free(job);
        return r;
    }
    job->owner = s;
    job->generation = s->generation;
    job->query.read_back = read_back;
    job->query.timeout_seconds = (int)setting(s, POLICY_OCSP_RESPONSE_TIMEOUT);
    snprintf(job->query.cert_path, sizeof(job->query.cert_path), "%s", cert_path);
    snprintf(job->query.ca_path, sizeof(job->query.ca_path), "%s", s->agent->certs->ca_export_path);
    snprintf(job->query.out_path, sizeof(job->query.out_path), "%s", s->ocsp_path);
    r = offload_submit(s->agent->offload, run_job, on_job_done, job);
    if (r < 0) {
        free(job);
        return r;
    }
    s->running = job;
    return 0;
}

/* Follows the proxy certificate's rotations: a new generation starts with what it has kept. */
static void follow_generation(struct stapling *s)
{
    char cert_path[PATH_MAX];
    unsigned generation;

    if (certstore_current(s->agent->certs->store, CERT_PROXY, &generation) < 0 ||
        generation == s->generation)
        return;
    if (certstore_paths(s->agent->certs->store, CERT_PROXY, generation, cert_path,
                        sizeof(cert_path), NULL, 0) < 0 ||
        render_ocsp_path(cert_path, s->ocsp_path, sizeof(s->ocsp_path)) < 0)
        return;
    s->generation = generation;
    ocsp_responder_of_file(cert_path, s->responder_url, sizeof(s->responder_url));
    memset(&s->answer, 0, sizeof(s->answer));
    s->error[0] = '\0';
    s->failures_in_a_row = 0;
    s->next_query = time(NULL);
    s->read_back_needed = true;
}

/* The answer held is past its nextUpdate: removed, and the staplers reloaded without it. */
static void expire(struct stapling *s, time_t now)
{
    char at[32];

    if (s->answer.status == OCSP_STATUS_NONE || !s->answer.next_update ||
        now <= s->answer.next_update)
        return;
    format_time(s->answer.next_update, at, sizeof(at));
    log_warning("OCSP: the proxy certificate's answer expired at %s and no new one came: "
                "nothing is stapled until the responder %s answers",
                at, s->responder_url);
    snprintf(s->error, sizeof(s->error), "the last answer expired at %s", at);
    memset(&s->answer, 0, sizeof(s->answer));
    if (unlink(s->ocsp_path) == 0 && enabled(s))
        reload_stapling_services(s);
}

/*
 * Sets the timer for the next thing that is due: a query, the held answer's expiry, or a
 * retry. Nothing due (stapling disabled, no answer held): no timer at all, so an idle agent
 * wakes up for nothing; a change applied pokes it (stapling_poke).
 */
static void arm(struct stapling *s, time_t now)
{
    time_t at = 0;
    struct timeval delay = {0, 0};

    if (s->reload_pending || s->read_back_needed)
        at = now + RETRY_SECONDS;
    if (!s->running && (enabled(s) || s->n_waiters) && (!at || s->next_query < at))
        at = s->next_query;
    if (s->answer.status != OCSP_STATUS_NONE && s->answer.next_update &&
        (!at || s->answer.next_update + 1 < at))
        at = s->answer.next_update + 1;
    if (!at) {
        event_del(s->tick);
        return;
    }
    delay.tv_sec = at <= now ? 0 : at - now > 3600 ? 3600 : at - now;
    event_add(s->tick, &delay);
}

static void schedule(struct stapling *s)
{
    time_t now = time(NULL);

    if (s->agent->shutting_down)
        return;
    follow_generation(s);
    if (!s->generation) {
        event_del(s->tick);
        return;
    }
    if (s->reload_pending && enabled(s))
        reload_stapling_services(s);
    else if (s->reload_pending)
        s->reload_pending = false; /* disabled meanwhile: nothing staples any more */
    answer_when_served(s);
    expire(s, now);
    if (!s->running && s->read_back_needed) {
        if (submit(s, true) == 0)
            s->read_back_needed = false;
    } else if (!s->running && (enabled(s) || s->n_waiters) && now >= s->next_query &&
               submit(s, false) < 0) {
        log_warning("OCSP: cannot queue the query (out of memory)");
        s->next_query = now + RETRY_SECONDS;
    }
    arm(s, now);
}

void stapling_poke(struct agent *agent)
{
    if (agent->stapling)
        schedule(agent->stapling);
}

static void on_tick(evutil_socket_t fd, short what, void *data)
{
    (void)fd;
    (void)what;
    schedule(data);
}

int stapling_start(struct agent *agent)
{
    struct stapling *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->agent = agent;
    s->tick = evtimer_new(agent->base, on_tick, s);
    if (!s->tick) {
        free(s);
        return -ENOMEM;
    }
    agent->stapling = s;
    schedule(s);
    return 0;
}

void stapling_free(struct agent *agent)
{
    struct stapling *s = agent->stapling;

    if (!s)
        return;
    if (s->running)
        s->running->owner = NULL; /* its done callback frees it */
    for (size_t i = 0; i < s->n_waiters; i++)
        s->waiters[i].done(s->waiters[i].data, 1,
                           json_pack("{s:i, s:s, s:s}", "exit", 1, "error", "the agent is stopping",
                                     "reason", "shutting_down"));
    event_free(s->tick);
    free(s);
    agent->stapling = NULL;
}

void stapling_test(struct agent *agent, void (*done)(void *data, int exit_status, json_t *reply),
                   void *data)
{
    struct stapling *s = agent->stapling;

    if (!s || s->n_waiters == WAITERS_MAX) {
        done(data, 1,
             json_pack("{s:i, s:s, s:s}", "exit", 1, "error",
                       s ? "too many OCSP tests are waiting: try again in a moment"
                         : "the agent is stopping",
                       "reason", s ? "busy" : "shutting_down"));
        return;
    }
    follow_generation(s);
    if (!s->generation) {
        done(data, 1,
             json_pack("{s:i, s:s, s:s}", "exit", 1, "error",
                       "the proxy certificate is not set: there is nothing to ask about", "reason",
                       "not_set"));
        return;
    }
    s->waiters[s->n_waiters].done = done;
    s->waiters[s->n_waiters++].data = data;
    /* A query running now answers it; else one starts now (after a read-back, if one runs). */
    if (!s->running || s->running->query.read_back)
        s->next_query = 0;
    schedule(s);
}

void stapling_forget(struct agent *agent, void *data)
{
    struct stapling *s = agent->stapling;

    for (size_t i = 0; s && i < s->n_waiters; i++)
        if (s->waiters[i].data == data) {
            s->waiters[i] = s->waiters[--s->n_waiters];
            return;
        }
}
