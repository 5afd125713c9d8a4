/* Runs a command under a seccomp filter rebuilt from a systemd unit's SystemCallFilter= lines:
 *   seccomp_exec ALLOWED-FILE -- COMMAND [ARGUMENTS...]
 * ALLOWED-FILE holds one system call name a line: those are allowed, every other call kills the
 * process (SIGSYS), as systemd does for an allow-list without SystemCallErrorNumber=. no_new_privs
 * is set first (NoNewPrivileges=yes; seccomp needs it without CAP_SYS_ADMIN). The filter is
 * inherited across execve, so git and ssh run under it too. Names this libseccomp does not know
 * are skipped. Built by the tests with `cc -lseccomp` (Debian's libseccomp-dev). */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: seccomp_exec ALLOWED-FILE -- COMMAND [ARGUMENTS...]\n");
        return 2;
    }
    FILE *list = fopen(argv[1], "r");
    if (!list) { perror(argv[1]); return 2; }
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!filter) { fprintf(stderr, "seccomp_init failed\n"); return 2; }
    char name[128];
    int allowed = 0;
    while (fscanf(list, "%127s", name) == 1) {
        int number = seccomp_syscall_resolve_name(name);
        if (number == __NR_SCMP_ERROR) continue;
        if (seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 0) == 0) allowed++;
    }
    fclose(list);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("prctl(PR_SET_NO_NEW_PRIVS)"); return 2; }
    if (seccomp_load(filter) != 0) { fprintf(stderr, "seccomp_load failed\n"); return 2; }
    seccomp_release(filter);
    execvp(argv[3], argv + 3);
    fprintf(stderr, "exec %s: %s\n", argv[3], strerror(errno));
    return 127;
}
