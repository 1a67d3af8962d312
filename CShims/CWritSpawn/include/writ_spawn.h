#ifndef WRIT_SPAWN_H
#define WRIT_SPAWN_H
/* Starting a policy hook: fork, a child that does only async-signal-safe system calls, execve.
 *
 * Swift cannot run code between fork and exec safely (the runtime may take locks, allocate or
 * run signal handlers), so the whole child side lives here. The parent side (writing stdin,
 * reading the output, the timeout) is WritHooks' HookProcess, on a thread of its own. */
#include <stddef.h>
#include <sys/types.h>

/* The step of the child's setup that failed, as reported to the parent. */
enum writ_spawn_step {
    WRIT_SPAWN_OK = 0,
    WRIT_SPAWN_PIPE = 1,        /* parent: pipe2 */
    WRIT_SPAWN_FORK = 2,        /* parent: fork */
    WRIT_SPAWN_SIGNALS = 3,     /* child: resetting signal dispositions and mask */
    WRIT_SPAWN_SETSID = 4,      /* child: setsid */
    WRIT_SPAWN_DESCRIPTORS = 5, /* child: dup2 of the pipes, closing every other descriptor */
    WRIT_SPAWN_CHDIR = 6,       /* child: chdir("/") */
    WRIT_SPAWN_SETGROUPS = 7,   /* child: setgroups */
    WRIT_SPAWN_SETGID = 8,      /* child: setresgid */
    WRIT_SPAWN_SETUID = 9,      /* child: setresuid */
    WRIT_SPAWN_VERIFY = 10,     /* child: the new ids did not all take */
    WRIT_SPAWN_NO_NEW_PRIVS = 11,
    WRIT_SPAWN_PDEATHSIG = 12,  /* child: PR_SET_PDEATHSIG, or the parent was already gone */
    WRIT_SPAWN_RLIMIT = 13,     /* child: RLIMIT_CORE / RLIMIT_NOFILE */
    WRIT_SPAWN_EXEC = 14,       /* child: execve */
    WRIT_SPAWN_PROTOCOL = 15,   /* parent: the status pipe said something unexpected */
};

/* What to run and as whom. Every pointer must stay valid until writ_spawn returns. */
struct writ_spawn_request {
    const char *path;       /* what execve runs */
    char *const *argv;      /* NULL-terminated */
    char *const *envp;      /* NULL-terminated; the complete environment */
    int change_identity;    /* 1: setgroups, setresgid, setresuid to the ids below; 0: keep ours */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;    /* supplementary groups (group_count of them) */
    size_t group_count;
    unsigned long open_files; /* RLIMIT_NOFILE, soft and hard (never above the current hard) */
};

/* The started process and the parent's ends of its standard streams. */
struct writ_spawn_result {
    pid_t pid;          /* > 0 when started; the process leads its own session and group */
    int stdin_fd;       /* parent's write end: non-blocking, close-on-exec */
    int stdout_fd;      /* parent's read end: non-blocking, close-on-exec */
    int stderr_fd;      /* parent's read end: non-blocking, close-on-exec */
    int pidfd;          /* readable once the process has exited; -1 when the kernel has none */
    int failed_step;    /* enum writ_spawn_step; WRIT_SPAWN_OK when started */
    int error;          /* errno of the failed step */
};

/* Starts the program. Returns 0 with `result` filled, or -1 with failed_step and error set (the
 * child, if any, has then been reaped and every descriptor closed).
 *
 * The child: signals blocked across fork, then default dispositions and an empty mask; setsid;
 * stdin, stdout, stderr from the pipes and every other descriptor closed; chdir("/"); the ids
 * (verified with getresuid/getresgid); PR_SET_NO_NEW_PRIVS; PR_SET_PDEATHSIG(SIGKILL) after the
 * id change (which would clear it) and a check that the parent is still there; RLIMIT_CORE 0;
 * RLIMIT_NOFILE `open_files`; umask 022; execve. A failure in any step is written to a
 * close-on-exec pipe as (step, errno) and the child exits with 127. */
int writ_spawn(const struct writ_spawn_request *request, struct writ_spawn_result *result);

/* Whether `pid` (our child) has exited, without reaping it: 1 yes, 0 not yet, -1 error. The
 * zombie keeps the pid and its process group id reserved, so signalling the group stays safe. */
int writ_spawn_has_exited(pid_t pid);

/* Reaps `pid` (waitpid, retrying EINTR). Returns 0 and sets either *exit_status (>= 0, with
 * *signal_number = 0) or *signal_number (> 0, with *exit_status = -1); -1 on error. */
int writ_spawn_reap(pid_t pid, int *exit_status, int *signal_number);

/* Blocks SIGPIPE for the calling thread (a hook's thread writes to a pipe the hook may have
 * closed: EPIPE instead of a signal that would end writd). */
void writ_spawn_block_sigpipe(void);

/* Discards a SIGPIPE pending for the calling thread (after a write failed with EPIPE). */
void writ_spawn_discard_sigpipe(void);

#endif
