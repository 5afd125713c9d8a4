/* A TCP proxy that delays every chunk by --delay seconds in each direction, keeping their order: a
 * remote as far away as a real one, in front of a loopback server. The same contract as
 * Tests/Fixtures/delay_proxy.py (which the tests use, and which logs connections), in C for
 * scripts/bench: the Python one spent about 2 ms of CPU per connection, and in the latency round that
 * is CPU a real network does not take from the machine gitmirror runs on.
 *
 *   delay_proxy --host 127.0.0.2 --port P --target-port T --delay 0.05
 *
 * One thread, epoll. Every chunk read is released `delay` after it arrived; since every chunk waits
 * the same time, one queue in arrival order is also the order of release. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct chunk {
    struct chunk *next;      /* in the release queue, then in its direction's output */
    struct side *to;         /* where it goes */
    double due;
    size_t length, written;  /* length 0: end of stream */
    char data[];
};

struct side {
    int fd;
    struct side *peer;
    struct chunk *out, *out_tail; /* released, not yet written to fd */
    int read_done;                /* fd gave end of stream or an error */
    int write_done;               /* its peer's end of stream was passed on */
    int watching_out;
    int registered;               /* in epoll: a socket with nothing to wait for is taken out, or its HUP would spin */
    struct connection *connection;
};

struct connection {
    struct side client, server;
    int pending;  /* chunks queued or not yet written */
    int closed;
};

static struct chunk *queue_head, *queue_tail;
/* Closed connections, freed once no chunk of theirs is queued (never while a batch of events may still name them). */
static struct connection **graveyard;
static size_t buried, graveyard_size;
static double delay = 0.05;
static int epfd;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void watch(struct side *side, int out) {
    struct epoll_event event = {.events = (side->read_done ? 0 : EPOLLIN) | (out ? EPOLLOUT : 0), .data.ptr = side};
    side->watching_out = out;
    if (!event.events) {
        if (side->registered) epoll_ctl(epfd, EPOLL_CTL_DEL, side->fd, NULL);
        side->registered = 0;
        return;
    }
    epoll_ctl(epfd, side->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, side->fd, &event);
    side->registered = 1;
}

static void finish(struct connection *c) {
    if (c->closed) return;
    c->closed = 1;
    close(c->client.fd);
    close(c->server.fd);
    /* Chunks still queued for it are dropped as they come due; the connection is freed with the last. */
    for (struct side *s = &c->client; s; s = s == &c->client ? &c->server : NULL) {
        while (s->out) {
            struct chunk *next = s->out->next;
            free(s->out);
            c->pending--;
            s->out = next;
        }
        s->out_tail = NULL;
    }
    if (buried == graveyard_size) {
        graveyard_size = graveyard_size ? 2 * graveyard_size : 64;
        graveyard = realloc(graveyard, graveyard_size * sizeof *graveyard);
    }
    graveyard[buried++] = c;
}

static void bury(void) {
    size_t kept = 0;
    for (size_t i = 0; i < buried; i++) {
        if (graveyard[i]->pending == 0) free(graveyard[i]);
        else graveyard[kept++] = graveyard[i];
    }
    buried = kept;
}

static void maybe_done(struct connection *c) {
    if (c->client.write_done && c->server.write_done && !c->client.out && !c->server.out) finish(c);
}

/* Writes what side `s` has been released; returns 0 when the connection was closed. */
static int flush(struct side *s) {
    struct connection *c = s->connection;
    while (s->out) {
        struct chunk *k = s->out;
        if (k->length == 0) {
            shutdown(s->fd, SHUT_WR);
            s->write_done = 1;
        } else {
            while (k->written < k->length) {
                ssize_t n = send(s->fd, k->data + k->written, k->length - k->written, MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == ENOTCONN)) { /* full, or still connecting */
                    if (!s->watching_out) watch(s, 1);
                    return 1;
                }
                if (n < 0) {
                    finish(c);
                    return 0;
                }
                k->written += n;
            }
        }
        s->out = k->next;
        if (!s->out) s->out_tail = NULL;
        free(k);
        c->pending--;
    }
    if (s->watching_out) watch(s, 0);
    maybe_done(c);
    return !c->closed;
}

static void enqueue(struct side *to, const char *data, size_t length) {
    struct chunk *k = malloc(sizeof *k + length);
    k->next = NULL;
    k->to = to;
    k->due = now() + delay;
    k->length = length;
    k->written = 0;
    memcpy(k->data, data, length);
    to->connection->pending++;
    if (queue_tail) queue_tail->next = k; else queue_head = k;
    queue_tail = k;
}

static void release_due(void) {
    double t = now();
    while (queue_head && queue_head->due <= t) {
        struct chunk *k = queue_head;
        queue_head = k->next;
        if (!queue_head) queue_tail = NULL;
        k->next = NULL;
        struct connection *c = k->to->connection;
        if (c->closed) {
            free(k);
            c->pending--;
            continue;
        }
        struct side *s = k->to;
        if (s->out_tail) s->out_tail->next = k; else s->out = k;
        s->out_tail = k;
        flush(s);
    }
}

static void readable(struct side *s) {
    static char buffer[65536];
    struct connection *c = s->connection;
    for (;;) {
        ssize_t n = recv(s->fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            enqueue(s->peer, buffer, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            finish(c);
            return;
        }
        s->read_done = 1;
        enqueue(s->peer, NULL, 0);
        watch(s, s->watching_out);
        return;
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, target = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--target-port")) target = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay")) delay = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--log")) continue; /* accepted for the Python one's arguments; nothing is logged */
        else { fprintf(stderr, "delay_proxy: unknown option %s\n", argv[i]); return 2; }
    }
    if (!port || !target) { fprintf(stderr, "delay_proxy: --port and --target-port are required\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1024)) {
        perror("delay_proxy: listen");
        return 1;
    }
    nonblocking(listener);
    epfd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &event);
    printf("listening on %d\n", port);
    fflush(stdout);
    struct sockaddr_in upstream = {.sin_family = AF_INET, .sin_port = htons(target)};
    inet_pton(AF_INET, "127.0.0.1", &upstream.sin_addr);

    struct epoll_event events[256];
    for (;;) {
        int timeout = -1;
        if (queue_head) {
            double wait = queue_head->due - now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
        }
        int n = epoll_wait(epfd, events, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct side *s = events[i].data.ptr;
            if (!s) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (connect(server, (struct sockaddr *)&upstream, sizeof upstream) && errno != EINPROGRESS) {
                        close(fd);
                        close(server);
                        continue;
                    }
                    struct connection *c = calloc(1, sizeof *c);
                    c->client = (struct side){.fd = fd, .peer = &c->server, .connection = c};
                    c->server = (struct side){.fd = server, .peer = &c->client, .connection = c};
                    watch(&c->client, 0);
                    watch(&c->server, 0);
                }
                continue;
            }
            struct connection *c = s->connection;
            if (c->closed) continue;
            if (events[i].events & EPOLLOUT) {
                if (!flush(s)) continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!s->read_done) readable(s);
                else if (events[i].events & EPOLLERR) finish(c);
            }
        }
        release_due();
        bury();
    }
}
