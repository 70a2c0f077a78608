/* A wiping allocator for jansson and libevent (see secure_alloc.h). */
#include "secure_alloc.h"

#include <event2/event.h>
#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static void (*release_block)(void *ptr) = free;

void *secure_alloc_malloc(size_t size)
{
    return malloc(size);
}

void secure_alloc_free(void *ptr)
{
    if (!ptr)
        return;
    /* The whole usable size: what realloc() grew in place may lie past the size asked for. */
    OPENSSL_cleanse(ptr, malloc_usable_size(ptr));
    release_block(ptr);
}

void *secure_alloc_realloc(void *ptr, size_t size)
{
    size_t old_size;
    void *grown;

    if (!ptr)
        return malloc(size);
    if (size == 0) {
        secure_alloc_free(ptr);
        return NULL;
    }
    old_size = malloc_usable_size(ptr);
    /* Shrinking in place would leave the tail unwiped and unreachable: copy in every case. */
    grown = malloc(size);
    if (!grown)
        return NULL;
    memcpy(grown, ptr, old_size < size ? old_size : size);
    secure_alloc_free(ptr);
    return grown;
}

int secure_alloc_install(void)
{
    json_set_alloc_funcs(secure_alloc_malloc, secure_alloc_free);
    event_set_mem_functions(secure_alloc_malloc, secure_alloc_realloc, secure_alloc_free);
    return 0;
}

void secure_alloc_set_release(void (*release)(void *ptr))
{
    release_block = release ? release : free;
}
