/* sqlite_loader.h: SQLite loaded on first use (see sqlite_loader.c). The
 * program calls SQLite's own API from <sqlite3.h>; this header adds the
 * reason a load failed and a way to load it at a chosen moment. */
#ifndef WF_SQLITE_LOADER_H
#define WF_SQLITE_LOADER_H

#include <stdbool.h>

/* Loads libsqlite3 now rather than on the first SQLite call, so that the
 * caller can place the cost inside a wait. Returns false when the library
 * cannot be loaded (wf_sqlite_load_error() says why); never fails twice
 * differently, and loading again is free. */
bool wf_sqlite_load(void);

/* Why SQLite could not be loaded (naming the file and the fix), or NULL
 * when it loaded or was never needed. Static storage; never fails. */
const char *wf_sqlite_load_error(void);

#endif
