/* Unit tests for the wiping allocator that jansson and libevent use where keys pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "secure_alloc.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"

/* What the release hook saw: blocks given back, and how many still held a non-zero byte. */
static struct {
    size_t released;
    size_t dirty;
    size_t bytes;
} seen;

static void watching_release(void *ptr)
{
    size_t size = malloc_usable_size(ptr);
    const unsigned char *p = ptr;

    seen.released++;
    seen.bytes += size;
    for (size_t i = 0; i < size; i++) {
        if (p[i]) {
            seen.dirty++;
            break;
        }
    }
    free(ptr);
}

static int watch(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof(seen));
    secure_alloc_set_release(watching_release);
    return 0;
}

static int unwatch(void **state)
{
    (void)state;
    secure_alloc_set_release(NULL);
    return 0;
}

static void free_wipes_the_whole_block(void **state)
{
    char *p = secure_alloc_malloc(100);

    (void)state;
    assert_non_null(p);
    memset(p, 'k', malloc_usable_size(p)); /* the slack past 100 bytes too */
    secure_alloc_free(p);
    assert_int_equal(seen.released, 1);
    assert_int_equal(seen.dirty, 0);
    assert_true(seen.bytes >= 100);
    secure_alloc_free(NULL); /* a no-op */
    assert_int_equal(seen.released, 1);
}

static void realloc_keeps_the_bytes_and_wipes_the_old_block(void **state)
{
    char *p = secure_alloc_malloc(sizeof(SECRET));
    char *grown, *shrunk;

    (void)state;
    memcpy(p, SECRET, sizeof(SECRET));
    grown = secure_alloc_realloc(p, 64 * 1024);
    assert_non_null(grown);
    assert_memory_equal(grown, SECRET, sizeof(SECRET));
    assert_int_equal(seen.released, 1); /* the old block, wiped */
    assert_int_equal(seen.dirty, 0);
    shrunk = secure_alloc_realloc(grown, 8);
    assert_non_null(shrunk);
    assert_memory_equal(shrunk, SECRET, 8);
    assert_int_equal(seen.released, 2);
    assert_int_equal(seen.dirty, 0);
    assert_null(secure_alloc_realloc(shrunk, 0)); /* size 0 frees, wiped */
    assert_int_equal(seen.released, 3);
    assert_int_equal(seen.dirty, 0);
    p = secure_alloc_realloc(NULL, 16); /* NULL: a plain allocation */
    assert_non_null(p);
    assert_int_equal(seen.released, 3);
    secure_alloc_free(p);
}

/* jansson's json_dumps() and libevent's evbuffer_readln() are freed by their callers with free().
 */
static void blocks_are_interchangeable_with_malloc_and_free(void **state)
{
    char *ours = secure_alloc_malloc(32);
    char *theirs = strdup(SECRET);

    (void)state;
    assert_non_null(ours);
    assert_non_null(theirs);
    free(ours);
    secure_alloc_free(theirs);
    assert_int_equal(seen.released, 1);
    assert_int_equal(seen.dirty, 0);
}

/* Installed, every block jansson and libevent free goes through the wipe. */
static void jansson_and_libevent_wipe_what_they_free(void **state)
{
    json_t *request;
    struct evbuffer *buffer;
    char *line;
    size_t len;

    (void)state;
    secure_alloc_install();
    request = json_loads(
        "{\"command\": \"cluster certificate set\", \"options\": {\"key\": \"" SECRET "\"}}", 0,
        NULL);
    assert_non_null(request);
    json_decref(request);
    assert_true(seen.released >= 3); /* the object, its table, the strings */
    assert_int_equal(seen.dirty, 0);

    memset(&seen, 0, sizeof(seen));
    buffer = evbuffer_new();
    assert_non_null(buffer);
    assert_int_equal(evbuffer_add_printf(buffer, "%s\n", SECRET), (int)strlen(SECRET) + 1);
    line = evbuffer_readln(buffer, &len, EVBUFFER_EOL_LF);
    assert_non_null(line);
    assert_string_equal(line, SECRET);
    free(line); /* as agent/control/control.c does */
    evbuffer_free(buffer);
    assert_true(seen.released >= 2); /* the chain and the buffer */
    assert_int_equal(seen.dirty, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(free_wipes_the_whole_block, watch, unwatch),
        cmocka_unit_test_setup_teardown(realloc_keeps_the_bytes_and_wipes_the_old_block, watch,
                                        unwatch),
        cmocka_unit_test_setup_teardown(blocks_are_interchangeable_with_malloc_and_free, watch,
                                        unwatch),
        cmocka_unit_test_setup_teardown(jansson_and_libevent_wipe_what_they_free, watch, unwatch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
