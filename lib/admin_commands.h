/*
 * The commands a database endpoint refuses because they administer the shard rather than its
 * data: the one table the proxy (services/proxy/command_policy.c), the agent's conf.d reader
 * and the rendered database list share.
 */
#ifndef CERTVISOR_ADMIN_COMMANDS_H
#define CERTVISOR_ADMIN_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One command, or one subcommand of a command, that the endpoint refuses. */
struct admin_command {
    const char *name;  /* the command, in lower case */
    const char *sub;   /* its subcommand in lower case; NULL: the command whatever follows */
    const char *word;  /* how allow_commands names it: "config set" */
    const char *shown; /* how errors name it: "CONFIG SET" */
    /*
     * The replication handshake (SYNC, PSYNC, REPLCONF): allowed to a client whose TLS
     * certificate the database trusts (the syncer of a replica), refused to others.
     */
    bool replication;
};

/* The table, in the order the documentation lists it; entry i is bit (1 << i) of a mask. */
extern const struct admin_command admin_commands[];
extern const size_t admin_commands_n;

/*
 * Parses allow_commands' value: words of the table separated by commas ("config set, debug";
 * any case, blanks between words of one entry collapse, an empty value allows nothing) into a
 * mask of entries. Returns 0, or -EINVAL with "'<word>' is not ...; the words are: ..." in err
 * (the caller names the setting and where it is).
 */
int admin_commands_parse(const char *text, uint64_t *ret_mask, char *err, size_t err_len);

/* The canonical text of a mask, its words in table order ("config set, debug"); "" for 0. */
void admin_commands_format(uint64_t mask, char *buf, size_t len);

#endif
