/*
 * certvisor-tlssvc: a TLS service for tests, built on lib/tls_context.h, that serves the
 * TLS file certvisord renders and reloads it on SIGHUP without dropping connections.
 *
 *   certvisor-tlssvc --config FILE --port PORT [--name NAME] [--reject-reload]
 *
 * It listens on 127.0.0.1:PORT (0: any free port; the start line names it) and answers
 * lines over TLS: "PING" with "PONG NAME", "WHO" with the SHA-256 fingerprint ("AB:CD:..."
 * upper case) of the certificate the connection was made with, anything else with
 * "ERR unknown command". A connection keeps the context, and so the certificate, it was
 * made with: after a reload old connections still answer WHO with the old certificate.
 *
 * Readiness and reloads speak the notify protocol through libsystemd: READY=1 once the
 * socket listens; on SIGHUP RELOADING=1 with MONOTONIC_USEC, the reload, then READY=1.
 * A reload that fails ends the service (exit 1, the error on stderr): the agent's
 * rollback restarts it with the previous files. --reject-reload fails every reload
 * without trying. SIGTERM (or SIGINT) sends STOPPING=1, closes everything and exits 0.
 * A start that fails (configuration, socket) exits 1 before READY=1.
 *
 * stdout gets one line at start, "NAME serving on 127.0.0.1:PORT with certificate FP",
 * and one per reload, "NAME reloaded: certificate FP".
 */
#include "tls_context.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define NAME_MAX_LEN 64
#define LINE_MAX_LEN 1024  /* a longer line is answered with an error and the connection closed */
#define FINGERPRINT_LEN 96 /* 32 "AB" pairs, 31 colons, NUL */
#define REPLY_MAX 128      /* the longest reply: "PONG " NAME or a fingerprint, and "\n" */
#define OUT_MAX 4096

struct conn {
    int fd;
    SSL *ssl; /* holds a reference to the context it was made with */
    bool established;
    bool closing; /* shut down once the output is flushed */
    short events; /* what the last SSL call is waiting for */
    size_t in_len, out_len;
    char in[LINE_MAX_LEN];
    char out[OUT_MAX];
};

static struct {
    const char *config;
    const char *name;
    long port;
    bool reject_reload;
} opt = {.port = -1};

static struct conn *conns[MAX_CONNS];
static size_t n_conns;

static void usage(FILE *out)
{
    fprintf(out, "Usage: certvisor-tlssvc --config FILE --port PORT [options]\n"
                 "  --config FILE     the TLS file certvisord renders (certvisor format)\n"
                 "  --port PORT       listen on 127.0.0.1:PORT (0: any free port)\n"
                 "  --name NAME       name in answers and output (default $CERTVISOR_SERVICE)\n"
                 "  --reject-reload   on SIGHUP send RELOADING=1 and exit 1\n"
                 "Lines over TLS: PING -> \"PONG NAME\", WHO -> SHA-256 fingerprint of the\n"
                 "certificate the connection was made with.\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"port", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},   {"reject-reload", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    char *end;
    int c;

    opt.name = getenv("CERTVISOR_SERVICE") ? getenv("CERTVISOR_SERVICE") : "tlssvc";
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt.config = optarg;
            break;
        case 'p':
            errno = 0;
            opt.port = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.port < 0 || opt.port > 65535) {
                fprintf(stderr, "certvisor-tlssvc: --port %s: not a port number\n", optarg);
                exit(2);
            }
            break;
        case 'n':
            opt.name = optarg;
            break;
        case 'r':
            opt.reject_reload = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || !opt.config || opt.port < 0) {
        usage(stderr);
        exit(2);
    }
    if (!*opt.name || strlen(opt.name) > NAME_MAX_LEN || strpbrk(opt.name, " \t\r\n")) {
        fprintf(stderr, "certvisor-tlssvc: --name: 1 to %d characters without blanks\n",
                NAME_MAX_LEN);
        exit(2);
    }
}

/* "AB:CD:..." of the SHA-256 of cert's DER, or "-" when there is none. */
static void fingerprint(X509 *cert, char buf[FINGERPRINT_LEN])
{
    static const char digits[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t at = 0;

    if (!cert || !X509_digest(cert, EVP_sha256(), md, &n) || n > 32) {
        ERR_clear_error();
        strcpy(buf, "-");
        return;
    }
    for (unsigned int i = 0; i < n; i++) {
        if (i)
            buf[at++] = ':';
        buf[at++] = digits[md[i] >> 4];
        buf[at++] = digits[md[i] & 0xf];
    }
    buf[at] = '\0';
}

/* The fingerprint of the certificate new connections get. */
static void current_fingerprint(struct tls_context_holder *holder, char buf[FINGERPRINT_LEN])
{
    SSL_CTX *ctx = tls_holder_get(holder);

    fingerprint(SSL_CTX_get0_certificate(ctx), buf);
    SSL_CTX_free(ctx);
}

static int listen_on(long port, long *ret_port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof(addr);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    *ret_port = ntohs(addr.sin_port);
    return fd;
}

static void conn_close(size_t i)
{
    struct conn *c = conns[i];

    SSL_free(c->ssl);
    close(c->fd);
    free(c);
    conns[i] = conns[--n_conns];
    conns[n_conns] = NULL;
}

/* Sends close_notify if the socket takes it at once; the connection is closed either way. */
static void conn_shutdown(struct conn *c)
{
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
}

/*
 * After an SSL call that did not complete: true with c->events set when it waits for
 * the socket, false when the connection is over.
 */
static bool conn_wait(struct conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        c->events = POLLIN;
        return true;
    case SSL_ERROR_WANT_WRITE:
        c->events = POLLOUT;
        return true;
    case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify: answer it */
        conn_shutdown(c);
        return false;
    default: /* reset, EOF without close_notify, failed handshake */
        ERR_clear_error();
        return false;
    }
}

static void reply(struct conn *c, const char *line)
{
    char *out = c->out + c->out_len;
    size_t room = sizeof(c->out) - c->out_len;
    int n;

    if (strcmp(line, "PING") == 0) {
        n = snprintf(out, room, "PONG %s\n", opt.name);
    } else if (strcmp(line, "WHO") == 0) {
        char fp[FINGERPRINT_LEN];

        fingerprint(SSL_get_certificate(c->ssl), fp);
        n = snprintf(out, room, "%s\n", fp);
    } else {
        n = snprintf(out, room, "ERR unknown command\n");
    }
    if (n > 0 && (size_t)n < room)
        c->out_len += (size_t)n;
}

/* Answers the complete lines in c->in while the output has room. True when it answered any. */
static bool answer_lines(struct conn *c)
{
    bool answered = false;
    char *nl;

    while (sizeof(c->out) - c->out_len >= REPLY_MAX && (nl = memchr(c->in, '\n', c->in_len))) {
        size_t used = (size_t)(nl - c->in) + 1;

        *nl = '\0';
        if (nl > c->in && nl[-1] == '\r')
            nl[-1] = '\0';
        reply(c, c->in);
        answered = true;
        c->in_len -= used;
        memmove(c->in, c->in + used, c->in_len);
    }
    return answered;
}

/*
 * Runs the connection until it waits for its socket: handshake, then flush the output,
 * answer the buffered lines, read more. False when it is over and must be closed.
 */
static bool conn_run(struct conn *c)
{
    for (;;) {
        int r;

        ERR_clear_error();
        if (!c->established) {
            r = SSL_accept(c->ssl);
            if (r != 1)
                return conn_wait(c, r);
            c->established = true;
        } else if (c->out_len > 0) {
            /* Without partial writes a write completes or is retried with the same bytes. */
            r = SSL_write(c->ssl, c->out, (int)c->out_len);
            if (r <= 0)
                return conn_wait(c, r);
            c->out_len -= (size_t)r;
            memmove(c->out, c->out + r, c->out_len);
        } else if (c->closing) {
            conn_shutdown(c);
            return false;
        } else if (answer_lines(c)) {
            continue;
        } else if (c->in_len == sizeof(c->in)) {
            c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "ERR line too long\n");
            c->closing = true;
        } else {
            r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - c->in_len));
            if (r <= 0)
                return conn_wait(c, r);
            c->in_len += (size_t)r;
        }
    }
}

/* Accepts what the listening socket has, while there is room. */
static void accept_all(int listen_fd, struct tls_context_holder *holder)
{
    while (n_conns < MAX_CONNS) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;
        SSL_CTX *ctx;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "%s: accept: %s\n", opt.name, strerror(errno));
            return;
        }
        c = calloc(1, sizeof(*c));
        ctx = tls_holder_get(holder);
        ERR_clear_error();
        if (!c || !(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
            char reason[256];

            tls_error_string(reason, sizeof(reason));
            fprintf(stderr, "%s: cannot set up a connection: %s\n", opt.name,
                    *reason ? reason : "out of memory");
            if (c)
                SSL_free(c->ssl);
            free(c);
            SSL_CTX_free(ctx);
            close(fd);
            continue;
        }
        SSL_CTX_free(ctx); /* the SSL has its own reference */
        c->fd = fd;
        SSL_set_accept_state(c->ssl);
        conns[n_conns++] = c;
        if (!conn_run(c))
            conn_close(n_conns - 1);
    }
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* Returns 0, or 1 when the reload failed and the service must end. */
static int reload(struct tls_context_holder *holder)
{
    char err[1024], fp[FINGERPRINT_LEN];

    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    if (opt.reject_reload) {
        fprintf(stderr, "%s: reload rejected (--reject-reload)\n", opt.name);
        return 1;
    }
    if (tls_holder_reload(holder, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: reload failed: %s\n", opt.name, err);
        return 1;
    }
    current_fingerprint(holder, fp);
    printf("%s reloaded: certificate %s\n", opt.name, fp);
    fflush(stdout);
    sd_notify(0, "READY=1");
    return 0;
}

/* Reads the pending signals. Returns -1 to go on, or the exit status. */
static int handle_signals(int signal_fd, struct tls_context_holder *holder)
{
    struct signalfd_siginfo info;

    while (read(signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        if (info.ssi_signo == SIGHUP) {
            if (reload(holder) != 0)
                return 1;
        } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
            sd_notify(0, "STOPPING=1");
            return 0;
        }
    }
    return -1;
}

static int serve(int signal_fd, int listen_fd, struct tls_context_holder *holder)
{
    static struct pollfd fds[2 + MAX_CONNS];

    for (;;) {
        size_t n = n_conns;
        int status;

        fds[0] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
        /* When full, new connections wait in the backlog. */
        fds[1] = (struct pollfd){.fd = n_conns < MAX_CONNS ? listen_fd : -1, .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            fds[2 + i] = (struct pollfd){.fd = conns[i]->fd, .events = conns[i]->events};
        if (poll(fds, 2 + n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "%s: poll: %s\n", opt.name, strerror(errno));
            return 1;
        }
        if (fds[0].revents) {
            status = handle_signals(signal_fd, holder);
            if (status >= 0)
                return status;
        }
        /*
         * Backwards, so that closing (which moves the last connection into the slot)
         * never skips one; connections accepted below are new and already run.
         */
        for (size_t i = n; i-- > 0;) {
            if (fds[2 + i].revents && !conn_run(conns[i]))
                conn_close(i);
        }
        if (fds[1].revents)
            accept_all(listen_fd, holder);
    }
}

int main(int argc, char **argv)
{
    struct tls_context_holder *holder = NULL;
    char err[1024], fp[FINGERPRINT_LEN];
    int signal_fd, listen_fd, status;
    long port = 0;
    sigset_t mask;

    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* a peer gone away is an error from write, not a signal */
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        fprintf(stderr, "%s: signalfd: %s\n", opt.name, strerror(errno));
        return 1;
    }
    if (tls_holder_new(opt.config, TLS_ROLE_SERVER, &holder, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", opt.name, err);
        close(signal_fd);
        return 1;
    }
    listen_fd = listen_on(opt.port, &port);
    if (listen_fd < 0) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1:%ld: %s\n", opt.name, opt.port,
                strerror(-listen_fd));
        tls_holder_free(holder);
        close(signal_fd);
        return 1;
    }
    current_fingerprint(holder, fp);
    printf("%s serving on 127.0.0.1:%ld with certificate %s\n", opt.name, port, fp);
    fflush(stdout);
    sd_notify(0, "READY=1");

    status = serve(signal_fd, listen_fd, holder);

    while (n_conns > 0) {
        if (conns[n_conns - 1]->established)
            conn_shutdown(conns[n_conns - 1]);
        conn_close(n_conns - 1);
    }
    close(listen_fd);
    close(signal_fd);
    tls_holder_free(holder);
    return status;
}
