/* How certvisorctl reads typed words against the command table: groups, suggestions, arity. */
#ifndef CERTVISOR_COMMAND_WORDS_H
#define CERTVISOR_COMMAND_WORDS_H

#include <stddef.h>

/*
 * How many of the words name a group of commands or a command: the longest
 * n such that argv[0..n) are the first n words of some command ("cluster"
 * and "cluster certificate" for "cluster certificate set"). 0 when the first
 * word begins no command.
 */
int command_words_known(int argc, char **argv);

/*
 * Writes into buf, separated by ", " and in table order without repeats, the
 * words that may follow argv[0..n) ("certificate, config" after "cluster";
 * the top-level commands for n = 0). Returns how many there are.
 */
int command_words_next(int n, char **argv, char *buf, size_t len);

/*
 * The word that may follow argv[0..n) closest to typo: one that typo begins
 * (when only one does), or one at most two edits away (the nearest), or one
 * that holds typo's letters in order (when only one does: "certfile"). NULL
 * when none is close; the pointer is into the command table, until the next
 * space.  ret_len is set to the word's length.
 */
const char *command_words_suggest(int n, char **argv, const char *typo, size_t *ret_len);

/*
 * Of the NULL-terminated choices, the one closest to typo by the same rule,
 * or NULL ("keyfile" gives "key_file").
 */
const char *command_words_closest(const char *typo, const char *const *choices);

/*
 * The most positional arguments a command's usage line allows, options and
 * their values not counted ("show <name>" 1, "list" 0, "tail [-f] [-n
 * <lines>] <name> [stdout|stderr]" 2), or -1 when it takes any number ("...").
 */
int command_words_max_args(int command);

#endif
