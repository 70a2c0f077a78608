/* The offload workers: a few threads that run slow work and hand results back through an eventfd.
 *
 * The loop only starts jobs and finishes them: a job's work runs on a worker
 * with nothing shared but the job itself, and its done callback runs on the
 * loop, so nothing the loop owns ever needs a lock.
 */
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#define OFFLOAD_MAX_THREADS 8

struct offload_job {
    struct offload_job *next;
    offload_work_fn work;
    offload_done_fn done;
    void *data;
};

struct job_list {
    struct offload_job *head, *tail;
};

struct offload {
    struct event_base *base;
    int wake_fd; /* eventfd: a worker writes when it finished a job */
    struct event *wake_event;
    pthread_mutex_t lock; /* guards the two lists and stopping */
    pthread_cond_t work_ready;
    struct job_list queued;   /* not started */
    struct job_list finished; /* run, waiting for the loop */
    size_t backlog;           /* queued + running + finished (read on the loop) */
    bool stopping;
    pthread_t threads[OFFLOAD_MAX_THREADS];
    unsigned n_threads;
};

static void list_push(struct job_list *list, struct offload_job *job)
{
    job->next = NULL;
    if (list->tail)
        list->tail->next = job;
    else
        list->head = job;
    list->tail = job;
}

static struct offload_job *list_take_all(struct job_list *list)
{
    struct offload_job *head = list->head;

    list->head = list->tail = NULL;
    return head;
}

/*
 * Workers run at a lower priority than the loop (Linux's nice applies per thread): on a
 * two-core node, two RSA-4096 key generations would otherwise hold both cores and the
 * loop would wait its turn behind them, late for the watchdog and every answer. Failing
 * to lower it (a seccomp filter, say) leaves the worker as it was.
 */
#define OFFLOAD_WORKER_NICE 10

static void *worker_main(void *arg)
{
    struct offload *offload = arg;
    uint64_t one = 1;

    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), OFFLOAD_WORKER_NICE);
    pthread_mutex_lock(&offload->lock);
    for (;;) {
        struct offload_job *job;

        while (!offload->queued.head && !offload->stopping)
            pthread_cond_wait(&offload->work_ready, &offload->lock);
        if (offload->stopping)
            break;
        job = offload->queued.head;
        offload->queued.head = job->next;
        if (!offload->queued.head)
            offload->queued.tail = NULL;
        pthread_mutex_unlock(&offload->lock);

        job->work(job->data);

        pthread_mutex_lock(&offload->lock);
        list_push(&offload->finished, job);
        /* An eventfd counter cannot fill up with writes of 1; a failed write would only
         * mean the loop is gone. */
        (void)!write(offload->wake_fd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&offload->lock);
    return NULL;
}

static void deliver(struct offload_job *job, bool cancelled)
{
    while (job) {
        struct offload_job *next = job->next;

        job->done(job->data, cancelled);
        free(job);
        job = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct offload *offload = arg;
    struct offload_job *finished, *job;
    uint64_t count;

    (void)what;
    if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&offload->lock);
    finished = list_take_all(&offload->finished);
    pthread_mutex_unlock(&offload->lock);
    for (job = finished; job; job = job->next)
        offload->backlog--;
    deliver(finished, false);
}

int offload_new(struct event_base *base, unsigned n_threads, struct offload **ret_offload)
{
    struct offload *offload;
    sigset_t all, old;
    int r = 0;

    if (n_threads == 0 || n_threads > OFFLOAD_MAX_THREADS)
        return -EINVAL;
    offload = calloc(1, sizeof(*offload));
    if (!offload)
        return -ENOMEM;
    offload->base = base;
    pthread_mutex_init(&offload->lock, NULL);
    pthread_cond_init(&offload->work_ready, NULL);
    offload->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (offload->wake_fd < 0) {
        r = -errno;
        goto fail;
    }
    offload->wake_event = event_new(base, offload->wake_fd, EV_READ | EV_PERSIST, on_wake, offload);
    if (!offload->wake_event || event_add(offload->wake_event, NULL) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    /* Workers take no signals: the loop's handlers and the children's stop signals belong to
     * the main thread. The mask is inherited at creation. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; offload->n_threads < n_threads; offload->n_threads++) {
        r = -pthread_create(&offload->threads[offload->n_threads], NULL, worker_main, offload);
        if (r < 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0)
        goto fail;
    *ret_offload = offload;
    return 0;
fail:
    offload_free(offload);
    return r;
}

bool offload_idle(const struct offload *offload)
{
    return offload->backlog == 0;
}

void offload_free(struct offload *offload)
{
    struct offload_job *left;

    if (!offload)
        return;
    pthread_mutex_lock(&offload->lock);
    offload->stopping = true;
    pthread_cond_broadcast(&offload->work_ready);
    pthread_mutex_unlock(&offload->lock);
    for (unsigned i = 0; i < offload->n_threads; i++)
        pthread_join(offload->threads[i], NULL);
    /* No worker runs now: what is left, started or not, is only freed. */
    left = list_take_all(&offload->finished);
    deliver(left, true);
    deliver(list_take_all(&offload->queued), true);
    if (offload->wake_event)
        event_free(offload->wake_event);
    if (offload->wake_fd >= 0)
        close(offload->wake_fd);
    pthread_cond_destroy(&offload->work_ready);
    pthread_mutex_destroy(&offload->lock);
    free(offload);
}

int offload_submit(struct offload *offload, offload_work_fn work, offload_done_fn done, void *job)
{
    struct offload_job *node = calloc(1, sizeof(*node));

    if (!node)
        return -ENOMEM;
    node->work = work;
    node->done = done;
    node->data = job;
    pthread_mutex_lock(&offload->lock);
    list_push(&offload->queued, node);
    offload->backlog++;
    pthread_cond_signal(&offload->work_ready);
    pthread_mutex_unlock(&offload->lock);
    return 0;
}

size_t offload_backlog(const struct offload *offload)
{
    return offload ? offload->backlog : 0;
}
