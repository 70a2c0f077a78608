/* Unit tests for the durable audit log: the file's lines, rotation by size, the ring across a
 * restart, and the audit of a change the agent did not live to finish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "audit.h"
#include "audit_file.h"
#include "certs.h"
#include "certstore.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char path[128];
    struct certs certs;
    struct audit_ring *ring;
};

/* The agent stops: the ring is gone, and only the files remain. */
static void close_audit(struct fixture *fx)
{
    audit_free(fx->ring);
    fx->ring = NULL;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char root[PATH_MAX], err[256];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "audit");
    snprintf(fx->path, sizeof(fx->path), "%s/audit.log", fx->dir);
    snprintf(root, sizeof(root), "%s/certs", fx->dir);
    assert_int_equal(certstore_open(root, (gid_t)-1, &fx->certs.store, err, sizeof(err)), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    close_audit(fx);
    certstore_free(fx->certs.store);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* --- the file --- */

struct collected {
    char who[16][64];
    char message[16][256];
    time_t when[16];
    int n;
};

static void collect(void *data, time_t when, const char *who, const char *message)
{
    struct collected *c = data;

    if (c->n < 16) {
        snprintf(c->who[c->n], sizeof(c->who[0]), "%s", who);
        snprintf(c->message[c->n], sizeof(c->message[0]), "%s", message);
        c->when[c->n] = when;
    }
    c->n++;
}

static void a_line_round_trips_whatever_a_name_holds(void **state)
{
    char line[AUDIT_FILE_LINE_MAX], *who, *message;
    time_t when;
    size_t len;

    (void)state;
    len = audit_file_format(line, sizeof(line), 1700000000, "REST user 'a\tb\nc\\d\x01'",
                            "changed policy x=y");
    assert_string_equal(line, "2023-11-14T22:13:20Z\tREST user 'a\\tb\\nc\\\\d\\x01'\t"
                              "changed policy x=y\n");
    assert_int_equal(len, strlen(line));
    line[len - 1] = '\0';
    assert_int_equal(audit_file_parse(line, &when, &who, &message), 0);
    assert_int_equal(when, 1700000000);
    assert_string_equal(who, "REST user 'a\tb\nc\\d\x01'");
    assert_string_equal(message, "changed policy x=y");
    strcpy(line, "not an entry");
    assert_int_equal(audit_file_parse(line, &when, &who, &message), -EINVAL);
}

static void a_long_message_is_cut_to_one_line(void **state)
{
    char line[AUDIT_FILE_LINE_MAX], message[3 * AUDIT_FILE_LINE_MAX];
    size_t len;

    (void)state;
    memset(message, '\n', sizeof(message) - 1); /* each one doubles when escaped */
    message[sizeof(message) - 1] = '\0';
    len = audit_file_format(line, sizeof(line), 0, "uid 0", message);
    assert_true(len < sizeof(line));
    assert_int_equal(strchr(line, '\n') - line, (long)len - 1);
    assert_memory_equal(line + len - 4, "...\n", 4);
    assert_non_null(strstr(line, "\\n\\n"));
}

static void the_file_is_0640_and_appended_to(void **state)
{
    struct fixture *fx = *state;
    struct audit_file *file;
    struct collected got = {0};
    struct stat st;
    char err[256];
    mode_t old_umask = umask(0077); /* the mode holds whatever the umask */

    assert_int_equal(audit_file_open(fx->path, 64 * 1024, 2, &file, err, sizeof(err)), 0);
    umask(old_umask);
    assert_int_equal(audit_file_append(file, 100, "uid 0", "first"), 0);
    audit_file_close(file);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    /* Opened again (a restart): appended to, not truncated. */
    assert_int_equal(chmod(fx->path, 0666), 0);
    assert_int_equal(audit_file_open(fx->path, 64 * 1024, 2, &file, err, sizeof(err)), 0);
    assert_int_equal(audit_file_append(file, 200, "uid 1000", "second"), 0);
    audit_file_close(file);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640); /* narrowed again */
    assert_int_equal(audit_file_read(fx->path, 2, collect, &got), 2);
    assert_string_equal(got.message[0], "first");
    assert_string_equal(got.who[1], "uid 1000");
    assert_int_equal(got.when[1], 200);
}

static long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void the_file_rotates_by_size_and_keeps_n(void **state)
{
    struct fixture *fx = *state;
    const size_t max = AUDIT_FILE_LINE_MAX; /* the smallest limit it takes */
    struct audit_file *file;
    struct collected got = {0};
    char err[256], message[900], rotated[160];

    memset(message, 'm', sizeof(message) - 1);
    message[sizeof(message) - 1] = '\0';
    assert_int_equal(audit_file_open(fx->path, max, 2, &file, err, sizeof(err)), 0);
    /* About 930 bytes a line: 4 lines a file; 13 lines fill audit.log, .1 and .2 and start over. */
    for (int i = 0; i < 13; i++) {
        message[0] = (char)('a' + i);
        assert_int_equal(audit_file_append(file, i, "uid 0", message), 0);
    }
    audit_file_close(file);
    assert_true(file_size(fx->path) > 0 && file_size(fx->path) <= (long)max);
    snprintf(rotated, sizeof(rotated), "%s.1", fx->path);
    assert_true(file_size(rotated) > 3000 && file_size(rotated) <= (long)max);
    snprintf(rotated, sizeof(rotated), "%s.2", fx->path);
    assert_true(file_size(rotated) > 3000 && file_size(rotated) <= (long)max);
    snprintf(rotated, sizeof(rotated), "%s.3", fx->path);
    assert_int_equal(file_size(rotated), -1); /* keep = 2: the oldest went */
    /* 13 written: the first 4 went with the oldest file; the rest read oldest first. */
    assert_int_equal(audit_file_read(fx->path, 2, collect, &got), 9);
    assert_int_equal(got.when[0], 4);
    assert_int_equal(got.message[0][0], 'e');
    assert_int_equal(got.when[8], 12);
    assert_int_equal(audit_file_open(fx->path, max - 1, 2, &file, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "4096 bytes"));
}

/* --- the agent's audit --- */

static void entries_survive_a_restart(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    json_t *items;

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    audit_record(fx->ring, "uid 0", "changed certificate 'api' AA -> BB: applied; services %s",
                 "[\"api\"]");
    audit_record(fx->ring, "REST user 'admin' (uid 1000)", "deleted REST user 'bob'");
    close_audit(fx); /* the agent stops */

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    items = audit_recent(fx->ring, 10);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "message")),
                        "deleted REST user 'bob'");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "who")),
                        "uid 0");
    json_decref(items);
}

static json_t *newest(struct fixture *fx)
{
    json_t *items = audit_recent(fx->ring, 1);
    json_t *entry = json_incref(json_array_get(items, 0));

    json_decref(items);
    return entry;
}

static unsigned stage(struct fixture *fx, const char *name)
{
    unsigned generation;
    char err[256];

    assert_int_equal(certstore_stage(fx->certs.store, name, "cert", 4, "key", 3, false, &generation,
                                     err, sizeof(err)),
                     0);
    return generation;
}

static void pending_exists(struct fixture *fx, bool expected)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/audit.pending", fx->dir);
    assert_int_equal(access(path, F_OK) == 0, expected);
}

/* The agent died after the switch, before the services were told and the audit line written. */
static void a_committed_change_is_audited_at_the_next_start(void **state)
{
    struct fixture *fx = *state;
    unsigned generation = stage(fx, "api");
    char err[256];
    json_t *entry;

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    audit_pending_change(fx->ring, "uid 0", "certificate 'api' AA -> BB");
    audit_pending_generation(fx->ring, AUDIT_STORE_CERTS, "api", generation);
    audit_pending_write(fx->ring);
    pending_exists(fx, true);
    assert_int_equal(certstore_commit(fx->certs.store, "api", generation, err, sizeof(err)), 0);
    close_audit(fx); /* killed here */

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    entry = newest(fx);
    assert_non_null(entry);
    assert_string_equal(json_string_value(json_object_get(entry, "who")), "uid 0");
    assert_non_null(strstr(json_string_value(json_object_get(entry, "message")),
                           "changed certificate 'api' AA -> BB: interrupted when the agent "
                           "stopped; in force after the restart"));
    json_decref(entry);
    pending_exists(fx, false);
    /* Once: a third start does not audit it again. */
    close_audit(fx);
    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    entry = audit_recent(fx->ring, 10);
    assert_int_equal(json_array_size(entry), 1);
    json_decref(entry);
}

/* Killed after the description, before the switch: nothing changed, nothing is audited. */
static void a_change_killed_before_its_switch_is_not_audited(void **state)
{
    struct fixture *fx = *state;
    unsigned generation = stage(fx, "api");
    char err[256];
    json_t *items;

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    audit_pending_change(fx->ring, "uid 0", "certificate 'api' AA -> BB");
    audit_pending_generation(fx->ring, AUDIT_STORE_CERTS, "api", generation);
    audit_pending_write(fx->ring);
    close_audit(fx);

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    items = audit_recent(fx->ring, 10);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    pending_exists(fx, false);
}

/* A policy change has no generation: the committed mark says it took effect. */
static void a_policy_change_counts_once_marked_committed(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    json_t *entry;

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    audit_pending_change(fx->ring, "REST user 'alice'", "policy min_control_TLS_version=1.3");
    audit_pending_write(fx->ring);
    audit_pending_committed(fx->ring);
    close_audit(fx);

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    entry = newest(fx);
    assert_non_null(entry);
    assert_string_equal(json_string_value(json_object_get(entry, "who")), "REST user 'alice'");
    json_decref(entry);
}

/* Audited, then killed before audit.pending went: not audited twice. */
static void a_change_already_audited_is_not_audited_again(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    json_t *items;

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    audit_pending_change(fx->ring, "uid 0", "policy x=y");
    audit_pending_write(fx->ring);
    audit_pending_committed(fx->ring);
    audit_record(fx->ring, "uid 0", "changed policy x=y: applied; services []");
    close_audit(fx);

    assert_int_equal(audit_open(fx->dir, &fx->certs, NULL, &fx->ring, err, sizeof(err)), 0);
    items = audit_recent(fx->ring, 10);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    /* A change that finished clears its description. */
    audit_pending_change(fx->ring, "uid 0", "policy x=z");
    audit_pending_write(fx->ring);
    audit_pending_clear(fx->ring);
    pending_exists(fx, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_line_round_trips_whatever_a_name_holds),
        cmocka_unit_test(a_long_message_is_cut_to_one_line),
        cmocka_unit_test_setup_teardown(the_file_is_0640_and_appended_to, setup, teardown),
        cmocka_unit_test_setup_teardown(the_file_rotates_by_size_and_keeps_n, setup, teardown),
        cmocka_unit_test_setup_teardown(entries_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(a_committed_change_is_audited_at_the_next_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_change_killed_before_its_switch_is_not_audited, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_policy_change_counts_once_marked_committed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_change_already_audited_is_not_audited_again, setup,
                                        teardown),
    };

    log_setup("test_audit", LOG_TARGET_CONSOLE, NULL, LOG_WARNING);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
