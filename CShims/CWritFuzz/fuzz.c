/* The C side of writ-fuzz: the PAM and sudo entry points are C ABIs (the plugin structs are data
 * symbols), so they are driven from C; and a replay fallback for LLVMFuzzerRunDriver. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <security/pam_appl.h>
#include <security/pam_modules.h>
#include <sudo_plugin.h>

#include "CWritFuzz.h"

/* ---- the program's arguments ---------------------------------------------------------------- */

static int saved_argc;
static char **saved_argv;

/* glibc passes (argc, argv, envp) to constructors of the executable. */
__attribute__((constructor)) static void save_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

char **writ_fuzz_arguments(int *count) {
    *count = saved_argc;
    return saved_argv;
}

/* ---- replay without libFuzzer --------------------------------------------------------------- */

static int replay_file(const char *path, int (*callback)(const uint8_t *, size_t)) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(path); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return 0; }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    size_t done = 0;
    while (data != NULL && done < size) {
        ssize_t n = read(fd, data + done, size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(fd);
    if (data == NULL || done != size) { free(data); fprintf(stderr, "%s: could not read\n", path); return -1; }
    callback(data, size);
    free(data);
    return 1;
}

__attribute__((weak)) int LLVMFuzzerRunDriver(int *argc, char ***argv,
                                              int (*callback)(const uint8_t *data, size_t size)) {
    int total = 0;
    for (int i = 1; i < *argc; i++) {
        const char *arg = (*argv)[i];
        if (arg[0] == '-') continue; /* libFuzzer's options mean nothing to a replay */
        struct stat st;
        if (stat(arg, &st) != 0) { perror(arg); return 1; }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(arg, callback) < 0) return 1;
            total++;
            continue;
        }
        struct dirent **names;
        int n = scandir(arg, &names, NULL, alphasort);
        if (n < 0) { perror(arg); return 1; }
        for (int k = 0; k < n; k++) {
            if (names[k]->d_name[0] != '.') {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", arg, names[k]->d_name);
                int r = replay_file(path, callback);
                if (r < 0) return 1;
                total += r;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %d inputs (no libFuzzer in this build: each input once)\n", total);
    return 0;
}

/* ---- splitting an input into C string vectors ----------------------------------------------- */

enum { MAX_STRINGS = 64 };

/* Up to MAX_STRINGS NUL-terminated strings of `data` split at `separator`, as a NULL-terminated
 * vector; the copy lives in `storage` (size + 1 bytes). */
static int split(const uint8_t *data, size_t size, char separator, char *storage, char **vector) {
    memcpy(storage, data, size);
    storage[size] = '\0';
    int count = 0;
    char *start = storage;
    for (size_t i = 0; i <= size && count < MAX_STRINGS; i++) {
        if (i == size || storage[i] == separator) {
            storage[i] = '\0';
            vector[count++] = start;
            start = storage + i + 1;
        }
    }
    vector[count] = NULL;
    return count;
}

int writ_fuzz_sandboxed(void) {
    struct stat st;
    struct statfs fs;
    if (stat("/run/writ", &st) == 0) return 0;
    return statfs("/var/lib", &fs) == 0 && fs.f_type == TMPFS_MAGIC ? 1 : 0;
}

/* ---- PAM ------------------------------------------------------------------------------------ */

static int no_conversation(int n, const struct pam_message **messages, struct pam_response **responses,
                           void *data) {
    (void)n; (void)messages; (void)responses; (void)data;
    return PAM_CONV_ERR;
}

int writ_fuzz_pam(const uint8_t *data, size_t size) {
    static pam_handle_t *pamh;
    static const struct pam_conv conversation = { no_conversation, NULL };
    /* An empty configuration directory: the handle loads none of the machine's PAM modules. */
    static const char *confdir = "/run/writ-fuzz-pam.d";
    if (pamh == NULL) {
        (void)mkdir(confdir, 0700);
        int fd = open("/run/writ-fuzz-pam.d/writ-fuzz", O_WRONLY | O_CREAT | O_CLOEXEC, 0600); /* empty stacks */
        if (fd >= 0) close(fd);
        if (pam_start_confdir("writ-fuzz", "nobody", &conversation, confdir, &pamh) != PAM_SUCCESS) abort();
    }
    if (size == 0) return 0;
    int which = data[0] % 3;
    char *storage = malloc(size);
    char *strings[MAX_STRINGS + 1];
    int n = split(data + 1, size - 1, '\0', storage, strings);
    const char *none = "";
    pam_set_item(pamh, PAM_USER, n > 0 ? strings[0] : none);
    pam_set_item(pamh, PAM_RUSER, n > 1 && strings[1][0] ? strings[1] : NULL);
    pam_set_item(pamh, PAM_TTY, n > 2 && strings[2][0] ? strings[2] : NULL);
    pam_set_item(pamh, PAM_SERVICE, n > 3 ? strings[3] : "sshd");
    int argc = n > 4 ? n - 4 : 0;
    const char **argv = (const char **)(strings + (n > 4 ? 4 : n));
    switch (which) {
    case 0: (void)pam_sm_acct_mgmt(pamh, 0, argc, argv); break;
    case 1: (void)pam_sm_open_session(pamh, 0, argc, argv); break;
    default: (void)pam_sm_close_session(pamh, 0, argc, argv); break;
    }
    free(storage);
    return 0;
}

/* ---- sudo ----------------------------------------------------------------------------------- */

extern struct approval_plugin writ_approval;
extern struct audit_plugin writ_audit;

static int quiet_printf(int type, const char *format, ...) {
    (void)type; (void)format;
    return 0;
}

int writ_fuzz_sudo(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* 0: the approval plugin alone; 1: a whole run as sudo makes it (approval open and check, audit
     * open, accept for the approval plugin, audit close); 2: the audit plugin rejecting a run. */
    int which = data[0] % 3;
    /* Six vectors separated by 0x01, their strings by NUL: settings, user_info, plugin_options,
     * command_info, run_argv, run_envp. */
    char *vectors[6][MAX_STRINGS + 1];
    char *storage[6] = { 0 };
    const uint8_t *start = data + 1, *end = data + size;
    for (int v = 0; v < 6; v++) {
        const uint8_t *stop = start;
        while (stop < end && *stop != 0x01) stop++;
        storage[v] = malloc((size_t)(stop - start) + 1);
        if (stop == start) {
            vectors[v][0] = NULL;
        } else {
            split(start, (size_t)(stop - start), '\0', storage[v], vectors[v]);
        }
        start = stop < end ? stop + 1 : end;
    }
    const char *errstr = NULL;
    /* No state from the previous input: the approval plugin's open resets what a run keeps. */
    char *empty[1] = { NULL };
    writ_approval.open(SUDO_API_VERSION, NULL, quiet_printf, empty, empty, 0, empty, empty, empty, &errstr);
    writ_approval.close();
    if (which <= 1) {
        writ_approval.open(SUDO_API_VERSION, NULL, quiet_printf, vectors[0], vectors[1], 0, vectors[4], vectors[5],
                           vectors[2], &errstr);
        int allowed = writ_approval.check(vectors[3], vectors[4], vectors[5], &errstr);
        if (which == 1 && allowed == 1 &&
            writ_audit.open(SUDO_API_VERSION, NULL, quiet_printf, vectors[0], vectors[1], 0, vectors[4],
                            vectors[5], vectors[2], &errstr) == 1) {
            (void)writ_audit.accept("writ_approval", SUDO_APPROVAL_PLUGIN, vectors[3], vectors[4], vectors[5],
                                    &errstr);
            writ_audit.close(SUDO_PLUGIN_WAIT_STATUS, 0);
        }
        writ_approval.close();
    } else if (writ_audit.open(SUDO_API_VERSION, NULL, quiet_printf, vectors[0], vectors[1], 0, vectors[4],
                               vectors[5], vectors[2], &errstr) == 1) {
        (void)writ_audit.reject("writ_approval", SUDO_APPROVAL_PLUGIN, "denied", vectors[3], &errstr);
        writ_audit.close(SUDO_PLUGIN_WAIT_STATUS, 0);
    }
    for (int v = 0; v < 6; v++) free(storage[v]);
    return 0;
}
