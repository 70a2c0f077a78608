/* Watching the certificates that other tools (certbot) keep in files, with inotify. */
#include "cert_watch.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes in place, renames into place, links swapped, modes changed, and the directory going. */
#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB |            \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define MAX_LINKS 40 /* links followed from one path: the kernel's own limit */
#define DIGEST_LEN 32

/* A file name in a watched directory: an event for it concerns the pair that holds it. */
struct watched_name {
    int wd;
    char *base;
};

/* A directory under watch. Two paths to one directory share its descriptor. */
struct watched_dir {
    int wd;
    char *path;  /* the path it was first added by, for messages */
    bool in_use; /* named by some pair at the last resolution */
};

struct pair {
    struct cert_watch *watch;
    struct external_cert conf;
    struct watched_name *names; /* the files, the links leading to them, and their targets */
    size_t n_names;
    char *unwatched;     /* the directory last found impossible to watch, to say it once */
    struct event *grace; /* CERT_WATCH_GRACE_MS after a read that found the pair inconsistent */
    bool dirty;          /* an event concerned the pair since it was last read */
    bool reported_valid;
    unsigned char reported[DIGEST_LEN]; /* of the content last reported */
    bool warned_valid;
    unsigned char warned[DIGEST_LEN]; /* of the content and the problem last warned about */
};

struct cert_watch {
    struct event_base *base;
    int fd;
    struct event *readable;
    struct event *settle;
    struct timeval settle_tv;
    struct pair *pairs;
    size_t n_pairs;
    struct watched_dir *dirs;
    size_t n_dirs;
    cert_watch_fn fn;
    void *data;
    cert_watch_problem_fn problem_fn; /* NULL: warnings go to the log only */
    void *problem_data;
};

/* Why a pair is read: after a burst of events, on request, or when the grace time is over. */
enum read_cause { READ_EVENT, READ_NOW, READ_GRACE };

/* The bytes of one read of a pair, in OPENSSL_malloc'd buffers that are wiped when freed. */
struct content {
    char *cert;
    size_t cert_len, cert_cap;
    char *key;
    size_t key_len, key_cap;
};

/* --- which directories are watched, and which names in them matter --- */

static struct watched_dir *find_dir(struct cert_watch *watch, int wd)
{
    for (size_t i = 0; i < watch->n_dirs; i++)
        if (watch->dirs[i].wd == wd)
            return &watch->dirs[i];
    return NULL;
}

/* Forgets a directory; the kernel's watch is removed too unless it is gone already. */
static void drop_dir(struct cert_watch *watch, struct watched_dir *dir, bool remove_watch)
{
    if (remove_watch)
        inotify_rm_watch(watch->fd, dir->wd);
    free(dir->path);
    *dir = watch->dirs[--watch->n_dirs];
}

/* Watches dir (once per directory: the kernel gives one inode one descriptor). Returns it or
 * -errno. */
static int watch_dir(struct cert_watch *watch, const char *path)
{
    struct watched_dir *dir, *grown;
    int wd = inotify_add_watch(watch->fd, path, WATCH_MASK);

    if (wd < 0)
        return -errno;
    dir = find_dir(watch, wd);
    if (!dir) {
        grown = realloc(watch->dirs, (watch->n_dirs + 1) * sizeof(*grown));
        if (!grown) {
            inotify_rm_watch(watch->fd, wd);
            return -ENOMEM;
        }
        watch->dirs = grown;
        dir = &grown[watch->n_dirs];
        *dir = (struct watched_dir){wd, strdup(path), false};
        if (!dir->path) {
            inotify_rm_watch(watch->fd, wd);
            return -ENOMEM;
        }
        watch->n_dirs++;
    }
    dir->in_use = true;
    return wd;
}

static void clear_names(struct pair *pair)
{
    for (size_t i = 0; i < pair->n_names; i++)
        free(pair->names[i].base);
    free(pair->names);
    pair->names = NULL;
    pair->n_names = 0;
}

static void say_unwatched(struct pair *pair, const char *dir, int r, bool loud)
{
    const char *hint = r == -ENOENT    ? " (it does not exist: create it, then reload)"
                       : r == -ENOSPC  ? " (raise the sysctl fs.inotify.max_user_watches)"
                       : r == -ENOTDIR ? " (not a directory)"
                                       : "";

    if (pair->unwatched && strcmp(pair->unwatched, dir) == 0)
        return;
    free(pair->unwatched);
    pair->unwatched = strdup(dir);
    log_msg(loud ? LOG_WARNING : LOG_DEBUG,
            "certificate '%s' (%s): cannot watch %s: %s%s; changes there go unnoticed",
            pair->conf.name, pair->conf.source, dir, strerror(-r), hint);
}

/* Adds the directory and base name of path (absolute) to what the pair watches. */
static int add_name(struct pair *pair, const char *path, bool loud)
{
    const char *slash = strrchr(path, '/');
    struct watched_name *grown;
    char dir[PATH_MAX];
    size_t dir_len;
    int wd;

    if (!slash || !slash[1])
        return 0;
    dir_len = slash == path ? 1 : (size_t)(slash - path);
    if (dir_len >= sizeof(dir))
        return 0;
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
    wd = watch_dir(pair->watch, dir);
    if (wd == -ENOMEM)
        return wd;
    if (wd < 0) {
        say_unwatched(pair, dir, wd, loud);
        return 0;
    }
    for (size_t i = 0; i < pair->n_names; i++)
        if (pair->names[i].wd == wd && strcmp(pair->names[i].base, slash + 1) == 0)
            return 0;
    grown = realloc(pair->names, (pair->n_names + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    pair->names = grown;
    grown[pair->n_names].wd = wd;
    grown[pair->n_names].base = strdup(slash + 1);
    if (!grown[pair->n_names].base)
        return -ENOMEM;
    pair->n_names++;
    return 0;
}

/*
 * Adds path, every link on the way to its file and the file itself. certbot's
 * live/x/fullchain.pem links to ../../archive/x/fullchainN.pem and a renewal
 * renames a new link into live/: the link's directory sees the swap, the
 * target's directory a rewrite in place. realpath() adds the file's own
 * directory when a directory on the way is a link.
 */
static int resolve_path(struct pair *pair, const char *path, bool loud)
{
    char current[PATH_MAX], target[PATH_MAX], next[PATH_MAX];
    char *real;
    int r = 0;

    snprintf(current, sizeof(current), "%s", path);
    for (int hops = 0; r == 0 && hops < MAX_LINKS; hops++) {
        ssize_t n;
        int len;

        r = add_name(pair, current, loud);
        n = readlink(current, target, sizeof(target) - 1);
        if (r < 0 || n < 0)
            break;
        target[n] = '\0';
        if (target[0] == '/')
            len = snprintf(next, sizeof(next), "%s", target);
        else
            len = snprintf(next, sizeof(next), "%.*s/%s", (int)(strrchr(current, '/') - current),
                           current, target);
        if (len < 0 || (size_t)len >= sizeof(next))
            break;
        memcpy(current, next, (size_t)len + 1);
    }
    real = r == 0 ? realpath(path, NULL) : NULL;
    if (real)
        r = add_name(pair, real, loud);
    free(real);
    return r;
}

static int resolve_pair(struct pair *pair, bool loud)
{
    int r;

    clear_names(pair);
    r = resolve_path(pair, pair->conf.cert_file, loud);
    if (r == 0 && pair->conf.key_file)
        r = resolve_path(pair, pair->conf.key_file, loud);
    return r;
}

/*
 * Follows every pair's links again (their targets change) and watches the
 * directories they lead to now; directories no pair names any more are let go.
 */
static int resolve_all(struct cert_watch *watch, bool loud)
{
    int r = 0;

    for (size_t i = 0; i < watch->n_dirs; i++)
        watch->dirs[i].in_use = false;
    for (size_t i = 0; r == 0 && i < watch->n_pairs; i++)
        r = resolve_pair(&watch->pairs[i], loud);
    if (r < 0)
        return r; /* keep every watch: some may still be named */
    for (size_t i = watch->n_dirs; i-- > 0;)
        if (!watch->dirs[i].in_use)
            drop_dir(watch, &watch->dirs[i], true);
    return 0;
}

/* --- reading a pair and deciding whether it is consistent --- */

static void free_content(struct content *content)
{
    if (content->cert)
        OPENSSL_clear_free(content->cert, content->cert_cap);
    if (content->key)
        OPENSSL_clear_free(content->key, content->key_cap);
    memset(content, 0, sizeof(*content));
}

/*
 * Reads path (following links) into a NUL-terminated buffer. A problem goes
 * into problem; *lasting says waiting will not solve it. Returns 0 or -1.
 */
static int read_file(const char *path, char **ret_data, size_t *ret_len, size_t *ret_cap,
                     char *problem, size_t problem_len, bool *lasting)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    size_t cap, len = 0;
    char *data;

    if (fd < 0) {
        snprintf(problem, problem_len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(problem, problem_len, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CERT_WATCH_MAX_FILE) {
        snprintf(problem, problem_len, "%s is %s", path,
                 S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file");
        *lasting = true;
        close(fd);
        return -1;
    }
    /* One byte more than the size, to see a file that grows while it is read. */
    cap = (size_t)st.st_size + 2;
    data = OPENSSL_malloc(cap);
    while (data && len < cap - 1) {
        ssize_t n = read(fd, data + len, cap - 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!data) {
        snprintf(problem, problem_len, "out of memory while reading %s", path);
        return -1;
    }
    if (len > (size_t)st.st_size) {
        snprintf(problem, problem_len, "%s changed while it was read", path);
        OPENSSL_clear_free(data, cap);
        return -1;
    }
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    *ret_cap = cap;
    return 0;
}

/* Keys are never asked a password for: an encrypted key is a problem, not a prompt. */
static int no_password(char *buf, int size, int rwflag, void *data)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)data;
    return -1;
}

/* Whether what is left in bio holds only whole certificates (a half-written chain does not). */
static bool rest_is_whole(BIO *bio)
{
    X509 *cert;

    while ((cert = PEM_read_bio_X509(bio, NULL, no_password, NULL)))
        X509_free(cert);
    return ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
}

static void check_key(const struct pair *pair, const struct content *content, X509 *cert,
                      char *problem, size_t problem_len, bool *lasting)
{
    BIO *bio = BIO_new_mem_buf(content->key, (int)content->key_len);
    EVP_PKEY *key = NULL;

    if (!bio) {
        snprintf(problem, problem_len, "out of memory");
    } else if (strstr(content->key, "ENCRYPTED")) {
        snprintf(problem, problem_len,
                 "%s holds an encrypted private key (certvisor needs it unencrypted)",
                 pair->conf.key_file);
        *lasting = true;
    } else if (!(key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL))) {
        snprintf(problem, problem_len, "%s holds no PEM private key", pair->conf.key_file);
    } else if (X509_check_private_key(cert, key) != 1) {
        snprintf(problem, problem_len, "key does not match certificate");
    }
    EVP_PKEY_free(key);
    BIO_free(bio);
}

/*
 * The consistency the watcher vouches for: the certificate file is whole PEM
 * and its first certificate parses, and the key (if any) parses and matches
 * it. Everything else is x509_check()'s, when the caller applies the pair.
 */
static void check_content(const struct pair *pair, const struct content *content, char *problem,
                          size_t problem_len, bool *lasting)
{
    BIO *bio = BIO_new_mem_buf(content->cert, (int)content->cert_len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;

    if (!bio)
        snprintf(problem, problem_len, "out of memory");
    else if (!cert)
        snprintf(problem, problem_len, "%s holds no PEM certificate", pair->conf.cert_file);
    else if (!rest_is_whole(bio))
        snprintf(problem, problem_len, "%s holds a PEM block that does not parse (incomplete?)",
                 pair->conf.cert_file);
    else if (pair->conf.key_file)
        check_key(pair, content, cert, problem, problem_len, lasting);
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
}

/* SHA-256 of the certificate's length and bytes, the key's bytes, and the problem (if any). */
static void digest_of(const struct content *content, const char *problem,
                      unsigned char digest[DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t cert_len = content->cert_len;
    unsigned len = 0;

    memset(digest, 0, DIGEST_LEN);
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, &cert_len, sizeof(cert_len)) != 1 ||
        (content->cert && EVP_DigestUpdate(ctx, content->cert, content->cert_len) != 1) ||
        (content->key && EVP_DigestUpdate(ctx, content->key, content->key_len) != 1) ||
        (problem && EVP_DigestUpdate(ctx, problem, strlen(problem)) != 1) ||
        EVP_DigestFinal_ex(ctx, digest, &len) != 1)
        memset(digest, 0, DIGEST_LEN); /* all zero: compares as "changed" at worst */
    EVP_MD_CTX_free(ctx);
}

static void report(struct pair *pair, const struct content *content)
{
    struct cert_watch *watch = pair->watch;
    unsigned char digest[DIGEST_LEN];

    evtimer_del(pair->grace);
    pair->warned_valid = false;
    digest_of(content, NULL, digest);
    if (pair->reported_valid && memcmp(digest, pair->reported, DIGEST_LEN) == 0) {
        log_debug("certificate '%s': %s unchanged", pair->conf.name, pair->conf.cert_file);
        return;
    }
    memcpy(pair->reported, digest, DIGEST_LEN);
    pair->reported_valid = true;
    log_debug("certificate '%s': new content in %s", pair->conf.name, pair->conf.cert_file);
    watch->fn(watch->data, pair->conf.name, content->cert, content->cert_len, content->key,
              content->key_len);
}

/*
 * After an event, an inconsistent pair is usually one being written: it is
 * read again after the next event, and warned about only when the grace time
 * passes without one. On request (start-up, reload) it is warned about at
 * once. The same content with the same problem is warned about once.
 */
static void complain(struct pair *pair, const struct content *content, const char *problem,
                     bool wait)
{
    const struct timeval grace = {CERT_WATCH_GRACE_MS / 1000, (CERT_WATCH_GRACE_MS % 1000) * 1000};
    unsigned char digest[DIGEST_LEN];
    char warning[3 * PATH_MAX + 512];

    if (wait) {
        log_debug("certificate '%s': pair not consistent yet (%s)", pair->conf.name, problem);
        evtimer_add(pair->grace, &grace);
        return;
    }
    evtimer_del(pair->grace);
    digest_of(content, problem, digest);
    if (pair->warned_valid && memcmp(digest, pair->warned, DIGEST_LEN) == 0) {
        log_debug("certificate '%s': still not consistent (%s)", pair->conf.name, problem);
        return;
    }
    memcpy(pair->warned, digest, DIGEST_LEN);
    pair->warned_valid = true;
    snprintf(warning, sizeof(warning),
             "certificate '%s' (%s): %s (cert_file %s%s%s); nothing is applied until this is "
             "fixed",
             pair->conf.name, pair->conf.source, problem, pair->conf.cert_file,
             pair->conf.key_file ? ", key_file " : "",
             pair->conf.key_file ? pair->conf.key_file : "");
    log_warning("%s", warning);
    if (pair->watch->problem_fn)
        pair->watch->problem_fn(pair->watch->problem_data, pair->conf.name, warning);
}

void cert_watch_on_problem(struct cert_watch *watch, cert_watch_problem_fn fn, void *data)
{
    watch->problem_fn = fn;
    watch->problem_data = data;
}

static void check_pair(struct pair *pair, enum read_cause cause)
{
    struct content content = {0};
    char problem[PATH_MAX + 160] = "";
    bool lasting = false;

    if (read_file(pair->conf.cert_file, &content.cert, &content.cert_len, &content.cert_cap,
                  problem, sizeof(problem), &lasting) == 0 &&
        (!pair->conf.key_file ||
         read_file(pair->conf.key_file, &content.key, &content.key_len, &content.key_cap, problem,
                   sizeof(problem), &lasting) == 0))
        check_content(pair, &content, problem, sizeof(problem), &lasting);
    if (*problem)
        complain(pair, &content, problem, cause == READ_EVENT && !lasting);
    else
        report(pair, &content);
    free_content(&content);
}

/* --- events --- */

/* Marks the pairs an event concerns. Returns whether there was one. */
static bool note_event(struct cert_watch *watch, const struct inotify_event *event)
{
    bool any = false;

    if (event->mask & IN_Q_OVERFLOW) {
        /* Events were lost: every pair may have changed. */
        for (size_t i = 0; i < watch->n_pairs; i++)
            watch->pairs[i].dirty = true;
        return watch->n_pairs > 0;
    }
    if (event->mask & IN_IGNORED) {
        struct watched_dir *dir = find_dir(watch, event->wd);

        /* A watch removed here is forgotten already; otherwise the directory went. */
        if (!dir)
            return false;
        drop_dir(watch, dir, false);
    }
    for (size_t i = 0; i < watch->n_pairs; i++) {
        struct pair *pair = &watch->pairs[i];

        for (size_t j = 0; j < pair->n_names; j++) {
            if (pair->names[j].wd == event->wd &&
                (event->len == 0 || strcmp(pair->names[j].base, event->name) == 0)) {
                pair->dirty = true;
                any = true;
            }
        }
    }
    return any;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct cert_watch *watch = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;

    (void)what;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *event = (const struct inotify_event *)p;

            any |= note_event(watch, event);
            p += sizeof(*event) + event->len;
        }
    }
    if (!any)
        return;
    if (resolve_all(watch, false) < 0)
        log_warning("certificate files: out of memory while following links");
    /* Adding an event that is pending already restarts its timeout: a burst is read once. */
    evtimer_add(watch->settle, &watch->settle_tv);
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    struct cert_watch *watch = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < watch->n_pairs; i++) {
        if (watch->pairs[i].dirty) {
            watch->pairs[i].dirty = false;
            check_pair(&watch->pairs[i], READ_EVENT);
        }
    }
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    check_pair(arg, READ_GRACE);
}

/* --- life cycle --- */

static int copy_conf(struct external_cert *to, const struct external_cert *from)
{
    to->name = strdup(from->name);
    to->cert_file = strdup(from->cert_file);
    to->key_file = from->key_file ? strdup(from->key_file) : NULL;
    to->source = strdup(from->source ? from->source : "conf.d");
    return to->name && to->cert_file && (to->key_file || !from->key_file) && to->source ? 0
                                                                                        : -ENOMEM;
}

static int set_error(char *err, size_t err_len, int r, const char *what)
{
    snprintf(err, err_len, "%s: %s%s", what, strerror(-r),
             r == -EMFILE ? " (raise the sysctl fs.inotify.max_user_instances)" : "");
    return r;
}

int cert_watch_new(struct event_base *base, const struct external_cert *certs, size_t n,
                   unsigned settle_ms, cert_watch_fn fn, void *data, struct cert_watch **ret,
                   char *err, size_t err_len)
{
    struct cert_watch *watch = calloc(1, sizeof(*watch));
    int r = 0;

    if (!watch)
        return set_error(err, err_len, -ENOMEM, "cannot watch certificate files");
    watch->base = base;
    watch->fn = fn;
    watch->data = data;
    watch->settle_tv.tv_sec = settle_ms / 1000;
    watch->settle_tv.tv_usec = (settle_ms % 1000) * 1000;
    watch->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch->fd < 0) {
        r = set_error(err, err_len, -errno, "cannot start inotify");
        goto fail;
    }
    watch->readable = event_new(base, watch->fd, EV_READ | EV_PERSIST, on_readable, watch);
    watch->settle = evtimer_new(base, on_settled, watch);
    watch->pairs = calloc(n ? n : 1, sizeof(*watch->pairs));
    if (!watch->readable || !watch->settle || !watch->pairs || event_add(watch->readable, NULL) < 0)
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct pair *pair = &watch->pairs[i];

        watch->n_pairs++;
        pair->watch = watch;
        pair->grace = evtimer_new(base, on_grace, pair);
        r = pair->grace ? copy_conf(&pair->conf, &certs[i]) : -ENOMEM;
    }
    if (r == 0)
        r = resolve_all(watch, true);
    if (r < 0) {
        set_error(err, err_len, r, "cannot watch certificate files");
        goto fail;
    }
    *ret = watch;
    return 0;
fail:
    cert_watch_free(watch);
    return r;
}

void cert_watch_free(struct cert_watch *watch)
{
    if (!watch)
        return;
    for (size_t i = 0; i < watch->n_pairs; i++) {
        struct pair *pair = &watch->pairs[i];

        if (pair->grace)
            event_free(pair->grace);
        clear_names(pair);
        free(pair->unwatched);
        free(pair->conf.name);
        free(pair->conf.cert_file);
        free(pair->conf.key_file);
        free(pair->conf.source);
    }
    free(watch->pairs);
    for (size_t i = 0; i < watch->n_dirs; i++)
        free(watch->dirs[i].path);
    free(watch->dirs);
    if (watch->readable)
        event_free(watch->readable);
    if (watch->settle)
        event_free(watch->settle);
    if (watch->fd >= 0)
        close(watch->fd); /* and with it every watch */
    free(watch);
}

void cert_watch_check_now(struct cert_watch *watch)
{
    if (resolve_all(watch, false) < 0)
        log_warning("certificate files: out of memory while following links");
    for (size_t i = 0; i < watch->n_pairs; i++) {
        watch->pairs[i].dirty = false;
        check_pair(&watch->pairs[i], READ_NOW);
    }
}
