#ifndef WRIT_CSQLITE_H
#define WRIT_CSQLITE_H
#include <sqlite3.h>

/// sqlite3_bind_text with SQLITE_TRANSIENT (a macro Swift cannot import): SQLite copies the text.
int writ_sqlite3_bind_text(sqlite3_stmt *stmt, int index, const char *text);



/// Turns off what a store file must never be able to do (sqlite3_db_config is variadic):
/// SQLITE_DBCONFIG_TRUSTED_SCHEMA off (no functions from schema objects), DEFENSIVE on.
void writ_sqlite3_harden(sqlite3 *db);
#endif
