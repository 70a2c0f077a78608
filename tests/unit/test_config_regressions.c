/* Regression tests for configuration bugs found and fixed: variables, line numbers, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "cv_error.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char main_path[PATH_MAX];
};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char conf_d[PATH_MAX];

    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/cv-config-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->main_path, sizeof(fx->main_path), "%s/certvisor.conf", fx->dir);
    snprintf(conf_d, sizeof(conf_d), "%s/conf.d", fx->dir);
    assert_int_equal(mkdir(conf_d, 0755), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void write_file(const struct fixture *fx, const char *relative, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fx->dir, relative);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Expects CV_ECONFIG and a message starting with "<dir>/<relative>:<line>: " holding needle. */
static void expect_error(const struct fixture *fx, const char *relative, int line,
                         const char *needle)
{
    struct agent_config *config = NULL;
    char *error = NULL;
    char where[PATH_MAX + 32];
    int r = config_load(fx->main_path, NULL, &config, &error);

    snprintf(where, sizeof(where), "%s/%s:%d: ", fx->dir, relative, line);
    if (r != CV_ECONFIG || !error || !strstr(error, where) || !strstr(error, needle))
        print_error("r=%d, message: %s\nexpected place \"%s\" and \"%s\"\n", r,
                    error ? error : "(none)", where, needle);
    config_free(config);
    assert_int_equal(r, CV_ECONFIG);
    assert_non_null(error);
    assert_non_null(strstr(error, where));
    assert_non_null(strstr(error, needle));
    free(error);
}

/*
 * Was a bug in agent/config.c fill_main()/expand_path(): main-file values are never passed through
 * expand_check(), and expand_string() returns NULL for an unknown name, which fill_main() takes
 * for an allocation failure. It used to give: config_load() returns -ENOMEM, message "Cannot
 * allocate memory", no file or line.
 */
static void unknown_variable_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "prefix = \"/\"\nstate_dir = \"%{home}/state\"\n");
    expect_error(fx, "certvisor.conf", 2, "unknown variable '%{home}'");
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
    expect_error(fx, "certvisor.conf", 1, "%{name}");
}

static void variable_used_before_it_is_set_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "\nlibexec_dir = \"%{state_dir}/bin\"\n");
    expect_error(fx, "certvisor.conf", 2, "%{state_dir}");
}

/*
 * Was a bug in (libconfuse 3.3, surfaced by agent/config.c collect_error()): the lexer counts every
 * '#' or '//' comment line more than once, so every libconfuse message and every validator
 * message (cfg->line) after a comment points at the wrong line. Messages built from
 * section_start_line() are right because that function scans the file itself.
 * It used to give: "certvisor.conf:7: no such option 'bogus_option'" for line 3.
 */
static void comment_lines_do_not_shift_line_numbers_in_the_main_file(void **state)
{
    struct fixture *fx = *state;

    write_file(fx, "certvisor.conf", "# the agent\n# more words\nbogus_option = 1\n");
    expect_error(fx, "certvisor.conf", 3, "no such option 'bogus_option'");
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
    expect_error(fx, "conf.d/a.conf", 4, "autorestart: invalid value 'sometimes'");
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
    expect_error(fx, "conf.d/a.conf", 1, "");
}

/*
 * Was a bug in agent/service_config.c expand_list() -- memory corruption, crashes the agent.
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
    expect_error(fx, "conf.d/a.conf", 7, "unknown variable '%{nope}'");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(unknown_variable_in_the_main_file),
        TEST(service_only_variable_in_the_main_file),
        TEST(variable_used_before_it_is_set_in_the_main_file),
        TEST(comment_lines_do_not_shift_line_numbers_in_the_main_file),
        TEST(comment_lines_do_not_shift_line_numbers_in_a_service),
        TEST(a_section_left_open_at_end_of_file_is_an_error),
        TEST(unknown_variable_in_after), /* aborts: keep last */
    };
    return cmocka_run_group_tests_name("config_regressions", tests, NULL, NULL);
}
