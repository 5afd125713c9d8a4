#include "CCrypto.h"
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
    const EVP_MD *(*sha1)(void);
    const EVP_MD *(*sha256)(void);
    int (*digest)(const void *, size_t, unsigned char *, unsigned int *, const EVP_MD *, ENGINE *);
    unsigned char *(*hmac)(const EVP_MD *, const void *, int, const unsigned char *, size_t, unsigned char *, unsigned int *);
    EVP_MD_CTX *(*context_new)(void);
    void (*context_free)(EVP_MD_CTX *);
    int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
    int (*update)(EVP_MD_CTX *, const void *, size_t);
    int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
    int (*memcmp)(const void *, const void *, size_t);
} crypto;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static _Noreturn void fail(const char *what, const char *why) {
    fprintf(stderr, "gitmirror: %s%s\n", what, why ? why : "");
    exit(70);
}

static void *symbol(void *library, const char *name) {
    void *found = dlsym(library, name);
    if (!found) {
        char what[128];
        snprintf(what, sizeof what, "libcrypto.so.3 has no %s", name);
        fail(what, NULL);
    }
    return found;
}

static void load(void) {
    // The soname of Debian bookworm's libssl3 (the headers the build uses come from its libssl-dev).
    void *library = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        fail("libcrypto could not be loaded (install libssl3): ", why ? why : "dlopen failed");
    }
    crypto.sha1 = symbol(library, "EVP_sha1");
    crypto.sha256 = symbol(library, "EVP_sha256");
    crypto.digest = symbol(library, "EVP_Digest");
    crypto.hmac = symbol(library, "HMAC");
    crypto.context_new = symbol(library, "EVP_MD_CTX_new");
    crypto.context_free = symbol(library, "EVP_MD_CTX_free");
    crypto.init = symbol(library, "EVP_DigestInit_ex");
    crypto.update = symbol(library, "EVP_DigestUpdate");
    crypto.final = symbol(library, "EVP_DigestFinal_ex");
    crypto.memcmp = symbol(library, "CRYPTO_memcmp");
}

static const EVP_MD *method(gitmirror_digest_kind kind) {
    pthread_once(&once, load);
    return kind == GITMIRROR_SHA1 ? crypto.sha1() : crypto.sha256();
}

unsigned gitmirror_digest(gitmirror_digest_kind kind, const void *data, size_t length, unsigned char *out) {
    const EVP_MD *type = method(kind);
    unsigned int written = 0;
    return crypto.digest(data, length, out, &written, type, NULL) == 1 ? written : 0;
}

unsigned gitmirror_hmac(gitmirror_digest_kind kind, const void *key, int key_length, const void *data, size_t length,
                        unsigned char *out) {
    const EVP_MD *type = method(kind);
    unsigned int written = 0;
    // HMAC() takes a NULL key as "no key"; an empty key is a valid (if useless) key of length 0.
    static const unsigned char empty = 0;
    return crypto.hmac(type, key ? key : &empty, key_length, data, length, out, &written) ? written : 0;
}

void *gitmirror_digest_begin(gitmirror_digest_kind kind) {
    const EVP_MD *type = method(kind);
    EVP_MD_CTX *context = crypto.context_new();
    if (context && crypto.init(context, type, NULL) != 1) {
        crypto.context_free(context);
        return NULL;
    }
    return context;
}

int gitmirror_digest_update(void *context, const void *data, size_t length) {
    return length == 0 || crypto.update(context, data, length) == 1;
}

unsigned gitmirror_digest_finish(void *context, unsigned char *out) {
    unsigned int written = 0;
    return crypto.final(context, out, &written) == 1 ? written : 0;
}

void gitmirror_digest_free(void *context) { crypto.context_free(context); }

int gitmirror_constant_time_compare(const void *a, const void *b, size_t length) {
    pthread_once(&once, load);
    return crypto.memcmp(a, b, length);
}
