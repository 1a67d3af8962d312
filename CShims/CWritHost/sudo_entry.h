#ifndef WRIT_SUDO_ENTRY_H
#define WRIT_SUDO_ENTRY_H
/* Implemented in Swift (Sources/WritModule/SudoPlugin.swift) with @_cdecl. Kept out of the
 * public include directory so the Swift module does not see its own functions twice. */

int writ_swift_approval_open(char *const settings[], char *const user_info[],
                             char *const plugin_options[], const char **errstr);
int writ_swift_approval_check(char *const command_info[], char *const run_argv[],
                              char *const run_envp[], const char **errstr);
void writ_swift_approval_close(void);
/* Writ's version (WritVersion in Swift): one version for sudo -V, writ and writd. */
const char *writ_swift_version(void);

int writ_swift_audit_open(char *const settings[], char *const user_info[],
                          char *const plugin_options[], const char **errstr);
int writ_swift_audit_accept(const char *plugin_name, unsigned int plugin_type,
                            char *const command_info[], char *const run_argv[], const char **errstr);
int writ_swift_audit_reject(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                            char *const command_info[], const char **errstr);
int writ_swift_audit_error(const char *plugin_name, unsigned int plugin_type, const char *audit_msg,
                           char *const command_info[], const char **errstr);
void writ_swift_audit_close(int status_type, int status);

#endif
