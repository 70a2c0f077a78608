/*
 * Unit tests for lib/netconn.c, over socketpairs in this process, plain and TLS: readiness
 * (no system call once a socket is known drained), end of stream and shutdown, the handshake,
 * TLS plaintext buffered beyond one read (delivered without more socket input, by calls and from
 * an event loop), a connection moved to a new owner, sniffing TLS from plain, connecting, and
 * the lingering close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "netconn.h"
#include "netutil.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One TLS record's worth, less than the 16 KiB maximum: sent whole, read in small pieces. */
#define RECORD_BYTES 10000
#define SMALL_READ 100

static SSL_CTX *server_ctx, *client_ctx;

/* A self-signed certificate and its key: these tests are about I/O, not about trust. */
static int make_contexts(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    (void)state;
    assert_true(key && cert && name);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"localhost", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_subject_name(cert, name), 1);
    assert_int_equal(X509_set_issuer_name(cert, name), 1);
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    server_ctx = SSL_CTX_new(TLS_server_method());
    client_ctx = SSL_CTX_new(TLS_client_method());
    assert_true(server_ctx && client_ctx);
    assert_int_equal(SSL_CTX_use_certificate(server_ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(server_ctx, key), 1);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    X509_NAME_free(name);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

static int free_contexts(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    return 0;
}

/* Tells conn what poll() says of its socket now, as an event would. */
static void refresh(struct netconn *conn)
{
    struct pollfd p = {netconn_fd(conn), POLLIN | POLLOUT, 0};

    assert_true(poll(&p, 1, 0) >= 0);
    netconn_set_ready(conn, (short)((p.revents & (POLLIN | POLLHUP | POLLERR) ? EV_READ : 0) |
                                    (p.revents & (POLLOUT | POLLERR) ? EV_WRITE : 0)));
}

/* A connected pair: client and server, plain or TLS with the handshake done. */
static void open_pair(struct netconn *client, struct netconn *server, bool tls)
{
    int fds[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    netconn_init(client, fds[0], false);
    netconn_init(server, fds[1], false);
    if (tls) {
        assert_int_equal(netconn_start_tls(client, client_ctx, false), 0);
        assert_int_equal(netconn_start_tls(server, server_ctx, true), 0);
    }
    for (int round = 0; round < 100; round++) {
        int c = netconn_handshake(client), s = netconn_handshake(server);

        assert_true(c != NETCONN_ERROR && s != NETCONN_ERROR);
        if (c == 1 && s == 1)
            break;
        refresh(client);
        refresh(server);
    }
    assert_true(netconn_is_ready(client) && netconn_is_ready(server));
    assert_int_equal(netconn_is_tls(client), tls);
}

static void write_all(struct netconn *conn, const char *data, size_t len)
{
    for (int round = 0; len > 0 && round < 1000; round++) {
        ssize_t n = netconn_write(conn, data, len);

        assert_true(n > 0 || n == NETCONN_AGAIN);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else {
            refresh(conn);
        }
    }
    assert_int_equal(len, 0);
}

static void plain_bytes_flow_and_end(void **state)
{
    struct netconn a, b;
    char buf[64];

    (void)state;
    open_pair(&a, &b, false);
    assert_string_equal(a.type->name, "plain");
    write_all(&a, "hello", 5);
    /* No event has said readable yet: no system call, and the wait is for reading. */
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), NETCONN_AGAIN);
    assert_int_equal(netconn_wants(&b), EV_READ);
    refresh(&b);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    /* The short read drained the socket: the next call waits without asking the kernel. */
    assert_false(b.readable);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), NETCONN_AGAIN);
    assert_int_equal(netconn_shutdown(&a), 0);
    assert_true(netconn_is_shut(&a));
    refresh(&b);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), 0);
    assert_true(netconn_at_eof(&b));
    /* Half-closed: the other direction still works. */
    write_all(&b, "back", 4);
    refresh(&a);
    assert_int_equal(netconn_read(&a, buf, sizeof(buf)), 4);
    netconn_close(&a);
    netconn_close(&b);
    netconn_close(&b); /* a closed connection is left alone */
    assert_int_equal(netconn_fd(&b), -1);
}

static void tls_bytes_flow_and_close_notify_ends_the_stream(void **state)
{
    struct netconn a, b;
    char buf[64];

    (void)state;
    open_pair(&a, &b, true);
    assert_string_equal(a.type->name, "TLS");
    write_all(&a, "over tls", 8);
    refresh(&b);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "over tls", 8);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), NETCONN_AGAIN);
    assert_int_equal(netconn_shutdown(&a), 0);
    refresh(&b);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), 0);
    assert_true(netconn_at_eof(&b));
    assert_int_equal(ERR_peek_error(), 0);
    netconn_close(&a);
    netconn_close(&b);
}

/*
 * The case an edge-triggered (or a careless level-triggered) reader gets wrong: one record
 * holds more than one read takes. The rest is inside TLS, the socket is drained, and no event
 * will come for it: it must come from the next reads.
 */
static void a_record_larger_than_a_read_is_delivered_without_more_input(void **state)
{
    static char sent[RECORD_BYTES], got[RECORD_BYTES];
    struct netconn a, b;
    size_t total = 0;
    ssize_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(sent); i++)
        sent[i] = (char)('a' + i % 26);
    open_pair(&a, &b, true);
    assert_int_equal(netconn_write(&a, sent, sizeof(sent)), sizeof(sent)); /* one record */
    refresh(&b);
    n = netconn_read(&b, got, SMALL_READ);
    assert_int_equal(n, SMALL_READ);
    total = SMALL_READ;
    /* Read-ahead took the whole record off the socket, which is known drained now. */
    assert_false(b.readable);
    assert_true(netconn_has_pending(&b));
    while ((n = netconn_read(&b, got + total, SMALL_READ)) > 0)
        total += (size_t)n;
    assert_int_equal(n, NETCONN_AGAIN);
    assert_int_equal(total, sizeof(sent));
    assert_memory_equal(got, sent, sizeof(sent));
    assert_false(netconn_has_pending(&b));
    netconn_close(&a);
    netconn_close(&b);
}

struct reader {
    struct netconn conn;
    char got[RECORD_BYTES];
    size_t total;
    int wakeups; /* callbacks that delivered data */
    int calls;   /* callbacks */
    struct event_base *base;
};

/* A reader as the services are: on each callback, reads (small pieces) until NETCONN_AGAIN. */
static void on_readable(void *arg)
{
    struct reader *r = arg;
    size_t before = r->total;
    ssize_t n;

    r->calls++;
    while (r->total < sizeof(r->got) &&
           (n = netconn_read(&r->conn, r->got + r->total,
                             sizeof(r->got) - r->total < SMALL_READ ? sizeof(r->got) - r->total
                                                                    : SMALL_READ)) > 0)
        r->total += (size_t)n;
    if (r->total > before)
        r->wakeups++;
    if (r->total == sizeof(r->got))
        event_base_loopbreak(r->base);
}

static void the_event_loop_reader_gets_a_whole_record_in_one_wakeup(void **state)
{
    static char sent[RECORD_BYTES];
    struct reader *r = calloc(1, sizeof(*r));
    struct timeval limit = {5, 0};
    struct netconn a;

    (void)state;
    assert_non_null(r);
    memset(sent, 'x', sizeof(sent));
    r->base = event_base_new();
    assert_non_null(r->base);
    open_pair(&a, &r->conn, true);
    assert_int_equal(netconn_watch(&r->conn, r->base, on_readable, r), 0);
    assert_int_equal(netconn_write(&a, sent, sizeof(sent)), sizeof(sent));
    event_base_loopexit(r->base, &limit);
    event_base_dispatch(r->base);
    assert_int_equal(r->total, sizeof(sent));
    assert_int_equal(r->wakeups, 1);
    netconn_close(&a);
    netconn_close(&r->conn);
    event_base_free(r->base);
    free(r);
}

static void activation_runs_the_callback_without_claiming_readiness(void **state)
{
    struct reader *r = calloc(1, sizeof(*r));
    struct netconn a;
    int calls;

    (void)state;
    assert_non_null(r);
    r->base = event_base_new();
    open_pair(&a, &r->conn, false);
    assert_int_equal(netconn_watch(&r->conn, r->base, on_readable, r), 0);
    event_base_loop(r->base, EVLOOP_NONBLOCK); /* the first edge: writable */
    calls = r->calls;
    netconn_activate(&r->conn);
    event_base_loop(r->base, EVLOOP_NONBLOCK);
    assert_int_equal(r->calls, calls + 1);
    assert_false(r->conn.readable);
    assert_int_equal(r->total, 0);
    netconn_close(&a);
    netconn_close(&r->conn);
    event_base_free(r->base);
    free(r);
}

/* The TLS layer finds its connection by address: a moved connection must go on working. */
static void a_moved_tls_connection_keeps_working(void **state)
{
    struct netconn a, *first = malloc(sizeof(*first)), second;
    char buf[16];

    (void)state;
    assert_non_null(first);
    open_pair(&a, first, true);
    netconn_move(&second, first);
    assert_int_equal(netconn_fd(first), -1);
    assert_null(netconn_ssl(first));
    netconn_close(first); /* nothing left to close */
    free(first);          /* ASan: a BIO still pointing here would read freed memory */
    write_all(&a, "moved", 5);
    refresh(&second);
    assert_int_equal(netconn_read(&second, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "moved", 5);
    write_all(&second, "back", 4);
    refresh(&a);
    assert_int_equal(netconn_read(&a, buf, sizeof(buf)), 4);
    netconn_close(&a);
    netconn_close(&second);
}

static void the_first_byte_tells_tls_from_plain(void **state)
{
    struct netconn a, b;
    char buf[16];
    int fds[2];

    (void)state;
    open_pair(&a, &b, false);
    assert_int_equal(netconn_sniff_tls(&b), NETCONN_AGAIN);
    write_all(&a, "PING\r\n", 6);
    refresh(&b);
    assert_int_equal(netconn_sniff_tls(&b), NET_SNIFF_PLAIN);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), 6); /* not consumed */
    netconn_close(&a);
    assert_int_equal(netconn_read(&b, buf, sizeof(buf)), NETCONN_AGAIN);
    netconn_close(&b);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    netconn_init(&a, fds[0], false);
    netconn_init(&b, fds[1], false);
    assert_int_equal(netconn_start_tls(&a, client_ctx, false), 0);
    assert_int_equal(netconn_handshake(&a), NETCONN_AGAIN); /* the ClientHello is out */
    assert_int_equal(netconn_wants(&a), EV_READ);
    refresh(&b);
    assert_int_equal(netconn_sniff_tls(&b), NET_SNIFF_TLS);
    assert_int_equal(netconn_start_tls(&b, server_ctx, true), 0);
    for (int round = 0; round < 100 && !(netconn_is_ready(&a) && netconn_is_ready(&b)); round++) {
        assert_true(netconn_handshake(&b) != NETCONN_ERROR);
        assert_true(netconn_handshake(&a) != NETCONN_ERROR);
        refresh(&a);
        refresh(&b);
    }
    assert_true(netconn_is_ready(&a) && netconn_is_ready(&b));
    netconn_close(&a);
    netconn_close(&b);
}

static void connecting_completes_or_fails_in_the_handshake(void **state)
{
    struct sockaddr_in bound;
    socklen_t len = sizeof(bound);
    struct net_address address;
    struct netconn conn;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), in_progress = 0, fd, r;
    struct pollfd p;

    (void)state;
    assert_true(listener >= 0);
    assert_int_equal(net_address_parse("127.0.0.1", 0, &address), 0);
    assert_int_equal(bind(listener, (struct sockaddr *)&address.addr, address.len), 0);
    assert_int_equal(listen(listener, 4), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&bound, &len), 0);
    assert_int_equal(net_address_parse("127.0.0.1", ntohs(bound.sin_port), &address), 0);
    fd = net_connect(&address, &in_progress);
    assert_true(fd >= 0);
    netconn_init(&conn, fd, in_progress);
    if (in_progress) {
        assert_int_equal(netconn_handshake(&conn), NETCONN_AGAIN);
        assert_int_equal(netconn_wants(&conn), EV_WRITE);
    }
    p = (struct pollfd){fd, POLLOUT, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    refresh(&conn);
    assert_int_equal(netconn_handshake(&conn), 1);
    assert_false(netconn_is_connecting(&conn));
    netconn_close(&conn);

    /* Nobody listens any more: the connect fails, and says so. */
    close(listener);
    fd = net_connect(&address, &in_progress);
    if (fd < 0) {
        assert_int_equal(fd, -ECONNREFUSED); /* refused at once, before any connection */
        return;
    }
    netconn_init(&conn, fd, in_progress);
    p = (struct pollfd){fd, POLLOUT, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    refresh(&conn);
    r = netconn_handshake(&conn);
    assert_int_equal(r, NETCONN_ERROR);
    assert_true(netconn_is_connecting(&conn));
    assert_int_equal(netconn_errno(&conn), ECONNREFUSED);
    netconn_close(&conn);
}

static void lingering_discards_input_until_the_peer_closes(void **state)
{
    struct netconn a, b;
    char buf[16];

    (void)state;
    open_pair(&a, &b, true);
    write_all(&a, "unread", 6);
    assert_int_equal(netconn_shutdown(&b), 0); /* close_notify */
    refresh(&b);
    assert_int_equal(netconn_linger(&b), NETCONN_AGAIN); /* FIN sent, the unread bytes gone */
    refresh(&a);
    assert_int_equal(netconn_read(&a, buf, sizeof(buf)), 0); /* the close_notify */
    assert_int_equal(send(netconn_fd(&a), "more", 4, MSG_NOSIGNAL), 4);
    refresh(&b);
    assert_int_equal(netconn_linger(&b), NETCONN_AGAIN);
    netconn_close(&a);
    refresh(&b);
    assert_int_equal(netconn_linger(&b), 0);
    netconn_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_bytes_flow_and_end),
        cmocka_unit_test(tls_bytes_flow_and_close_notify_ends_the_stream),
        cmocka_unit_test(a_record_larger_than_a_read_is_delivered_without_more_input),
        cmocka_unit_test(the_event_loop_reader_gets_a_whole_record_in_one_wakeup),
        cmocka_unit_test(activation_runs_the_callback_without_claiming_readiness),
        cmocka_unit_test(a_moved_tls_connection_keeps_working),
        cmocka_unit_test(the_first_byte_tells_tls_from_plain),
        cmocka_unit_test(connecting_completes_or_fails_in_the_handshake),
        cmocka_unit_test(lingering_discards_input_until_the_peer_closes),
    };

    return cmocka_run_group_tests(tests, make_contexts, free_contexts);
}
