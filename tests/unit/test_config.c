/* Unit tests for configuration loading: defaults, expansion, start order and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "config.h"
#include "cv_error.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char main_path[PATH_MAX];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char conf_d[PATH_MAX];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "config");
    snprintf(fx->main_path, sizeof(fx->main_path), "%s/certvisor.conf", fx->dir);
    snprintf(conf_d, sizeof(conf_d), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(conf_d, 0755), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Writes text to dir/relative (relative may be "conf.d/x.conf"). */
static void write_file(const struct fixture *fx, const char *relative, const char *text)
{
    unit_write_file(fx->dir, relative, text);
}

static char *path_in(const struct fixture *fx, const char *relative)
{
    static char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", fx->dir, relative);
    return path;
}

static struct agent_config *load_ok(const struct fixture *fx, const char *prefix_override)
{
    struct agent_config *config = NULL;
    char *error = NULL;
    int r = config_load(fx->main_path, prefix_override, &config, &error);

    if (r != 0)
        print_error("config_load failed (%d): %s\n", r, error ? error : "(no message)");
    assert_int_equal(r, 0);
    assert_null(error);
    assert_non_null(config);
    return config;
}

/*
 * Loads the configuration, expects CV_ECONFIG and a message that starts at
 * "<dir>/<relative>:<line>: " (line 0: no line expected) and contains every needle.
 */
static void expect_error(const struct fixture *fx, const char *relative, int line,
                         const char *needle, const char *needle2)
{
    struct agent_config *config = NULL;
    char *error = NULL;
    char where[PATH_MAX + 32];
    int r = config_load(fx->main_path, NULL, &config, &error);

    if (line > 0)
        snprintf(where, sizeof(where), "%s/%s:%d: ", fx->dir, relative, line);
    else
        snprintf(where, sizeof(where), "%s/%s", fx->dir, relative);
    if (r != CV_ECONFIG || !error || !strstr(error, where) || !strstr(error, needle) ||
        (needle2 && !strstr(error, needle2)))
        print_error("r=%d, message: %s\nexpected place \"%s\" and \"%s\"%s%s%s\n", r,
                    error ? error : "(none)", where, needle, needle2 ? " and \"" : "",
                    needle2 ? needle2 : "", needle2 ? "\"" : "");
    assert_int_equal(r, CV_ECONFIG);
    assert_null(config);
    assert_non_null(error);
    assert_non_null(strstr(error, where));
    assert_non_null(strstr(error, needle));
    if (needle2)
        assert_non_null(strstr(error, needle2));
    free(error);
}

static void assert_strv_equal(char **strv, const char *const *expected)
{
    size_t i = 0;

    for (; expected[i]; i++) {
        assert_non_null(strv[i]);
        assert_string_equal(strv[i], expected[i]);
    }
    assert_null(strv[i]);
}

/* --- loading and defaults --- */

static void a_main_file_and_two_includes_load_in_file_order(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;
    struct service_config *s;

    write_file(fx, "certvisor.conf", "# node agent\nprefix = \"/\"\n");
    write_file(fx, "conf.d/10-base.conf",
               "service alpha {\n"                            /* 1 */
               "    command = \"/usr/bin/alpha\"\n"           /* 2 */
               "    arguments = {\"--port\", \"80\"}\n"       /* 3 */
               "    environment = {\"LANG=C\", \"EMPTY=\"}\n" /* 4 */
               "    autorestart = true\n"                     /* 5 */
               "    readiness = started\n"                    /* 6 */
               "    stop_signal = SIGINT\n"                   /* 7 */
               "    reload_signal = HUP\n"                    /* 8 */
               "    exit_codes = {0, 3}\n"                    /* 9 */
               "    start_timeout = 4.5\n"                    /* 10 */
               "    start_retries = 7\n"                      /* 11 */
               "    autostart = false\n"                      /* 12 */
               "}\n"                                          /* 13 */
               "\n"                                           /* 14 */
               "service beta {\n"                             /* 15 */
               "    command = \"/usr/bin/beta\"\n"            /* 16 */
               "}\n");
    write_file(fx, "conf.d/20-more.conf",
               "# more\n"
               "service gamma {\n"
               "    command = \"/usr/bin/gamma\"\n"
               "    after = {\"alpha\", \"beta\"}\n"
               "    stdout = null\n"
               "    stderr = \"/var/tmp/gamma.err\"\n"
               "}\n");
    write_file(fx, "conf.d/ignored.txt", "this is not a conf file {");
    config = load_ok(fx, NULL);

    assert_int_equal(config->n_services, 3);
    assert_string_equal(config->services[0]->name, "alpha");
    assert_string_equal(config->services[1]->name, "beta");
    assert_string_equal(config->services[2]->name, "gamma");

    s = config_find_service(config, "alpha");
    assert_ptr_equal(s, config->services[0]);
    assert_string_equal(s->source_file, path_in(fx, "conf.d/10-base.conf"));
    assert_int_equal(s->source_line, 1);
    assert_strv_equal(s->argv, (const char *const[]){"/usr/bin/alpha", "--port", "80", NULL});
    assert_strv_equal(s->environment, (const char *const[]){"LANG=C", "EMPTY=", NULL});
    assert_int_equal(s->policy.autorestart, AUTORESTART_TRUE);
    assert_int_equal(s->policy.readiness, READINESS_STARTED);
    assert_int_equal(s->stop_signal, SIGINT);
    assert_int_equal(s->reload_signal, SIGHUP);
    assert_int_equal(s->n_exit_codes, 2);
    assert_int_equal(s->exit_codes[0], 0);
    assert_int_equal(s->exit_codes[1], 3);
    assert_true(s->policy.start_timeout == 4.5);
    assert_int_equal(s->policy.start_retries, 7);
    assert_false(s->autostart);
    assert_non_null(s->fingerprint);

    s = config_find_service(config, "beta");
    assert_int_equal(s->source_line, 15);
    assert_strv_equal(s->argv, (const char *const[]){"/usr/bin/beta", NULL});
    assert_int_equal(s->n_after, 0);
    /* the section defaults */
    assert_true(s->autostart);
    assert_int_equal(s->policy.autorestart, AUTORESTART_UNEXPECTED);
    assert_int_equal(s->policy.readiness, READINESS_NOTIFY);
    assert_int_equal(s->stop_signal, SIGTERM);
    assert_int_equal(s->reload_signal, 0);
    assert_int_equal(s->n_exit_codes, 1);
    assert_int_equal(s->exit_codes[0], 0);
    assert_string_equal(s->directory, "/");
    assert_null(s->user);
    assert_null(s->group);
    assert_true(s->policy.start_timeout == 30.0);
    assert_true(s->policy.stop_timeout == 10.0);
    assert_true(s->policy.backoff_initial == 0.5);
    assert_true(s->policy.backoff_factor == 2.0);
    assert_true(s->policy.backoff_max == 30.0);
    assert_true(s->policy.backoff_reset_after == 10.0);
    assert_int_equal(s->policy.start_retries, 5);
    assert_int_equal(s->stdout_target.kind, OUTPUT_AUTO);
    assert_string_equal(s->stdout_target.path, "/var/log/certvisor/beta.log");
    assert_int_equal(s->stderr_target.kind, OUTPUT_AUTO);
    assert_string_equal(s->stderr_target.path, "/var/log/certvisor/beta.log");

    s = config_find_service(config, "gamma");
    assert_string_equal(s->source_file, path_in(fx, "conf.d/20-more.conf"));
    assert_int_equal(s->source_line, 2);
    assert_int_equal(s->n_after, 2);
    assert_strv_equal(s->after, (const char *const[]){"alpha", "beta", NULL});
    assert_int_equal(s->stdout_target.kind, OUTPUT_NULL);
    assert_int_equal(s->stderr_target.kind, OUTPUT_FILE);
    assert_string_equal(s->stderr_target.path, "/var/tmp/gamma.err");

    assert_null(config_find_service(config, "delta"));
    config_free(config);
}

static void root_prefix_gives_the_standard_paths(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "");
    config = load_ok(fx, NULL);
    assert_string_equal(config->config_path, fx->main_path);
    assert_string_equal(config->conf_dir, fx->dir);
    assert_string_equal(config->prefix, "/");
    assert_string_equal(config->state_dir, "/var/lib/certvisor");
    assert_string_equal(config->run_dir, "/run/certvisor");
    assert_string_equal(config->log_dir, "/var/log/certvisor");
    assert_string_equal(config->libexec_dir, CERTVISOR_LIBEXECDIR);
    assert_string_equal(config->include_dir, path_in(fx, "conf.d"));
    assert_string_equal(config->control_socket, "/run/certvisor/control.sock");
    assert_string_equal(config->notify_socket, "/run/certvisor/notify.sock");
    assert_string_equal(config->log_file, "/var/log/certvisor/certvisord.log");
    assert_null(config->control_group);
    assert_null(config->admin_group);
    assert_null(config->service_user);
    assert_null(config->service_group);
    assert_int_equal(config->log_target, LOG_TARGET_AUTO);
    assert_int_equal(config->log_level, LOG_INFO);
    assert_int_equal(config->service_log_max_bytes, 10 * 1024 * 1024);
    assert_int_equal(config->service_log_backups, 3);
    assert_int_equal(config->tail_lines, 200);
    assert_int_equal(config->n_services, 0);
    assert_non_null(config->start_order);
    config_free(config);
}

static void main_file_settings_are_read(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf",
               "prefix = \"/opt/cv\"\n"
               "state_dir = \"/srv/state\"\n"
               "log_dir = \"%{prefix}/logs\"\n"
               "include = \"services\"\n"
               "control_group = \"adm\"\n"
               "admin_group = \"wheel\"\n"
               "log_target = file\n"
               "log_level = debug\n"
               "service_log_max_bytes = 4096\n"
               "service_log_backups = 0\n"
               "tail_lines = 12\n");
    assert_int_equal(mkdir(path_in(fx, "services"), 0755), 0);
    config = load_ok(fx, NULL);
    assert_string_equal(config->prefix, "/opt/cv");
    assert_string_equal(config->state_dir, "/srv/state");
    assert_string_equal(config->log_dir, "/opt/cv/logs");
    assert_string_equal(config->run_dir, "/opt/cv/run/certvisor");
    assert_string_equal(config->include_dir, path_in(fx, "services"));
    assert_string_equal(config->log_file, "/opt/cv/logs/certvisord.log");
    assert_string_equal(config->control_group, "adm");
    assert_string_equal(config->admin_group, "wheel");
    assert_int_equal(config->log_target, LOG_TARGET_FILE);
    assert_int_equal(config->log_level, LOG_DEBUG);
    assert_int_equal(config->service_log_max_bytes, 4096);
    assert_int_equal(config->service_log_backups, 0);
    assert_int_equal(config->tail_lines, 12);
    config_free(config);
}

static void prefix_override_replaces_the_file_prefix(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "prefix = \"/opt/from-file\"\n");
    config = load_ok(fx, "/srv/override/");
    assert_string_equal(config->prefix, "/srv/override");
    assert_string_equal(config->state_dir, "/srv/override/var/lib/certvisor");
    assert_string_equal(config->run_dir, "/srv/override/run/certvisor");
    assert_string_equal(config->control_socket, "/srv/override/run/certvisor/control.sock");
    config_free(config);
}

static void relative_prefix_resolves_against_the_config_directory(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;
    char expected[PATH_MAX];

    write_file(fx, "certvisor.conf", "prefix = \"root\"\nrun_dir = \"run\"\n");
    config = load_ok(fx, NULL);
    snprintf(expected, sizeof(expected), "%s/root", fx->dir);
    assert_string_equal(config->prefix, expected);
    snprintf(expected, sizeof(expected), "%s/root/var/lib/certvisor", fx->dir);
    assert_string_equal(config->state_dir, expected);
    snprintf(expected, sizeof(expected), "%s/run", fx->dir); /* relative paths too */
    assert_string_equal(config->run_dir, expected);
    snprintf(expected, sizeof(expected), "%s/run/control.sock", fx->dir);
    assert_string_equal(config->control_socket, expected);
    config_free(config);
}

static void a_relative_config_path_is_made_absolute(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config = NULL;
    char *error = NULL;
    char cwd[PATH_MAX], expected[PATH_MAX];
    int r;

    write_file(fx, "certvisor.conf", "prefix = \"root\"\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->dir), 0);
    r = config_load("certvisor.conf", NULL, &config, &error);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    assert_string_equal(config->config_path, fx->main_path);
    assert_string_equal(config->conf_dir, fx->dir);
    snprintf(expected, sizeof(expected), "%s/root/var/lib/certvisor", fx->dir);
    assert_string_equal(config->state_dir, expected);
    config_free(config);
}

static void variables_expand_in_service_settings(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;
    struct service_config *s;
    char expected[PATH_MAX];

    write_file(fx, "certvisor.conf",
               "prefix = \"/p\"\nlibexec_dir = \"/usr/lib/cv\"\nlog_dir = \"/logs\"\n");
    write_file(fx, "conf.d/web.conf",
               "service web {\n"
               "    command = \"%{libexec_dir}/%{name}d\"\n"
               "    arguments = {\"--data=%{state_dir}/%{name}\", \"%{conf_dir}\", \"%{prefix}\","
               " \"100%\", \"%{run_dir}%{log_dir}\"}\n"
               "    environment = {\"HOME=%{state_dir}\"}\n"
               "    directory = \"%{run_dir}\"\n"
               "    stdout = \"%{log_dir}/%{name}.out\"\n"
               "}\n");
    config = load_ok(fx, NULL);
    s = config->services[0];
    assert_string_equal(s->argv[0], "/usr/lib/cv/webd");
    assert_string_equal(s->argv[1], "--data=/p/var/lib/certvisor/web");
    assert_string_equal(s->argv[2], fx->dir);
    assert_string_equal(s->argv[3], "/p");
    assert_string_equal(s->argv[4], "100%");
    assert_string_equal(s->argv[5], "/p/run/certvisor/logs");
    assert_null(s->argv[6]);
    assert_string_equal(s->environment[0], "HOME=/p/var/lib/certvisor");
    assert_string_equal(s->directory, "/p/run/certvisor");
    assert_int_equal(s->stdout_target.kind, OUTPUT_FILE);
    assert_string_equal(s->stdout_target.path, "/logs/web.out");
    assert_int_equal(s->stderr_target.kind, OUTPUT_AUTO);
    assert_string_equal(s->stderr_target.path, "/logs/web.log");
    snprintf(expected, sizeof(expected), "%s", fx->dir);
    assert_string_equal(config->conf_dir, expected);
    config_free(config);
}

static void service_user_and_group_default_from_the_main_file(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "service_user = \"root\"\nservice_group = \"root\"\n");
    write_file(fx, "conf.d/a.conf",
               "service a { command = \"/bin/a\" }\n"
               "service b { command = \"/bin/b\" user = \"nobody\" }\n");
    config = load_ok(fx, NULL);
    assert_string_equal(config->service_user, "root");
    assert_string_equal(config->services[0]->user, "root");
    assert_string_equal(config->services[0]->group, "root");
    assert_string_equal(config->services[1]->user, "nobody");
    assert_string_equal(config->services[1]->group, "root");
    config_free(config);
}

static void start_order_puts_dependencies_first_and_keeps_file_order(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/10-a.conf",
               "service web { command = \"/bin/web\" after = {\"db\", \"cache\"} }\n"
               "service db { command = \"/bin/db\" }\n");
    write_file(fx, "conf.d/20-b.conf",
               "service cache { command = \"/bin/cache\" after = {\"db\"} }\n"
               "service tool { command = \"/bin/tool\" }\n");
    config = load_ok(fx, NULL);
    assert_int_equal(config->n_services, 4);
    assert_string_equal(config->services[config->start_order[0]]->name, "db");
    assert_string_equal(config->services[config->start_order[1]]->name, "cache");
    assert_string_equal(config->services[config->start_order[2]]->name, "web");
    assert_string_equal(config->services[config->start_order[3]]->name, "tool");
    config_free(config);
}

/* --- errors: CV_ECONFIG, with file, line and the problem --- */

static void unknown_option_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "prefix = \"/\"\n\nbogus_option = 1\n");
    expect_error(fx, "certvisor.conf", 3, "bogus_option", NULL);
}

static void unknown_option_in_a_service(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "\n"
               "service a {\n"
               "    command = \"/bin/a\"\n"
               "    colour = \"blue\"\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 4, "no such option 'colour'", NULL);
}

static void bad_log_level_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "log_target = console\nlog_level = loud\n");
    expect_error(fx, "certvisor.conf", 2, "log_level: invalid value 'loud'", NULL);
}

static void negative_tail_lines_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "\ntail_lines = -5\n");
    expect_error(fx, "certvisor.conf", 2, "tail_lines: must not be negative", NULL);
}

/* Writes conf.d/bad.conf: a valid first service, then service "b" with extra on line 7. */
static void write_bad_service(const struct fixture *fx, const char *extra)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "service a {\n"              /* 1 */
             "    command = \"/bin/a\"\n" /* 2 */
             "}\n"                        /* 3 */
             "\n"                         /* 4 */
             "service b {\n"              /* 5 */
             "    command = \"/bin/b\"\n" /* 6 */
             "    %s\n"                   /* 7 */
             "    autostart = true\n"     /* 8 */
             "}\n",
             extra);
    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/bad.conf", text);
}

static void bad_autorestart_value(void **state)
{
    write_bad_service(*state, "autorestart = sometimes");
    expect_error(*state, "conf.d/bad.conf", 7, "autorestart: invalid value 'sometimes'",
                 "true, false, unexpected");
}

static void bad_readiness_value(void **state)
{
    write_bad_service(*state, "readiness = ready");
    expect_error(*state, "conf.d/bad.conf", 7, "readiness: invalid value 'ready'",
                 "notify, started");
}

static void unknown_stop_signal(void **state)
{
    write_bad_service(*state, "stop_signal = SIGFOO");
    expect_error(*state, "conf.d/bad.conf", 7, "stop_signal: unknown signal 'SIGFOO'", NULL);
}

static void unknown_reload_signal(void **state)
{
    write_bad_service(*state, "reload_signal = 99999");
    expect_error(*state, "conf.d/bad.conf", 7, "reload_signal: unknown signal '99999'", NULL);
}

/* A service reloads one way: both a reload signal and a reload command is refused. */
static void reload_command_beside_reload_signal(void **state)
{
    write_bad_service(*state, "reload_signal = HUP\n    reload_command = {\"/bin/true\"}");
    expect_error(*state, "conf.d/bad.conf", 5,
                 "service 'b': reload_command and reload_signal = HUP are both set",
                 "remove reload_signal");
}

static void reload_command_must_be_absolute(void **state)
{
    /* Checked after expansion: a variable that gives a relative path is refused too. */
    write_bad_service(*state, "reload_command = {\"%{name}/reload\", \"--a\"}");
    expect_error(*state, "conf.d/bad.conf", 5, "reload_command: 'b/reload' is not an absolute path",
                 NULL);
}

static void reload_command_is_expanded_like_arguments(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;
    const struct service_config *s;

    write_file(fx, "certvisor.conf", "prefix = \"/\"\n");
    write_file(
        fx, "conf.d/r.conf",
        "service r {\n"
        "    command = \"/bin/r\"\n"
        "    reload_command = {\"/usr/bin/rr\", \"--include\", \"%{run_dir}/tls/%{name}.conf\"}\n"
        "}\n"
        "service plain {\n"
        "    command = \"/bin/p\"\n"
        "}\n");
    config = load_ok(fx, NULL);
    s = config_find_service(config, "r");
    assert_strv_equal(s->reload_argv, (const char *const[]){"/usr/bin/rr", "--include",
                                                            "/run/certvisor/tls/r.conf", NULL});
    assert_int_equal(s->reload_signal, 0);
    assert_true(service_config_can_reload(s));
    s = config_find_service(config, "plain");
    assert_null(s->reload_argv);
    assert_false(service_config_can_reload(s));
    config_free(config);
}

static void negative_stop_timeout(void **state)
{
    write_bad_service(*state, "stop_timeout = -1.5");
    expect_error(*state, "conf.d/bad.conf", 7, "stop_timeout: must not be negative", "-1.5");
}

static void negative_start_retries(void **state)
{
    write_bad_service(*state, "start_retries = -1");
    expect_error(*state, "conf.d/bad.conf", 7, "start_retries: must not be negative", NULL);
}

static void backoff_factor_below_one(void **state)
{
    write_bad_service(*state, "backoff_factor = 0.5");
    expect_error(*state, "conf.d/bad.conf", 7, "backoff_factor: must be at least 1", "0.5");
}

static void environment_entry_without_equals(void **state)
{
    write_bad_service(*state, "environment = {\"A=1\", \"JUSTANAME\"}");
    expect_error(*state, "conf.d/bad.conf", 7, "'JUSTANAME' is not of the form NAME=value", NULL);
}

static void environment_entry_with_a_bad_name(void **state)
{
    write_bad_service(*state, "environment = {\"MY-VAR=1\"}");
    expect_error(*state, "conf.d/bad.conf", 7, "'MY-VAR' is not a valid variable name", NULL);
}

static void exit_code_out_of_range(void **state)
{
    write_bad_service(*state, "exit_codes = {0, 300}");
    expect_error(*state, "conf.d/bad.conf", 7, "exit_codes: 300 is not an exit status", NULL);
}

static void exit_code_out_of_range_before_a_valid_one(void **state)
{
    write_bad_service(*state, "exit_codes = {300, 0}");
    expect_error(*state, "conf.d/bad.conf", 7, "exit_codes: 300 is not an exit status", NULL);
}

static void unknown_variable_in_arguments(void **state)
{
    write_bad_service(*state, "arguments = {\"--dir=%{home_dir}\"}");
    expect_error(*state, "conf.d/bad.conf", 7, "unknown variable '%{home_dir}'", "arguments");
}

static void unterminated_variable_in_command(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/bad.conf",
               "service a {\n"
               "    command = \"%{libexec_dir/a\"\n"
               "}\n");
    expect_error(fx, "conf.d/bad.conf", 2, "unterminated '%{'", "command");
}

static void bad_stdout_target(void **state)
{
    write_bad_service(*state, "stdout = \"logs/b.out\"");
    expect_error(*state, "conf.d/bad.conf", 5, "service 'b'",
                 "stdout: 'logs/b.out' is not auto, journal, file, null or an absolute path");
}

static void relative_command(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/bad.conf",
               "\n"
               "\n"
               "service rel {\n"
               "    command = \"bin/rel\"\n"
               "}\n");
    expect_error(fx, "conf.d/bad.conf", 3, "service 'rel'",
                 "command 'bin/rel' is not an absolute path");
}

static void missing_command(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/bad.conf",
               "service ok { command = \"/bin/ok\" }\n"
               "service nocmd {\n"
               "    arguments = {\"x\"}\n"
               "}\n");
    expect_error(fx, "conf.d/bad.conf", 2, "service 'nocmd'", "'command' is required");
}

static void duplicate_service_across_two_files(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config = NULL;
    char *error = NULL;
    char first[PATH_MAX + 16], second[PATH_MAX + 16];

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/10-one.conf",
               "service other { command = \"/bin/other\" }\n"
               "service dup {\n"
               "    command = \"/bin/dup\"\n"
               "}\n");
    write_file(fx, "conf.d/20-two.conf",
               "\n"
               "\n"
               "\n"
               "service dup {\n"
               "    command = \"/bin/dup2\"\n"
               "}\n");
    assert_int_equal(config_load(fx->main_path, NULL, &config, &error), CV_ECONFIG);
    assert_null(config);
    assert_non_null(error);
    snprintf(second, sizeof(second), "%s/conf.d/20-two.conf:4: ", fx->dir);
    snprintf(first, sizeof(first), "already defined at %s/conf.d/10-one.conf:2", fx->dir);
    if (!strstr(error, first) || !strstr(error, second))
        print_error("message: %s\n", error);
    assert_non_null(strstr(error, second));
    assert_non_null(strstr(error, first));
    assert_non_null(strstr(error, "service 'dup'"));
    free(error);
}

static void duplicate_service_in_one_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/one.conf",
               "service dup { command = \"/bin/dup\" }\n"
               "service dup { command = \"/bin/dup\" }\n");
    expect_error(fx, "conf.d/one.conf", 0, "dup", NULL);
}

static void unknown_dependency(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a { command = \"/bin/a\" }\n"
               "\n"
               "service b {\n"
               "    command = \"/bin/b\"\n"
               "    after = {\"a\", \"ghost\"}\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 3, "service 'b': after: unknown service 'ghost'", NULL);
}

static void dependency_cycle_shows_the_loop(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/10-a.conf",
               "service a {\n"
               "    command = \"/bin/a\"\n"
               "    after = {\"b\"}\n"
               "}\n");
    write_file(fx, "conf.d/20-b.conf",
               "service c { command = \"/bin/c\" }\n"
               "service b {\n"
               "    command = \"/bin/b\"\n"
               "    after = {\"c\", \"a\"}\n"
               "}\n");
    expect_error(fx, "conf.d/10-a.conf", 1, "dependency cycle: a -> b -> a", NULL);
}

static void invalid_service_name_all(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "# every service\n"
               "service all {\n"
               "    command = \"/bin/all\"\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 2, "service 'all': invalid service name", NULL);
}

static void invalid_service_name_characters(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf", "service \"my service\" { command = \"/bin/x\" }\n");
    expect_error(fx, "conf.d/a.conf", 1, "service 'my service': invalid service name", NULL);
}

static void user_that_does_not_exist(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a { command = \"/bin/a\" }\n"
               "service b {\n"
               "    command = \"/bin/b\"\n"
               "    user = \"cv-no-such-user-x\"\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 2, "service 'b': user 'cv-no-such-user-x' does not exist",
                 NULL);
}

static void default_service_user_that_does_not_exist(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "service_user = \"cv-no-such-user-y\"\n");
    write_file(fx, "conf.d/a.conf", "service a { command = \"/bin/a\" }\n");
    expect_error(fx, "conf.d/a.conf", 1, "user 'cv-no-such-user-y' does not exist", NULL);
}

static void group_that_does_not_exist(void **state)
{
    write_bad_service(*state, "group = \"cv-no-such-group-z\"");
    expect_error(*state, "conf.d/bad.conf", 5, "group 'cv-no-such-group-z' does not exist", NULL);
}

static void missing_main_file(void **state)
{
    struct fixture *fx = *state;

    /* setup() made no certvisor.conf */
    expect_error(fx, "certvisor.conf", 0, "cannot read", "No such file or directory");
}

static void syntax_error_in_an_include_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a {\n"
               "    command = \"/bin/a\"\n"
               "    arguments = {\"x\"}\n"
               "    directory = = \"/\"\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 4, "unexpected token '='", NULL);
}

static void missing_include_directory(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "include = \"nowhere\"\n");
    expect_error(fx, "nowhere", 0, "cannot read the include directory", NULL);
}

/* --- config_control_socket --- */

static void control_socket_comes_from_the_main_file_alone(void **state)
{
    struct fixture *fx = *state;
    char *socket = NULL;

    write_file(fx, "certvisor.conf", "run_dir = \"/run/cv-test\"\n");
    /* include files are not read: a broken one does not matter */
    write_file(fx, "conf.d/broken.conf", "service { this is not valid");
    assert_int_equal(config_control_socket(fx->main_path, NULL, &socket, NULL), 0);
    assert_string_equal(socket, "/run/cv-test/control.sock");
    free(socket);

    write_file(fx, "certvisor.conf", "control_socket = \"%{prefix}/ctl.sock\"\n");
    assert_int_equal(config_control_socket(fx->main_path, "/srv/alt", &socket, NULL), 0);
    assert_string_equal(socket, "/srv/alt/ctl.sock");
    free(socket);

    write_file(fx, "certvisor.conf", "prefix = \"rel\"\n");
    assert_int_equal(config_control_socket(fx->main_path, NULL, &socket, NULL), 0);
    assert_non_null(strstr(socket, fx->dir));
    assert_non_null(strstr(socket, "/rel/run/certvisor/control.sock"));
    free(socket);
}

static void control_socket_errors(void **state)
{
    struct fixture *fx = *state;
    char *socket = NULL;

    char *error = NULL;

    assert_int_equal(config_control_socket(fx->main_path, NULL, &socket, &error), CV_ECONFIG);
    assert_null(socket);
    assert_non_null(strstr(error, "cannot read"));
    free(error);
    error = NULL;
    write_file(fx, "certvisor.conf", "no_such_thing = 1\n");
    assert_int_equal(config_control_socket(fx->main_path, NULL, &socket, &error), CV_ECONFIG);
    assert_null(socket);
    assert_non_null(strstr(error, "certvisor.conf:1: no such option 'no_such_thing'"));
    free(error);
}

/* --- regressions: bugs found and fixed --- */

/*
 * Was a bug in agent/config/config.c fill_main()/expand_path(): main-file values are never passed
 * through expand_check(), and expand_string() returns NULL for an unknown name, which fill_main()
 * takes for an allocation failure. It used to give: config_load() returns -ENOMEM, message "Cannot
 * allocate memory", no file or line.
 */
static void unknown_variable_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "prefix = \"/\"\nstate_dir = \"%{home}/state\"\n");
    expect_error(fx, "certvisor.conf", 2, "unknown variable '%{home}'", NULL);
}

/*
 * Was a bug, same path: %{name} is a known variable but has no value in the main file (vars.name is
 * NULL), and so are variables used before fill_main() sets them (%{state_dir} in libexec_dir).
 * It used to give: -ENOMEM "Cannot allocate memory".
 */
static void service_only_variable_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "log_file = \"%{log_dir}/%{name}.log\"\n");
    expect_error(fx, "certvisor.conf", 1, "%{name}", NULL);
}

static void variable_used_before_it_is_set_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "\nlibexec_dir = \"%{state_dir}/bin\"\n");
    expect_error(fx, "certvisor.conf", 2, "%{state_dir}", NULL);
}

/*
 * Was a bug in (libconfuse 3.3, surfaced by agent/config/config.c collect_error()): the lexer
 * counts every
 * '#' or '//' comment line more than once, so every libconfuse message and every validator
 * message (cfg->line) after a comment points at the wrong line. Messages built from
 * section_start_line() are right because that function scans the file itself.
 * It used to give: "certvisor.conf:7: no such option 'bogus_option'" for line 3.
 */
static void comment_lines_do_not_shift_line_numbers_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "# the agent\n# more words\nbogus_option = 1\n");
    expect_error(fx, "certvisor.conf", 3, "no such option 'bogus_option'", NULL);
}

/* Same libconfuse miscount inside a service. It used to give: line 6 for an option on line 4. */
static void comment_lines_do_not_shift_line_numbers_in_a_service(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "# web front end\n"
               "service web {\n"
               "    command = \"/bin/web\"\n"
               "    autorestart = sometimes\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 4, "autorestart: invalid value 'sometimes'", NULL);
}

/*
 * Was accepted (libconfuse accepts it; the agent does not check): a section left open at end of
 * file loads without complaint, so a truncated conf.d file (half-written by a deployment) is
 * taken as complete. It used to give: config_load() returns 0.
 */
static void a_section_left_open_at_end_of_file_is_an_error(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a {\n"
               "    command = \"/bin/a\"\n"
               "    arguments = {\"--port\", \"80\"}\n");
    expect_error(fx, "conf.d/a.conf", 1, "", NULL);
}

/*
 * Was a bug in agent/config/service_config.c expand_list() -- memory corruption, crashes the agent.
 * On an expansion failure it runs free_strv(strv + offset) and then free(strv): free_strv()
 * already frees the array it is given, so with offset 0 ("after", "environment") the array is
 * freed twice, and with offset 1 ("arguments") free() gets strv + 1, which malloc never
 * returned. "after" is expanded (convert() -> expand_list()) but is missing from the
 * with_variables validators in service_config_set_validators(), so an unknown %{...} there
 * reaches that path from an ordinary config file (also on "certvisorctl reload").
 * It used to give: AddressSanitizer "attempting double-free" in expand_list() (glibc aborts with
 * "free(): double free detected" without the sanitizer). Expected: CV_ECONFIG naming the line.
 * It used to abort the program.
 */
static void unknown_variable_in_after(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a { command = \"/bin/a\" }\n"
               "\n"
               "\n"
               "\n"
               "service b {\n"
               "    command = \"/bin/b\"\n"
               "    after = {\"%{nope}\"}\n"
               "}\n");
    expect_error(fx, "conf.d/a.conf", 7, "unknown variable '%{nope}'", NULL);
}

/* --- certificate <name> sections: certificates kept in files by other tools --- */

static void certificate_sections_are_read_from_every_file(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;
    char source[PATH_MAX + 16];

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/10-proxy.conf",
               "# certbot keeps these\n"
               "certificate proxy {\n"
               "    cert_file = \"/etc/letsencrypt/live/db.example.com/fullchain.pem\"\n"
               "    key_file  = \"/etc/letsencrypt/live/db.example.com/privkey.pem\"\n"
               "}\n");
    write_file(fx, "conf.d/20-ca.conf",
               "\n"
               "certificate \"mtls_trusted_ca\" {\n"
               "    cert_file = \"/etc/pki/clients-ca.pem\"\n"
               "}\n");
    config = load_ok(fx, NULL);
    assert_int_equal(config->n_external_certs, 2);
    assert_string_equal(config->external_certs[0].name, "proxy");
    assert_string_equal(config->external_certs[0].cert_file,
                        "/etc/letsencrypt/live/db.example.com/fullchain.pem");
    assert_string_equal(config->external_certs[0].key_file,
                        "/etc/letsencrypt/live/db.example.com/privkey.pem");
    snprintf(source, sizeof(source), "%s/conf.d/10-proxy.conf:2", fx->dir);
    assert_string_equal(config->external_certs[0].source, source);
    assert_string_equal(config->external_certs[1].name, "mtls_trusted_ca");
    assert_string_equal(config->external_certs[1].cert_file, "/etc/pki/clients-ca.pem");
    assert_null(config->external_certs[1].key_file);
    snprintf(source, sizeof(source), "%s/conf.d/20-ca.conf:2", fx->dir);
    assert_string_equal(config->external_certs[1].source, source);
    config_free(config);
}

static void no_certificate_section_means_none(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf", "service a { command = \"/bin/a\" }\n");
    config = load_ok(fx, NULL);
    assert_int_equal(config->n_external_certs, 0);
    assert_null(config->external_certs);
    config_free(config);
}

static void certificate_with_an_unknown_name(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf",
               "\n"
               "certificate proxxy {\n"
               "    cert_file = \"/c.pem\"\n"
               "    key_file = \"/k.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 2, "certificate 'proxxy': unknown certificate name",
                 "use one of: api, cm, proxy");
}

static void certificate_cluster_ca_cannot_come_from_files(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf",
               "certificate cluster_ca {\n"
               "    cert_file = \"/c.pem\"\n"
               "    key_file = \"/k.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 1, "certificate 'cluster_ca'", "made and kept by certvisor");
}

static void certificate_without_key_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf",
               "service a { command = \"/bin/a\" }\n"
               "certificate api {\n"
               "    cert_file = \"/c.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 2, "certificate 'api': key_file is required", NULL);
}

static void certificate_without_cert_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf", "certificate api { key_file = \"/k.pem\" }\n");
    expect_error(fx, "conf.d/c.conf", 1, "certificate 'api': cert_file is required", NULL);
}

static void key_file_for_the_trusted_ca_bundle(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf",
               "certificate mtls_trusted_ca {\n"
               "    cert_file = \"/ca.pem\"\n"
               "    /* a bundle has no key */\n"
               "    key_file = \"/k.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 4, "certificate 'mtls_trusted_ca'",
                 "has no key: remove key_file");
}

static void certificate_with_a_relative_path(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/c.conf",
               "certificate cm {\n"
               "    cert_file = \"/etc/cm/cert.pem\"\n"
               "    key_file = \"cm/key.pem\"\n"
               "}\n"
               "certificate proxy {\n"
               "    cert_file = \"live/fullchain.pem\"\n"
               "    key_file = \"/live/privkey.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 3, "certificate 'cm': key_file: 'cm/key.pem'",
                 "not an absolute path");
    write_file(fx, "conf.d/c.conf",
               "certificate cm {\n"
               "    cert_file = \"/etc/cm/cert.pem\"\n"
               "    key_file = \"/etc/cm/key.pem\"\n"
               "}\n"
               "certificate proxy {\n"
               "    cert_file = \"live/fullchain.pem\"\n"
               "    key_file = \"/live/privkey.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 6, "certificate 'proxy': cert_file: 'live/fullchain.pem'",
                 "not an absolute path");
}

static void duplicate_certificate_in_one_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    /* libconfuse would keep only the second section: the first must not vanish silently. */
    write_file(fx, "conf.d/c.conf",
               "certificate proxy {\n"
               "    cert_file = \"/a/cert.pem\"\n"
               "    key_file = \"/a/key.pem\"\n"
               "}\n"
               "# certificate proxy { }\n"
               "certificate proxy {\n"
               "    cert_file = \"/b/cert.pem\"\n"
               "    key_file = \"/b/key.pem\"\n"
               "}\n");
    expect_error(fx, "conf.d/c.conf", 6, "certificate 'proxy' is already defined at", "c.conf:1");
}

static void duplicate_certificate_across_two_files(void **state)
{
    struct fixture *fx = *state;
    char first[PATH_MAX + 32];

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/10-one.conf",
               "\n"
               "certificate proxy {\n"
               "    cert_file = \"/a/cert.pem\"\n"
               "    key_file = \"/a/key.pem\"\n"
               "}\n");
    write_file(fx, "conf.d/20-two.conf",
               "certificate api {\n"
               "    cert_file = \"/b/cert.pem\"\n"
               "    key_file = \"/b/key.pem\"\n"
               "}\n"
               "certificate proxy {\n"
               "    cert_file = \"/b/cert.pem\"\n"
               "    key_file = \"/b/key.pem\"\n"
               "}\n");
    snprintf(first, sizeof(first), "already defined at %s/conf.d/10-one.conf:2", fx->dir);
    expect_error(fx, "conf.d/20-two.conf", 5, "certificate 'proxy'", first);
}

static void two_tls_sections_writing_one_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/a.conf",
               "service a {\n"
               "    command = \"/bin/true\"\n"
               "    tls {\n"
               "        certificate = api\n"
               "        output = \"/run/x/tls.conf\"\n"
               "    }\n"
               "}\n");
    write_file(fx, "conf.d/b.conf",
               "\n"
               "service b {\n"
               "    command = \"/bin/true\"\n"
               "    tls {\n"
               "        certificate = cm\n"
               "        output = \"/run/x/tls.conf\"\n"
               "    }\n"
               "}\n");
    expect_error(fx, "conf.d/b.conf", 2,
                 "tls output /run/x/tls.conf is also written by service 'a'",
                 "give each tls section its own output");
}

static void http_only_in_a_certvisor_tls_section(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config = NULL;
    char *error = NULL;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/api.conf",
               "service api {\n"
               "    command = \"/bin/true\"\n"
               "    tls {\n"
               "        certificate = api\n"
               "        http = true\n"
               "    }\n"
               "}\n");
    assert_int_equal(config_load(fx->main_path, NULL, &config, &error), 0);
    assert_true(config->services[0]->tls[0].http);
    config_free(config);
    write_file(fx, "conf.d/api.conf",
               "service api {\n"
               "    command = \"/bin/true\"\n"
               "    tls {\n"
               "        certificate = api\n"
               "        format = redis\n"
               "        port = 12000\n"
               "        http = true\n"
               "    }\n"
               "}\n");
    expect_error(fx, "conf.d/api.conf", 1, "'http = true' needs the certvisor format", NULL);
}

static void database_sections(void **state)
{
    struct fixture *fx = *state;
    struct agent_config *config = NULL;
    char *error = NULL;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/db.conf",
               "database db1 {\n"
               "    port = 12000\n"
               "    shard = \"127.0.0.1:12100\"\n"
               "}\n"
               "database \"orders\" {\n"
               "    port = 12001\n"
               "    listen = \"127.0.0.1\"\n"
               "    advertise = \"db.example.com\"\n"
               "    shard = \"[::1]:12101\"\n"
               "    shard_tls = true\n"
               "    tls_mode = replica_ssl\n"
               "    client_auth = require\n"
               "    client_trust = cluster_ca\n"
               "}\n");
    assert_int_equal(config_load(fx->main_path, NULL, &config, &error), 0);
    assert_int_equal(config->n_databases, 2);
    assert_string_equal(config->databases[0].name, "db1");
    assert_string_equal(config->databases[0].listen, "0.0.0.0");
    assert_null(config->databases[0].advertise);
    assert_int_equal(config->databases[0].tls_mode, DB_TLS_ENABLED);
    assert_int_equal(config->databases[0].client_auth, TLS_VERIFY_NONE);
    assert_true(config->databases[1].shard_tls);
    assert_int_equal(config->databases[1].tls_mode, DB_TLS_REPLICA_SSL);
    assert_int_equal(config->databases[1].client_auth, TLS_VERIFY_REQUIRE);
    assert_string_equal(config->databases[1].client_trust, "cluster_ca");
    config_free(config);
}

static void database_errors(void **state)
{
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"    shard = \"h:1\"\n", "port is required"},
        {"    port = 1\n", "shard is required as \"host:port\""},
        {"    port = 1\n    shard = \"::1:5\"\n", "shard is required"},
        {"    port = 1\n    shard = \"h:1\"\n    listen = \"localhost\"\n",
         "listen 'localhost' is not an IPv4 or IPv6 address"},
        {"    port = 1\n    shard = \"h:1\"\n    tls_mode = maybe\n",
         "tls_mode 'maybe' is not enabled, disabled or replica_ssl"},
        {"    port = 1\n    shard = \"h:1\"\n    client_auth = yes\n",
         "client_auth 'yes' is not none, optional or require"},
        {"    port = 1\n    shard = \"h:1\"\n    client_trust = ca.pem\n",
         "client_trust 'ca.pem' is not mtls_trusted_ca, cluster_ca or an absolute path"},
        {"    port = 1\n    shard = \"h:1\"\n    tls_mode = disabled\n    client_auth = "
         "require\n",
         "client_auth needs TLS"},
    };
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];

        snprintf(text, sizeof(text), "\ndatabase db1 {\n%s}\n", cases[i].body);
        write_file(fx, "conf.d/db.conf", text);
        expect_error(fx, "conf.d/db.conf", 2, "database 'db1': ", cases[i].needle);
    }
    write_file(fx, "conf.d/db.conf",
               "database a {\n    port = 1\n    shard = \"h:1\"\n}\n"
               "database b {\n    port = 1\n    shard = \"h:2\"\n}\n");
    expect_error(fx, "conf.d/db.conf", 5, "database 'b': its endpoint is already defined at",
                 "db.conf:1");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static void a_cluster_on_etcd_gives_its_member_and_variables(void **state)
{
    const struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf",
               "cluster {\n  name = \"prod\"\n  node = \"n2\"\n  store = etcd\n"
               "  member n1 { address = \"10.0.0.1\" }\n"
               "  member n2 { address = \"fd00::2\"\n client_port = 3379\n peer_port = 3380 }\n"
               "}\n");
    write_file(fx, "conf.d/80-etcd.conf",
               "service etcd {\n  cluster_store = etcd\n  command = \"/usr/bin/etcd\"\n"
               "  arguments = {\"--name\", \"%{node}\", \"%{etcd_client_url}\", "
               "\"%{etcd_initial_cluster}\", \"%{cluster}\"}\n}\n"
               "service only_local {\n  cluster_store = local\n  command = \"/bin/true\"\n}\n");
    config = load_ok(fx, NULL);
    assert_int_equal(config->cluster.store, CLUSTER_STORE_ETCD);
    assert_string_equal(config->cluster.node_address, "fd00::2");
    /* The other members verify this node's etcd member by its address: one of its names. */
    assert_non_null(config->certs.extra_ip_addresses);
    assert_string_equal(config->certs.extra_ip_addresses[0], "fd00::2");
    assert_null(config->certs.extra_ip_addresses[1]);
    assert_int_equal(config->n_services, 1); /* only_local is not part of an etcd cluster */
    assert_strv_equal(
        config->services[0]->argv,
        (const char *const[]){"/usr/bin/etcd", "--name", "n2", "https://[fd00::2]:3379",
                              "n1=https://10.0.0.1:2380,n2=https://[fd00::2]:3380", "prod", NULL});
    config_free(config);
}

static void the_local_store_runs_no_etcd_member(void **state)
{
    const struct fixture *fx = *state;
    struct agent_config *config;

    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/80-etcd.conf",
               "service etcd {\n  cluster_store = etcd\n  command = \"/usr/bin/etcd\"\n}\n");
    config = load_ok(fx, NULL);
    assert_int_equal(config->cluster.store, CLUSTER_STORE_LOCAL);
    assert_string_equal(config->cluster.name, "cluster");
    assert_int_equal(config->n_services, 0);
    config_free(config);
}

static void cluster_errors(void **state)
{
    const struct fixture *fx = *state;

    write_file(
        fx, "certvisor.conf",
        "cluster {\n  node = \"n9\"\n  store = etcd\n  member n1 { address = \"10.0.0.1\" }\n}\n");
    expect_error(fx, "certvisor.conf", 0,
                 "store etcd needs this node ('n9') among the members (n1)",
                 "add a 'member n9' section");
    write_file(fx, "certvisor.conf", "cluster {\n  member n1 { address = \"node1.example\" }\n}\n");
    expect_error(fx, "certvisor.conf", 0, "address 'node1.example' is not an IP address",
                 "resolves no names");
    write_file(fx, "certvisor.conf", "cluster {\n  store = zookeeper\n}\n");
    expect_error(fx, "certvisor.conf", 0, "store 'zookeeper' is not local or etcd", NULL);
    write_file(fx, "certvisor.conf",
               "cluster {\n  member n1 { address = \"10.0.0.1\"\n peer_port = 2379 }\n}\n");
    expect_error(fx, "certvisor.conf", 0, "two different ports", NULL);
    write_file(fx, "certvisor.conf", "cluster {\n  name = \"a/b\"\n}\n");
    expect_error(fx, "certvisor.conf", 0, "name 'a/b'", NULL);
    write_file(fx, "certvisor.conf", "");
    write_file(fx, "conf.d/80-etcd.conf",
               "service etcd {\n  cluster_store = consul\n  command = \"/usr/bin/etcd\"\n}\n");
    expect_error(fx, "conf.d/80-etcd.conf", 1, "cluster_store 'consul' is not any, local or etcd",
                 NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(a_main_file_and_two_includes_load_in_file_order),
        TEST(root_prefix_gives_the_standard_paths),
        TEST(main_file_settings_are_read),
        TEST(prefix_override_replaces_the_file_prefix),
        TEST(relative_prefix_resolves_against_the_config_directory),
        TEST(a_relative_config_path_is_made_absolute),
        TEST(variables_expand_in_service_settings),
        TEST(service_user_and_group_default_from_the_main_file),
        TEST(start_order_puts_dependencies_first_and_keeps_file_order),
        TEST(unknown_option_in_the_main_file),
        TEST(unknown_option_in_a_service),
        TEST(bad_log_level_in_the_main_file),
        TEST(negative_tail_lines_in_the_main_file),
        TEST(bad_autorestart_value),
        TEST(bad_readiness_value),
        TEST(unknown_stop_signal),
        TEST(unknown_reload_signal),
        TEST(reload_command_beside_reload_signal),
        TEST(reload_command_must_be_absolute),
        TEST(reload_command_is_expanded_like_arguments),
        TEST(negative_stop_timeout),
        TEST(negative_start_retries),
        TEST(backoff_factor_below_one),
        TEST(environment_entry_without_equals),
        TEST(environment_entry_with_a_bad_name),
        TEST(exit_code_out_of_range),
        TEST(exit_code_out_of_range_before_a_valid_one),
        TEST(unknown_variable_in_arguments),
        TEST(unterminated_variable_in_command),
        TEST(bad_stdout_target),
        TEST(relative_command),
        TEST(missing_command),
        TEST(duplicate_service_across_two_files),
        TEST(duplicate_service_in_one_file),
        TEST(unknown_dependency),
        TEST(dependency_cycle_shows_the_loop),
        TEST(invalid_service_name_all),
        TEST(invalid_service_name_characters),
        TEST(user_that_does_not_exist),
        TEST(default_service_user_that_does_not_exist),
        TEST(group_that_does_not_exist),
        TEST(missing_main_file),
        TEST(syntax_error_in_an_include_file),
        TEST(missing_include_directory),
        TEST(control_socket_comes_from_the_main_file_alone),
        TEST(control_socket_errors),
        TEST(unknown_variable_in_the_main_file),
        TEST(service_only_variable_in_the_main_file),
        TEST(variable_used_before_it_is_set_in_the_main_file),
        TEST(comment_lines_do_not_shift_line_numbers_in_the_main_file),
        TEST(comment_lines_do_not_shift_line_numbers_in_a_service),
        TEST(a_section_left_open_at_end_of_file_is_an_error),
        TEST(unknown_variable_in_after),
        TEST(certificate_sections_are_read_from_every_file),
        TEST(no_certificate_section_means_none),
        TEST(certificate_with_an_unknown_name),
        TEST(certificate_cluster_ca_cannot_come_from_files),
        TEST(certificate_without_key_file),
        TEST(certificate_without_cert_file),
        TEST(key_file_for_the_trusted_ca_bundle),
        TEST(certificate_with_a_relative_path),
        TEST(duplicate_certificate_in_one_file),
        TEST(duplicate_certificate_across_two_files),
        TEST(two_tls_sections_writing_one_file),
        TEST(http_only_in_a_certvisor_tls_section),
        TEST(database_sections),
        TEST(database_errors),
        TEST(a_cluster_on_etcd_gives_its_member_and_variables),
        TEST(the_local_store_runs_no_etcd_member),
        TEST(cluster_errors),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
