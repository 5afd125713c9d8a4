#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *failure = NULL;
static char message[512];

static void *symbol(void *library, const char *name) {
    void *found = dlsym(library, name);
    if (!found && !failure) {
        snprintf(message, sizeof message, "libcurl.so.4 has no %s", name);
        failure = message;
    }
    return found;
}

static void load(void) {
    // The soname Debian's libcurl4 (the OpenSSL flavour, which the build's headers come from) installs.
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(message, sizeof message, "libcurl could not be loaded (install libcurl4): %s", why ? why : "dlopen failed");
        failure = message;
        return;
    }
    curl.global_init = symbol(library, "curl_global_init");
    curl.easy_init = symbol(library, "curl_easy_init");
    curl.easy_cleanup = symbol(library, "curl_easy_cleanup");
    curl.easy_perform = symbol(library, "curl_easy_perform");
    curl.easy_strerror = symbol(library, "curl_easy_strerror");
    curl.slist_append = symbol(library, "curl_slist_append");
    curl.slist_free_all = symbol(library, "curl_slist_free_all");
    curl.easy_setopt = symbol(library, "curl_easy_setopt");
    curl.easy_getinfo = symbol(library, "curl_easy_getinfo");
    if (failure) return;
    if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) failure = "libcurl could not set itself up (curl_global_init)";
}

int gitmirror_curl_load(const char **error) {
    pthread_once(&once, load);
    if (failure) {
        if (error) *error = failure;
        return -1;
    }
    return 0;
}

CURL *gitmirror_curl_easy_init(void) { return curl.easy_init(); }
void gitmirror_curl_easy_cleanup(CURL *handle) { curl.easy_cleanup(handle); }
CURLcode gitmirror_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *gitmirror_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
struct curl_slist *gitmirror_curl_slist_append(struct curl_slist *list, const char *text) { return curl.slist_append(list, text); }
void gitmirror_curl_slist_free_all(struct curl_slist *list) { if (list) curl.slist_free_all(list); }

CURLcode gitmirror_curl_setopt_long(CURL *handle, CURLoption option, long value) { return curl.easy_setopt(handle, option, value); }
CURLcode gitmirror_curl_setopt_string(CURL *handle, CURLoption option, const char *value) { return curl.easy_setopt(handle, option, value); }
CURLcode gitmirror_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) { return curl.easy_setopt(handle, option, value); }
CURLcode gitmirror_curl_setopt_write(CURL *handle, CURLoption option, gitmirror_curl_write_callback callback) {
    return curl.easy_setopt(handle, option, callback);
}
CURLcode gitmirror_curl_setopt_xferinfo(CURL *handle, gitmirror_curl_xferinfo_callback callback) {
    return curl.easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}
CURLcode gitmirror_curl_response_code(CURL *handle, long *code) { return curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code); }
