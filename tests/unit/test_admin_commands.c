/* Unit tests for allow_commands' words: parsing, formatting, and the database list's line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "admin_commands.h"
#include "db_config.h"

#include "cv_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entry 1 ("config set") and entry 4 ("debug") of the table. */
#define BIT_CONFIG_SET ((uint64_t)1 << 1)
#define BIT_DEBUG ((uint64_t)1 << 4)

#define CANARY 'Z'

/* The start of the list every refusal ends with, in table order. */
#define WORDS_PREFIX                                                                               \
    "; the words are: shutdown, config set, config rewrite, config resetstat, debug"

/* The index of word in the table; fails the test when it is not there. */
static size_t index_of(const char *word)
{
    for (size_t i = 0; i < admin_commands_n; i++)
        if (strcmp(admin_commands[i].word, word) == 0)
            return i;
    fail_msg("'%s' is not in admin_commands", word);
    return 0;
}

/* "'<word>' is not ...; the words are: <every word of the table, in order>". */
static void expected_refusal(const char *word, char *buf, size_t len)
{
    size_t at;

    at = (size_t)snprintf(
        buf, len, "'%s' is not a command the database endpoint refuses; the words are: ", word);
    for (size_t i = 0; i < admin_commands_n; i++) {
        assert_true(at < len);
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", admin_commands[i].word);
    }
    assert_true(at < len);
}

static void the_table_matches_the_bits_the_tests_use(void **state)
{
    (void)state;
    assert_int_equal(admin_commands_n, 24);
    assert_true(admin_commands_n <= 64);
    assert_int_equal(index_of("config set"), 1);
    assert_int_equal(index_of("debug"), 4);
    assert_string_equal(admin_commands[0].word, "shutdown");
    assert_string_equal(admin_commands[admin_commands_n - 1].word, "replconf");
}

static void an_empty_value_allows_nothing(void **state)
{
    uint64_t mask = 0xdead;
    char err[64] = "untouched";

    (void)state;
    assert_int_equal(admin_commands_parse("", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, 0);
    assert_string_equal(err, "untouched");
}

static void one_word_gives_its_bit(void **state)
{
    uint64_t mask = 0;
    char err[1024] = "";

    (void)state;
    assert_int_equal(admin_commands_parse("config set", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, BIT_CONFIG_SET);
    assert_int_equal(admin_commands_parse("debug", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, BIT_DEBUG);
    assert_int_equal(admin_commands_parse("replconf", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, (uint64_t)1 << 23);
}

static void case_and_blanks_do_not_matter(void **state)
{
    uint64_t mask = 0;
    char err[1024] = "";

    (void)state;
    assert_int_equal(admin_commands_parse("CONFIG   SET , debug", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, BIT_CONFIG_SET | BIT_DEBUG);
    assert_int_equal(admin_commands_parse("\tDeBuG ,config\t \tset  ", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, BIT_CONFIG_SET | BIT_DEBUG);
    /* A word given twice is the same bit. */
    assert_int_equal(admin_commands_parse("debug, DEBUG", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, BIT_DEBUG);
}

static void bad_words_are_refused_by_name(void **state)
{
    static const struct {
        const char *text;
        const char *word; /* as the error names it */
    } cases[] = {
        {"config", "config"},     /* a command whose subcommands are listed, alone */
        {"flushall", "flushall"}, /* not an administrative command */
        {"debug,,save", ""},      /* an empty word between commas */
        {"debug,", ""},           /* a trailing comma */
        {",debug", ""},           /* a leading comma */
        {"config set, FlushAll", "flushall"},
        {"configset", "configset"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t mask = 0xdead;
        char err[1024] = "", expected[1024];

        expected_refusal(cases[i].word, expected, sizeof(expected));
        if (admin_commands_parse(cases[i].text, &mask, err, sizeof(err)) != -EINVAL)
            fail_msg("case %zu: '%s' was not refused", i, cases[i].text);
        if (strcmp(err, expected) != 0)
            fail_msg("case %zu: '%s'\n  gave     '%s'\n  expected '%s'", i, cases[i].text, err,
                     expected);
        assert_non_null(strstr(err, WORDS_PREFIX));
        assert_int_equal(mask, 0xdead);
    }
}

static void a_long_word_is_refused_without_overflow(void **state)
{
    char text[101], err[1024 + 8], small[16 + 8];
    uint64_t mask = 0xdead;
    const char *expected_start = "'aaaaaaaaaaaaaaaaaaaa...' is not a command";

    (void)state;
    memset(text, 'a', 100);
    text[100] = '\0';

    memset(err, CANARY, sizeof(err));
    assert_int_equal(admin_commands_parse(text, &mask, err, 1024), -EINVAL);
    assert_int_equal(mask, 0xdead);
    assert_int_equal(strncmp(err, expected_start, strlen(expected_start)), 0);
    assert_non_null(strstr(err, WORDS_PREFIX));
    assert_true(strlen(err) < 1024);
    for (size_t i = 1024; i < sizeof(err); i++)
        assert_int_equal(err[i], CANARY);

    /* A long word of several blank-separated parts, after a good one. */
    memcpy(text, "debug,", 6);
    for (size_t i = 6; i < 100; i++)
        text[i] = (i - 6) % 6 == 5 ? ' ' : 'b';
    memset(err, CANARY, sizeof(err));
    assert_int_equal(admin_commands_parse(text, &mask, err, 1024), -EINVAL);
    assert_int_equal(mask, 0xdead);
    assert_int_equal(strncmp(err, "'bbbbb bbbbb bbbbb bb...' is not ", 33), 0);
    for (size_t i = 1024; i < sizeof(err); i++)
        assert_int_equal(err[i], CANARY);

    /* An error buffer too small for the message: cut, terminated, nothing written past it. */
    memset(text, 'a', 100);
    memset(small, CANARY, sizeof(small));
    assert_int_equal(admin_commands_parse(text, &mask, small, 16), -EINVAL);
    assert_string_equal(small, "'aaaaaaaaaaaaaa");
    for (size_t i = 16; i < sizeof(small); i++)
        assert_int_equal(small[i], CANARY);
}

static void format_gives_table_order(void **state)
{
    char buf[1024];

    (void)state;
    admin_commands_format(BIT_DEBUG | BIT_CONFIG_SET, buf, sizeof(buf));
    assert_string_equal(buf, "config set, debug");
    admin_commands_format(BIT_DEBUG, buf, sizeof(buf));
    assert_string_equal(buf, "debug");
    strcpy(buf, "stale");
    admin_commands_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "");
    admin_commands_format((uint64_t)1 | ((uint64_t)1 << 23), buf, sizeof(buf));
    assert_string_equal(buf, "shutdown, replconf");
}

static void format_stays_in_its_buffer(void **state)
{
    char buf[12 + 8];

    (void)state;
    memset(buf, CANARY, sizeof(buf));
    admin_commands_format(BIT_DEBUG | BIT_CONFIG_SET, buf, 12);
    assert_string_equal(buf, "config set,");
    for (size_t i = 12; i < sizeof(buf); i++)
        assert_int_equal(buf[i], CANARY);
}

static void parse_reads_back_what_format_writes(void **state)
{
    char buf[1024], err[1024] = "";
    uint64_t mask, all = 0;

    (void)state;
    for (size_t i = 0; i < admin_commands_n; i++) {
        uint64_t bit = (uint64_t)1 << i;

        admin_commands_format(bit, buf, sizeof(buf));
        assert_string_equal(buf, admin_commands[i].word);
        mask = 0;
        if (admin_commands_parse(buf, &mask, err, sizeof(err)) != 0)
            fail_msg("entry %zu: '%s' refused: %s", i, buf, err);
        if (mask != bit)
            fail_msg("entry %zu: '%s' gave %#llx, not %#llx", i, buf, (unsigned long long)mask,
                     (unsigned long long)bit);
        all |= bit;
    }
    admin_commands_format(all, buf, sizeof(buf));
    assert_int_equal(admin_commands_parse(buf, &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, all);
}

static void the_database_list_reads_allow_commands(void **state)
{
    const char *text = "[a]\n"
                       "port = 1\n"
                       "shard = h:1\n"
                       "allow_commands = config set, debug\n"
                       "[b]\n"
                       "port = 2\n"
                       "shard = h:2\n";
    struct db_list list;
    char err[1024] = "";

    (void)state;
    if (db_list_parse(text, &list, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    assert_int_equal(list.n, 2);
    assert_string_equal(list.dbs[0].name, "a");
    assert_int_equal(list.dbs[0].commands_allowed, BIT_CONFIG_SET | BIT_DEBUG);
    assert_string_equal(list.dbs[1].name, "b");
    assert_int_equal(list.dbs[1].commands_allowed, 0);
    db_list_clear(&list);
}

static void the_database_list_refuses_an_unknown_word(void **state)
{
    const char *text = "[a]\n"
                       "port = 1\n"
                       "shard = h:1\n"
                       "allow_commands = config set, xyz\n";
    const char *line = "[a]\nport = 1\nshard = h:1\nallow_commands = debug,\n";
    struct db_list list;
    char err[2048] = "", refusal[1024], expected[2048];

    (void)state;
    expected_refusal("xyz", refusal, sizeof(refusal));
    snprintf(expected, sizeof(expected), "line 4: allow_commands: %s", refusal);
    assert_int_equal(db_list_parse(text, &list, err, sizeof(err)), CV_EINVALID_TLS);
    assert_string_equal(err, expected);
    assert_non_null(strstr(err, "line 4: allow_commands: 'xyz' is not "));
    assert_null(list.dbs);
    assert_int_equal(list.n, 0);

    assert_int_equal(db_list_parse(line, &list, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "line 4: allow_commands: '' is not "));
    assert_null(list.dbs);
}

static void the_database_list_renders_allow_commands_only_when_set(void **state)
{
    struct db_config dbs[2] = {
        {.name = "plain", .listen = "0.0.0.0", .port = 12000, .shard = "127.0.0.1:30001"},
        {.name = "admin",
         .listen = "0.0.0.0",
         .port = 12001,
         .shard = "127.0.0.1:30002",
         .multiplex_off = true,
         .commands_allowed = BIT_DEBUG | BIT_CONFIG_SET},
    };
    struct db_list list = {dbs, 2}, back;
    char err[1024] = "";
    char *text = db_list_render(&list);
    const char *admin, *plain, *allow;

    (void)state;
    assert_non_null(text);
    admin = strstr(text, "[admin]\n");
    plain = strstr(text, "[plain]\n");
    assert_non_null(admin);
    assert_non_null(plain);
    assert_true(admin < plain);
    allow = strstr(text, "\nallow_commands = ");
    assert_non_null(allow);
    /* Once, in [admin], after multiplex, with the words in table order. */
    assert_true(allow > admin && allow < plain);
    assert_non_null(strstr(text, "multiplex = no\nallow_commands = config set, debug\n"));
    assert_null(strstr(allow + strlen("\nallow_commands"), "allow_commands"));

    if (db_list_parse(text, &back, err, sizeof(err)) != 0)
        fail_msg("refused its own rendering: %s\n%s", err, text);
    assert_int_equal(back.n, 2);
    assert_non_null(db_list_find(&back, "admin"));
    assert_int_equal(db_list_find(&back, "admin")->commands_allowed, BIT_CONFIG_SET | BIT_DEBUG);
    assert_int_equal(db_list_find(&back, "plain")->commands_allowed, 0);
    assert_true(db_list_find(&back, "admin")->multiplex_off);
    db_list_clear(&back);
    free(text);
}

static void every_mask_round_trips_through_the_database_list(void **state)
{
    uint64_t all = admin_commands_n == 64 ? UINT64_MAX : ((uint64_t)1 << admin_commands_n) - 1;
    uint64_t masks[] = {0, BIT_DEBUG, (uint64_t)1 << 23, all};

    (void)state;
    for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
        struct db_config db = {.name = "db1", .port = 12000, .shard = "h:1"};
        struct db_list list = {&db, 1}, back;
        char err[1024] = "";
        char *text;

        db.commands_allowed = masks[i];
        text = db_list_render(&list);
        assert_non_null(text);
        if (masks[i] == 0)
            assert_null(strstr(text, "allow_commands"));
        else
            assert_non_null(strstr(text, "allow_commands = "));
        if (db_list_parse(text, &back, err, sizeof(err)) != 0)
            fail_msg("mask %#llx: refused: %s\n%s", (unsigned long long)masks[i], err, text);
        assert_int_equal(back.n, 1);
        assert_int_equal(back.dbs[0].commands_allowed, masks[i]);
        db_list_clear(&back);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_matches_the_bits_the_tests_use),
        cmocka_unit_test(an_empty_value_allows_nothing),
        cmocka_unit_test(one_word_gives_its_bit),
        cmocka_unit_test(case_and_blanks_do_not_matter),
        cmocka_unit_test(bad_words_are_refused_by_name),
        cmocka_unit_test(a_long_word_is_refused_without_overflow),
        cmocka_unit_test(format_gives_table_order),
        cmocka_unit_test(format_stays_in_its_buffer),
        cmocka_unit_test(parse_reads_back_what_format_writes),
        cmocka_unit_test(the_database_list_reads_allow_commands),
        cmocka_unit_test(the_database_list_refuses_an_unknown_word),
        cmocka_unit_test(the_database_list_renders_allow_commands_only_when_set),
        cmocka_unit_test(every_mask_round_trips_through_the_database_list),
    };
    return cmocka_run_group_tests_name("admin_commands", tests, NULL, NULL);
}
