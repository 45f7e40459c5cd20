/* library_loader.h: opening a Debian library at run time and looking up
 * its functions, for the modules that load one on first use instead of
 * linking it (curl_loader.c, sqlite_loader.c, html_text.c). */
#ifndef WF_LIBRARY_LOADER_H
#define WF_LIBRARY_LOADER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *soname;    /* e.g. "libcurl.so.4" */
    const char *package;   /* the Debian package providing it, for the fix */
    char error[256];       /* why it could not be loaded; "" while it could */
} wf_library;

/* dlopen()s lib->soname with flags. Returns the handle (kept open for the
 * life of the process, as a linked library would be), or NULL with
 * lib->error naming the file, the package to install and the loader's
 * reason. Never allocates. */
void *wf_library_open(wf_library *lib, int flags);

/* Copies the address of the function name in handle into slot, a function
 * pointer of size bytes (dlsym gives an object pointer, which POSIX lets
 * become a function pointer and C11 alone does not: the copy goes through
 * memcpy). Returns false, with lib->error naming the function and the
 * package, when the library has no such symbol. Never allocates. */
bool wf_library_symbol(wf_library *lib, void *handle, const char *name, void *slot, size_t size);

#endif
