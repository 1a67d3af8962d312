#define _GNU_SOURCE
#include "writ_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the child writes to the status pipe when a step fails: one write, well under PIPE_BUF. */
struct child_report {
    int32_t step;
    int32_t error;
};

/* Child only: report the failed step and leave without running atexit handlers or flushing
 * stdio buffers that belong to the parent. */
static void child_fail(int status_fd, int step) {
    struct child_report report = {step, errno};
    ssize_t ignored = write(status_fd, &report, sizeof report);
    (void)ignored;
    _exit(127);
}

/* Child only: closes every descriptor from `first` up. close_range(2) when the kernel has it,
 * else a loop up to the descriptor limit (getrlimit is a plain system call). */
static int close_from(unsigned int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, ~0U, 0) == 0) return 0;
    if (errno != ENOSYS && errno != EINVAL) return -1;
#endif
    struct rlimit limit;
    unsigned long long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) max = limit.rlim_cur;
    for (unsigned long long fd = first; fd < max; fd++) (void)close((int)fd);
    return 0;
}

/* Child only: sets `sig` to SIG_DFL. glibc's sigaction refuses its own internal signals
 * (SIGCANCEL, SIGSETXID: 32 and 33) with EINVAL, yet an inherited "ignore" on them would pass
 * through execve; the raw system call resets them too (x86_64 and arm64 share this layout). */
static void reset_signal(int sig) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    if (sigaction(sig, &dfl, NULL) == 0 || errno != EINVAL) return;
#if defined(__x86_64__) || defined(__aarch64__)
    struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        unsigned long mask;
    } raw = {SIG_DFL, 0, NULL, 0};
    (void)syscall(SYS_rt_sigaction, sig, &raw, NULL, sizeof raw.mask);
#endif
}

/* Child only: moves `fd` to a descriptor >= 10 (close-on-exec), so that the dup2 onto 0, 1, 2
 * that follows cannot overwrite a source still to be copied. */
static int lift(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 10); }

/* Runs in the child between fork and execve: async-signal-safe calls only (raw system calls for
 * the ids: glibc's setuid family would try to coordinate threads this process no longer has). */
static void child(const struct writ_spawn_request *request, int in_fd, int out_fd, int err_fd, int status_fd,
                  pid_t parent) {
    /* Signals are all blocked (the parent blocked them around fork). Back to the defaults first,
     * so that no handler of writd's can run here, then an empty mask just before execve. */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) reset_signal(sig);
    }

    int lifted = lift(status_fd);
    if (lifted < 0) child_fail(status_fd, WRIT_SPAWN_DESCRIPTORS);
    status_fd = lifted;

    if (setsid() < 0) child_fail(status_fd, WRIT_SPAWN_SETSID);

    int in = lift(in_fd), out = lift(out_fd), err = lift(err_fd);
    if (in < 0 || out < 0 || err < 0) child_fail(status_fd, WRIT_SPAWN_DESCRIPTORS);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) child_fail(status_fd, WRIT_SPAWN_DESCRIPTORS);
    if (status_fd != 3) {
        if (dup3(status_fd, 3, O_CLOEXEC) < 0) child_fail(status_fd, WRIT_SPAWN_DESCRIPTORS);
        status_fd = 3;
    }
    if (close_from(4) < 0) child_fail(status_fd, WRIT_SPAWN_DESCRIPTORS);

    if (chdir("/") < 0) child_fail(status_fd, WRIT_SPAWN_CHDIR);

    if (request->change_identity) {
        if (syscall(SYS_setgroups, request->group_count, request->groups) < 0)
            child_fail(status_fd, WRIT_SPAWN_SETGROUPS);
        if (syscall(SYS_setresgid, request->gid, request->gid, request->gid) < 0)
            child_fail(status_fd, WRIT_SPAWN_SETGID);
        if (syscall(SYS_setresuid, request->uid, request->uid, request->uid) < 0)
            child_fail(status_fd, WRIT_SPAWN_SETUID);
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0) child_fail(status_fd, WRIT_SPAWN_VERIFY);
        if (ru != request->uid || eu != request->uid || su != request->uid || rg != request->gid ||
            eg != request->gid || sg != request->gid) {
            errno = EPERM;
            child_fail(status_fd, WRIT_SPAWN_VERIFY);
        }
        if (request->uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0) {
            errno = EPERM; /* could go back to root: the drop did not hold */
            child_fail(status_fd, WRIT_SPAWN_VERIFY);
        }
    }

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(status_fd, WRIT_SPAWN_NO_NEW_PRIVS);

    /* After the id change: changing credentials clears the parent-death signal. The signal is
     * tied to the forking thread, which waits for this process; if it is already gone, so are we. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_fail(status_fd, WRIT_SPAWN_PDEATHSIG);
    if (getppid() != parent) {
        errno = ESRCH;
        child_fail(status_fd, WRIT_SPAWN_PDEATHSIG);
    }

    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) < 0) child_fail(status_fd, WRIT_SPAWN_RLIMIT);
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) < 0) child_fail(status_fd, WRIT_SPAWN_RLIMIT);
    rlim_t wanted = (rlim_t)request->open_files;
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < wanted) wanted = files.rlim_max;
    files.rlim_cur = wanted;
    files.rlim_max = wanted;
    if (setrlimit(RLIMIT_NOFILE, &files) < 0) child_fail(status_fd, WRIT_SPAWN_RLIMIT);

    (void)umask(022);

    sigset_t empty;
    sigemptyset(&empty);
    if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0) child_fail(status_fd, WRIT_SPAWN_SIGNALS);

    /* ETXTBSY: some process has the file open for writing. Usually a short-lived copy of a
     * descriptor in a process another thread just forked (the file was being installed), so try
     * again for up to about 100 ms before giving up. */
    for (int attempt = 0;; attempt++) {
        execve(request->path, request->argv, request->envp);
        if (errno != ETXTBSY || attempt == 10) break;
        struct timespec pause = {0, 10 * 1000 * 1000};
        (void)nanosleep(&pause, NULL);
    }
    child_fail(status_fd, WRIT_SPAWN_EXEC);
}

static void close_quietly(int fd) {
    if (fd >= 0) (void)close(fd);
}

static int fail(struct writ_spawn_result *result, int step, int error) {
    result->pid = -1;
    result->stdin_fd = result->stdout_fd = result->stderr_fd = result->pidfd = -1;
    result->failed_step = step;
    result->error = error;
    return -1;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int writ_spawn(const struct writ_spawn_request *request, struct writ_spawn_result *result) {
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
        pipe2(status, O_CLOEXEC) < 0) {
        int e = errno;
        close_quietly(in[0]), close_quietly(in[1]), close_quietly(out[0]), close_quietly(out[1]);
        close_quietly(err[0]), close_quietly(err[1]), close_quietly(status[0]), close_quietly(status[1]);
        return fail(result, WRIT_SPAWN_PIPE, e);
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child(request, in[0], out[1], err[1], status[1], parent);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    close_quietly(in[0]), close_quietly(out[1]), close_quietly(err[1]), close_quietly(status[1]);
    if (pid < 0) {
        close_quietly(in[1]), close_quietly(out[0]), close_quietly(err[0]), close_quietly(status[0]);
        return fail(result, WRIT_SPAWN_FORK, fork_errno);
    }

    /* End of file: execve succeeded (the write end was close-on-exec). A report: a step failed. */
    struct child_report report;
    size_t got = 0;
    while (got < sizeof report) {
        ssize_t n = read(status[0], (char *)&report + got, sizeof report - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close_quietly(status[0]);
    if (got != 0) {
        int step = got == sizeof report ? report.step : WRIT_SPAWN_PROTOCOL;
        int error = got == sizeof report ? report.error : EPROTO;
        int code, sig;
        (void)writ_spawn_reap(pid, &code, &sig);
        close_quietly(in[1]), close_quietly(out[0]), close_quietly(err[0]);
        return fail(result, step, error);
    }

    if (set_nonblocking(in[1]) < 0 || set_nonblocking(out[0]) < 0 || set_nonblocking(err[0]) < 0) {
        int e = errno;
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        int code, sig;
        (void)writ_spawn_reap(pid, &code, &sig);
        close_quietly(in[1]), close_quietly(out[0]), close_quietly(err[0]);
        return fail(result, WRIT_SPAWN_PIPE, e);
    }

    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by definition */
#endif
    result->pid = pid;
    result->stdin_fd = in[1];
    result->stdout_fd = out[0];
    result->stderr_fd = err[0];
    result->pidfd = pidfd < 0 ? -1 : pidfd;
    result->failed_step = WRIT_SPAWN_OK;
    result->error = 0;
    return 0;
}

int writ_spawn_has_exited(pid_t pid) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0) return info.si_pid == pid ? 1 : 0;
        if (errno != EINTR) return -1;
    }
}

int writ_spawn_reap(pid_t pid, int *exit_status, int *signal_number) {
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, 0);
        if (got == pid) break;
        if (got < 0 && errno == EINTR) continue;
        return -1;
    }
    if (WIFSIGNALED(status)) {
        *exit_status = -1;
        *signal_number = WTERMSIG(status);
    } else {
        *exit_status = WEXITSTATUS(status);
        *signal_number = 0;
    }
    return 0;
}

void writ_spawn_block_sigpipe(void) {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
}

void writ_spawn_discard_sigpipe(void) {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_only, NULL, &zero) == SIGPIPE) {
    }
}
