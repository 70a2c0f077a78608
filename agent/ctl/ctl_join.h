/* certvisorctl cluster join: its arguments, the password of --user, and the CA's confirmation. */
#ifndef CERTVISOR_CTL_JOIN_H
#define CERTVISOR_CTL_JOIN_H

#include <jansson.h>

/*
 * Fills args and options of "cluster join <peer> (--token <id.secret> | --user <name>
 * [--password-file <file>|-]) [--ca-cert-hash sha256:<hex>] [--address <ip>] [--client-port
 * <port>] [--peer-port <port>]". Without --ca-cert-hash, on a terminal, the peer's cluster CA
 * is fetched and shown, and its hash is taken once the operator confirms it. Returns 0, or -1
 * after printing the problem.
 */
int ctl_join_arguments(int argc, char **argv, json_t *args, json_t *options);

#endif
