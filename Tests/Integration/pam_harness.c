/* Drives Linux-PAM for the integration tests: pam_start_confdir() with a service file from a
 * test directory (never /etc/pam.d), then pam_acct_mgmt(). Prints every conversation message
 * and the result, so tests assert what a user would see and what PAM decided.
 *
 *   pam_harness CONFDIR SERVICE USER [FLAGS]            one account check
 *   pam_harness CONFDIR SERVICE USER --cycles N         N pam_start/pam_acct_mgmt/pam_end cycles,
 *                                                       printing RSS after 100 cycles and at the end
 * FLAGS: --silent passes PAM_SILENT as sudo does. PAM_RUSER is set to USER, as sudo sets it to
 * the invoking user; --no-ruser leaves it unset, --ruser NAME sets another.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
    (void)data;
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        const char *kind = "other";
        switch (msg[i]->msg_style) {
        case PAM_ERROR_MSG: kind = "error"; break;
        case PAM_TEXT_INFO: kind = "info"; break;
        case PAM_PROMPT_ECHO_ON: kind = "prompt"; break;
        case PAM_PROMPT_ECHO_OFF: kind = "secret"; break;
        }
        printf("message[%s]: %s\n", kind, msg[i]->msg ? msg[i]->msg : "");
    }
    *resp = r;
    return PAM_SUCCESS;
}

static const char *name(int rc) {
    switch (rc) {
    case PAM_SUCCESS: return "PAM_SUCCESS";
    case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
    case PAM_IGNORE: return "PAM_IGNORE";
    case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
    case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
    case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
    case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
    case PAM_ACCT_EXPIRED: return "PAM_ACCT_EXPIRED";
    case PAM_NEW_AUTHTOK_REQD: return "PAM_NEW_AUTHTOK_REQD";
    default: return "PAM_OTHER";
    }
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static const char *ruser;

static int check(const char *confdir, const char *service, const char *user, int flags) {
    struct pam_conv c = {conv, NULL};
    pam_handle_t *pamh = NULL;
    int rc = pam_start_confdir(service, user, &c, confdir, &pamh);
    if (rc != PAM_SUCCESS) {
        fprintf(stderr, "pam_start_confdir: %d\n", rc);
        return -1;
    }
    if (ruser != NULL)
        pam_set_item(pamh, PAM_RUSER, ruser);
    rc = pam_acct_mgmt(pamh, flags);
    pam_end(pamh, rc);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFDIR SERVICE USER [--silent] [--cycles N]\n", argv[0]);
        return 2;
    }
    int flags = 0;
    long cycles = 0;
    ruser = argv[3];
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--silent") == 0)
            flags |= PAM_SILENT;
        else if (strcmp(argv[i], "--no-ruser") == 0)
            ruser = NULL;
        else if (strcmp(argv[i], "--ruser") == 0 && i + 1 < argc)
            ruser = argv[++i];
        else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = atol(argv[++i]);
    }
    if (cycles > 0) {
        long rss_after_warmup = -1;
        int last = 0, successes = 0;
        for (long i = 0; i < cycles; i++) {
            last = check(argv[1], argv[2], argv[3], flags | PAM_SILENT);
            if (last == PAM_SUCCESS)
                successes++;
            if (i == 99)
                rss_after_warmup = rss_kb();
            if (i == 0 || i == 99)
                fflush(stdout);
        }
        printf("cycles=%ld successes=%d rss_after_100_kb=%ld rss_end_kb=%ld\n", cycles, successes,
               rss_after_warmup, rss_kb());
        return 0;
    }
    int rc = check(argv[1], argv[2], argv[3], flags);
    printf("result=%s\n", name(rc));
    return 0;
}
