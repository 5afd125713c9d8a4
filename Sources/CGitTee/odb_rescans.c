#include "gitmirror_tee.h"
#include <git2/sys/odb_backend.h>

/* libgit2 1.5's git_odb_exists rescans the object database after every miss: each backend's refresh
 * (the pack backend reads the pack folder and looks for a multi-pack index), then looks again. A fetch
 * asks once about every tip it will download (fetch.c, mark_local): 20,000 new refs were 20,000 scans
 * of objects/pack, ~0.3 s of syscalls before the server was even asked for the pack. The rescans
 * find packs another process wrote since the last scan; while a fetch holds the cache's lock nobody
 * else writes there, so one scan at the start answers as well as 20,000. A backend whose `refresh` is
 * absent is one git_odb_exists does not rescan and does not ask again (odb_exists_1), which is
 * exactly "not found". */

int gitmirror_odb_pause_rescans(git_odb *odb, gitmirror_rescan_pause *pause)
{
	pause->count = 0;
	int error = git_odb_refresh(odb);
	if (error < 0)
		return error;
	size_t count = git_odb_num_backends(odb), i;
	for (i = 0; i < count && pause->count < GITMIRROR_RESCAN_PAUSE_MAX; i++) {
		git_odb_backend *backend = NULL;
		if (git_odb_get_backend(&backend, odb, i) < 0 || backend->refresh == NULL)
			continue;
		pause->backends[pause->count] = backend;
		pause->refresh[pause->count] = backend->refresh;
		backend->refresh = NULL;
		pause->count++;
	}
	return 0;
}

void gitmirror_odb_resume_rescans(gitmirror_rescan_pause *pause)
{
	size_t i;
	for (i = 0; i < pause->count; i++)
		pause->backends[i]->refresh = pause->refresh[i];
	pause->count = 0;
}
