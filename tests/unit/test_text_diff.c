/* Unit tests for the line diff that --dry-run prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text_diff.h"

#include <stdio.h>
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

/* "line 0\nline 1\n..." for lines from..to-1, each made distinct by its number and tag. */
static char *numbered(const char *tag, int from, int to)
{
    size_t cap = (size_t)(to - from) * 32 + 1, used = 0;
    char *text = malloc(cap);

    assert_non_null(text);
    text[0] = '\0';
    for (int i = from; i < to; i++)
        used += (size_t)snprintf(text + used, cap - used, "%s %d\n", tag, i);
    return text;
}

static size_t count_lines(const char *diff, char mark)
{
    size_t n = 0;

    for (const char *p = diff; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (*p == mark && strncmp(p, "--- ", 4) != 0 && strncmp(p, "+++ ", 4) != 0)
            n++;
    return n;
}

/* 600 lines used to be cut at 512 without a word: now every line of both texts is there. */
static void long_texts_are_diffed_whole(void **state)
{
    char *old_text = numbered("line", 0, 600), *new_text = numbered("line", 0, 600), *diff;

    (void)state;
    memcpy(strstr(new_text, "line 550\n"), "LINE", 4); /* one change near the end */
    diff = text_diff("f.conf", old_text, new_text);
    assert_non_null(diff);
    assert_int_equal(count_lines(diff, ' '), 599);
    assert_int_equal(count_lines(diff, '-'), 1);
    assert_int_equal(count_lines(diff, '+'), 1);
    assert_non_null(strstr(diff, "\n line 549\n-line 550\n+LINE 550\n line 551\n"));
    assert_non_null(strstr(diff, "\n line 599\n"));
    free(diff);
    /* A new file of 600 lines: 600 additions, the last one included. */
    diff = text_diff("f.conf", "", old_text);
    assert_non_null(diff);
    assert_int_equal(count_lines(diff, '+'), 600);
    assert_non_null(strstr(diff, "\n+line 599\n"));
    free(diff);
    free(old_text);
    free(new_text);
}

/* A changed part beyond the alignment table is shown as replaced, still every line of it. */
static void a_huge_change_is_shown_as_replaced_whole(void **state)
{
    char *old_text = numbered("old", 0, 1100), *new_text = numbered("new", 0, 1100), *diff;
    char *with_context_old, *with_context_new;

    (void)state;
    assert_true((size_t)1101 * 1101 > TEXT_DIFF_MAX_CELLS);
    assert_true(asprintf(&with_context_old, "first\n%slast\n", old_text) > 0);
    assert_true(asprintf(&with_context_new, "first\n%slast\n", new_text) > 0);
    diff = text_diff("f.conf", with_context_old, with_context_new);
    assert_non_null(diff);
    assert_int_equal(count_lines(diff, ' '), 2);
    assert_int_equal(count_lines(diff, '-'), 1100);
    assert_int_equal(count_lines(diff, '+'), 1100);
    assert_true(strncmp(diff, "--- f.conf\n+++ f.conf\n first\n-old 0\n", 36) == 0);
    assert_non_null(strstr(diff, "\n-old 1099\n+new 0\n"));
    assert_non_null(strstr(diff, "\n+new 1099\n last\n"));
    free(diff);
    free(with_context_old);
    free(with_context_new);
    free(old_text);
    free(new_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_changed_line_shows_removal_then_addition),
        cmocka_unit_test(added_and_removed_lines),
        cmocka_unit_test(a_new_file_is_all_additions),
        cmocka_unit_test(equal_texts_are_all_context),
        cmocka_unit_test(long_texts_are_diffed_whole),
        cmocka_unit_test(a_huge_change_is_shown_as_replaced_whole),
    };
    return cmocka_run_group_tests_name("text_diff", tests, NULL, NULL);
}
