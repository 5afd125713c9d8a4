#ifndef GITMIRROR_GIT2_CALLS_H
#define GITMIRROR_GIT2_CALLS_H
#include <git2.h>

/// libgit2's `name`, looked up at the first call (loading libgit2 if need be). A process that cannot
/// load it stops here, saying why: gitmirror_git2_load lets the setup say it first.
void *gitmirror_git2_symbol(const char *name);

#define GITMIRROR_GIT2_FUNCTION(name) (__extension__({ \
    static __typeof__(&name) found; \
    __typeof__(&name) function = __atomic_load_n(&found, __ATOMIC_ACQUIRE); \
    if (!function) { \
        function = (__typeof__(&name))gitmirror_git2_symbol(#name); \
        __atomic_store_n(&found, function, __ATOMIC_RELEASE); \
    } \
    function; }))

#endif
