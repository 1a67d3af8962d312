/* Drives sudo_writ.so's approval and audit plugins the way sudo 1.9 calls them, without sudo:
 * audit open, approval open/check/close, audit accept, audit close. Used to profile the plugin
 * path (scripts/profile-order.sh) where sudo's setuid bit would keep a profiler out.
 *
 *   plugin_driver MODULE STORE USER UID COMMAND [ARGS...]      prints "check=N"
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sudo_plugin.h>

static int print(int type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(type == SUDO_CONV_ERROR_MSG ? stderr : stdout, fmt, ap);
    va_end(ap);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODULE STORE USER UID COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (h == NULL) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    struct approval_plugin *ap = dlsym(h, "writ_approval");
    struct audit_plugin *au = dlsym(h, "writ_audit");
    if (ap == NULL || au == NULL) { fprintf(stderr, "plugin symbols missing\n"); return 1; }
    char store[4096], user[256], uid[64], command[4096];
    snprintf(store, sizeof store, "store=%s", argv[2]);
    snprintf(user, sizeof user, "user=%s", argv[3]);
    snprintf(uid, sizeof uid, "uid=%s", argv[4]);
    snprintf(command, sizeof command, "command=%s", argv[5]);
    char *settings[] = {NULL};
    char *user_info[] = {user, uid, "cwd=/", "tty=/dev/pts/0", "host=bench", NULL};
    char *options[] = {store, NULL};
    char *command_info[] = {command, "runas_uid=0", "runas_gid=0", "runas_user=root", "cwd=/", NULL};
    char **run_argv = argv + 5;
    char *envp[] = {NULL};
    const char *err = NULL;
    au->open(SUDO_API_VERSION, NULL, print, settings, user_info, 0, run_argv, envp, options, &err);
    ap->open(SUDO_API_VERSION, NULL, print, settings, user_info, 0, run_argv, envp, options, &err);
    int rc = ap->check(command_info, run_argv, envp, &err);
    if (rc == 1)
        au->accept("writ_approval", SUDO_APPROVAL_PLUGIN, command_info, run_argv, envp, &err);
    else
        au->reject("writ_approval", SUDO_APPROVAL_PLUGIN, "denied", command_info, &err);
    ap->close();
    au->close(1, 0);
    printf("check=%d\n", rc);
    return 0;
}
