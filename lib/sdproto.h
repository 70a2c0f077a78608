/* The client half of systemd's protocols that the agent needs: notify messages and journal streams.
 */
#ifndef CERTVISOR_SDPROTO_H
#define CERTVISOR_SDPROTO_H

#include <stdint.h>

/*
 * Sends one notify message (lines of KEY=VALUE) to $NOTIFY_SOCKET, as
 * sd_notify() does; abstract sockets ("@name") are supported. Never blocks.
 * Returns 1 when sent, 0 when no socket is set, or a negative errno (-EAGAIN
 * when the receiver's queue is full).
 */
int sdproto_notify(const char *message);

/*
 * Returns the watchdog interval in microseconds when $WATCHDOG_USEC is set
 * for this process ($WATCHDOG_PID absent or equal to getpid()), else 0.
 */
uint64_t sdproto_watchdog_usec(void);

/*
 * Opens a stream to journald (as sd_journal_stream_fd() does): every line
 * written to the returned descriptor becomes a journal entry with
 * SYSLOG_IDENTIFIER=identifier and the given priority. Returns the
 * descriptor (close-on-exec) or a negative errno.
 */
int sdproto_journal_stream(const char *identifier, int priority);

#endif
