/* Watching the certificates that other tools (certbot) keep in files, with inotify. */
#ifndef CERTVISOR_CERT_WATCH_H
#define CERTVISOR_CERT_WATCH_H

#include "cert_settings.h"

#include <event2/event.h>
#include <stddef.h>

/* Files larger than this are not read: a warning names them. */
#define CERT_WATCH_MAX_FILE (1024 * 1024)
/* A pair still inconsistent this long after the last change is warned about (once). */
#define CERT_WATCH_GRACE_MS 5000

struct cert_watch;

/*
 * Called when the pair on disk changed and is consistent: the certificate
 * parses, and the key (if any) matches it. Buffers are only valid during the
 * call; key buffer is wiped after. key_pem is NULL (key_len 0) for a
 * certificate without a key (mtls_trusted_ca). Both buffers are
 * NUL-terminated. The callback must not free the watch.
 */
typedef void (*cert_watch_fn)(void *data, const char *name, const char *cert_pem, size_t cert_len,
                              const char *key_pem, size_t key_len);

/*
 * Watches the n external certificates (the array is copied) on base: the
 * directory of each cert_file and key_file and the directories of the files
 * their symbolic links lead to, as certbot's live/ links into archive/. A
 * burst of changes is read once, settle_ms after its last event. A directory
 * that does not exist is a warning, not an error (a file that does not exist
 * yet is used once it appears). Nothing is read or reported before
 * cert_watch_check_now(). Returns 0, or a negative errno with a message in err.
 */
int cert_watch_new(struct event_base *base, const struct external_cert *certs, size_t n,
                   unsigned settle_ms, cert_watch_fn fn, void *data, struct cert_watch **ret,
                   char *err, size_t err_len);

/*
 * Called with the warning (the whole sentence the log gets) each time a pair is warned about
 * as inconsistent; the text is valid only during the call.
 */
typedef void (*cert_watch_problem_fn)(void *data, const char *name, const char *warning);

/* Sets (or with fn NULL clears) who hears the warnings too, besides the log. */
void cert_watch_on_problem(struct cert_watch *watch, cert_watch_problem_fn fn, void *data);

/* Stops watching and frees everything. NULL is a no-op. */
void cert_watch_free(struct cert_watch *watch);

/*
 * Reads every pair now and reports those that are consistent and differ from
 * what was last reported (used at start-up and after a configuration reload).
 * A pair that is not consistent now is warned about at once.
 */
void cert_watch_check_now(struct cert_watch *watch);

#endif
