/* Unit tests for how certvisorctl reads typed words against the command table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "command_words.h"
#include "control_proto.h"

#include <string.h>

static int known(const char *a, const char *b, const char *c)
{
    char *argv[] = {(char *)a, (char *)b, (char *)c};
    int argc = c ? 3 : b ? 2 : 1;

    return command_words_known(argc, argv);
}

static void groups_and_commands_are_known_word_by_word(void **state)
{
    (void)state;
    assert_int_equal(known("cluster", NULL, NULL), 1);
    assert_int_equal(known("cluster", "certificate", NULL), 2);
    assert_int_equal(known("cluster", "certificat", "list"), 1);
    assert_int_equal(known("cluster", "certificate", "lst"), 2);
    assert_int_equal(known("frobnicate", NULL, NULL), 0);
    assert_int_equal(known("status", "web", NULL), 1);
}

static void next_words_are_listed_once_in_table_order(void **state)
{
    char *cluster[] = {"cluster", "certificate"};
    char buf[256];

    (void)state;
    assert_int_equal(command_words_next(1, cluster, buf, sizeof(buf)), 11);
    assert_string_equal(buf,
                        "certificate, status, init, token, join, leave, remove, admit, config, "
                        "ocsp, ldap");
    assert_int_equal(command_words_next(2, cluster, buf, sizeof(buf)), 8);
    assert_string_equal(buf, "list, show, ca, set, set-many, rotate, delete, csr");
    command_words_next(0, cluster, buf, sizeof(buf));
    assert_non_null(strstr(buf, "status, start, stop,"));
    assert_non_null(strstr(buf, ", cluster, audit, replica, user"));
    /* A short buffer is cut, not overrun. */
    assert_int_equal(command_words_next(1, cluster, buf, 8), 11);
    assert_string_equal(buf, "certifi");
}

static void suggest(int n, char **argv, const char *typo, const char *expected)
{
    size_t len = 0;
    const char *w = command_words_suggest(n, argv, typo, &len);

    if (!expected) {
        assert_null(w);
        return;
    }
    assert_non_null(w);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(w, expected, len);
}

static void the_closest_word_is_suggested(void **state)
{
    char *argv[] = {"cluster", "certificate"};

    (void)state;
    suggest(1, argv, "certificat", "certificate");
    suggest(1, argv, "cert", "certificate");
    suggest(1, argv, "confg", "config");
    suggest(2, argv, "lst", "list");
    suggest(2, argv, "set-mny", "set-many");
    suggest(0, argv, "stauts", "status");
    suggest(0, argv, "frobnicate", NULL);
    suggest(1, argv, "", NULL);
    /* "sta" begins two commands; "stat" only one. */
    suggest(0, argv, "stat", "status");
}

static void keywords_have_a_closest_choice(void **state)
{
    static const char *const keywords[] = {"certificate_file", "key_file", NULL};

    (void)state;
    assert_string_equal(command_words_closest("certfile", keywords), "certificate_file");
    assert_string_equal(command_words_closest("keyfile", keywords), "key_file");
    assert_string_equal(command_words_closest("key-file", keywords), "key_file");
    assert_null(command_words_closest("cm.pem", keywords));
}

static int max_args(const char *words)
{
    int command = control_command_lookup(words);

    assert_true(command >= 0);
    return command_words_max_args(command);
}

static void usage_lines_give_the_number_of_arguments(void **state)
{
    (void)state;
    assert_int_equal(max_args("cluster certificate list"), 0);
    assert_int_equal(max_args("cluster config show"), 0);
    assert_int_equal(max_args("version"), 0);
    assert_int_equal(max_args("audit"), 0);
    assert_int_equal(max_args("cluster certificate show"), 1);
    assert_int_equal(max_args("cluster certificate rotate"), 1);
    assert_int_equal(max_args("cluster certificate delete"), 1);
    assert_int_equal(max_args("tail"), 2);
    assert_int_equal(max_args("user delete"), 1);
    assert_int_equal(max_args("user subject"), 2);
    assert_int_equal(max_args("status"), -1);
    assert_int_equal(max_args("cluster config"), -1);
    assert_int_equal(max_args("reload"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(groups_and_commands_are_known_word_by_word),
        cmocka_unit_test(next_words_are_listed_once_in_table_order),
        cmocka_unit_test(the_closest_word_is_suggested),
        cmocka_unit_test(keywords_have_a_closest_choice),
        cmocka_unit_test(usage_lines_give_the_number_of_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
