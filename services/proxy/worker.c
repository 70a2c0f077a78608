/* Worker threads: an event loop each, the listeners of the generation they serve, and accepting.
 */
#include "worker.h"

#include "conn.h"
#include "generation.h"
#include "log.h"
#include "mbuf.h"
#include "mux.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wakeup and listener: enough to drain bursts, few enough to keep serving others. */
#define ACCEPT_BATCH 64
/* After running out of descriptors, the pause before accepting again (the backlog waits). */
#define ACCEPT_PAUSE_USEC 100000
#define PUBLISH_TIMEOUT_SEC 10
/* Per-connection log lines (rejected clients, unreachable shards) per worker and second. */
#define LOG_LINES_PER_SECOND 10

bool worker_log_allowed(struct worker *worker, unsigned long *ret_suppressed)
{
    time_t now = time(NULL);

    if (now != worker->log_second) {
        worker->log_second = now;
        worker->log_lines = 0;
    }
    if (worker->log_lines >= LOG_LINES_PER_SECOND) {
        worker->log_suppressed++;
        return false;
    }
    worker->log_lines++;
    *ret_suppressed = worker->log_suppressed;
    worker->log_suppressed = 0;
    return true;
}

const char *worker_held_back(unsigned long suppressed, char *buf, size_t len)
{
    if (!suppressed)
        return "";
    snprintf(buf, len, " (%lu similar line%s held back)", suppressed, suppressed == 1 ? "" : "s");
    return buf;
}

static void pause_accepting(struct worker *w)
{
    struct timeval tv = {0, ACCEPT_PAUSE_USEC};

    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].ev)
            event_del(w->listeners[i].ev);
    evtimer_add(w->resume_ev, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].ev)
            event_add(w->listeners[i].ev, NULL);
}

/* Returns false when accepting must stop for this wakeup. */
static bool accept_failed(struct worker *w, const struct worker_listener *l, int error)
{
    unsigned long suppressed;

    switch (error) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return false;
    case EINTR:
    case ECONNABORTED: /* the client gave up while in the backlog */
        return true;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        if (worker_log_allowed(w, &suppressed))
            log_warning("Database '%s': cannot accept connections on %s: %s; pausing 100 ms",
                        l->db->config->name, l->db->listener->name, strerror(error));
        pause_accepting(w);
        return false;
    default:
        if (worker_log_allowed(w, &suppressed))
            log_error("Database '%s': accept on %s: %s", l->db->config->name, l->db->listener->name,
                      strerror(error));
        return false;
    }
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct worker_listener *l = arg;

    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (client >= 0)
            conn_accept(l->worker, l->db, client);
        else if (!accept_failed(l->worker, l, errno))
            return;
    }
}

/* Drops the worker's listener events (the sockets stay open: the listener sets own them). */
static void drop_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].ev)
            event_free(w->listeners[i].ev);
    free(w->listeners);
    w->listeners = NULL;
    w->n_listeners = 0;
}

/*
 * Switches to gen's listeners. Sockets kept from the previous generation are
 * the same sockets, so connections waiting in their backlogs are accepted
 * under the new generation; the main thread closes the dropped ones once
 * every worker has let go. Returns 0 or -ENOMEM (nothing changed).
 */
static int serve(struct worker *w, const struct generation *gen)
{
    struct worker_listener *next = calloc(gen->n + 1, sizeof(*next));

    if (!next)
        return -ENOMEM;
    drop_listeners(w);
    for (size_t i = 0; i < gen->n; i++) {
        next[i].fd = gen->dbs[i].listener->fds[w->index];
        next[i].db = &gen->dbs[i];
        next[i].worker = w;
        next[i].ev = event_new(w->base, next[i].fd, EV_READ | EV_PERSIST, on_accept, &next[i]);
        if (!next[i].ev || event_add(next[i].ev, NULL) < 0) {
            log_error("Worker %zu: cannot watch %s", w->index, gen->dbs[i].listener->name);
            if (next[i].ev)
                event_free(next[i].ev);
            next[i].ev = NULL;
        }
    }
    w->listeners = next;
    w->n_listeners = gen->n;
    w->gen = gen;
    return 0;
}

static void stop_serving(struct worker *w)
{
    drop_listeners(w);
    evtimer_del(w->resume_ev);
    conn_close_all(w);
    mux_close_all(w);
    mbuf_pool_clear(); /* the worker thread's own */
    w->stopped = true;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    const struct generation *gen;
    uint64_t count;
    bool stop;

    (void)what;
    if (read(fd, &count, sizeof(count)) < 0) {
        /* EAGAIN: another wakeup read it; what was posted is read below either way. */
    }
    pthread_mutex_lock(&w->all->lock);
    gen = w->posted;
    w->posted = NULL;
    stop = w->stop_posted;
    pthread_mutex_unlock(&w->all->lock);
    if (stop) {
        stop_serving(w);
        return;
    }
    if (!gen || serve(w, gen) < 0)
        return;
    pthread_mutex_lock(&w->all->lock);
    w->acked = gen;
    pthread_cond_broadcast(&w->all->changed);
    pthread_mutex_unlock(&w->all->lock);
}

/*
 * One batch of events at a time, then the writes they made. After writing,
 * the worker yields the CPU once and looks for events without blocking: the
 * shard and the clients it just wrote to often answer in that moment (on a
 * host with few CPUs they run on this one), and a batch found this way costs
 * no sleep and no wakeup. Those were the largest cost measured (on a 2-CPU
 * virtual machine, tests/bench/README.md): this cuts the proxy's voluntary context
 * switches fourfold (0.5 to 0.12 per request). It blocks once a look finds nothing.
 */
/*
 * The writes of the batch: clients first (a client that waited for room may
 * add requests), then the shared shard connections, until nothing is queued.
 */
static size_t flush_batch(struct worker *w)
{
    size_t n = 0;

    while (w->pending || w->mux_pending) {
        n += conn_flush_pending(w);
        n += mux_flush_pending(w);
    }
    return n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int flags = EVLOOP_ONCE;

    while (!w->stopped) {
        w->batching = true;
        if (event_base_loop(w->base, flags) < 0) {
            log_error("Worker %zu: the event loop failed", w->index);
            break;
        }
        w->batching = false;
        if (flush_batch(w) > 0) {
            sched_yield();
            flags = EVLOOP_ONCE | EVLOOP_NONBLOCK;
        } else {
            flags = EVLOOP_ONCE;
        }
    }
    return NULL;
}

static void worker_free(struct worker *w)
{
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->resume_ev)
        event_free(w->resume_ev);
    conn_pool_clear(w);
    mux_close_all(w);
    if (w->base)
        event_base_free(w->base);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
}

/*
 * A base without locks (one thread uses it) with edge-triggered events and the
 * peer's close reported (epoll).
 */
static struct event_base *new_base(void)
{
    struct event_config *config = event_config_new();
    struct event_base *base = NULL;

    if (config && event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK) == 0 &&
        event_config_require_features(config,
                                      EV_FEATURE_ET | EV_FEATURE_O1 | EV_FEATURE_EARLY_CLOSE) == 0)
        base = event_base_new_with_config(config);
    if (config)
        event_config_free(config);
    return base;
}

static int worker_init(struct workers *all, size_t index, unsigned idle_timeout_seconds)
{
    struct worker *w = &all->list[index];

    w->all = all;
    w->index = index;
    w->idle_timeout_ms = (uint64_t)idle_timeout_seconds * 1000;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return -errno;
    w->base = new_base();
    if (!w->base)
        return -ENOSYS;
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    w->resume_ev = evtimer_new(w->base, on_resume, w);
    if (!w->wake_ev || !w->resume_ev || event_add(w->wake_ev, NULL) < 0)
        return -ENOMEM;
    return -pthread_create(&w->thread, NULL, worker_main, w);
}

static void post_stop(struct workers *workers, size_t n)
{
    uint64_t one = 1;

    pthread_mutex_lock(&workers->lock);
    for (size_t i = 0; i < n; i++)
        workers->list[i].stop_posted = true;
    pthread_mutex_unlock(&workers->lock);
    for (size_t i = 0; i < n; i++)
        if (write(workers->list[i].wake_fd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow here: the worker is woken either way. */
        }
}

int workers_start(struct workers *workers, size_t n, unsigned idle_timeout_seconds, char *err,
                  size_t err_len)
{
    pthread_condattr_t attr;
    size_t started = 0;
    int r = 0;

    memset(workers, 0, sizeof(*workers));
    workers->list = calloc(n, sizeof(*workers->list));
    if (!workers->list) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    workers->n = n;
    pthread_mutex_init(&workers->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&workers->changed, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < n; i++)
        workers->list[i].wake_fd = -1;
    for (; started < n; started++) {
        r = worker_init(workers, started, idle_timeout_seconds);
        if (r < 0)
            break;
    }
    if (r >= 0)
        return 0;
    snprintf(err, err_len, "cannot start worker thread %zu: %s", started,
             r == -ENOSYS ? "no event loop with edge-triggered events (epoll)" : strerror(-r));
    post_stop(workers, started);
    for (size_t i = 0; i < started; i++)
        pthread_join(workers->list[i].thread, NULL);
    for (size_t i = 0; i < n; i++)
        worker_free(&workers->list[i]);
    free(workers->list);
    workers->list = NULL;
    workers->n = 0;
    return r;
}

static bool all_acked(const struct workers *workers, const struct generation *gen)
{
    for (size_t i = 0; i < workers->n; i++)
        if (workers->list[i].acked != gen)
            return false;
    return true;
}

int workers_publish(struct workers *workers, const struct generation *gen)
{
    struct timespec deadline;
    uint64_t one = 1;
    int r = 0;

    pthread_mutex_lock(&workers->lock);
    for (size_t i = 0; i < workers->n; i++)
        workers->list[i].posted = gen;
    pthread_mutex_unlock(&workers->lock);
    for (size_t i = 0; i < workers->n; i++)
        if (write(workers->list[i].wake_fd, &one, sizeof(one)) < 0) {
            /* Only an overflowing counter fails, and then the worker is woken already. */
        }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += PUBLISH_TIMEOUT_SEC;
    pthread_mutex_lock(&workers->lock);
    while (!all_acked(workers, gen) && r == 0)
        r = pthread_cond_timedwait(&workers->changed, &workers->lock, &deadline);
    r = all_acked(workers, gen) ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&workers->lock);
    return r;
}

void workers_stop(struct workers *workers)
{
    if (!workers->list)
        return;
    post_stop(workers, workers->n);
    for (size_t i = 0; i < workers->n; i++)
        pthread_join(workers->list[i].thread, NULL);
    for (size_t i = 0; i < workers->n; i++)
        worker_free(&workers->list[i]);
    pthread_cond_destroy(&workers->changed);
    pthread_mutex_destroy(&workers->lock);
    free(workers->list);
    workers->list = NULL;
    workers->n = 0;
}
