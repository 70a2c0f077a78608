/* Unit tests for the proxy's multiplex switch in the rendered database list (lib/db_config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_error.h"
#include "db_config.h"

#include <stdlib.h>
#include <string.h>

static void multiplexing_is_the_default_and_not_rendered(void **state)
{
    struct db_config db = {.name = "db1", .port = 12000, .shard = "127.0.0.1:12100"};
    struct db_list list = {&db, 1}, back;
    char err[256], *text = db_list_render(&list);

    (void)state;
    assert_non_null(text);
    assert_null(strstr(text, "multiplex"));
    assert_int_equal(db_list_parse(text, &back, err, sizeof(err)), 0);
    assert_false(back.dbs[0].multiplex_off);
    db_list_clear(&back);
    free(text);
}

static void multiplex_no_round_trips(void **state)
{
    struct db_config db = {
        .name = "db1", .port = 12000, .shard = "127.0.0.1:12100", .multiplex_off = true};
    struct db_list list = {&db, 1}, back;
    char err[256], *text = db_list_render(&list);

    (void)state;
    assert_non_null(text);
    assert_non_null(strstr(text, "\nmultiplex = no\n"));
    assert_int_equal(db_list_parse(text, &back, err, sizeof(err)), 0);
    assert_true(back.dbs[0].multiplex_off);
    db_list_clear(&back);
    free(text);
    assert_int_equal(db_list_parse("[db1]\nport = 1\nshard = 127.0.0.1:2\nmultiplex = yes\n", &back,
                                   err, sizeof(err)),
                     0);
    assert_false(back.dbs[0].multiplex_off);
    db_list_clear(&back);
}

static void a_bad_value_is_named(void **state)
{
    struct db_list list;
    char err[256];

    (void)state;
    assert_int_equal(db_list_parse("[db1]\nport = 1\nshard = 127.0.0.1:2\nmultiplex = off\n", &list,
                                   err, sizeof(err)),
                     CV_EINVALID_TLS);
    assert_string_equal(err, "line 4: multiplex 'off' is not yes or no");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multiplexing_is_the_default_and_not_rendered),
        cmocka_unit_test(multiplex_no_round_trips),
        cmocka_unit_test(a_bad_value_is_named),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
