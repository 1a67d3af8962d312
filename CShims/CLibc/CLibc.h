#ifndef WRIT_CLIBC_H
#define WRIT_CLIBC_H
/* What the Glibc overlay gives regular Swift and Embedded Swift lacks: the headers, errno (a
 * macro), and open (variadic). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static inline int writ_errno(void) { return errno; }
static inline int writ_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
#endif
