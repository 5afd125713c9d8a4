#define _GNU_SOURCE
#include "gitmirror_git2.h"
#include "git2_calls.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *library = NULL;
static char message[512];

static void load(void) {
    // Debian's libgit2-1.5 (the package the binary depends on by name). RTLD_GLOBAL: CGitTee's
    // mbedtls_x509_crt_parse_file finds mbedTLS's own through RTLD_NEXT, which searches the global scope.
    library = dlopen("libgit2.so.1.5", RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(message, sizeof message, "libgit2 could not be loaded (install libgit2-1.5): %s", why ? why : "dlopen failed");
    }
}

int gitmirror_git2_load(const char **error) {
    pthread_once(&once, load);
    if (!library) {
        if (error) *error = message;
        return -1;
    }
    return 0;
}

void *gitmirror_git2_symbol(const char *name) {
    const char *error = NULL;
    if (gitmirror_git2_load(&error) != 0) {
        fprintf(stderr, "gitmirror: %s\n", error);
        exit(70);
    }
    void *found = dlsym(library, name);
    if (!found) {
        fprintf(stderr, "gitmirror: libgit2.so.1.5 has no %s\n", name);
        exit(70);
    }
    return found;
}

int gitmirror_opts_set_ssl_cert_file(const char *file) {
    return GITMIRROR_GIT2_FUNCTION(git_libgit2_opts)(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, (const char *)0);
}

int gitmirror_opts_enable_fsync(int enabled) {
    return GITMIRROR_GIT2_FUNCTION(git_libgit2_opts)(GIT_OPT_ENABLE_FSYNC_GITDIR, enabled);
}

int gitmirror_opts_set_search_path(int level, const char *path) {
    return GITMIRROR_GIT2_FUNCTION(git_libgit2_opts)(GIT_OPT_SET_SEARCH_PATH, level, path);
}

int gitmirror_opts_set_user_agent(const char *agent) {
    return GITMIRROR_GIT2_FUNCTION(git_libgit2_opts)(GIT_OPT_SET_USER_AGENT, agent);
}
