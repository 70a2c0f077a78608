/* Growable byte buffers that move their bytes only when room runs out. */
#include "mbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One TLS record: what a read asks for at least. */
#define MBUF_MIN (16 * 1024)
/* Blocks of MBUF_MIN a thread keeps for the next requests and replies. */
#define POOL_MAX 256

/*
 * Most buffers live for one request or reply and are MBUF_MIN bytes: a pool
 * per thread (each worker is one) saves a malloc and a free each, which
 * showed as 8% of the proxy's time under load.
 */
static __thread void *pool[POOL_MAX];
static __thread size_t pool_n;

static char *block_get(size_t cap)
{
    if (cap == MBUF_MIN && pool_n > 0)
        return pool[--pool_n];
    return malloc(cap);
}

static void block_put(char *data, size_t cap)
{
    if (data && cap == MBUF_MIN && pool_n < POOL_MAX) {
        pool[pool_n++] = data;
        return;
    }
    free(data);
}

void mbuf_pool_clear(void)
{
    while (pool_n > 0)
        free(pool[--pool_n]);
}

char *mbuf_reserve(struct mbuf *b, size_t n)
{
    size_t pending = b->len - b->off, cap;
    char *data;

    if (b->cap - b->len >= n)
        return b->data + b->len;
    /* Moving the waiting bytes to the front is enough when they are few. */
    if (b->off > 0 && b->cap - pending >= n && pending <= b->cap / 2) {
        memmove(b->data, b->data + b->off, pending);
        b->off = 0;
        b->len = pending;
        return b->data + b->len;
    }
    cap = b->cap ? b->cap : MBUF_MIN;
    while (cap - pending < n) {
        if (cap > ((size_t)-1) / 2)
            return NULL;
        cap *= 2;
    }
    data = block_get(cap);
    if (!data)
        return NULL;
    if (pending)
        memcpy(data, b->data + b->off, pending);
    block_put(b->data, b->cap);
    b->data = data;
    b->cap = cap;
    b->off = 0;
    b->len = pending;
    return b->data + b->len;
}

int mbuf_append(struct mbuf *b, const void *data, size_t n)
{
    char *at = mbuf_reserve(b, n);

    if (!at)
        return -ENOMEM;
    memcpy(at, data, n);
    b->len += n;
    return 0;
}

void mbuf_consume(struct mbuf *b, size_t n)
{
    b->off += n;
    if (b->off < b->len)
        return;
    /* Idle connections hold no memory (thousands of them may be open). */
    mbuf_free(b);
}

void mbuf_free(struct mbuf *b)
{
    block_put(b->data, b->cap);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
