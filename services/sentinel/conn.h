/* One client connection: telling TLS from plain, the handshake, requests and replies, closing. */
#ifndef CERTVISOR_SENTINEL_CONN_H
#define CERTVISOR_SENTINEL_CONN_H

#include "server.h"

/*
 * Serves fd, a client socket just accepted (non-blocking), until the client
 * leaves; the connection owns fd from here, even on failure. Returns 0, or
 * -ENOMEM when the connection could not be set up (fd is closed).
 */
int conn_start(struct server *server, int fd);

/* Closes every connection of server at once (at shutdown). */
void conn_close_all(struct server *server);

#endif
