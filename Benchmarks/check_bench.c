/* In-process cost of one Writ check, against a C baseline doing the same store work, in one run.
 *
 *   check_bench CONFDIR SERVICE USER STORE N
 *
 * writ:     pam_acct_mgmt() on one PAM handle whose service stack is pam_writ.so alone: the module
 *           looks up the user, checks the store's ownership and modes, opens it read-only, runs
 *           the indexed query, decides, logs and closes — everything a login or sudo pays after
 *           the module is loaded.
 * baseline: the same SQLite work written directly in C (open read-only, the same query with the
 *           same bindings, step through the rows, close) — what a minimal C module would pay.
 * Prints median and p90 in microseconds for both, and the ratio of the medians.
 */
#include <security/pam_appl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int conv(int n, const struct pam_message **m, struct pam_response **r, void *d) {
    (void)m; (void)d;
    *r = calloc((size_t)n, sizeof(**r));
    return *r ? PAM_SUCCESS : PAM_BUF_ERR;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *t, int n, double *median) {
    qsort(t, (size_t)n, sizeof(double), cmp);
    *median = t[n / 2];
    printf("%-9s median %7.1f us   p90 %7.1f us   min %7.1f us   (%d checks)\n", name, t[n / 2], t[n * 9 / 10], t[0], n);
}

static int baseline_check(const char *store, const char *user) {
    sqlite3 *db = NULL;
    int found = 0;
    if (sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT id, uid, host, runas, commands, not_before, expires_at FROM grants "
                      "WHERE user = ?1 AND capability = ?2 AND revoked_at IS NULL AND expires_at > ?3 "
                      "ORDER BY expires_at DESC LIMIT 64";
    if (sqlite3_prepare_v3(db, sql, -1, 0, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, "sudo", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        while (sqlite3_step(st) == SQLITE_ROW)
            found++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s CONFDIR SERVICE USER STORE N\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[5]);
    double *tw = calloc((size_t)n, sizeof(double)), *tb = calloc((size_t)n, sizeof(double));
    struct pam_conv c = {conv, NULL};
    pam_handle_t *pamh = NULL;
    if (pam_start_confdir(argv[2], argv[3], &c, argv[1], &pamh) != PAM_SUCCESS)
        return 1;
    if (pam_acct_mgmt(pamh, PAM_SILENT) != PAM_SUCCESS) { /* loads the module; warm-up */
        fprintf(stderr, "check_bench: the benchmark user is not allowed; seed the store first\n");
        return 1;
    }
    for (int i = 0; i < 50; i++) baseline_check(argv[4], argv[3]);
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        int rc = pam_acct_mgmt(pamh, PAM_SILENT);
        tw[i] = now_us() - t0;
        if (rc != PAM_SUCCESS) { fprintf(stderr, "check %d denied\n", i); return 1; }
        t0 = now_us();
        if (baseline_check(argv[4], argv[3]) < 1) { fprintf(stderr, "baseline found no grant\n"); return 1; }
        tb[i] = now_us() - t0;
    }
    pam_end(pamh, PAM_SUCCESS);
    double mw, mb;
    report("writ", tw, n, &mw);
    report("C-sqlite", tb, n, &mb);
    printf("ratio writ/C-sqlite (median): %.2f\n", mw / mb);
    return 0;
}
