/* A growable buffer of bytes waiting for a socket: a multiplexed client's requests and replies,
 * and a shared shard connection's requests.
 */
#ifndef CERTVISOR_PROXY_MBUF_H
#define CERTVISOR_PROXY_MBUF_H

#include <stddef.h>

/* The bytes data[off, len) wait; a zeroed mbuf is empty and holds no memory. */
struct mbuf {
    char *data;
    size_t off, len, cap;
};

static inline size_t mbuf_pending(const struct mbuf *b)
{
    return b->len - b->off;
}

static inline const char *mbuf_head(const struct mbuf *b)
{
    return b->data + b->off;
}

/* Room for at least n more bytes at data + len (NULL: no memory); the caller adds to len. */
char *mbuf_reserve(struct mbuf *b, size_t n);

/* Appends n bytes. Returns 0 or -ENOMEM (nothing appended). */
int mbuf_append(struct mbuf *b, const void *data, size_t n);

/* Drops n bytes from the front; an emptied buffer gives its memory back. */
void mbuf_consume(struct mbuf *b, size_t n);

void mbuf_free(struct mbuf *b);

/* Frees the calling thread's pool of free blocks (a worker, as it stops). */
void mbuf_pool_clear(void);

#endif
