#ifndef GITMIRROR_CCRYPTO_H
#define GITMIRROR_CCRYPTO_H

// OpenSSL's libcrypto (Debian's libssl3): the digests, HMAC and constant-time comparison that
// webhook signatures, SigV4, known_hosts and LFS checks stand on. The library is loaded when the
// first digest is computed, not linked: linked, the loader mapped and relocated it (~1.4 MiB of a
// process's pages) in every supervisor and worker, where a steady-state sync computes no digest.
// No OpenSSL type crosses this header, so that Swift cannot call libcrypto past the loader.
#include <stddef.h>

/// The digests gitmirror computes.
typedef enum { GITMIRROR_SHA1 = 1, GITMIRROR_SHA256 = 2 } gitmirror_digest_kind;

/// The largest digest these functions write (OpenSSL's EVP_MAX_MD_SIZE).
#define GITMIRROR_DIGEST_MAX 64

// Each function loads libcrypto at its first call; if it cannot be loaded, the process says why
// on stderr and exits with 70 (EX_SOFTWARE): the package depends on libssl3, so it is a broken install.

/// `out` holds GITMIRROR_DIGEST_MAX bytes; returns the digest's length, or 0 if OpenSSL failed.
unsigned gitmirror_digest(gitmirror_digest_kind kind, const void *data, size_t length, unsigned char *out);
/// HMAC of `data` under `key`; returns the length written to `out`, or 0 if OpenSSL failed.
unsigned gitmirror_hmac(gitmirror_digest_kind kind, const void *key, int key_length, const void *data, size_t length,
                        unsigned char *out);

/// A digest fed in pieces: NULL if OpenSSL failed.
void *gitmirror_digest_begin(gitmirror_digest_kind kind);
/// Returns 1, or 0 if OpenSSL failed.
int gitmirror_digest_update(void *context, const void *data, size_t length);
/// Returns the digest's length, or 0 if OpenSSL failed. The context stays to be freed.
unsigned gitmirror_digest_finish(void *context, unsigned char *out);
void gitmirror_digest_free(void *context);

/// OpenSSL's CRYPTO_memcmp: 0 when equal, in time that depends on the length only.
int gitmirror_constant_time_compare(const void *a, const void *b, size_t length);

#endif
