/*
 * Preloaded into slurmdbd by tests/slurm_cluster.py: slurmdbd 22.05 listens on the wildcard address
 * and has no setting to change that (slurmctld and slurmd have CommunicationParameters), so an IPv4
 * or IPv6 wildcard bind() is turned into a bind to the loopback address. Every other bind() is left
 * as it is.
 *
 *   gcc -shared -fPIC -O2 -o bind_loopback.so bind_loopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (!real_bind)
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in pinned;
        memcpy(&pinned, addr, sizeof pinned);
        if (pinned.sin_addr.s_addr == htonl(INADDR_ANY)) {
            pinned.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&pinned, sizeof pinned);
        }
    }
    if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 pinned;
        memcpy(&pinned, addr, sizeof pinned);
        if (memcmp(&pinned.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0) {
            pinned.sin6_addr = in6addr_loopback;
            return real_bind(fd, (const struct sockaddr *)&pinned, sizeof pinned);
        }
    }
    return real_bind(fd, addr, len);
}
