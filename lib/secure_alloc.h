/* A wiping allocator for jansson and libevent in the processes that handle keys and passwords. */
#ifndef CERTVISOR_SECURE_ALLOC_H
#define CERTVISOR_SECURE_ALLOC_H

#include <stddef.h>

/*
 * The blocks are ordinary malloc() blocks: secure_alloc_free() wipes a block's
 * whole usable size (malloc_usable_size()) before free(), so no size header is
 * needed, and a block from either side may be released by the other. That
 * matters: jansson's json_dumps() and libevent's evbuffer_readln() hand out
 * memory their callers free() themselves, and a header in front of it would
 * make that free() crash. The price is one memset of each freed block.
 */
void *secure_alloc_malloc(size_t size);

/* Wipes ptr's block and frees it. secure_alloc_free(NULL) is a no-op. */
void secure_alloc_free(void *ptr);

/*
 * realloc() that never leaves the old contents behind: a new block, the bytes
 * copied, the old block wiped and freed. Same contract as realloc(): NULL on
 * failure with ptr untouched; size 0 frees ptr and returns NULL.
 */
void *secure_alloc_realloc(void *ptr, size_t size);

/*
 * Makes jansson (json_set_alloc_funcs) and libevent (event_set_mem_functions)
 * wipe what they free. Call first thing in main(), before any JSON value or
 * event structure exists: memory allocated before is freed without the wipe
 * (harmless, but not wiped). Returns 0.
 */
int secure_alloc_install(void);

/*
 * For the unit tests: the function that gives a block back once it is wiped
 * (free() by default), so that a test can look at the block before it goes.
 * NULL puts free() back.
 */
void secure_alloc_set_release(void (*release)(void *ptr));

#endif
