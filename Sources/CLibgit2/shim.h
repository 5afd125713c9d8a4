#include <git2.h>

// libgit2 is not linked: CGitTee loads it when it is first needed (gitmirror_git2.h says why), and
// its git2_calls.c defines every libgit2 function gitmirror calls.
