#ifndef WRIT_CWRITSYSTEM_H
#define WRIT_CWRITSYSTEM_H
/* Kernel interfaces the Glibc module does not import, for the CLI and writd (not the modules). */
#include <malloc.h>
#include <sys/timerfd.h>
#include <sys/timex.h>
#include <time.h>

/* A wall-clock timerfd (CLOCK_REALTIME), close-on-exec. */
static inline int writ_timerfd_create(void) { return timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC); }

/* Arms `fd` to fire at the absolute UTC second `seconds`; the read fails with ECANCELED when the
 * clock is set meanwhile (TFD_TIMER_CANCEL_ON_SET), so a stepped clock is noticed at once. */
static inline int writ_timerfd_arm_at(int fd, long long seconds) {
    struct itimerspec spec = {0};
    spec.it_value.tv_sec = (time_t)seconds;
    return timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, NULL);
}

/* 1 when the kernel says the clock is not synchronised (adjtimex: TIME_ERROR or STA_UNSYNC),
 * 0 when it is, -1 when it cannot tell. */
static inline int writ_clock_unsynchronised(void) {
    struct timex tx = {0};
    int state = adjtimex(&tx);
    if (state == -1) return -1;
    return (state == TIME_ERROR || (tx.status & STA_UNSYNC)) ? 1 : 0;
}
/* Returns freed heap memory to the system (glibc malloc_trim). */
static inline void writ_malloc_trim(void) { (void)malloc_trim(0); }
#endif
