/* The C half of pam_writ.so / sudo_writ.so: variadic calls Swift cannot make, the two data
 * symbols sudo looks up by name (struct approval_plugin writ_approval, struct audit_plugin
 * writ_audit), which @_cdecl cannot produce, and a private getenv/environ. Everything else is
 * (Embedded) Swift. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <syslog.h>
#include <sudo_plugin.h>

#include "CWritHost.h"
#include "sudo_entry.h"

_Static_assert(WRIT_SUDO_CONV_ERROR_MSG == SUDO_CONV_ERROR_MSG, "SUDO_CONV_ERROR_MSG changed");


void writ_pam_syslog(pam_handle_t *pamh, int priority, const char *msg) {
    pam_syslog(pamh, priority, "%s", msg);
}

int writ_pam_error(pam_handle_t *pamh, const char *msg) {
    return pam_prompt(pamh, PAM_ERROR_MSG, NULL, "%s", msg);
}

void writ_syslog(int priority, const char *msg) {
    syslog(LOG_AUTHPRIV | priority, "%s", msg);
}

/* sudo is single-threaded and calls one plugin function at a time; this is the only state the
 * C side keeps: the printf function of the open approval or audit plugin. */
static sudo_printf_t writ_printf;
static unsigned int writ_api_version;

int writ_sudo_error(const char *msg) {
    if (writ_printf == NULL)
        return -1;
    return writ_printf(SUDO_CONV_ERROR_MSG, "%s\n", msg);
}

unsigned int writ_sudo_api_version(void) { return writ_api_version; }

int writ_process_is_sudo_front_end(void) {
    return dlsym(RTLD_DEFAULT, "sudo_conf_plugins_v1") != NULL;
}

/* ---- approval plugin ---------------------------------------------------------------------- */

static int approval_open(unsigned int version, sudo_conv_t conversation, sudo_printf_t plugin_printf,
                         char *const settings[], char *const user_info[], int submit_optind,
                         char *const submit_argv[], char *const submit_envp[],
                         char *const plugin_options[], const char **errstr) {
    (void)conversation; (void)submit_optind; (void)submit_argv;
    (void)submit_envp; /* the invoking user's environment is never consulted */
    writ_printf = plugin_printf;
    writ_api_version = version;
    /* Never return 0 here: sudo silently unlinks an approval plugin whose open() returns 0 and
     * runs the command unchecked. Problems found here are reported by check(), which denies. */
    (void)writ_swift_approval_open(settings, user_info, plugin_options, errstr);
    return 1;
}

static void approval_close(void) { writ_swift_approval_close(); }

static int approval_check(char *const command_info[], char *const run_argv[], char *const run_envp[],
                          const char **errstr) {
    return writ_swift_approval_check(command_info, run_argv, run_envp, errstr);
}

static int approval_show_version(int verbose) {
    (void)verbose;
    if (writ_printf != NULL)
        writ_printf(SUDO_CONV_INFO_MSG, "writ approval plugin version %s\n", writ_swift_version());
    return 1;
}

__attribute__((visibility("default"))) struct approval_plugin writ_approval = {
    .type = SUDO_APPROVAL_PLUGIN,
    .version = SUDO_API_VERSION,
    .open = approval_open,
    .close = approval_close,
    .check = approval_check,
    .show_version = approval_show_version,
};

/* ---- audit plugin ------------------------------------------------------------------------- */

static int audit_open(unsigned int version, sudo_conv_t conversation, sudo_printf_t plugin_printf,
                      char *const settings[], char *const user_info[], int submit_optind,
                      char *const submit_argv[], char *const submit_envp[], char *const plugin_options[],
                      const char **errstr) {
    (void)version; (void)conversation; (void)submit_optind; (void)submit_argv; (void)submit_envp;
    if (writ_printf == NULL)
        writ_printf = plugin_printf;
    return writ_swift_audit_open(settings, user_info, plugin_options, errstr);
}

static void audit_close(int status_type, int status) { writ_swift_audit_close(status_type, status); }

static int audit_accept(const char *plugin_name, unsigned int plugin_type, char *const command_info[],
                        char *const run_argv[], char *const run_envp[], const char **errstr) {
    (void)run_envp;
    return writ_swift_audit_accept(plugin_name, plugin_type, command_info, run_argv, errstr);
}

static int audit_reject(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                        char *const command_info[], const char **errstr) {
    return writ_swift_audit_reject(plugin_name, plugin_type, audit_msg, command_info, errstr);
}

static int audit_error(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                       char *const command_info[], const char **errstr) {
    return writ_swift_audit_error(plugin_name, plugin_type, audit_msg, command_info, errstr);
}

static int audit_show_version(int verbose) {
    (void)verbose;
    if (writ_printf != NULL)
        writ_printf(SUDO_CONV_INFO_MSG, "writ audit plugin version %s\n", writ_swift_version());
    return 1;
}

__attribute__((visibility("default"))) struct audit_plugin writ_audit = {
    .type = SUDO_AUDIT_PLUGIN,
    .version = SUDO_API_VERSION,
    .open = audit_open,
    .close = audit_close,
    .accept = audit_accept,
    .reject = audit_reject,
    .error = audit_error,
    .show_version = audit_show_version,
    .register_hooks = NULL,
    .deregister_hooks = NULL,
    .event_alloc = NULL,
};

/* ---- the environment is not ours to read ---------------------------------------------------- */

/* SQLite, linked into this module, reads environment variables (SQLITE_TMPDIR, TMPDIR), and so
 * would the Swift runtime in a non-embedded build (SWIFT_DEBUG_*, SWIFT_DETERMINISTIC_HASHING,
 * walking `environ`). Inside sudo or su that environment belongs to the invoking user. These
 * module-private definitions answer "not set" to all of them and show an empty `environ`. The
 * version script keeps them local: the host program's environment, and every other library's view
 * of it, are untouched. (scripts/check-linkage.sh fails if any reference escapes to libc.) */
static char *writ_empty_environment[1] = {NULL};
char **environ = writ_empty_environment;
char **__environ = writ_empty_environment;

char *getenv(const char *name) {
    (void)name;
    return NULL;
}
char *secure_getenv(const char *name) {
    (void)name;
    return NULL;
}
