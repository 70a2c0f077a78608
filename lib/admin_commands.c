/* The administrative commands a database endpoint refuses, and allow_commands' words for them. */
#include "admin_commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * What administers the shard (its process, persistence, replication, configuration, users,
 * modules, cluster topology, server-wide statistics) rather than the database's data.
 * Reading commands stay allowed (CONFIG GET, INFO, ROLE, LASTSAVE, SLOWLOG, LATENCY's reports,
 * MODULE LIST, ACL WHOAMI/LIST/GETUSER/DRYRUN, MONITOR): docs/design.md says why each line is
 * here and what was left out.
 */
const struct admin_command admin_commands[] = {
    {"shutdown", NULL, "shutdown", "SHUTDOWN", false},
    {"config", "set", "config set", "CONFIG SET", false},
    {"config", "rewrite", "config rewrite", "CONFIG REWRITE", false},
    {"config", "resetstat", "config resetstat", "CONFIG RESETSTAT", false},
    {"debug", NULL, "debug", "DEBUG", false},
    {"replicaof", NULL, "replicaof", "REPLICAOF", false},
    {"slaveof", NULL, "slaveof", "SLAVEOF", false},
    {"failover", NULL, "failover", "FAILOVER", false},
    {"module", "load", "module load", "MODULE LOAD", false},
    {"module", "loadex", "module loadex", "MODULE LOADEX", false},
    {"module", "unload", "module unload", "MODULE UNLOAD", false},
    {"acl", "setuser", "acl setuser", "ACL SETUSER", false},
    {"acl", "deluser", "acl deluser", "ACL DELUSER", false},
    {"acl", "save", "acl save", "ACL SAVE", false},
    {"acl", "load", "acl load", "ACL LOAD", false},
    {"save", NULL, "save", "SAVE", false},
    {"bgsave", NULL, "bgsave", "BGSAVE", false},
    {"bgrewriteaof", NULL, "bgrewriteaof", "BGREWRITEAOF", false},
    {"migrate", NULL, "migrate", "MIGRATE", false},
    {"cluster", NULL, "cluster", "CLUSTER", false},
    {"latency", "reset", "latency reset", "LATENCY RESET", false},
    {"sync", NULL, "sync", "SYNC", true},
    {"psync", NULL, "psync", "PSYNC", true},
    {"replconf", NULL, "replconf", "REPLCONF", true},
};

const size_t admin_commands_n = sizeof(admin_commands) / sizeof(admin_commands[0]);

/* A mask has a bit per entry. */
_Static_assert(sizeof(admin_commands) / sizeof(admin_commands[0]) <= 64,
               "admin_commands holds at most 64 entries: one bit each in a uint64_t");

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * One word of the value, text[0, len), in canonical form into out (lower case, blanks
 * collapsed to one space, none at the ends). Returns false when it does not fit.
 */
static bool canonical_word(const char *text, size_t len, char *out, size_t size)
{
    size_t n = 0;
    bool blank = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (is_blank(c)) {
            blank = n > 0;
            continue;
        }
        if (n + (blank ? 2 : 1) >= size)
            return false;
        if (blank)
            out[n++] = ' ';
        blank = false;
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[n] = '\0';
    return true;
}

static void list_words(char *buf, size_t len)
{
    size_t at = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < admin_commands_n && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", admin_commands[i].word);

        if (n < 0)
            break;
        at += (size_t)n;
    }
}

int admin_commands_parse(const char *text, uint64_t *ret_mask, char *err, size_t err_len)
{
    uint64_t mask = 0;
    const char *at = text;

    for (;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        char word[32], words[512];
        bool found = false;

        if (!canonical_word(at, len, word, sizeof(word)))
            snprintf(word, sizeof(word), "%.*s...", (int)(len < 20 ? len : 20), at);
        for (size_t i = 0; *word && i < admin_commands_n; i++) {
            if (strcmp(word, admin_commands[i].word) == 0) {
                mask |= (uint64_t)1 << i;
                found = true;
            }
        }
        /* An empty value allows nothing; an empty word between commas is a slip. */
        if (!found && (*word || (comma || at != text))) {
            list_words(words, sizeof(words));
            snprintf(err, err_len,
                     "'%s' is not a command the database endpoint refuses; the words are: %s", word,
                     words);
            return -EINVAL;
        }
        if (!comma)
            break;
        at = comma + 1;
    }
    *ret_mask = mask;
    return 0;
}

void admin_commands_format(uint64_t mask, char *buf, size_t len)
{
    size_t at = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < admin_commands_n && at < len; i++) {
        int n;

        if (!(mask & ((uint64_t)1 << i)))
            continue;
        n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", admin_commands[i].word);
        if (n < 0)
            break;
        at += (size_t)n;
    }
}
