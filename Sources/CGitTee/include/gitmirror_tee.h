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

#define GITMIRROR_RESCAN_PAUSE_MAX 32

/// The rescans an object database's backends do after each object it does not find, set aside:
/// what gitmirror_odb_pause_rescans took away, for gitmirror_odb_resume_rescans to give back.
typedef struct gitmirror_rescan_pause {
	size_t count;
	git_odb_backend *backends[GITMIRROR_RESCAN_PAUSE_MAX];
	int (*refresh[GITMIRROR_RESCAN_PAUSE_MAX])(git_odb_backend *);
} gitmirror_rescan_pause;

/// Scans `odb` once, then makes a miss a plain "not found" (no rescan of the pack folder per miss) until
/// gitmirror_odb_resume_rescans. Only while nothing else writes the repository's objects (a fetch under
/// the cache's lock); the odb must not be used from another thread meanwhile. 0 or a libgit2 error.
int gitmirror_odb_pause_rescans(git_odb *odb, gitmirror_rescan_pause *pause);

/// Gives the backends their rescans back.
void gitmirror_odb_resume_rescans(gitmirror_rescan_pause *pause);

#endif
