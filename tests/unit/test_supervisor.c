/*
 * Unit tests for the scheduler (agent/supervise/supervisor.c) on its own: a supervisor
 * with no agent behind it, real processes (sh and sleep) and an observer that records
 * every service's state after each scheduling pass. They check the orders the rest of
 * the agent relies on: dependencies start first, stops run top-down before starts
 * whichever way the dependency points, a stop cancels a pending retry, and a new
 * configuration restarts exactly what changed and drops what is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "config.h"
#include "service.h"
#include "supervisor.h"

#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PASSES 512
#define MAX_SERVICES 4

/* What every service was after one scheduling pass that changed something. */
struct pass {
    enum service_state state[MAX_SERVICES];
    pid_t pid[MAX_SERVICES];
};

struct fixture {
    char dir[64];
    struct agent_config *config;
    struct event_base *base;
    struct event *sigchld;
    struct supervisor *sup;
    struct pass passes[MAX_PASSES];
    size_t n_passes;
};

/* The observer: records a snapshot of every service whenever one changed. */
static void on_changed(void *data)
{
    struct fixture *fx = data;
    struct pass now = {0};

    for (size_t i = 0; i < supervisor_count(fx->sup) && i < MAX_SERVICES; i++) {
        now.state[i] = service_state_of(supervisor_service(fx->sup, i));
        now.pid[i] = service_pid(supervisor_service(fx->sup, i));
    }
    if (fx->n_passes > 0 && memcmp(&now, &fx->passes[fx->n_passes - 1], sizeof(now)) == 0)
        return;
    if (fx->n_passes < MAX_PASSES)
        fx->passes[fx->n_passes++] = now;
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    supervisor_reap(arg);
}

/*
 * db is a plain process; front is after db and ignores SIGTERM, so its stop takes its
 * stop_timeout (0.5 s); flaky exits at once and retries after 30 s.
 */
static const char *const SERVICES =
    "service db {\n"
    "  command = \"/bin/sleep\"\n  arguments = {\"60\"}\n  readiness = started\n"
    "  autostart = false\n  stop_timeout = 2\n}\n"
    "service front {\n"
    "  command = \"/bin/sh\"\n  arguments = {\"-c\", \"trap '' TERM; sleep 60 & wait; wait\"}\n"
    "  readiness = started\n  autostart = false\n  after = {\"db\"}\n  stop_timeout = 0.5\n}\n"
    "service flaky {\n"
    "  command = \"/bin/false\"\n  readiness = started\n  autostart = false\n"
    "  autorestart = true\n  backoff_initial = 30\n}\n";

/* A supervisor on fx's loop and configuration, reaping on SIGCHLD, with its services. */
static void new_supervisor(struct fixture *fx)
{
    assert_int_equal(supervisor_new(fx->base, fx->config, false,
                                    (struct supervisor_observer){on_changed, fx}, &fx->sup),
                     0);
    fx->sigchld = evsignal_new(fx->base, SIGCHLD, on_sigchld, fx->sup);
    assert_int_equal(event_add(fx->sigchld, NULL), 0);
    assert_int_equal(supervisor_take_config(fx->sup, fx->config, NULL), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char main_path[PATH_MAX], text[PATH_MAX + 64], *error = NULL;

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "supervisor");
    snprintf(main_path, sizeof(main_path), "%s/certvisor.conf", fx->dir);
    snprintf(text, sizeof(text), "prefix = \"%s\"\n", fx->dir);
    unit_write_file(fx->dir, "certvisor.conf", text);
    snprintf(text, sizeof(text), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(text, 0755), 0);
    unit_write_file(fx->dir, "conf.d/services.conf", SERVICES);
    if (config_load(main_path, NULL, &fx->config, &error) != 0 ||
        config_check_environment(fx->config, &error) != 0 ||
        config_make_directories(fx->config, &error) != 0)
        fail_msg("the test's configuration: %s", error ? error : "(no message)");
    fx->base = event_base_new();
    assert_non_null(fx->base);
    new_supervisor(fx);
    *state = fx;
    return 0;
}

static void run_until_quiet_or(struct fixture *fx, bool (*done)(struct fixture *), double limit)
{
    struct timeval step = {0, 20 * 1000};

    for (int i = 0; i < (int)(limit / 0.02) && !done(fx); i++) {
        event_base_loopexit(fx->base, &step);
        event_base_dispatch(fx->base);
    }
    assert_true(done(fx));
}

static bool all_quiet(struct fixture *fx)
{
    return supervisor_all_quiet(fx->sup);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    for (size_t i = 0; i < supervisor_count(fx->sup); i++)
        supervisor_mark_stop(supervisor_service(fx->sup, i), false);
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, all_quiet, 10);
    supervisor_free(fx->sup);
    event_free(fx->sigchld);
    event_base_free(fx->base);
    config_free(fx->config);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static struct service *find(struct fixture *fx, const char *name)
{
    struct service *service = supervisor_find(fx->sup, name);

    assert_non_null(service);
    return service;
}

/* The position of a service in the supervisor's table (dependencies first). */
static size_t slot(struct fixture *fx, const char *name)
{
    for (size_t i = 0; i < supervisor_count(fx->sup); i++)
        if (strcmp(service_name(supervisor_service(fx->sup, i)), name) == 0)
            return i;
    fail_msg("no service %s", name);
    return 0;
}

/* The first recorded pass at or after from in which name is in state, or -1. */
static int first_pass(struct fixture *fx, const char *name, enum service_state state, size_t from)
{
    size_t i = slot(fx, name);

    for (size_t p = from; p < fx->n_passes; p++)
        if (fx->passes[p].state[i] == state)
            return (int)p;
    return -1;
}

static bool db_and_front_running(struct fixture *fx)
{
    return service_state_of(find(fx, "db")) == SERVICE_RUNNING &&
           service_state_of(find(fx, "front")) == SERVICE_RUNNING;
}

static void starting_a_service_starts_what_it_is_after_first(void **state)
{
    struct fixture *fx = *state;

    supervisor_mark_start(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, db_and_front_running, 10);
    /* front's process came only once db was running. */
    for (size_t p = 0; p < fx->n_passes; p++)
        if (fx->passes[p].pid[slot(fx, "front")])
            assert_int_equal(fx->passes[p].state[slot(fx, "db")], SERVICE_RUNNING);
    assert_int_equal(service_state_of(find(fx, "flaky")), SERVICE_STOPPED);
}

static void a_restart_stops_top_down_and_starts_only_after_every_stop(void **state)
{
    struct fixture *fx = *state;
    pid_t old_db;
    size_t from;

    supervisor_mark_start(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, db_and_front_running, 10);
    old_db = service_pid(find(fx, "db"));
    from = fx->n_passes;
    supervisor_mark_restart(fx->sup, find(fx, "db"));
    supervisor_mark_restart(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    /* front ignores SIGTERM: while it takes its stop timeout, db is not stopped yet. */
    assert_int_equal(service_state_of(find(fx, "front")), SERVICE_STOPPING);
    assert_int_equal(service_state_of(find(fx, "db")), SERVICE_RUNNING);
    assert_int_equal(service_pid(find(fx, "db")), old_db);
    run_until_quiet_or(fx, db_and_front_running, 10);
    assert_true(first_pass(fx, "front", SERVICE_STOPPED, from) >= 0);
    for (size_t p = from; p < fx->n_passes; p++) {
        const struct pass *pass = &fx->passes[p];
        bool db_stopping_or_new =
            pass->state[slot(fx, "db")] == SERVICE_STOPPING ||
            (pass->pid[slot(fx, "db")] && pass->pid[slot(fx, "db")] != old_db);

        /* db stops, and starts again, only once front has stopped; front starts after. */
        if (db_stopping_or_new && pass->state[slot(fx, "front")] == SERVICE_STOPPING)
            fail_msg("pass %zu: db stopped or started while front was stopping", p);
        if (pass->pid[slot(fx, "front")] && (int)p > first_pass(fx, "front", SERVICE_STOPPED, from))
            assert_int_equal(pass->state[slot(fx, "db")], SERVICE_RUNNING);
    }
    assert_int_not_equal(service_pid(find(fx, "db")), old_db);
}

static bool flaky_in_backoff(struct fixture *fx)
{
    return service_state_of(find(fx, "flaky")) == SERVICE_BACKOFF;
}

static bool front_stopping_done(struct fixture *fx)
{
    return service_state_of(find(fx, "front")) == SERVICE_STOPPED;
}

/*
 * A service in BACKOFF has no process, only a retry: a stop cancels the retry at once,
 * and a start of it waits while a dependent is being stopped (here db, with front).
 */
static void a_stop_cancels_a_retry_and_a_start_waits_for_dependents_stopping(void **state)
{
    struct fixture *fx = *state;
    struct service *db = find(fx, "db");
    struct service_snapshot now;

    supervisor_mark_start(fx->sup, find(fx, "flaky"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, flaky_in_backoff, 10);
    supervisor_mark_stop(find(fx, "flaky"), true);
    supervisor_schedule(fx->sup);
    assert_int_equal(service_state_of(find(fx, "flaky")), SERVICE_STOPPED);
    service_snapshot(find(fx, "flaky"), &now);
    assert_true(now.operator_stopped);

    supervisor_mark_start(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, db_and_front_running, 10);
    supervisor_mark_stop(find(fx, "front"), false);
    supervisor_schedule(fx->sup);
    supervisor_mark_restart(fx->sup, db);
    supervisor_schedule(fx->sup);
    /* db's stop waits for front's, and so does its start. */
    assert_int_equal(service_state_of(db), SERVICE_RUNNING);
    service_snapshot(db, &now);
    assert_true(now.stop_pending);
    run_until_quiet_or(fx, front_stopping_done, 10);
    assert_int_equal(service_state_of(find(fx, "front")), SERVICE_STOPPED);
}

/* The names in summary's array key, comma-separated, for comparing. */
static const char *names_in(json_t *summary, const char *key)
{
    static char buf[256];
    json_t *name;
    size_t i;

    buf[0] = '\0';
    json_array_foreach(json_object_get(summary, key), i, name)
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "," : "",
                 json_string_value(name));
    return buf;
}

static bool flaky_gone_and_front_running(struct fixture *fx)
{
    return !supervisor_find(fx->sup, "flaky") && supervisor_count(fx->sup) == 3 &&
           service_state_of(find(fx, "front")) == SERVICE_RUNNING;
}

/*
 * A new configuration: front's settings changed (restarted), db's did not (left running),
 * flaky is gone (stopped, then dropped from the table), extra is new (added, not started:
 * no autostart). What the preview says is what taking it does.
 */
static void a_new_configuration_restarts_what_changed_and_drops_what_is_gone(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *next = NULL;
    char path[PATH_MAX], *error = NULL;
    json_t *preview =
        json_pack("{s:[], s:[], s:[], s:[]}", "added", "changed", "updated", "removed");
    json_t *summary = json_deep_copy(preview);
    pid_t old_db, old_front;

    supervisor_mark_start(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, db_and_front_running, 10);
    old_db = service_pid(find(fx, "db"));
    old_front = service_pid(find(fx, "front"));

    unit_write_file(fx->dir, "conf.d/services.conf",
                    "service db {\n"
                    "  command = \"/bin/sleep\"\n  arguments = {\"60\"}\n  readiness = started\n"
                    "  autostart = false\n  stop_timeout = 2\n}\n"
                    "service front {\n"
                    "  command = \"/bin/sleep\"\n  arguments = {\"61\"}\n  readiness = started\n"
                    "  autostart = false\n  after = {\"db\"}\n}\n"
                    "service extra {\n"
                    "  command = \"/bin/sleep\"\n  arguments = {\"60\"}\n  autostart = false\n}\n");
    snprintf(path, sizeof(path), "%s/certvisor.conf", fx->dir);
    if (config_load(path, NULL, &next, &error) != 0)
        fail_msg("the new configuration: %s", error ? error : "(no message)");
    supervisor_preview_config(fx->sup, next, preview);
    assert_int_equal(supervisor_take_config(fx->sup, next, summary), 0);
    config_free(fx->config);
    fx->config = next;
    assert_true(json_equal(preview, summary));
    assert_string_equal(names_in(summary, "added"), "extra");
    assert_string_equal(names_in(summary, "changed"), "front");
    assert_string_equal(names_in(summary, "updated"), "");
    assert_string_equal(names_in(summary, "removed"), "flaky");
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, flaky_gone_and_front_running, 10);
    assert_int_equal(service_pid(find(fx, "db")), old_db);
    assert_int_not_equal(service_pid(find(fx, "front")), old_front);
    assert_int_equal(service_state_of(find(fx, "extra")), SERVICE_STOPPED);
    json_decref(preview);
    json_decref(summary);
}

static bool db_restarted(struct fixture *fx)
{
    return service_state_of(find(fx, "db")) == SERVICE_RUNNING &&
           service_pid(find(fx, "db")) != fx->passes[0].pid[0];
}

/*
 * The next agent: a second supervisor, on a configuration loaded again, takes over the
 * processes the first one recorded (run_dir/services.json) and left running.
 */
static void a_new_supervisor_adopts_what_the_record_lists(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *next = NULL;
    char path[PATH_MAX], *error = NULL;
    pid_t db, front;

    assert_int_equal(supervisor_adopt(fx->sup), 0); /* none yet; the record is its own now */
    supervisor_mark_start(fx->sup, find(fx, "front"));
    supervisor_schedule(fx->sup);
    run_until_quiet_or(fx, db_and_front_running, 10);
    db = service_pid(find(fx, "db"));
    front = service_pid(find(fx, "front"));
    /* The first goes away without stopping anything, as a killed agent does. */
    event_free(fx->sigchld);
    supervisor_free(fx->sup);
    snprintf(path, sizeof(path), "%s/certvisor.conf", fx->dir);
    if (config_load(path, NULL, &next, &error) != 0)
        fail_msg("the configuration again: %s", error ? error : "(no message)");
    config_free(fx->config);
    fx->config = next;
    new_supervisor(fx);

    assert_int_equal(supervisor_adopt(fx->sup), 2);
    assert_int_equal(service_state_of(find(fx, "db")), SERVICE_RUNNING);
    assert_int_equal(service_pid(find(fx, "db")), db);
    assert_int_equal(service_pid(find(fx, "front")), front);
    assert_int_equal(service_state_of(find(fx, "flaky")), SERVICE_STOPPED);
    /* An adopted process that dies is restarted like any other. */
    fx->n_passes = 0;
    on_changed(fx); /* passes[0]: the adopted pids */
    kill(db, SIGKILL);
    run_until_quiet_or(fx, db_restarted, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(starting_a_service_starts_what_it_is_after_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_restart_stops_top_down_and_starts_only_after_every_stop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_stop_cancels_a_retry_and_a_start_waits_for_dependents_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_new_configuration_restarts_what_changed_and_drops_what_is_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_supervisor_adopts_what_the_record_lists, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
