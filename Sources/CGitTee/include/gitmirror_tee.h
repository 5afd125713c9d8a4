#ifndef GITMIRROR_TEE_H
#define GITMIRROR_TEE_H

#include <stddef.h>
#include <git2.h>

/// Receives every byte of every pack written into the object database, as it arrives.
/// Its return value is ignored: what it does with the bytes never fails the fetch.
typedef void (*gitmirror_tee_sink)(const void *data, size_t size, void *payload);

/// Adds a backend to `odb` that takes over pack writing: each pack still goes to the repository's own
/// pack backend (indexed and stored as without it), and every byte is also handed to `sink`.
/// `payload` must outlive `odb`'s use for fetching. Returns 0 or a libgit2 error code.
int gitmirror_odb_add_tee(git_odb *odb, gitmirror_tee_sink sink, void *payload);

#endif
