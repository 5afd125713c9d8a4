#include "gitmirror_tee.h"
#include <git2/sys/odb_backend.h>
#include <stdlib.h>

/* A pack-writing backend that forwards to the pack backend libgit2 already has, and hands each
 * appended chunk to a sink first. It holds no objects: every other entry point is absent (libgit2
 * skips those), except foreach, which libgit2 calls without checking. */

typedef struct {
	git_odb_backend parent;
	/* The repository's own pack backend, found when the tee is added: git_odb_write_pack holds the
	 * odb's (non-recursive) lock while it asks us for a writepack, so we cannot look it up then. */
	git_odb_backend *packs;
	gitmirror_tee_sink sink;
	void *payload;
} tee_backend;

typedef struct {
	git_odb_writepack parent;
	git_odb_writepack *inner;
	tee_backend *backend;
} tee_writepack;

static int tee_append(git_odb_writepack *writepack, const void *data, size_t size, git_indexer_progress *stats)
{
	tee_writepack *tee = (tee_writepack *)writepack;
	tee->backend->sink(data, size, tee->backend->payload);
	return tee->inner->append(tee->inner, data, size, stats);
}

static int tee_commit(git_odb_writepack *writepack, git_indexer_progress *stats)
{
	tee_writepack *tee = (tee_writepack *)writepack;
	return tee->inner->commit(tee->inner, stats);
}

static void tee_writepack_free(git_odb_writepack *writepack)
{
	tee_writepack *tee = (tee_writepack *)writepack;
	if (tee->inner)
		tee->inner->free(tee->inner);
	free(tee);
}

static int tee_writepack_new(git_odb_writepack **out, git_odb_backend *backend, git_odb *odb,
	git_indexer_progress_cb progress_cb, void *progress_payload)
{
	git_odb_backend *packs = ((tee_backend *)backend)->packs;
	tee_writepack *tee = calloc(1, sizeof(tee_writepack));
	if (!tee)
		return -1;
	int error = packs->writepack(&tee->inner, packs, odb, progress_cb, progress_payload);
	if (error < 0) {
		free(tee);
		return error;
	}
	tee->parent.backend = backend;
	tee->parent.append = tee_append;
	tee->parent.commit = tee_commit;
	tee->parent.free = tee_writepack_free;
	tee->backend = (tee_backend *)backend;
	*out = &tee->parent;
	return 0;
}

static int tee_foreach(git_odb_backend *backend, git_odb_foreach_cb cb, void *payload)
{
	(void)backend; (void)cb; (void)payload;
	return 0;
}

static void tee_free(git_odb_backend *backend)
{
	free(backend);
}

int gitmirror_odb_add_tee(git_odb *odb, gitmirror_tee_sink sink, void *payload)
{
	git_odb_backend *packs = NULL;
	size_t count = git_odb_num_backends(odb), i;
	for (i = 0; i < count && !packs; i++) {
		git_odb_backend *candidate = NULL;
		if (git_odb_get_backend(&candidate, odb, i) == 0 && candidate->writepack != NULL)
			packs = candidate;
	}
	if (!packs) {
		git_error_set_str(GIT_ERROR_ODB, "no backend of the repository writes packs");
		return -1;
	}
	tee_backend *backend = calloc(1, sizeof(tee_backend));
	if (!backend)
		return -1;
	int error = git_odb_init_backend(&backend->parent, GIT_ODB_BACKEND_VERSION);
	if (error < 0) {
		free(backend);
		return error;
	}
	backend->parent.writepack = tee_writepack_new;
	backend->parent.foreach = tee_foreach;
	backend->parent.free = tee_free;
	backend->packs = packs;
	backend->sink = sink;
	backend->payload = payload;
	/* Above the loose (1) and pack (2) backends: git_odb_write_pack asks it first. */
	error = git_odb_add_backend(odb, &backend->parent, 100);
	if (error < 0)
		free(backend);
	return error;
}
