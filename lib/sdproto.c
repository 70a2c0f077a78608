/* The client half of systemd's protocols that the agent needs: notify messages and journal streams.
 */
#include "sdproto.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_STDOUT_SOCKET "/run/systemd/journal/stdout"

/* Fills addr from a socket path; '@' names an abstract socket. Returns the address length. */
static int socket_address(const char *path, struct sockaddr_un *addr, socklen_t *ret_len)
{
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(addr->sun_path) || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, len);
    if (path[0] == '@')
        addr->sun_path[0] = '\0';
    *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    return 0;
}

int sdproto_notify(const char *message)
{
    /* Kept open: the watchdog pings for the life of the process, one sendto() each. */
    static int fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    socklen_t addr_len;
    ssize_t sent;
    int r;

    if (!path)
        return 0;
    r = socket_address(path, &addr, &addr_len);
    if (r < 0)
        return r;
    if (fd < 0) {
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
    }
    /* The receiver learns who sent it from the kernel (SO_PASSCRED), not from us.
     * MSG_DONTWAIT: a receiver that stopped reading must not stall the caller's
     * event loop; the message is then lost and -EAGAIN returned. */
    sent = sendto(fd, message, strlen(message), MSG_NOSIGNAL | MSG_DONTWAIT,
                  (struct sockaddr *)&addr, addr_len);
    return sent < 0 ? -errno : 1;
}

uint64_t sdproto_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");

    if (!usec || (pid && atol(pid) != (long)getpid()))
        return 0;
    return strtoull(usec, NULL, 10);
}

int sdproto_journal_stream(const char *identifier, int priority)
{
    struct sockaddr_un addr;
    socklen_t addr_len;
    char header[256];
    int fd, len;

    socket_address(JOURNAL_STDOUT_SOCKET, &addr, &addr_len);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0 || shutdown(fd, SHUT_RD) < 0) {
        int err = errno;

        close(fd);
        return -err;
    }
    /* journald's stream header: identifier, unit (empty), priority, level prefix,
     * then forwarding to syslog, kmsg and console (left to journald's defaults: off). */
    len = snprintf(header, sizeof(header), "%s\n\n%d\n0\n0\n0\n0\n", identifier, priority);
    if (len < 0 || len >= (int)sizeof(header) || write(fd, header, (size_t)len) != len) {
        close(fd);
        return -EIO;
    }
    return fd;
}
