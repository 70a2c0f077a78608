/* Process-wide logging for the agent and the services: console, journal or file. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
    char ident[64];
    enum log_target target;
    int fd;
    int max_priority;
} logger = {"certvisor", LOG_TARGET_CONSOLE, STDERR_FILENO, LOG_INFO};

int log_target_parse(const char *word, enum log_target *ret_target)
{
    static const char *const names[] = {"auto", "console", "journal", "file"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(word, names[i]) == 0) {
            *ret_target = (enum log_target)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long dev, ino;
    struct stat st;

    /* systemd sets JOURNAL_STREAM=dev:ino for the stream it connected; only
     * trust it when stderr really is that stream (it may have been redirected). */
    if (!stream || sscanf(stream, "%lu:%lu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

int log_setup(const char *ident, enum log_target target, const char *path, int max_priority)
{
    int fd = STDERR_FILENO;

    if (target == LOG_TARGET_AUTO)
        target = log_stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
    if (target == LOG_TARGET_FILE) {
        if (!path)
            return -EINVAL;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
            return -errno;
    }
    if (logger.fd != STDERR_FILENO)
        close(logger.fd);
    snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
    logger.target = target;
    logger.fd = fd;
    logger.max_priority = max_priority;
    return 0;
}

static const char *priority_word(int priority)
{
    static const char *const words[] = {"emerg",   "alert",  "crit", "error",
                                        "warning", "notice", "info", "debug"};
    return words[priority & 7];
}

void log_msg(int priority, const char *fmt, ...)
{
    char line[2048];
    char stamp[40] = "";
    int prefix_len, len;
    va_list ap;

    if (priority > logger.max_priority)
        return;
    if (logger.target == LOG_TARGET_JOURNAL) {
        prefix_len = snprintf(line, sizeof(line), "<%d>", priority);
    } else {
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        prefix_len =
            snprintf(line, sizeof(line), "%s.%03ld %s[%d] %s: ", stamp, ts.tv_nsec / 1000000,
                     logger.ident, (int)getpid(), priority_word(priority));
    }
    va_start(ap, fmt);
    len = vsnprintf(line + prefix_len, sizeof(line) - prefix_len - 1, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    len += prefix_len;
    if (len > (int)sizeof(line) - 2)
        len = (int)sizeof(line) - 2;
    line[len++] = '\n';
    /* One write per line keeps lines whole when several processes share the file. */
    if (write(logger.fd, line, (size_t)len) < 0) {
        /* Nowhere left to report a failed log write. */
    }
}
