/* A blocking client for the agent's control socket, used by certvisorctl and the services. */
#ifndef CERTVISOR_CONTROL_CLIENT_H
#define CERTVISOR_CONTROL_CLIENT_H

#include <jansson.h>

struct control_client;

/* Connects to the socket at path. Returns 0, CV_ENO_AGENT when nobody listens, or -errno. */
int control_client_open(const char *path, struct control_client **ret_client);

void control_client_close(struct control_client *client);

/* Sends one request (the encoded line is wiped: it may hold a key or a password). Returns 0 or a
 * negative error. */
int control_client_send(struct control_client *client, const json_t *request);

/*
 * Reads the next message. Returns 0 with a new reference in *ret_message,
 * CV_ENO_AGENT when the agent closed the connection before any request was
 * sent on it, -ECONNRESET when it closed the connection (stopped or crashed)
 * after a request was sent and before the answer ended, so the request may
 * have been carried out, or another negative error.
 */
int control_client_receive(struct control_client *client, json_t **ret_message);

#endif
