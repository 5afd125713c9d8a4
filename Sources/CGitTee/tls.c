#define _GNU_SOURCE
#include "gitmirror_tls.h"
#include "gitmirror_git2.h"
#include <dlfcn.h>
#include <git2.h>
#include <pthread.h>
#include <string.h>

// The file libgit2's mbedTLS stream loads at its global init (GIT_DEFAULT_CERT_LOCATION in Debian's build).
#define SYSTEM_STORE "/etc/ssl/certs/ca-certificates.crt"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int defer_next = 0;   // the next load of the system file is the init's: skip it
static int deferred = 0;     // it was skipped, and nothing has been loaded since
static int loading = 0;      // gitmirror_tls_use_system_store is loading it now

// The definition libgit2's call reaches: an executable's symbols come before a shared library's in
// the dynamic linker's search, and the linker exports this one because libgit2, which it links,
// refers to it. It passes every call to mbedTLS's, but the deferred one. (With libgit2 built on
// OpenSSL this is never called and changes nothing.)
int mbedtls_x509_crt_parse_file(void *chain, const char *path) {
    static int (*parse)(void *, const char *);
    pthread_mutex_lock(&lock);
    if (defer_next && path && strcmp(path, SYSTEM_STORE) == 0) {
        defer_next = 0;
        deferred = 1;
        pthread_mutex_unlock(&lock);
        return 0;   // an empty store for now: nothing is trusted until the file is loaded
    }
    defer_next = 0;
    // Any other store given (a `ca_file` bundle, which holds the system's CAs too) replaces it.
    if (!loading) deferred = 0;
    if (!parse) parse = (int (*)(void *, const char *))dlsym(RTLD_NEXT, "mbedtls_x509_crt_parse_file");
    pthread_mutex_unlock(&lock);
    if (!parse) return -0x2900;   // MBEDTLS_ERR_X509_FILE_IO_ERROR
    return parse(chain, path);
}

void gitmirror_tls_defer_system_store(void) {
    pthread_mutex_lock(&lock);
    defer_next = 1;
    pthread_mutex_unlock(&lock);
}

// One load at a time: a second HTTPS remote waits here until the first's load is done, so no connection
// starts on the empty store, and the store is never replaced under a connection that uses it.
static pthread_mutex_t loader = PTHREAD_MUTEX_INITIALIZER;

int gitmirror_tls_use_system_store(void) {
    pthread_mutex_lock(&loader);
    pthread_mutex_lock(&lock);
    int needed = deferred;
    if (needed) loading = 1;
    pthread_mutex_unlock(&lock);
    int error = 0;
    if (needed) {
        // libgit2 calls mbedtls_x509_crt_parse_file above, which passes the file on while `loading`.
        error = gitmirror_opts_set_ssl_cert_file(SYSTEM_STORE);
        pthread_mutex_lock(&lock);
        loading = 0;
        if (error == 0) deferred = 0;
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&loader);
    return error;
}

int gitmirror_tls_system_store_deferred(void) {
    pthread_mutex_lock(&lock);
    int result = deferred || defer_next;
    pthread_mutex_unlock(&lock);
    return result;
}
