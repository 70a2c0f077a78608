/* The handlers behind the control protocol's command table. */
#include "commands.h"

#include "apply.h"
#include "commands_audit.h"
#include "commands_certs.h"
#include "commands_users.h"
#include "commands_metrics.h"
#include "commands_replica.h"
#include "commands_cluster.h"
#include "commands_ldap.h"
#include "commands_ocsp.h"
#include "commands_rest.h"
#include "cv_error.h"
#include "log.h"
#include "output.h"
#include "service.h"
#include "supervisor.h"
#include "sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

/* Exit statuses, as supervisorctl users know them. */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_NOT_RUNNING = 3,
    EXIT_UNKNOWN = 4,
};

/* Several outcomes in one answer: the gravest wins (unknown name, then failure, then not running).
 */
static void worsen(int *status, int outcome)
{
    static const int rank[] = {[EXIT_OK] = 0,
                               [EXIT_NOT_RUNNING] = 1,
                               [EXIT_FAILED] = 2,
                               [EXIT_USAGE] = 3,
                               [EXIT_UNKNOWN] = 4};

    if (rank[outcome] > rank[*status])
        *status = outcome;
}

typedef void (*command_handler)(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

/* --- operations that answer once their services reach a goal --- */

enum op_verb { OP_START, OP_STOP, OP_RESTART, OP_RELOAD };

struct op {
    struct control_conn *conn; /* NULL once the client went away */
    json_t *items;
    size_t outstanding;
    int exit_status;
};

struct op_part {
    struct op *op;
    size_t index;
    enum op_verb verb;
    bool was_running;
};

static void op_abandon(void *data)
{
    ((struct op *)data)->conn = NULL;
}

static void op_finish_if_done(struct op *op)
{
    if (op->outstanding > 0)
        return;
    if (op->conn)
        control_reply(op->conn,
                      json_pack("{s:i, s:O}", "exit", op->exit_status, "items", op->items));
    json_decref(op->items);
    free(op);
}

static void on_goal(struct service *service, void *data, int result, const char *why)
{
    struct op_part *part = data;
    struct op *op = part->op;
    json_t *item = json_array_get(op->items, part->index);
    static const char *const done_words[] = {"started", "stopped", "started", "reloaded"};

    log_debug("Operation on '%s': %s", service_name(service), result < 0 ? why : "done");
    if (result < 0) {
        json_object_set_new(item, "error", json_string(why ? why : cv_strerror(result)));
        worsen(&op->exit_status, EXIT_FAILED);
    } else {
        json_object_set_new(item, "result", json_string(done_words[part->verb]));
    }
    free(part);
    op->outstanding--;
    op_finish_if_done(op);
}

/* Resolves the names of a request ("all" means every service, in dependency order). */
static bool is_up(const struct service *service);

static int collect_services(struct agent *agent, json_t *args, enum op_verb verb, struct op *op,
                            struct service ***ret_services, size_t *ret_count)
{
    size_t n = json_array_size(args), count = 0;
    struct service **services;

    if (n == 1 && strcmp(json_string_value(json_array_get(args, 0)) ?: "", "all") == 0) {
        services = calloc(supervisor_count(agent->supervisor) + 1, sizeof(*services));
        if (!services)
            return -ENOMEM;
        /* 'all' names what the verb applies to: stop what is up, start what is not. */
        for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
            struct service *service = supervisor_service(agent->supervisor, i);
            struct service_snapshot now;

            service_snapshot(service, &now);
            if (now.removing || (verb == OP_STOP && !is_up(service)) ||
                (verb == OP_START && service_state_of(service) == SERVICE_RUNNING))
                continue;
            services[count++] = service;
        }
        *ret_services = services;
        *ret_count = count;
        return 0;
    }
    services = calloc(n + 1, sizeof(*services));
    if (!services)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(args, i));
        struct service *service = name ? supervisor_find(agent->supervisor, name) : NULL;

        if (!service) {
            json_array_append_new(op->items, json_pack("{s:s, s:s}", "name", name ? name : "?",
                                                       "error", "no such process"));
            worsen(&op->exit_status, EXIT_UNKNOWN);
            continue;
        }
        services[count++] = service;
    }
    *ret_services = services;
    *ret_count = count;
    return 0;
}

static bool is_up(const struct service *service)
{
    return service_state_active(service_state_of(service)) ||
           service_state_of(service) == SERVICE_BACKOFF;
}

/* Registers the goal, or records why there is nothing to wait for. Returns true if waiting. */
static bool begin_part(struct agent *agent, struct op *op, struct service *service,
                       enum op_verb verb)
{
    json_t *item = json_pack("{s:s}", "name", service_name(service));
    struct op_part *part = calloc(1, sizeof(*part));
    enum wait_goal goal = verb == OP_STOP ? WAIT_STOPPED : WAIT_READY;

    json_array_append_new(op->items, item);
    if (!part) {
        json_object_set_new(item, "error", json_string("out of memory"));
        worsen(&op->exit_status, EXIT_FAILED);
        return false;
    }
    *part = (struct op_part){op, json_array_size(op->items) - 1, verb, is_up(service)};
    if (verb == OP_START && service_state_of(service) == SERVICE_RUNNING) {
        json_object_set_new(item, "error", json_string("already started"));
        worsen(&op->exit_status, EXIT_FAILED);
        free(part);
        return false;
    }
    struct service_snapshot now;

    service_snapshot(service, &now);
    if (verb == OP_STOP && !is_up(service) && !now.start_pending) {
        json_object_set_new(item, "error", json_string("not running"));
        worsen(&op->exit_status, EXIT_FAILED);
        free(part);
        return false;
    }
    if (verb == OP_RELOAD) {
        if (service_state_of(service) != SERVICE_RUNNING) {
            json_object_set_new(item, "error", json_string("not running"));
            worsen(&op->exit_status, EXIT_FAILED);
            free(part);
            return false;
        }
        if (!service_config_can_reload(service_config_of(service))) {
            /* No reload support: a restart stands in, as the configuration says. */
            json_object_set_new(item, "restarted", json_true());
            part->verb = OP_RESTART;
            goal = WAIT_READY;
        } else {
            goal = WAIT_RELOADED;
        }
    }
    if (verb == OP_RESTART && part->was_running)
        json_object_set_new(item, "stopped", json_true());
    if (service_wait(service, goal, on_goal, part) < 0) {
        json_object_set_new(item, "error", json_string("out of memory"));
        free(part);
        return false;
    }
    op->outstanding++;
    (void)agent;
    return true;
}

static void run_operation(struct agent *agent, struct control_conn *conn, json_t *args,
                          enum op_verb verb)
{
    struct op *op = calloc(1, sizeof(*op));
    struct service **services = NULL;
    size_t count = 0;

    if (!op || !(op->items = json_array())) {
        free(op);
        control_reply_error(conn, EXIT_FAILED, "out of memory");
        return;
    }
    op->conn = conn;
    if (collect_services(agent, args, verb, op, &services, &count) < 0) {
        json_decref(op->items);
        free(op);
        control_reply_error(conn, EXIT_FAILED, "out of memory");
        return;
    }
    control_on_abandon(conn, op_abandon, op);
    /* Hold the reply until every part is registered: a goal may be reached at once. */
    op->outstanding++;
    for (size_t i = 0; i < count; i++) {
        struct service *service = services[i];

        if (!begin_part(agent, op, service, verb))
            continue;
        switch (verb) {
        case OP_START:
            supervisor_mark_start(agent->supervisor, service);
            break;
        case OP_STOP:
            supervisor_mark_stop(service, true);
            break;
        case OP_RESTART:
            supervisor_mark_restart(agent->supervisor, service);
            break;
        case OP_RELOAD:
            if (!service_config_can_reload(service_config_of(service)))
                supervisor_mark_restart(agent->supervisor, service);
            else
                service_reload(service); /* on failure, the waiter has heard why */
            break;
        }
    }
    free(services);
    supervisor_schedule(agent->supervisor);
    op->outstanding--;
    op_finish_if_done(op);
}

static void handle_start(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options)
{
    (void)options;
    if (json_array_size(args) == 0) {
        control_reply_error(conn, EXIT_USAGE, "start needs service names, or 'all'");
        return;
    }
    run_operation(agent, conn, args, OP_START);
}

static void handle_stop(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options)
{
    (void)options;
    if (json_array_size(args) == 0) {
        control_reply_error(conn, EXIT_USAGE, "stop needs service names, or 'all'");
        return;
    }
    run_operation(agent, conn, args, OP_STOP);
}

static void handle_restart(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    (void)options;
    if (json_array_size(args) == 0) {
        control_reply_error(conn, EXIT_USAGE, "restart needs service names, or 'all'");
        return;
    }
    run_operation(agent, conn, args, OP_RESTART);
}

static void handle_reload(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options)
{
    if (json_array_size(args) > 0) {
        if (json_is_true(json_object_get(options, "dry_run"))) {
            control_reply_error(conn, EXIT_USAGE,
                                "--dry-run applies to a configuration reload, without names");
            return;
        }
        run_operation(agent, conn, args, OP_RELOAD);
        return;
    }
    /* The configuration goes through the apply pipeline: its policy and every rendered file
     * follow, and a service that does not come back with them is rolled back. */
    if (!json_is_true(json_object_get(options, "dry_run")))
        agent_reload_started(agent);
    commands_submit_change(agent, conn, apply_config(), options);
}

/* --- read-only commands --- */

static json_t *status_item(const struct service *service)
{
    char description[512];
    struct service_snapshot now;

    service_snapshot(service, &now);
    service_describe(service, description, sizeof(description));
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:b}", "name", now.name, "state",
                     service_state_name(now.state), "description", description, "pid", (int)now.pid,
                     "restarts", (json_int_t)now.restarts, "status_text", now.status_text, "reason",
                     now.reason, "autostart", now.config->autostart);
}

static void handle_status(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options)
{
    json_t *items = json_array();
    int exit_status = EXIT_OK;

    (void)options;
    if (json_array_size(args) == 0 ||
        (json_array_size(args) == 1 &&
         strcmp(json_string_value(json_array_get(args, 0)) ?: "", "all") == 0)) {
        struct service **sorted = supervisor_by_name(agent->supervisor);

        if (sorted) {
            for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
                json_array_append_new(items, status_item(sorted[i]));
                if (service_state_of(sorted[i]) != SERVICE_RUNNING)
                    worsen(&exit_status, EXIT_NOT_RUNNING);
            }
            free(sorted);
        }
    } else {
        for (size_t i = 0; i < json_array_size(args); i++) {
            const char *name = json_string_value(json_array_get(args, i));
            struct service *service = name ? supervisor_find(agent->supervisor, name) : NULL;

            if (!service) {
                json_array_append_new(items, json_pack("{s:s, s:s}", "name", name ? name : "?",
                                                       "error", "no such process"));
                worsen(&exit_status, EXIT_UNKNOWN);
                continue;
            }
            json_array_append_new(items, status_item(service));
            if (service_state_of(service) != SERVICE_RUNNING)
                worsen(&exit_status, EXIT_NOT_RUNNING);
        }
    }
    control_reply(conn, json_pack("{s:i, s:o}", "exit", exit_status, "items", items));
}

static void handle_pid(struct agent *agent, struct control_conn *conn, json_t *args,
                       json_t *options)
{
    json_t *items;
    int exit_status = EXIT_OK;

    (void)options;
    if (json_array_size(args) == 0) {
        control_reply(conn, json_pack("{s:i, s:i}", "exit", EXIT_OK, "pid", (int)getpid()));
        return;
    }
    items = json_array();
    if (json_array_size(args) == 1 &&
        strcmp(json_string_value(json_array_get(args, 0)) ?: "", "all") == 0) {
        for (size_t i = 0; i < supervisor_count(agent->supervisor); i++)
            json_array_append_new(
                items, json_pack("{s:s, s:i}", "name",
                                 service_name(supervisor_service(agent->supervisor, i)), "pid",
                                 (int)service_pid(supervisor_service(agent->supervisor, i))));
    } else {
        for (size_t i = 0; i < json_array_size(args); i++) {
            const char *name = json_string_value(json_array_get(args, i));
            struct service *service = name ? supervisor_find(agent->supervisor, name) : NULL;

            if (!service) {
                json_array_append_new(items, json_pack("{s:s, s:s}", "name", name ? name : "?",
                                                       "error", "no such process"));
                worsen(&exit_status, EXIT_UNKNOWN);
            } else {
                json_array_append_new(
                    items, json_pack("{s:s, s:i}", "name", name, "pid", (int)service_pid(service)));
            }
        }
    }
    control_reply(conn, json_pack("{s:i, s:o}", "exit", exit_status, "items", items));
}

static void handle_avail(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options)
{
    json_t *items = json_array();

    (void)args;
    (void)options;
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        struct service_snapshot now;
        const struct service_config *config;
        json_t *after = json_array();

        service_snapshot(supervisor_service(agent->supervisor, i), &now);
        config = now.config;
        for (size_t d = 0; d < config->n_after; d++)
            json_array_append_new(after, json_string(config->after[d]));
        json_array_append_new(items, json_pack("{s:s, s:b, s:b, s:o, s:s, s:i}", "name",
                                               config->name, "autostart", config->autostart,
                                               "removing", now.removing, "after", after, "file",
                                               config->source_file, "line", config->source_line));
    }
    control_reply(conn, json_pack("{s:i, s:o}", "exit", EXIT_OK, "items", items));
}

static void handle_version(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    (void)agent;
    (void)args;
    (void)options;
    control_reply(conn, json_pack("{s:i, s:s}", "exit", EXIT_OK, "version", CERTVISOR_VERSION));
}

static void handle_daemon_reexec(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options)
{
    char err[1024];

    (void)options;
    if (json_array_size(args) > 0) {
        control_reply_error(conn, EXIT_USAGE, "daemon-reexec takes no arguments");
        return;
    }
    if (!agent->hooks.reexec) {
        control_reply_error(conn, EXIT_FAILED, "this agent cannot re-execute");
        return;
    }
    /* Answered by the new binary once it is ready, or here with why it could not run. */
    if (agent->hooks.reexec(agent, conn, err, sizeof(err)) < 0)
        control_reply_error(conn, EXIT_FAILED, "%s", err);
}

/* --- tail --- */

struct tail_follow {
    struct agent *agent;
    struct control_conn *conn;
    char *name;
};

static void send_line(void *data, enum output_stream_id stream, const char *line, size_t len)
{
    control_send(data, json_pack("{s:s%, s:s}", "line", line, len, "stream",
                                 stream == OUTPUT_STDERR ? "stderr" : "stdout"));
}

static void follow_line(void *data, enum output_stream_id stream, const char *line, size_t len)
{
    struct tail_follow *follow = data;
    struct control_conn *conn = follow->conn;

    if (line) {
        send_line(conn, stream, line, len);
        return;
    }
    /* The service was removed: end the request (control_reply drops the abandon hook). */
    free(follow->name);
    free(follow);
    control_reply(conn, json_pack("{s:i, s:s}", "exit", EXIT_OK, "ended", "service removed"));
}

static void follow_abandon(void *data)
{
    struct tail_follow *follow = data;
    struct service *service = supervisor_find(follow->agent->supervisor, follow->name);

    if (service)
        output_unfollow(service_output(service), follow_line, follow);
    free(follow->name);
    free(follow);
}

static void handle_tail(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    const char *stream_word = json_string_value(json_array_get(args, 1));
    json_t *lines_option = json_object_get(options, "lines");
    int lines = lines_option ? (int)json_integer_value(lines_option) : -1; /* absent: all kept */
    struct service *service = name ? supervisor_find(agent->supervisor, name) : NULL;
    int stream = -1;
    struct tail_follow *follow;

    if (!name || json_array_size(args) > 2) {
        control_reply_error(conn, EXIT_USAGE,
                            "usage: tail [-f] [-n <lines>] <name> "
                            "[stdout|stderr]");
        return;
    }
    if (!service) {
        control_reply_error(conn, EXIT_UNKNOWN, "%s: ERROR (no such process)", name);
        return;
    }
    if (stream_word) {
        if (strcmp(stream_word, "stdout") != 0 && strcmp(stream_word, "stderr") != 0) {
            control_reply_error(conn, EXIT_USAGE, "tail: '%s' is not stdout or stderr",
                                stream_word);
            return;
        }
        stream = strcmp(stream_word, "stderr") == 0 ? OUTPUT_STDERR : OUTPUT_STDOUT;
    }
    output_tail(service_output(service), lines, stream, send_line, conn);
    if (!json_is_true(json_object_get(options, "follow"))) {
        control_reply(conn, json_pack("{s:i}", "exit", EXIT_OK));
        return;
    }
    follow = calloc(1, sizeof(*follow));
    if (!follow || !(follow->name = strdup(name)) ||
        output_follow(service_output(service), stream, follow_line, follow) < 0) {
        if (follow)
            free(follow->name);
        free(follow);
        control_reply_error(conn, EXIT_FAILED, "out of memory");
        return;
    }
    follow->agent = agent;
    follow->conn = conn;
    /* The request stays open until the client leaves (or a re-exec ends it). */
    control_on_abandon(conn, follow_abandon, follow);
    control_conn_streams(conn);
}

#define COMMAND_HANDLER_ROW(id, words, access, usage, summary) [CONTROL_CMD_##id] = handle_##id,
static const command_handler handlers[CONTROL_CMD_COUNT] = {CONTROL_COMMANDS(COMMAND_HANDLER_ROW)};
#undef COMMAND_HANDLER_ROW

/* The reads of what the cluster shares, which a node answers from its own copy. */
static bool reads_cluster_copy(enum control_command command)
{
    switch (command) {
    case CONTROL_CMD_cluster_certificate_list:
    case CONTROL_CMD_cluster_certificate_show:
    case CONTROL_CMD_cluster_certificate_ca:
    case CONTROL_CMD_cluster_config_show:
    case CONTROL_CMD_replica_trust_list:
        return true;
    default:
        return false;
    }
}

void commands_dispatch(struct agent *agent, struct control_conn *conn, enum control_command command,
                       json_t *args, json_t *options)
{
    for (size_t i = 0; i < json_array_size(args); i++) {
        if (!json_is_string(json_array_get(args, i))) {
            control_reply_error(conn, EXIT_USAGE, "arguments must be strings");
            return;
        }
    }
    if (reads_cluster_copy(command)) {
        char why[512];

        if (cluster_sync_staleness(agent, why, sizeof(why)) > 0)
            control_conn_mark_stale(conn, why);
    }
    handlers[command](agent, conn, args, options);
}
