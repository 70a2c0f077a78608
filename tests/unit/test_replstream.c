/*
 * Unit tests for the syncer's reading of a Redis replication stream: the handshake, both forms
 * of the RDB (with its length, and diskless with an end mark), the partial resynchronization,
 * the offsets and the replica's acknowledgements, whatever the pieces the bytes arrive in. The
 * service's source is compiled in (the services are programs, not libraries).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/syncer/replstream.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLID "4ee1f893cbef3d9e0cf22236155a79a26ac171e3"
#define MARK "0123456789abcdef0123456789abcdef01234567"
#define PING_CMD "*1\r\n$4\r\nPING\r\n" /* 14 bytes of command stream */

/* Feeds text in pieces of at most piece bytes (0: all at once). */
static void feed_down(struct replstream *stream, const char *text, size_t len, size_t piece)
{
    for (size_t at = 0; at < len;) {
        size_t n = piece && len - at > piece ? piece : len - at;

        replstream_downstream(stream, text + at, n);
        at += n;
    }
}

static void feed_str(struct replstream *stream, const char *text, size_t piece)
{
    feed_down(stream, text, strlen(text), piece);
}

static void feed_up(struct replstream *stream, const char *text, size_t piece, uint64_t now)
{
    size_t len = strlen(text);

    for (size_t at = 0; at < len;) {
        size_t n = piece && len - at > piece ? piece : len - at;

        replstream_upstream(stream, text + at, n, now);
        at += n;
    }
}

static const char handshake_up[] =
    "*1\r\n$4\r\nPING\r\n"
    "*3\r\n$8\r\nREPLCONF\r\n$14\r\nlistening-port\r\n$4\r\n6380\r\n"
    "*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n"
    "$6\r\npsync2\r\n";

static void a_full_sync_with_a_length_then_the_stream(void **state)
{
    static const char down[] = "+PONG\r\n+OK\r\n+OK\r\n+FULLRESYNC " REPLID " 1000\r\n"
                               "\n\n$9\r\nREDIS0010" PING_CMD PING_CMD;

    (void)state;
    for (size_t piece = 0; piece < 12; piece++) {
        struct replstream stream;

        replstream_init(&stream);
        feed_up(&stream, handshake_up, piece, 1);
        feed_up(&stream, "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n", piece, 2);
        assert_int_equal(stream.psync_offset, -1);
        feed_down(&stream, down, sizeof(down) - 1 - 2 * 14, piece);
        assert_int_equal(stream.phase, REPLSTREAM_STREAMING);
        assert_true(stream.full_sync);
        assert_string_equal(stream.replid, REPLID);
        assert_int_equal(stream.source_offset, 1000);
        feed_down(&stream, PING_CMD PING_CMD, 28, piece);
        assert_int_equal(stream.source_offset, 1028);
        feed_up(&stream, "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n1028\r\n", piece, 42);
        assert_int_equal(stream.ack_offset, 1028);
        assert_int_equal(stream.ack_at_ms, 42);
        assert_false(stream.up_lost);
    }
}

static void a_diskless_full_sync_ends_at_its_mark(void **state)
{
    char down[512];
    int len;

    (void)state;
    /* The RDB holds half the mark, and a '$' line: only the whole mark ends it. */
    len = snprintf(down, sizeof(down),
                   "+FULLRESYNC " REPLID " 7\r\n$EOF:" MARK "\r\nREDIS0010$3\r\n0123456789"
                   "\xff" MARK PING_CMD);
    for (size_t piece = 0; piece < 50; piece += 7) {
        struct replstream stream;

        replstream_init(&stream);
        feed_down(&stream, down, (size_t)len - 14, piece);
        assert_int_equal(stream.phase, REPLSTREAM_STREAMING);
        assert_int_equal(stream.source_offset, 7);
        feed_down(&stream, PING_CMD, 14, piece);
        assert_int_equal(stream.source_offset, 21);
    }
}

static void a_partial_resync_goes_on_from_the_offset_asked_for(void **state)
{
    struct replstream stream;

    (void)state;
    replstream_init(&stream);
    feed_up(&stream, handshake_up, 0, 1);
    feed_up(&stream, "*3\r\n$5\r\nPSYNC\r\n$40\r\n" REPLID "\r\n$4\r\n3122\r\n", 5, 1);
    assert_int_equal(stream.psync_offset, 3122);
    feed_str(&stream, "+PONG\r\n+OK\r\n+OK\r\n+CONTINUE " REPLID "\r\n", 3);
    assert_int_equal(stream.phase, REPLSTREAM_STREAMING);
    assert_false(stream.full_sync);
    assert_int_equal(stream.source_offset, 3121);
    feed_down(&stream, PING_CMD, 14, 0);
    assert_int_equal(stream.source_offset, 3135);
    /* An older source answers +CONTINUE without its id. */
    replstream_init(&stream);
    feed_up(&stream, "*3\r\n$5\r\nPSYNC\r\n$40\r\n" REPLID "\r\n$2\r\n11\r\n", 0, 1);
    feed_str(&stream, "+CONTINUE\r\n", 0);
    assert_int_equal(stream.source_offset, 10);
}

static void newlines_and_acks_upstream_are_followed_in_any_pieces(void **state)
{
    char up[4096];
    size_t len = 0;

    (void)state;
    /* A replica loading a big RDB sends bare newlines; then an ack a second. */
    len += (size_t)snprintf(up + len, sizeof(up) - len, "\n\n\n");
    for (int i = 0; i < 40; i++) {
        char offset[16];

        snprintf(offset, sizeof(offset), "%d", 14 + 37 * i);
        len += (size_t)snprintf(up + len, sizeof(up) - len,
                                "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%zu\r\n%s\r\n",
                                strlen(offset), offset);
    }
    for (size_t piece = 1; piece < 40; piece++) {
        struct replstream stream;

        replstream_init(&stream);
        feed_up(&stream, up, piece, 9);
        assert_false(stream.up_lost);
        assert_int_equal(stream.ack_offset, 14 + 37 * 39);
    }
}

static void what_is_not_replication_stops_the_following_but_not_the_bytes(void **state)
{
    struct replstream stream;
    char big[REPLSTREAM_UP_MAX + 10];

    (void)state;
    replstream_init(&stream);
    feed_str(&stream, "+FULLRESYNC nonsense\r\n", 0);
    assert_int_equal(stream.phase, REPLSTREAM_LOST);
    feed_down(&stream, PING_CMD, 14, 0); /* ignored: nothing is counted any more */
    assert_int_equal(stream.source_offset, -1);
    replstream_init(&stream);
    feed_str(&stream, "+FULLRESYNC " REPLID " 5\r\nnot a bulk\r\n", 0);
    assert_int_equal(stream.phase, REPLSTREAM_LOST);
    /* A request larger than what is followed upstream: acks are no longer read. */
    replstream_init(&stream);
    memset(big, 'x', sizeof(big));
    big[0] = '*';
    replstream_upstream(&stream, big, sizeof(big), 1);
    assert_true(stream.up_lost);
    feed_up(&stream, "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n9\r\n", 0, 2);
    assert_int_equal(stream.ack_offset, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_sync_with_a_length_then_the_stream),
        cmocka_unit_test(a_diskless_full_sync_ends_at_its_mark),
        cmocka_unit_test(a_partial_resync_goes_on_from_the_offset_asked_for),
        cmocka_unit_test(newlines_and_acks_upstream_are_followed_in_any_pieces),
        cmocka_unit_test(what_is_not_replication_stops_the_following_but_not_the_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
