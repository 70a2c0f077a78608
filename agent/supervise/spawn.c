/* Starting a service's process: identity, environment, descriptors, session, exec. */
#include "spawn.h"

#include "cv_error.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum spawn_stage {
    STAGE_SETSID,
    STAGE_FDS,
    STAGE_GROUPS,
    STAGE_SETGID,
    STAGE_SETUID,
    STAGE_CHDIR,
    STAGE_EXEC
};

static const char *const stage_words[] = {
    "create a session", "set up descriptors", "set supplementary groups",
    "switch group",     "switch user",        "change directory",
    "execute"};

/* The identity a child runs with, resolved in the parent (NSS is not for a forked child). */
struct identity {
    uid_t uid;
    gid_t gid;
    char home[256];
    char user[64];
    int change; /* 1 when the child must switch user and groups */
};

static int resolve_identity(const struct service_config *config, struct identity *id, char *err,
                            size_t err_len)
{
    uid_t uid = config->user ? 0 : getuid();
    struct passwd *pw = config->user ? getpwnam(config->user) : getpwuid(uid);
    struct group *gr;

    if (!pw) {
        snprintf(err, err_len, "user '%s' does not exist",
                 config->user ? config->user : "(the agent's)");
        return CV_ECONFIG;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    snprintf(id->home, sizeof(id->home), "%s", pw->pw_dir);
    snprintf(id->user, sizeof(id->user), "%s", pw->pw_name);
    if (config->group) {
        gr = getgrnam(config->group);
        if (!gr) {
            snprintf(err, err_len, "group '%s' does not exist", config->group);
            return CV_ECONFIG;
        }
        id->gid = gr->gr_gid;
    }
    id->change = id->uid != getuid() || id->gid != getgid();
    if (id->change && geteuid() != 0) {
        snprintf(err, err_len,
                 "cannot run as user '%s': certvisord runs as uid %u, not root (remove 'user' "
                 "and 'service_user', or run the agent as root)",
                 id->user, (unsigned)geteuid());
        return -EPERM;
    }
    return 0;
}

static int env_push(char ***env, size_t *n, const char *entry)
{
    char **grown;
    char *copy = strdup(entry);
    size_t name_len = strcspn(entry, "=");

    if (!copy)
        return -ENOMEM;
    /* A later entry with the same name replaces an earlier one. */
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*env)[i], entry, name_len + 1) == 0) {
            free((*env)[i]);
            (*env)[i] = copy;
            return 0;
        }
    }
    grown = realloc(*env, (*n + 2) * sizeof(char *));
    if (!grown) {
        free(copy);
        return -ENOMEM;
    }
    *env = grown;
    (*env)[(*n)++] = copy;
    (*env)[*n] = NULL;
    return 0;
}

static void env_free(char **env)
{
    for (char **p = env; p && *p; p++)
        free(*p);
    free(env);
}

/* The clean environment: a fixed base, the notify socket, then the service's own entries. */
static char **build_environment(const struct spawn_request *request, const struct identity *id)
{
    char **env = NULL;
    size_t n = 0;
    char entry[4200];
    int r = 0;

    r |= env_push(&env, &n, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    snprintf(entry, sizeof(entry), "HOME=%s", id->home);
    r |= env_push(&env, &n, entry);
    snprintf(entry, sizeof(entry), "USER=%s", id->user);
    r |= env_push(&env, &n, entry);
    snprintf(entry, sizeof(entry), "LOGNAME=%s", id->user);
    r |= env_push(&env, &n, entry);
    if (request->notify_socket) {
        snprintf(entry, sizeof(entry), "NOTIFY_SOCKET=%s", request->notify_socket);
        r |= env_push(&env, &n, entry);
    }
    snprintf(entry, sizeof(entry), "CERTVISOR_SERVICE=%s", request->config->name);
    r |= env_push(&env, &n, entry);
    for (char **p = request->config->environment; *p; p++)
        r |= env_push(&env, &n, *p);
    if (r < 0) {
        env_free(env);
        return NULL;
    }
    return env;
}

static void close_other_descriptors(int keep)
{
    /* close_range() may be missing from older libcs' headers; the syscall is there since 5.9. */
    if (keep > 3)
        syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U);
    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U);
}

static void report_and_exit(int status_fd, enum spawn_stage stage)
{
    struct spawn_failure failure = {stage, errno};

    if (write(status_fd, &failure, sizeof(failure)) < 0) {
        /* The parent sees the exit status instead. */
    }
    _exit(127);
}

/*
 * Runs in the child between fork() and exec(). The agent's only other threads
 * are the offload workers (agent/core/offload.c), which take no NSS or stdio locks
 * and whose malloc locks glibc's fork() resets, so initgroups() is safe here;
 * doing it in the child keeps the NSS modules it loads (every group source is
 * asked) out of the agent's memory.
 */
static void child_exec(const struct spawn_request *request, const struct identity *id, char **env,
                       int status_fd, int null_fd, pid_t parent)
{
    char *const *argv = request->argv ? request->argv : request->config->argv;
    sigset_t none;

    /* Every signal is blocked since before fork(): a stop signal sent this early must find
     * the default action, not the agent's handlers (which would hand it to the agent).
     * SIGPIPE is ignored, as systemd's IgnoreSIGPIPE= does by default: a service outlives
     * the agent (supervisor_adopt()), and its output pipe then has no reader; a write to it
     * must fail, not kill the service. */
    for (int signo = 1; signo < NSIG; signo++)
        signal(signo, signo == SIGPIPE ? SIG_IGN : SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0)
        report_and_exit(status_fd, STAGE_SETSID);
    if (dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(request->stdout_fd >= 0 ? request->stdout_fd : null_fd, STDOUT_FILENO) < 0 ||
        dup2(request->stderr_fd >= 0 ? request->stderr_fd : null_fd, STDERR_FILENO) < 0)
        report_and_exit(status_fd, STAGE_FDS);
    if (id->change) {
        if (initgroups(id->user, id->gid) < 0)
            report_and_exit(status_fd, STAGE_GROUPS);
        if (setresgid(id->gid, id->gid, id->gid) < 0)
            report_and_exit(status_fd, STAGE_SETGID);
        if (setresuid(id->uid, id->uid, id->uid) < 0)
            report_and_exit(status_fd, STAGE_SETUID);
    }
    /* No parent-death signal: the service outlives the agent, and the next agent adopts
     * it. But if the agent is already gone, do not start an orphan nobody recorded. */
    if (getppid() != parent)
        _exit(127);
    if (chdir(request->config->directory) < 0)
        report_and_exit(status_fd, STAGE_CHDIR);
    close_other_descriptors(status_fd);
    execve(argv[0], argv, env);
    report_and_exit(status_fd, STAGE_EXEC);
}

/*
 * The service's own writable directory (redis-server's --dir, say): made if
 * missing, and given to the service's user and group, as systemd's
 * StateDirectory= does, since the state directory itself is the agent's.
 */
static int prepare_state_directory(const struct service_config *config, const struct identity *id,
                                   char *err, size_t err_len)
{
    struct stat st;

    if (!config->state_directory)
        return 0;
    if (mkdir(config->state_directory, 0750) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", config->state_directory, strerror(errno));
        return -errno;
    }
    if (lstat(config->state_directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "%s is not a directory", config->state_directory);
        return -ENOTDIR;
    }
    if (id->change && (st.st_uid != id->uid || st.st_gid != id->gid) &&
        chown(config->state_directory, id->uid, id->gid) < 0) {
        snprintf(err, err_len, "cannot give %s to user '%s': %s", config->state_directory, id->user,
                 strerror(errno));
        return -errno;
    }
    return 0;
}

int spawn_service(const struct spawn_request *request, pid_t *ret_pid, int *ret_status_fd,
                  char *err, size_t err_len)
{
    struct identity id;
    int status_pipe[2], null_fd, r;
    pid_t parent = getpid(), pid;
    sigset_t all, previous;
    char **env;

    r = resolve_identity(request->config, &id, err, err_len);
    if (r == 0)
        r = prepare_state_directory(request->config, &id, err, err_len);
    if (r < 0)
        return r;
    env = build_environment(request, &id);
    if (!env)
        return -ENOMEM;
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0 || pipe2(status_pipe, O_CLOEXEC) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot prepare the process: %s", strerror(errno));
        if (null_fd >= 0)
            close(null_fd);
        env_free(env);
        return r;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);
    pid = fork();
    if (pid == 0)
        child_exec(request, &id, env, status_pipe[1], null_fd, parent);
    r = pid < 0 ? -errno : 0;
    sigprocmask(SIG_SETMASK, &previous, NULL);
    close(status_pipe[1]);
    close(null_fd);
    env_free(env);
    if (r < 0) {
        close(status_pipe[0]);
        snprintf(err, err_len, "fork failed: %s", strerror(-r));
        return r;
    }
    *ret_pid = pid;
    *ret_status_fd = status_pipe[0];
    return 0;
}

int spawn_read_failure(int status_fd, const struct service_config *config, char *buf, size_t len)
{
    return spawn_read_failure_of(status_fd, config, config->argv[0], buf, len);
}

int spawn_read_failure_of(int status_fd, const struct service_config *config, const char *program,
                          char *buf, size_t len)
{
    struct spawn_failure failure;
    ssize_t n = read(status_fd, &failure, sizeof(failure));

    if (n != (ssize_t)sizeof(failure) || failure.stage < 0 || failure.stage > STAGE_EXEC)
        return 0;
    if (failure.stage == STAGE_EXEC)
        snprintf(buf, len, "cannot execute %s: %s", program, strerror(failure.error));
    else if (failure.stage == STAGE_CHDIR)
        snprintf(buf, len, "cannot change directory to %s: %s", config->directory,
                 strerror(failure.error));
    else
        snprintf(buf, len, "cannot %s: %s", stage_words[failure.stage], strerror(failure.error));
    return 1;
}
