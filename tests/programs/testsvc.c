/* certvisor-testsvc: a configurable service for tests; it speaks the notify protocol via
 * libsystemd. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term, got_hup, got_alarm;

static struct {
    bool notify;
    long ready_delay_ms;
    bool crash_on_start;
    long crash_after_ms;
    int exit_code;
    bool ignore_term;
    int grandchildren;
    bool grandchildren_escape;
    bool flood;
    bool reject_reload;
    bool print_on_reload;
    const char *record;
    const char *print;
    const char *name;
} opt = {.notify = true, .crash_after_ms = -1, .exit_code = 1};

static void on_signal(int signo)
{
    if (signo == SIGTERM || signo == SIGINT)
        got_term = 1;
    else if (signo == SIGHUP)
        got_hup = 1;
    else if (signo == SIGALRM)
        got_alarm = 1;
}

/* Appends "<event> <name> <pid> <monotonic ns>" to the record file, for order checks. */
static void record(const char *event)
{
    char line[256];
    struct timespec ts;
    int fd, len;

    if (!opt.record)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    len = snprintf(line, sizeof(line), "%s %s %d %lld\n", event, opt.name, (int)getpid(),
                   (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    fd = open(opt.record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, (size_t)len) < 0) {
            /* the test will notice the missing line */
        }
        close(fd);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !got_term)
        ;
}

static void spawn_grandchildren(void)
{
    for (int i = 0; i < opt.grandchildren; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            if (opt.grandchildren_escape)
                setpgid(0, 0); /* leave the process group, stay in the session */
            signal(SIGTERM, SIG_IGN);
            record("grandchild");
            for (;;)
                pause();
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "Usage: certvisor-testsvc [options]\n"
                    "  --name NAME            name used in records (default $CERTVISOR_SERVICE)\n"
                    "  --no-notify            never send READY=1\n"
                    "  --ready-delay MS       wait before READY=1\n"
                    "  --crash-on-start       exit with --exit-code at once\n"
                    "  --crash-after MS       exit with --exit-code after MS (after READY=1)\n"
                    "  --exit-code N          status for the crashes (default 1)\n"
                    "  --ignore-term          ignore SIGTERM\n"
                    "  --grandchildren N      fork N grandchildren that ignore SIGTERM\n"
                    "  --escape-group         grandchildren leave the process group\n"
                    "  --flood                write lines to stdout as fast as possible\n"
                    "  --reject-reload        on SIGHUP send RELOADING=1 and exit 1\n"
                    "  --print TEXT           print TEXT on stdout and on stderr at start\n"
                    "  --print-on-reload      print \"reloaded\" on stdout at each SIGHUP\n"
                    "  --record FILE          append start/ready/stop/reload events to FILE\n");
}

static void parse(int argc, char **argv)
{
    static const struct option options[] = {{"name", required_argument, NULL, 'n'},
                                            {"no-notify", no_argument, NULL, 'N'},
                                            {"ready-delay", required_argument, NULL, 'd'},
                                            {"crash-on-start", no_argument, NULL, 's'},
                                            {"crash-after", required_argument, NULL, 'a'},
                                            {"exit-code", required_argument, NULL, 'e'},
                                            {"ignore-term", no_argument, NULL, 'i'},
                                            {"grandchildren", required_argument, NULL, 'g'},
                                            {"escape-group", no_argument, NULL, 'G'},
                                            {"flood", no_argument, NULL, 'f'},
                                            {"reject-reload", no_argument, NULL, 'r'},
                                            {"print", required_argument, NULL, 'p'},
                                            {"print-on-reload", no_argument, NULL, 'P'},
                                            {"record", required_argument, NULL, 'R'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;

    opt.name = getenv("CERTVISOR_SERVICE") ? getenv("CERTVISOR_SERVICE") : "testsvc";
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            opt.name = optarg;
            break;
        case 'N':
            opt.notify = false;
            break;
        case 'd':
            opt.ready_delay_ms = atol(optarg);
            break;
        case 's':
            opt.crash_on_start = true;
            break;
        case 'a':
            opt.crash_after_ms = atol(optarg);
            break;
        case 'e':
            opt.exit_code = atoi(optarg);
            break;
        case 'i':
            opt.ignore_term = true;
            break;
        case 'g':
            opt.grandchildren = atoi(optarg);
            break;
        case 'G':
            opt.grandchildren_escape = true;
            break;
        case 'f':
            opt.flood = true;
            break;
        case 'r':
            opt.reject_reload = true;
            break;
        case 'P':
            opt.print_on_reload = true;
            break;
        case 'p':
            opt.print = optarg;
            break;
        case 'R':
            opt.record = optarg;
            break;
        case 'h':
            usage();
            exit(0);
        default:
            usage();
            exit(2);
        }
    }
}

static void flood(void)
{
    char line[128];
    unsigned long n = 0;

    while (!got_term) {
        int len = snprintf(line, sizeof(line), "flood line %lu from %s\n", n++, opt.name);

        if (write(STDOUT_FILENO, line, (size_t)len) < 0 && errno != EINTR)
            break;
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t block, old;

    parse(argc, argv);
    record("start");
    if (opt.print) {
        printf("%s\n", opt.print);
        fflush(stdout);
        fprintf(stderr, "%s (stderr)\n", opt.print);
    }
    if (opt.crash_on_start)
        return opt.exit_code;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (opt.ignore_term)
        signal(SIGTERM, SIG_IGN);
    else
        sigaction(SIGTERM, &sa, NULL);
    spawn_grandchildren();
    if (opt.ready_delay_ms > 0)
        sleep_ms(opt.ready_delay_ms);
    if (opt.notify) {
        /* Recorded first: once READY=1 is sent, a dependant may start (and record) before
         * this process runs again. */
        record("ready");
        sd_notify(0, "READY=1\nSTATUS=serving");
    }
    if (opt.crash_after_ms >= 0) {
        struct itimerval it = {{0, 0},
                               {opt.crash_after_ms / 1000, (opt.crash_after_ms % 1000) * 1000}};

        if (opt.crash_after_ms == 0)
            it.it_value.tv_usec = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }
    if (opt.flood)
        flood();
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!got_term) {
        if (got_alarm) {
            record("crash");
            return opt.exit_code;
        }
        if (got_hup) {
            got_hup = 0;
            sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", 0ULL);
            record("reload");
            if (opt.print_on_reload) {
                printf("reloaded\n");
                fflush(stdout);
            }
            if (opt.reject_reload)
                return 1;
            sd_notify(0, "READY=1");
            continue;
        }
        sigsuspend(&old);
    }
    sd_notify(0, "STOPPING=1");
    record("stop");
    return 0;
}
