#ifndef GITMIRROR_TLS_H
#define GITMIRROR_TLS_H

/// libgit2 1.5 built with mbedTLS (Debian's) parses the system's whole CA file in git_libgit2_init
/// (~10 ms of CPU), in every process, whether or not it will ever speak TLS: a sync's workers mostly
/// do not (git://, SSH, the cache). Called before git_libgit2_init, this makes that first load of the
/// system file wait until gitmirror_tls_use_system_store, which the first HTTPS remote calls.
void gitmirror_tls_defer_system_store(void);

/// Loads the system's CA file into libgit2's store if its load was deferred and no other store (a
/// `ca_file` bundle) was given since. Returns 0 or libgit2's error code.
int gitmirror_tls_use_system_store(void);

/// Whether the system file's load is still deferred (for tests).
int gitmirror_tls_system_store_deferred(void);

#endif
