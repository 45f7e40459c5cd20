/* library_loader.c: opening a Debian library at run time (see
 * library_loader.h). */
#define _POSIX_C_SOURCE 200809L
#include "library_loader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *wf_library_open(wf_library *lib, int flags)
{
    void *h = dlopen(lib->soname, flags);
    if (!h) {
        const char *e = dlerror();
        snprintf(lib->error, sizeof lib->error, "cannot load %s (install Debian's %s package): %s", lib->soname,
                 lib->package, e ? e : "unknown error");
    }
    return h;
}

bool wf_library_symbol(wf_library *lib, void *handle, const char *name, void *slot, size_t size)
{
    void *p = dlsym(handle, name);
    if (!p) {
        snprintf(lib->error, sizeof lib->error, "%s has no %s (install Debian's %s package)", lib->soname, name,
                 lib->package);
        return false;
    }
    memcpy(slot, &p, size);
    return true;
}
