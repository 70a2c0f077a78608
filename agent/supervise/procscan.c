/* Finding processes through /proc: the members of a session, the children of the agent. */
#include "procscan.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* /proc/<pid>/stat after the command name, into buf. Returns it, or NULL. */
static const char *stat_fields(pid_t pid, char *buf, size_t len)
{
    char path[64];
    const char *after_comm;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return NULL;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: parse after the last ')'. */
    after_comm = strrchr(buf, ')');
    return after_comm ? after_comm + 1 : NULL;
}

/* Reads ppid and session from /proc/<pid>/stat. Returns 0 or -1. */
static int read_stat(pid_t pid, pid_t *ret_ppid, pid_t *ret_session)
{
    char buf[512];
    const char *fields = stat_fields(pid, buf, sizeof(buf));
    int ppid, pgrp, session;
    char state;

    if (!fields || sscanf(fields, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
        return -1;
    *ret_ppid = ppid;
    *ret_session = session;
    return 0;
}

static int signal_matching(pid_t want_ppid, pid_t want_session, int signo)
{
    DIR *dir = opendir("/proc");
    struct dirent *entry;
    int count = 0;

    if (!dir)
        return 0;
    while ((entry = readdir(dir))) {
        pid_t pid, ppid, session;

        if (!isdigit((unsigned char)entry->d_name[0]))
            continue;
        pid = (pid_t)atoi(entry->d_name);
        if (read_stat(pid, &ppid, &session) < 0)
            continue;
        if ((want_ppid > 0 && ppid == want_ppid) ||
            (want_session > 0 && session == want_session && pid != want_session)) {
            if (kill(pid, signo) == 0)
                count++;
        }
    }
    closedir(dir);
    return count;
}

int procscan_signal_session(pid_t sid, int signo)
{
    return signal_matching(0, sid, signo);
}

int procscan_signal_children(pid_t parent, int signo)
{
    return signal_matching(parent, 0, signo);
}

int procscan_start_time(pid_t pid, unsigned long long *ret_start_time)
{
    char buf[1024];
    const char *fields = stat_fields(pid, buf, sizeof(buf));

    /* Fields 3 to 21 (state .. itrealvalue) are skipped, then field 22. */
    if (!fields || sscanf(fields,
                          " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                          "%*d %*d %llu",
                          ret_start_time) != 1)
        return -1;
    return 0;
}
