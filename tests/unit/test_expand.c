/* Unit tests for %{variable} checking and expansion in configuration values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "expand.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct expand_vars vars = {
    .prefix = "/p",
    .state_dir = "/p/var/lib/certvisor",
    .run_dir = "/p/run/certvisor",
    .log_dir = "/p/var/log/certvisor",
    .conf_dir = "/etc/certvisor",
    .libexec_dir = "/usr/libexec/certvisor",
    .console_dir = "/usr/share/certvisor/console",
    .control_socket = "/p/run/certvisor/control.sock",
    .name = "web",
};

static void assert_expands(const char *text, const char *expected)
{
    char *out = expand_string(text, &vars);

    assert_non_null(out);
    assert_string_equal(out, expected);
    free(out);
}

static void assert_check_fails(const char *text, const char *message)
{
    char err[512] = "";

    assert_int_equal(expand_check(text, err, sizeof(err)), -EINVAL);
    if (!strstr(err, message))
        print_error("message: %s\n", err);
    assert_non_null(strstr(err, message));
}

static void every_known_variable_passes_the_check(void **state)
{
    char err[64] = "untouched";

    (void)state;
    assert_int_equal(expand_check("%{prefix}%{state_dir}%{run_dir}%{log_dir}%{conf_dir}"
                                  "%{libexec_dir}%{console_dir}%{control_socket}%{name}",
                                  err, sizeof(err)),
                     0);
    assert_string_equal(err, "untouched");
}

static void text_without_variables_passes_and_is_copied(void **state)
{
    char err[64];

    (void)state;
    assert_int_equal(expand_check("", err, sizeof(err)), 0);
    assert_int_equal(expand_check("/usr/bin/env --flag", err, sizeof(err)), 0);
    assert_expands("", "");
    assert_expands("/usr/bin/env --flag", "/usr/bin/env --flag");
}

static void unknown_name_is_rejected_and_named(void **state)
{
    (void)state;
    assert_check_fails("%{home}/x", "unknown variable '%{home}'");
    assert_check_fails("%{prefix}/%{Prefix}", "unknown variable '%{Prefix}'");
    assert_check_fails("a %{} b", "unknown variable '%{}'");
    assert_check_fails("%{name }", "unknown variable '%{name }'");
    assert_check_fails("%{home}", "(known: prefix, state_dir, run_dir, log_dir, conf_dir, "
                                  "libexec_dir, console_dir, control_socket, name, cluster, node, "
                                  "node_address, etcd_client_url, etcd_peer_url, "
                                  "etcd_initial_cluster, etcd_initial_cluster_state)");
}

static void unterminated_variable_is_rejected(void **state)
{
    (void)state;
    assert_check_fails("%{prefix/bin", "unterminated '%{' in \"%{prefix/bin\"");
    assert_check_fails("%{prefix}/%{", "unterminated '%{'");
}

static void unknown_name_does_not_expand(void **state)
{
    (void)state;
    assert_null(expand_string("%{home}/x", &vars));
    assert_null(expand_string("ok %{prefix} then %{nope}", &vars));
}

static void a_variable_without_a_value_does_not_expand(void **state)
{
    struct expand_vars outside = vars;

    (void)state;
    outside.name = NULL; /* outside a service */
    assert_null(expand_string("%{name}.log", &outside));
    assert_expands("%{name}.log", "web.log");
}

static void variables_expand_in_place(void **state)
{
    (void)state;
    assert_expands("%{prefix}", "/p");
    assert_expands("%{state_dir}/%{name}", "/p/var/lib/certvisor/web");
    assert_expands("--conf=%{conf_dir}/x.conf", "--conf=/etc/certvisor/x.conf");
    assert_expands("%{libexec_dir}/%{name}d", "/usr/libexec/certvisor/webd");
    assert_expands("%{control_socket}", "/p/run/certvisor/control.sock");
    assert_expands("%{run_dir} and %{log_dir}", "/p/run/certvisor and /p/var/log/certvisor");
}

static void adjacent_variables(void **state)
{
    (void)state;
    assert_expands("%{name}%{name}%{prefix}", "webweb/p");
    assert_expands("%{prefix}%{run_dir}", "/p/p/run/certvisor");
}

static void a_lone_percent_is_literal(void **state)
{
    char err[64];

    (void)state;
    assert_int_equal(expand_check("100%", err, sizeof(err)), 0);
    assert_int_equal(expand_check("%", err, sizeof(err)), 0);
    assert_int_equal(expand_check("50% of %{name}", err, sizeof(err)), 0);
    assert_int_equal(expand_check("%%{name}", err, sizeof(err)), 0);
    assert_int_equal(expand_check("%}{", err, sizeof(err)), 0);
    assert_expands("100%", "100%");
    assert_expands("%", "%");
    assert_expands("50% of %{name}", "50% of web");
    assert_expands("%%{name}", "%web");
    assert_expands("%}{", "%}{");
    assert_expands("{name}", "{name}");
    assert_expands("%{name}%", "web%");
}

static void unterminated_text_is_copied_by_expand_string(void **state)
{
    (void)state;
    /* expand_check rejects it; expand_string alone leaves it alone */
    assert_expands("%{prefix", "%{prefix");
    assert_expands("%{name}/%{", "web/%{");
}

static void long_expansions_grow_the_buffer(void **state)
{
    char text[2048] = "", expected[8192] = "";

    (void)state;
    for (int i = 0; i < 100; i++) {
        strcat(text, "%{libexec_dir}:");
        strcat(expected, "/usr/libexec/certvisor:");
    }
    assert_expands(text, expected);
}

static void a_short_error_buffer_is_truncated(void **state)
{
    char err[8];

    (void)state;
    memset(err, 'X', sizeof(err));
    assert_int_equal(expand_check("%{unknown_variable}", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_known_variable_passes_the_check),
        cmocka_unit_test(text_without_variables_passes_and_is_copied),
        cmocka_unit_test(unknown_name_is_rejected_and_named),
        cmocka_unit_test(unterminated_variable_is_rejected),
        cmocka_unit_test(unknown_name_does_not_expand),
        cmocka_unit_test(a_variable_without_a_value_does_not_expand),
        cmocka_unit_test(variables_expand_in_place),
        cmocka_unit_test(adjacent_variables),
        cmocka_unit_test(a_lone_percent_is_literal),
        cmocka_unit_test(unterminated_text_is_copied_by_expand_string),
        cmocka_unit_test(long_expansions_grow_the_buffer),
        cmocka_unit_test(a_short_error_buffer_is_truncated),
    };
    return cmocka_run_group_tests_name("expand", tests, NULL, NULL);
}
