#ifndef CWRITFUZZ_H
#define CWRITFUZZ_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (libclang_rt.fuzzer_no_main, linked by scripts/fuzz.sh). Without libFuzzer a
 * weak fallback replays the files and directories named in argv once each: the corpus as a
 * regression run. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/* The program's arguments, as main received them (saved by a constructor): CommandLine cannot
 * find them in writ-fuzz, whose environ is host.c's private, empty one. */
char **writ_fuzz_arguments(int *count);

/* pam_writ.so's entry points (pam_sm_acct_mgmt, pam_sm_open_session, pam_sm_close_session)
 * with the user, rhost user, tty, service and module arguments taken from `data`. */
int writ_fuzz_pam(const uint8_t *data, size_t size);

/* sudo_writ.so's plugin structs (writ_approval: open, check, close; writ_audit: open, accept,
 * reject, close) with every vector sudo passes taken from `data`. */
int writ_fuzz_sudo(const uint8_t *data, size_t size);

/* 1 inside scripts/fuzz.sh's private mount namespace, or one like it: no /run/writ (the modules'
 * reports reach no writd) and /var/lib a tmpfs (the grant store the pam and sudo targets seed and
 * read is not the machine's). Those two targets refuse to run anywhere else. */
int writ_fuzz_sandboxed(void);

#endif
