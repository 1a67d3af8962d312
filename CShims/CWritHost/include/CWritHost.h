#ifndef WRIT_CWRITHOST_H
#define WRIT_CWRITHOST_H
/* What the Swift side of pam_writ.so / sudo_writ.so needs from C: Linux-PAM's and syslog's
 * variadic functions, and sudo's printf. User text is always passed as "%s", msg. */
#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <syslog.h>

/// pam_syslog(pamh, priority, "%s", msg): Linux-PAM logs to LOG_AUTHPRIV with the service name.
void writ_pam_syslog(pam_handle_t *pamh, int priority, const char *msg);

/// Shows msg as a PAM_ERROR_MSG through the application's conversation function.
int writ_pam_error(pam_handle_t *pamh, const char *msg);

/// syslog(LOG_AUTHPRIV | priority, "%s", msg), for the sudo plugins (no PAM handle there).
void writ_syslog(int priority, const char *msg);

/// Prints msg (plus a newline) through the sudo_printf function sudo passed to open(),
/// as SUDO_CONV_ERROR_MSG. Returns -1 when no printf function is known.
int writ_sudo_error(const char *msg);

/// The API version sudo reported to the approval plugin's open(), 0 before.
unsigned int writ_sudo_api_version(void);

/// 1 when this process is sudo's plugin-capable front end (sudo.ws): its libsudo_util is loaded
/// (found with dlsym(RTLD_DEFAULT, "sudo_conf_plugins_v1")). sudo-rs has no plugin API and does
/// not load it.
int writ_process_is_sudo_front_end(void);

/* sudo_plugin.h values the Swift side needs (macros). */
#define WRIT_SUDO_CONV_ERROR_MSG 0x0003

#endif
