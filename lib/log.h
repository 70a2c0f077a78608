/* Process-wide logging for the agent and the services: console, journal or file. */
#ifndef CERTVISOR_LOG_H
#define CERTVISOR_LOG_H

#include <syslog.h>

enum log_target {
    LOG_TARGET_AUTO,    /* journal when stderr is connected to it, console otherwise */
    LOG_TARGET_CONSOLE, /* stderr, with a timestamp */
    LOG_TARGET_JOURNAL, /* stderr with <N> priority prefixes, as journald parses them */
    LOG_TARGET_FILE,    /* appended to a file, with a timestamp */
};

/* Parses "auto", "console", "journal" or "file". Returns 0, or -EINVAL. */
int log_target_parse(const char *word, enum log_target *ret_target);

/*
 * Sets the identifier, target and maximum priority. For LOG_TARGET_FILE, path
 * names the file; it is opened append-only with mode 0640. Returns 0 or a
 * negative errno (the previous target stays in use).
 */
int log_setup(const char *ident, enum log_target target, const char *path, int max_priority);

/* True when LOG_TARGET_AUTO resolves to the journal (JOURNAL_STREAM matches stderr). */
int log_stderr_is_journal(void);

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
