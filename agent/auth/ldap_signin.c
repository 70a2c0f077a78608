/* Sign-in with a directory account: the request, the helper's run, its answer, the role, the
 * memory of recent successes. */
#include "ldap_signin.h"

#include "cert_names.h"
#include "secure_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

bool ldap_signin_applies(const struct policy *policy, const struct users *users, const char *name)
{
    enum user_role role;

    return policy_enabled(policy, POLICY_LDAP_AUTHENTICATION) &&
           (!users || users_role(users, name, &role) == -ENOENT);
}

struct ldap_signin {
    char helper[PATH_MAX];
    char *request; /* the helper's input: holds the passwords, wiped on free */
    size_t request_len;
    int deadline_s; /* for the whole run: each directory's timeout, and a margin */
    char user[128];
    struct ldap_answer answer;
};

/* Overwrites a JSON string's bytes before the object is freed (jansson does not wipe). */
static void wipe_string(json_t *string)
{
    if (json_is_string(string))
        OPENSSL_cleanse((char *)json_string_value(string), json_string_length(string));
}

static json_t *text_or_null(const struct policy *policy, enum policy_setting setting)
{
    const char *value = policy_text(policy, setting);

    return value ? json_string(value) : json_null();
}

int ldap_signin_new(const struct policy *policy, struct certs *certs, const char *helper,
                    const char *name, const char *password, struct ldap_signin **ret_signin)
{
    struct ldap_signin *signin = calloc(1, sizeof(*signin));
    char cert[PATH_MAX] = "", key[PATH_MAX] = "", ca[PATH_MAX] = "";
    const char *uris = policy_text(policy, POLICY_LDAP_URIS);
    long timeout = policy_number(policy, POLICY_LDAP_TIMEOUT);
    size_t n_uris = 1;
    json_t *root;

    if (!signin)
        return -ENOMEM;
    for (const char *p = uris ? uris : ""; *p; p++)
        n_uris += *p == ' ';
    /* The client certificate and the CA are the store's current files, read by the helper when
     * it runs: a replaced ldap_client is used from the next sign-in on, no restart. */
    if (certs_current_files(certs, CERT_LDAP_CLIENT, cert, sizeof(cert), key, sizeof(key)) < 0)
        cert[0] = key[0] = '\0';
    if (certs_current_files(certs, CERT_LDAP_SERVER_CA, ca, sizeof(ca), NULL, 0) < 0)
        snprintf(ca, sizeof(ca), "%s", "/etc/ssl/certs/ca-certificates.crt"); /* the system's */
    root = json_object();
    json_object_set_new(root, "uris", json_string(uris ? uris : ""));
    json_object_set_new(root, "bind_dn", text_or_null(policy, POLICY_LDAP_BIND_DN));
    json_object_set_new(root, "bind_password", text_or_null(policy, POLICY_LDAP_BIND_PASSWORD));
    json_object_set_new(root, "user", json_string(name));
    json_object_set_new(root, "password", json_string(password));
    json_object_set_new(root, "user_dn_template",
                        text_or_null(policy, POLICY_LDAP_USER_DN_TEMPLATE));
    json_object_set_new(root, "user_search_base",
                        text_or_null(policy, POLICY_LDAP_USER_SEARCH_BASE));
    json_object_set_new(root, "user_filter", text_or_null(policy, POLICY_LDAP_USER_FILTER));
    json_object_set_new(root, "group_search_base",
                        text_or_null(policy, POLICY_LDAP_GROUP_SEARCH_BASE));
    json_object_set_new(root, "group_filter", text_or_null(policy, POLICY_LDAP_GROUP_FILTER));
    json_object_set_new(root, "group_attribute", text_or_null(policy, POLICY_LDAP_GROUP_ATTRIBUTE));
    json_object_set_new(root, "ca_file", json_string(ca));
    json_object_set_new(root, "cert_file", *cert ? json_string(cert) : json_null());
    json_object_set_new(root, "key_file", *key ? json_string(key) : json_null());
    json_object_set_new(root, "timeout", json_integer(timeout));
    signin->request = json_dumps(root, JSON_COMPACT);
    wipe_string(json_object_get(root, "password"));
    wipe_string(json_object_get(root, "bind_password"));
    json_decref(root);
    if (!signin->request || strlen(helper) >= sizeof(signin->helper)) {
        ldap_signin_free(signin);
        return -ENOMEM;
    }
    signin->request_len = strlen(signin->request);
    signin->deadline_s = (int)(timeout * (long)(n_uris > 4 ? 4 : n_uris)) + 5;
    snprintf(signin->helper, sizeof(signin->helper), "%s", helper);
    snprintf(signin->user, sizeof(signin->user), "%s", name);
    *ret_signin = signin;
    return 0;
}

void ldap_signin_free(struct ldap_signin *signin)
{
    if (!signin)
        return;
    if (signin->request) {
        OPENSSL_cleanse(signin->request, signin->request_len);
        free(signin->request);
    }
    ldap_answer_clear(&signin->answer);
    free(signin);
}

/* The helper could not be run or read: the directory cannot be asked, for this reason. */
static void unavailable(struct ldap_answer *answer, const char *helper, const char *why)
{
    answer->result = LDAP_SIGNIN_UNAVAILABLE;
    snprintf(answer->error, sizeof(answer->error), "cannot run %.512s: %s", helper, why);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes the request and reads the answer until the helper closes its output or the deadline;
 * returns the bytes read into out, or -ETIMEDOUT. */
static ssize_t exchange(struct ldap_signin *signin, int to_helper, int from_helper, char *out,
                        size_t cap)
{
    int64_t deadline = now_ms() + (int64_t)signin->deadline_s * 1000;
    size_t sent = 0, got = 0;

    while (sent < signin->request_len) {
        ssize_t n = write(to_helper, signin->request + sent, signin->request_len - sent);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break; /* it exited early: what it said is read below */
        sent += (size_t)n;
    }
    close(to_helper);
    for (;;) {
        struct pollfd pfd = {.fd = from_helper, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t n;

        if (left <= 0)
            return -ETIMEDOUT;
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return -errno;
        if (!pfd.revents)
            continue;
        n = read(from_helper, out + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : (ssize_t)got;
        got += (size_t)n;
        if (got == cap)
            return (ssize_t)got; /* more than an answer can be: the parse refuses it */
    }
}

void ldap_signin_run(struct ldap_signin *signin)
{
    char *const argv[] = {signin->helper, NULL};
    /* No ldap.conf, no ~/.ldaprc: the request is the whole configuration. */
    char *const envp[] = {"LDAPNOINIT=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int to_helper[2], from_helper[2], pidfd, r;
    char *out = malloc(LDAP_ANSWER_MAX + 1);
    sigset_t none, all;
    ssize_t n;
    pid_t pid;

    if (!out || pipe2(to_helper, O_CLOEXEC) < 0) {
        free(out);
        unavailable(&signin->answer, signin->helper, "out of memory or descriptors");
        return;
    }
    if (pipe2(from_helper, O_CLOEXEC) < 0) {
        close(to_helper[0]);
        close(to_helper[1]);
        free(out);
        unavailable(&signin->answer, signin->helper, "out of descriptors");
        return;
    }
    /* The worker blocks every signal; the helper starts with none blocked, all by default. */
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_helper[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_helper[1], STDOUT_FILENO);
    r = posix_spawn(&pid, signin->helper, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(to_helper[0]);
    close(from_helper[1]);
    if (r != 0) {
        close(to_helper[1]);
        close(from_helper[0]);
        free(out);
        unavailable(&signin->answer, signin->helper, strerror(r));
        return;
    }
    /* The agent's loop reaps every child: a pidfd names this one even after that. */
    pidfd = pidfd_open(pid, 0);
    n = exchange(signin, to_helper[1], from_helper[0], out, LDAP_ANSWER_MAX);
    if (n == -ETIMEDOUT && pidfd >= 0)
        pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
    if (pidfd >= 0)
        close(pidfd);
    close(from_helper[0]);
    if (n == -ETIMEDOUT) {
        signin->answer.result = LDAP_SIGNIN_UNAVAILABLE;
        snprintf(signin->answer.error, sizeof(signin->answer.error),
                 "the directory (%s) did not answer within %d s", "ldap_uris", signin->deadline_s);
    } else if (n < 0) {
        unavailable(&signin->answer, signin->helper, "its answer cannot be read");
    } else {
        ldap_answer_parse(out, (size_t)n, &signin->answer);
    }
    free(out);
}

/* Two DNs name the same entry: compared without case and without the spaces after commas
 * ("cn=Admins, dc=x" is "cn=admins,dc=x"). */
static bool same_dn(const char *a, size_t a_len, const char *b)
{
    const char *a_end = a + a_len;

    while (a < a_end && *b) {
        if (*a == ',' && *b == ',') {
            a++;
            b++;
            while (a < a_end && *a == ' ')
                a++;
            while (*b == ' ')
                b++;
            continue;
        }
        if ((*a | 0x20) != (*b | 0x20) && !(*a == *b))
            return false;
        a++;
        b++;
    }
    while (a < a_end && *a == ' ')
        a++;
    return a == a_end && !*b;
}

/* True when one of the ';'-separated DNs of list is group. */
static bool listed(const char *list, const char *group)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ";");
        const char *start = p;

        while (start < p + len && *start == ' ')
            start++;
        if (same_dn(start, (size_t)(p + len - start), group))
            return true;
        p += len + (p[len] == ';');
    }
    return false;
}

int ldap_role_of_groups(const struct policy *policy, json_t *groups, enum user_role *ret_role)
{
    const char *admins = policy_text(policy, POLICY_LDAP_ADMIN_GROUPS);
    const char *viewers = policy_text(policy, POLICY_LDAP_VIEWER_GROUPS);
    json_t *group;
    size_t i;
    bool viewer = false;

    json_array_foreach(groups, i, group)
    {
        if (listed(admins, json_string_value(group))) {
            *ret_role = USER_ROLE_ADMIN;
            return 0;
        }
        viewer = viewer || listed(viewers, json_string_value(group));
    }
    if (!viewer)
        return -ENOENT;
    *ret_role = USER_ROLE_VIEWER;
    return 0;
}

enum ldap_signin_result ldap_signin_outcome(const struct ldap_signin *signin,
                                            const struct policy *policy, enum user_role *ret_role,
                                            const char **ret_error, json_t **detail)
{
    static char why[1200];
    const struct ldap_answer *a = &signin->answer;
    enum ldap_signin_result result = a->result;

    *ret_error = a->error;
    if (result == LDAP_SIGNIN_OK && ldap_role_of_groups(policy, a->groups, ret_role) < 0) {
        snprintf(why, sizeof(why),
                 "%s is in no group of ldap_admin_groups or ldap_viewer_groups (its groups: %zu)",
                 a->dn, json_array_size(a->groups));
        *ret_error = why;
        result = LDAP_SIGNIN_DENIED;
    }
    if (detail)
        *detail = json_pack("{s:s, s:s, s:o, s:s}", "user", signin->user, "dn", a->dn, "groups",
                            a->groups ? json_incref(a->groups) : json_array(), "role",
                            result == LDAP_SIGNIN_OK ? user_role_name(*ret_role) : "");
    return result;
}

/* --- remembered sign-ins --- */

#define CACHE_SLOTS 256

struct cache_entry {
    unsigned char key[32]; /* HMAC(name, password, settings): never the password */
    time_t at;
    enum user_role role;
    bool used;
};

struct ldap_cache {
    unsigned char secret[32]; /* this agent's, made at start: the hashes mean nothing elsewhere */
    struct cache_entry entries[CACHE_SLOTS];
};

int ldap_cache_new(struct ldap_cache **ret_cache)
{
    struct ldap_cache *cache = calloc(1, sizeof(*cache));

    if (!cache || RAND_bytes(cache->secret, sizeof(cache->secret)) != 1) {
        free(cache);
        return -ENOMEM;
    }
    *ret_cache = cache;
    return 0;
}

void ldap_cache_free(struct ldap_cache *cache)
{
    if (!cache)
        return;
    OPENSSL_cleanse(cache, sizeof(*cache));
    free(cache);
}

/* The key of (name, password) under the directory settings in force: a change of them (a new
 * directory, other groups) makes every remembered sign-in miss. */
static bool cache_key(const struct ldap_cache *cache, const struct policy *policy, const char *name,
                      const char *password, unsigned char key[32])
{
    static const enum policy_setting settings[] = {POLICY_LDAP_URIS,
                                                   POLICY_LDAP_USER_SEARCH_BASE,
                                                   POLICY_LDAP_USER_FILTER,
                                                   POLICY_LDAP_USER_DN_TEMPLATE,
                                                   POLICY_LDAP_GROUP_SEARCH_BASE,
                                                   POLICY_LDAP_GROUP_FILTER,
                                                   POLICY_LDAP_GROUP_ATTRIBUTE,
                                                   POLICY_LDAP_ADMIN_GROUPS,
                                                   POLICY_LDAP_VIEWER_GROUPS};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t out_len = 0;
    bool ok = false;

    if (!mctx || !EVP_MAC_init(mctx, cache->secret, sizeof(cache->secret), params))
        goto out;
    /* Each part with its terminating NUL, so that no two inputs run together alike. */
    EVP_MAC_update(mctx, (const unsigned char *)name, strlen(name) + 1);
    EVP_MAC_update(mctx, (const unsigned char *)password, strlen(password) + 1);
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        const char *value = policy_get(policy, settings[i]);

        EVP_MAC_update(mctx, (const unsigned char *)(value ? value : ""),
                       (value ? strlen(value) : 0) + 1);
    }
    /* A key that could not be made matches nothing: never a zeroed key that all would share. */
    ok = EVP_MAC_final(mctx, key, &out_len, 32) == 1 && out_len == 32;
out:
    EVP_MAC_CTX_free(mctx);
    EVP_MAC_free(mac);
    return ok;
}

bool ldap_cache_lookup(struct ldap_cache *cache, const struct policy *policy, const char *name,
                       const char *password, time_t now, enum user_role *ret_role)
{
    long ttl = policy_number(policy, POLICY_LDAP_CACHE_SECONDS);
    unsigned char key[32];

    if (!cache || ttl == 0 || !cache_key(cache, policy, name, password, key))
        return false;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_entry *e = &cache->entries[i];

        if (e->used && now - e->at >= ttl)
            e->used = false;
        if (e->used && CRYPTO_memcmp(e->key, key, sizeof(key)) == 0) {
            *ret_role = e->role;
            return true;
        }
    }
    return false;
}

void ldap_cache_store(struct ldap_cache *cache, const struct policy *policy, const char *name,
                      const char *password, time_t now, enum user_role role)
{
    struct cache_entry *slot = NULL;
    unsigned char key[32];

    if (!cache || policy_number(policy, POLICY_LDAP_CACHE_SECONDS) == 0 ||
        !cache_key(cache, policy, name, password, key))
        return;
    /* A free slot, else the oldest. */
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (!slot || !cache->entries[i].used || cache->entries[i].at < slot->at) {
            slot = &cache->entries[i];
            if (!slot->used)
                break;
        }
    memcpy(slot->key, key, sizeof(key));
    slot->at = now;
    slot->role = role;
    slot->used = true;
}
