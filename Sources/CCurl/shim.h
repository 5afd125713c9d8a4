#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call:
// these wrappers give each kind of argument a fixed signature.

static inline CURLcode gitmirror_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode gitmirror_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode gitmirror_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*gitmirror_curl_write_callback)(char *data, size_t size, size_t count, void *userdata);

static inline CURLcode gitmirror_curl_setopt_write(CURL *handle, CURLoption option, gitmirror_curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode gitmirror_curl_response_code(CURL *handle, long *code) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code);
}
