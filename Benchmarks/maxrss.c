/* maxrss N CMD ARGS...: runs CMD N times (fork + exec, nothing else in the child) and prints the
 * largest peak RSS (ru_maxrss from wait4) in KiB. The child is this small program until exec, so
 * the figure is the command's own peak — here sudo's. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    long peak = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "maxrss: %s failed\n", argv[2]);
            return 1;
        }
        if (ru.ru_maxrss > peak)
            peak = ru.ru_maxrss;
    }
    printf("%ld\n", peak);
    return 0;
}
