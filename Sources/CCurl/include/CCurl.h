#ifndef GITMIRROR_CCURL_H
#define GITMIRROR_CCURL_H

// libcurl's types and constants only: the library itself is loaded when the first request is made
// (gitmirror_curl_load), not linked. Linking it made every process load libcurl and the ~20 libraries
// it needs (~5 ms of CPU a start: a sync starts a supervisor and up to four workers), for requests
// that only the forge and AWS APIs, webhooks' notifications and LFS make.
#include <curl/curl.h>

/// Loads libcurl and runs curl_global_init, once. Returns 0, or -1 with `*error` saying why (it stays valid).
int gitmirror_curl_load(const char **error);

// The functions below may be called only after gitmirror_curl_load returned 0.
CURL *gitmirror_curl_easy_init(void);
void gitmirror_curl_easy_cleanup(CURL *handle);
CURLcode gitmirror_curl_easy_perform(CURL *handle);
const char *gitmirror_curl_easy_strerror(CURLcode code);
struct curl_slist *gitmirror_curl_slist_append(struct curl_slist *list, const char *text);
void gitmirror_curl_slist_free_all(struct curl_slist *list);

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call:
// these give each kind of argument a fixed signature.
CURLcode gitmirror_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode gitmirror_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode gitmirror_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
typedef size_t (*gitmirror_curl_write_callback)(char *data, size_t size, size_t count, void *userdata);
CURLcode gitmirror_curl_setopt_write(CURL *handle, CURLoption option, gitmirror_curl_write_callback callback);
typedef int (*gitmirror_curl_xferinfo_callback)(void *userdata, curl_off_t download_total, curl_off_t downloaded,
                                                 curl_off_t upload_total, curl_off_t uploaded);
CURLcode gitmirror_curl_setopt_xferinfo(CURL *handle, gitmirror_curl_xferinfo_callback callback);
CURLcode gitmirror_curl_response_code(CURL *handle, long *code);

#endif
