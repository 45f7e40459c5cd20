/* sqlite_loader.c: SQLite, loaded when the tracker is first opened.
 *
 * Mapping and relocating libsqlite3 costs about a quarter of a millisecond,
 * and a linked library pays it before main(), where nothing else can go
 * on. A tick with nothing new is worth about five milliseconds, most of it
 * waiting for PostgreSQL to fork and set up the session: loaded here, on
 * the tracker's first call, SQLite is mapped during that wait instead (see
 * job.c). So the program is linked without it, and this module defines the
 * SQLite functions the program uses, each forwarding to the real one, which
 * is looked up with dlopen() on the first call. Debian's libsqlite3-0
 * package provides libsqlite3.so.0; the development package's header gives
 * the types. The pattern is curl_loader.c's.
 *
 * Only the functions listed here may be called; a new sqlite3_* call in the
 * program fails to link until it is added below. */
#define _POSIX_C_SOURCE 200809L
#include "sqlite_loader.h"
#include "library_loader.h"

#include <dlfcn.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The library's entry points, filled by load(). Process-wide by nature
 * (SQLite's own state is), written once before the first use. */
static struct {
    bool tried, ok;
    wf_library library;
    int (*open)(const char *, sqlite3 **);
    int (*open_v2)(const char *, sqlite3 **, int, const char *);
    int (*close)(sqlite3 *);
    int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);
    int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
    int (*step)(sqlite3_stmt *);
    int (*finalize)(sqlite3_stmt *);
    int (*reset)(sqlite3_stmt *);
    int (*clear_bindings)(sqlite3_stmt *);
    int (*bind_text)(sqlite3_stmt *, int, const char *, int, void (*)(void *));
    int (*bind_null)(sqlite3_stmt *, int);
    int (*bind_int64)(sqlite3_stmt *, int, sqlite3_int64);
    sqlite3_int64 (*column_int64)(sqlite3_stmt *, int);
    const unsigned char *(*column_text)(sqlite3_stmt *, int);
    int (*column_type)(sqlite3_stmt *, int);
    int (*changes)(sqlite3 *);
    const char *(*errmsg)(sqlite3 *);
    const char *(*errstr)(int);
    int (*errcode)(sqlite3 *);
    int (*extended_result_codes)(sqlite3 *, int);
    int (*busy_timeout)(sqlite3 *, int);
    int (*db_config)(sqlite3 *, int, ...);
    int (*get_autocommit)(sqlite3 *);
    void (*free_)(void *);
    int (*sleep)(int);
    sqlite3_backup *(*backup_init)(sqlite3 *, const char *, sqlite3 *, const char *);
    int (*backup_step)(sqlite3_backup *, int);
    int (*backup_finish)(sqlite3_backup *);
} lib = {.library = {.soname = "libsqlite3.so.0", .package = "libsqlite3-0"}};

#define SYM(field, name) wf_library_symbol(&lib.library, h, name, &lib.field, sizeof lib.field)

static bool load(void)
{
    if (lib.tried) return lib.ok;
    lib.tried = true;
    void *h = wf_library_open(&lib.library, RTLD_LAZY | RTLD_LOCAL);
    if (!h) return false;
    lib.ok = SYM(open, "sqlite3_open") && SYM(open_v2, "sqlite3_open_v2") && SYM(close, "sqlite3_close") &&
             SYM(exec, "sqlite3_exec") && SYM(prepare_v2, "sqlite3_prepare_v2") && SYM(step, "sqlite3_step") &&
             SYM(finalize, "sqlite3_finalize") && SYM(reset, "sqlite3_reset") &&
             SYM(clear_bindings, "sqlite3_clear_bindings") && SYM(bind_text, "sqlite3_bind_text") &&
             SYM(bind_null, "sqlite3_bind_null") && SYM(bind_int64, "sqlite3_bind_int64") &&
             SYM(column_int64, "sqlite3_column_int64") && SYM(column_text, "sqlite3_column_text") &&
             SYM(column_type, "sqlite3_column_type") && SYM(changes, "sqlite3_changes") &&
             SYM(errmsg, "sqlite3_errmsg") && SYM(errstr, "sqlite3_errstr") && SYM(errcode, "sqlite3_errcode") &&
             SYM(extended_result_codes, "sqlite3_extended_result_codes") &&
             SYM(busy_timeout, "sqlite3_busy_timeout") && SYM(db_config, "sqlite3_db_config") &&
             SYM(get_autocommit, "sqlite3_get_autocommit") && SYM(free_, "sqlite3_free") &&
             SYM(sleep, "sqlite3_sleep") && SYM(backup_init, "sqlite3_backup_init") &&
             SYM(backup_step, "sqlite3_backup_step") && SYM(backup_finish, "sqlite3_backup_finish");
    return lib.ok;
}

bool wf_sqlite_load(void)
{
    return load();
}

const char *wf_sqlite_load_error(void)
{
    return lib.library.error[0] ? lib.library.error : NULL;
}

/* A failed load leaves no connection: *db stays NULL, and the caller's
 * sqlite3_errstr() of the code below reads the load error. */
int sqlite3_open(const char *path, sqlite3 **db)
{
    if (!load()) {
        *db = NULL;
        return SQLITE_CANTOPEN;
    }
    return lib.open(path, db);
}

int sqlite3_open_v2(const char *path, sqlite3 **db, int flags, const char *vfs)
{
    if (!load()) {
        *db = NULL;
        return SQLITE_CANTOPEN;
    }
    return lib.open_v2(path, db, flags, vfs);
}

/* Every call below needs a connection or a statement, which only exist
 * once the library is loaded; the checks guard against misuse only. */
int sqlite3_close(sqlite3 *db)
{
    return lib.ok ? lib.close(db) : SQLITE_OK;
}

int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg, char **errmsg)
{
    return lib.ok ? lib.exec(db, sql, cb, arg, errmsg) : SQLITE_MISUSE;
}

int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int len, sqlite3_stmt **st, const char **tail)
{
    return lib.ok ? lib.prepare_v2(db, sql, len, st, tail) : SQLITE_MISUSE;
}

int sqlite3_step(sqlite3_stmt *st)
{
    return lib.ok ? lib.step(st) : SQLITE_MISUSE;
}

int sqlite3_finalize(sqlite3_stmt *st)
{
    return lib.ok ? lib.finalize(st) : SQLITE_OK;
}

int sqlite3_reset(sqlite3_stmt *st)
{
    return lib.ok ? lib.reset(st) : SQLITE_MISUSE;
}

int sqlite3_clear_bindings(sqlite3_stmt *st)
{
    return lib.ok ? lib.clear_bindings(st) : SQLITE_MISUSE;
}

int sqlite3_bind_text(sqlite3_stmt *st, int i, const char *text, int len, void (*destructor)(void *))
{
    return lib.ok ? lib.bind_text(st, i, text, len, destructor) : SQLITE_MISUSE;
}

int sqlite3_bind_null(sqlite3_stmt *st, int i)
{
    return lib.ok ? lib.bind_null(st, i) : SQLITE_MISUSE;
}

int sqlite3_bind_int64(sqlite3_stmt *st, int i, sqlite3_int64 v)
{
    return lib.ok ? lib.bind_int64(st, i, v) : SQLITE_MISUSE;
}

sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *st, int i)
{
    return lib.ok ? lib.column_int64(st, i) : 0;
}

const unsigned char *sqlite3_column_text(sqlite3_stmt *st, int i)
{
    return lib.ok ? lib.column_text(st, i) : NULL;
}

int sqlite3_column_type(sqlite3_stmt *st, int i)
{
    return lib.ok ? lib.column_type(st, i) : SQLITE_NULL;
}

int sqlite3_changes(sqlite3 *db)
{
    return lib.ok ? lib.changes(db) : 0;
}

const char *sqlite3_errmsg(sqlite3 *db)
{
    return lib.ok ? lib.errmsg(db) : wf_sqlite_load_error() ? wf_sqlite_load_error() : "SQLite is not loaded";
}

const char *sqlite3_errstr(int rc)
{
    return lib.ok ? lib.errstr(rc) : wf_sqlite_load_error() ? wf_sqlite_load_error() : "SQLite is not loaded";
}

int sqlite3_errcode(sqlite3 *db)
{
    return lib.ok ? lib.errcode(db) : SQLITE_MISUSE;
}

int sqlite3_extended_result_codes(sqlite3 *db, int on)
{
    return lib.ok ? lib.extended_result_codes(db, on) : SQLITE_MISUSE;
}

int sqlite3_busy_timeout(sqlite3 *db, int ms)
{
    return lib.ok ? lib.busy_timeout(db, ms) : SQLITE_MISUSE;
}

/* Only the on/off options, whose arguments are (int, int *): the two that
 * take others (SQLITE_DBCONFIG_MAINDBNAME, SQLITE_DBCONFIG_LOOKASIDE) are
 * refused, since their arguments cannot be passed on blindly. */
int sqlite3_db_config(sqlite3 *db, int op, ...)
{
    if (!lib.ok || op == SQLITE_DBCONFIG_MAINDBNAME || op == SQLITE_DBCONFIG_LOOKASIDE) return SQLITE_MISUSE;
    va_list ap;
    va_start(ap, op);
    int on = va_arg(ap, int);
    int *result = va_arg(ap, int *);
    va_end(ap);
    return lib.db_config(db, op, on, result);
}

int sqlite3_get_autocommit(sqlite3 *db)
{
    return lib.ok ? lib.get_autocommit(db) : 1;
}

void sqlite3_free(void *p)
{
    if (lib.ok) lib.free_(p);
}

int sqlite3_sleep(int ms)
{
    return lib.ok ? lib.sleep(ms) : 0;
}

sqlite3_backup *sqlite3_backup_init(sqlite3 *dest, const char *dest_name, sqlite3 *src, const char *src_name)
{
    return lib.ok ? lib.backup_init(dest, dest_name, src, src_name) : NULL;
}

int sqlite3_backup_step(sqlite3_backup *b, int pages)
{
    return lib.ok ? lib.backup_step(b, pages) : SQLITE_MISUSE;
}

int sqlite3_backup_finish(sqlite3_backup *b)
{
    return lib.ok ? lib.backup_finish(b) : SQLITE_OK;
}
