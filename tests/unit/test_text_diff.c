/* Unit tests for the line diff that --dry-run prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text_diff.h"

#include <stdlib.h>
#include <string.h>

static void check(const char *old_text, const char *new_text, const char *expected)
{
    char *diff = text_diff("f.conf", old_text, new_text);

    assert_non_null(diff);
    assert_string_equal(diff, expected);
    free(diff);
}

static void a_changed_line_shows_removal_then_addition(void **state)
{
    (void)state;
    check("a = 1\nmin_version = 1.2\nb = 2\n", "a = 1\nmin_version = 1.3\nb = 2\n",
          "--- f.conf\n+++ f.conf\n a = 1\n-min_version = 1.2\n+min_version = 1.3\n b = 2\n");
}

static void added_and_removed_lines(void **state)
{
    (void)state;
    check("a\nb\nc\n", "a\nc\nd\n", "--- f.conf\n+++ f.conf\n a\n-b\n c\n+d\n");
}

static void a_new_file_is_all_additions(void **state)
{
    (void)state;
    check("", "x\ny\n", "--- f.conf\n+++ f.conf\n+x\n+y\n");
}

static void equal_texts_are_all_context(void **state)
{
    (void)state;
    check("x\ny", "x\ny\n", "--- f.conf\n+++ f.conf\n x\n y\n"); /* a missing final newline */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_changed_line_shows_removal_then_addition),
        cmocka_unit_test(added_and_removed_lines),
        cmocka_unit_test(a_new_file_is_all_additions),
        cmocka_unit_test(equal_texts_are_all_context),
    };
    return cmocka_run_group_tests_name("text_diff", tests, NULL, NULL);
}
