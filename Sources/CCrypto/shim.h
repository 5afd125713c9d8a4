// OpenSSL's libcrypto (Debian's libssl-dev): the digests, HMAC and constant-time comparison that
// webhook signatures, SigV4 and LFS checks stand on. libcurl already links it.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
