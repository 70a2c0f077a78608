/* A non-blocking client for the agent's control socket, for services on a libevent loop. */
#ifndef CERTVISOR_CONTROL_ASYNC_H
#define CERTVISOR_CONTROL_ASYNC_H

#include <event2/event.h>
#include <jansson.h>

/*
 * lib/control_client.h blocks, which suits certvisorctl; a service that
 * serves clients on an event loop must not stall them while the agent works
 * (a change can take as long as the services it reloads). Each call here has
 * its own connection, sends one request and reads its answer on
 * non-blocking I/O, with the protocol's framing and a deadline.
 */
struct control_async;
struct control_call;

/*
 * Called once per call: with the agent's answer (the message that holds
 * "exit", whatever its value; borrowed: valid during the call) and error
 * NULL, or with reply NULL and a one-line reason (no agent, timeout,
 * malformed answer). Streamed {"line": ...} messages before the answer are
 * skipped.
 */
typedef void (*control_async_fn)(void *data, json_t *reply, const char *error);

/* A client for the control socket at socket_path. Returns 0 or -ENOMEM. */
int control_async_new(struct event_base *base, const char *socket_path,
                      struct control_async **ret_client);

/* Cancels every call under way (none is called back) and frees the client. */
void control_async_free(struct control_async *client);

/*
 * Sends request and calls fn with its answer, within timeout_ms. fn is
 * always called from the event loop, never before this returns (even when
 * the agent cannot be reached at all). Returns 0, with the call in *ret_call
 * when ret_call is not NULL (valid until fn is called or the call is
 * cancelled), or -ENOMEM (fn is never called).
 */
int control_async_call(struct control_async *client, const json_t *request, int timeout_ms,
                       control_async_fn fn, void *data, struct control_call **ret_call);

/* Drops a call under way: fn is never called. NULL is a no-op. */
void control_async_cancel(struct control_call *call);

#endif
