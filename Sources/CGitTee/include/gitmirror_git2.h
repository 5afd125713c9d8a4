#ifndef GITMIRROR_GIT2_H
#define GITMIRROR_GIT2_H

/// libgit2 is loaded when it is first needed (dlopen of libgit2.so.1.5), not linked: a process that
/// never touches a repository — the supervisor of a steady-state sync, `status` — then never maps it
/// and what it needs (libssh2, OpenSSL's libcrypto, mbedTLS, Kerberos, PCRE2: ~2.7 MiB of pages and
/// the dynamic loader's work on them at every start). Each libgit2 function gitmirror calls is
/// defined in git2_calls.c (scripts/git2-calls writes it) and goes to libgit2's own.

/// Loads libgit2, once. Returns 0, or -1 with `*error` saying why (it stays valid).
int gitmirror_git2_load(const char **error);

// git_libgit2_opts is variadic, which Swift cannot call: one fixed signature for each option used.
int gitmirror_opts_set_ssl_cert_file(const char *file);
int gitmirror_opts_enable_fsync(int enabled);
int gitmirror_opts_set_search_path(int level, const char *path);
int gitmirror_opts_set_user_agent(const char *agent);

#endif
