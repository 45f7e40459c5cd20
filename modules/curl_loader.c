/* curl_loader.c: libcurl, loaded when Jira is first called.
 *
 * A tick with nothing new never calls Jira, yet linking libcurl would make
 * every tick map it and the thirty-odd libraries it depends on (TLS, LDAP,
 * Kerberos, SSH, IDN...): about half of what starting the process costs.
 * So the program is linked without it, and this module defines the libcurl
 * functions the program uses, each forwarding to the real one, which is
 * looked up with dlopen() on the first call. Debian's libcurl4 package
 * provides libcurl.so.4; the development package's headers give the types.
 *
 * Only the functions listed here may be called; a new curl_* call in the
 * program fails to link until it is added below. */
#define _POSIX_C_SOURCE 200809L
#include "curl_loader.h"
#include "library_loader.h"

/* Here the functions are defined, not called: no type-checking macros. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The library's entry points, filled by load(). Process-wide by nature
 * (libcurl itself is), written once before the first use. */
static struct {
    bool tried, ok;
    wf_library library;
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free_)(void *);
    time_t (*getdate)(const char *, const time_t *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    curl_mime *(*mime_init)(CURL *);
    void (*mime_free)(curl_mime *);
    curl_mimepart *(*mime_addpart)(curl_mime *);
    CURLcode (*mime_name)(curl_mimepart *, const char *);
    CURLcode (*mime_filename)(curl_mimepart *, const char *);
    CURLcode (*mime_type)(curl_mimepart *, const char *);
    CURLcode (*mime_data)(curl_mimepart *, const char *, size_t);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
} lib = {.library = {.soname = "libcurl.so.4", .package = "libcurl4"}};

#define SYM(field, name) wf_library_symbol(&lib.library, h, name, &lib.field, sizeof lib.field)

static bool load(void)
{
    if (lib.tried) return lib.ok;
    lib.tried = true;
    void *h = wf_library_open(&lib.library, RTLD_NOW | RTLD_LOCAL);
    if (!h) return false;
    lib.ok = SYM(global_init, "curl_global_init") && SYM(global_cleanup, "curl_global_cleanup") &&
             SYM(easy_init, "curl_easy_init") && SYM(easy_cleanup, "curl_easy_cleanup") &&
             SYM(easy_reset, "curl_easy_reset") && SYM(easy_setopt, "curl_easy_setopt") &&
             SYM(easy_getinfo, "curl_easy_getinfo") && SYM(easy_strerror, "curl_easy_strerror") &&
             SYM(easy_escape, "curl_easy_escape") && SYM(free_, "curl_free") && SYM(getdate, "curl_getdate") &&
             SYM(slist_append, "curl_slist_append") && SYM(slist_free_all, "curl_slist_free_all") &&
             SYM(mime_init, "curl_mime_init") && SYM(mime_free, "curl_mime_free") &&
             SYM(mime_addpart, "curl_mime_addpart") && SYM(mime_name, "curl_mime_name") &&
             SYM(mime_filename, "curl_mime_filename") && SYM(mime_type, "curl_mime_type") &&
             SYM(mime_data, "curl_mime_data") && SYM(multi_init, "curl_multi_init") &&
             SYM(multi_cleanup, "curl_multi_cleanup") && SYM(multi_setopt, "curl_multi_setopt") &&
             SYM(multi_add_handle, "curl_multi_add_handle") && SYM(multi_remove_handle, "curl_multi_remove_handle") &&
             SYM(multi_perform, "curl_multi_perform") && SYM(multi_poll, "curl_multi_poll") &&
             SYM(multi_info_read, "curl_multi_info_read");
    return lib.ok;
}

const char *wf_curl_load_error(void)
{
    return lib.library.error[0] ? lib.library.error : NULL;
}

CURLcode curl_global_init(long flags)
{
    return load() ? lib.global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
    if (lib.ok) lib.global_cleanup();
}

CURL *curl_easy_init(void)
{
    return load() ? lib.easy_init() : NULL;
}

void curl_easy_cleanup(CURL *h)
{
    if (lib.ok) lib.easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
    if (lib.ok) lib.easy_reset(h);
}

/* The option's number says its argument's type (curl.h's CURLOPTTYPE_*),
 * which is how libcurl itself reads it. */
CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...)
{
    if (!load()) return CURLE_FAILED_INIT;
    va_list ap;
    CURLcode rc;
    va_start(ap, option);
    if (option < CURLOPTTYPE_OBJECTPOINT) rc = lib.easy_setopt(h, option, va_arg(ap, long));
    else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
        rc = lib.easy_setopt(h, option, va_arg(ap, curl_off_t));
    else rc = lib.easy_setopt(h, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    if (!load()) return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = lib.easy_getinfo(h, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
    return load() ? lib.easy_strerror(code) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
    return load() ? lib.easy_escape(h, s, len) : NULL;
}

void curl_free(void *p)
{
    if (lib.ok) lib.free_(p);
}

time_t curl_getdate(const char *text, const time_t *unused)
{
    return load() ? lib.getdate(text, unused) : -1;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    return load() ? lib.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    if (lib.ok) lib.slist_free_all(list);
}

curl_mime *curl_mime_init(CURL *h)
{
    return load() ? lib.mime_init(h) : NULL;
}

void curl_mime_free(curl_mime *m)
{
    if (lib.ok) lib.mime_free(m);
}

curl_mimepart *curl_mime_addpart(curl_mime *m)
{
    return load() ? lib.mime_addpart(m) : NULL;
}

CURLcode curl_mime_name(curl_mimepart *p, const char *name)
{
    return load() ? lib.mime_name(p, name) : CURLE_FAILED_INIT;
}

CURLcode curl_mime_filename(curl_mimepart *p, const char *name)
{
    return load() ? lib.mime_filename(p, name) : CURLE_FAILED_INIT;
}

CURLcode curl_mime_type(curl_mimepart *p, const char *type)
{
    return load() ? lib.mime_type(p, type) : CURLE_FAILED_INIT;
}

CURLcode curl_mime_data(curl_mimepart *p, const char *data, size_t len)
{
    return load() ? lib.mime_data(p, data, len) : CURLE_FAILED_INIT;
}

CURLM *curl_multi_init(void)
{
    return load() ? lib.multi_init() : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
    return lib.ok ? lib.multi_cleanup(m) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
    if (!load()) return CURLM_BAD_HANDLE;
    va_list ap;
    CURLMcode rc;
    va_start(ap, option);
    if (option < CURLOPTTYPE_OBJECTPOINT) rc = lib.multi_setopt(m, option, va_arg(ap, long));
    else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
        rc = lib.multi_setopt(m, option, va_arg(ap, curl_off_t));
    else rc = lib.multi_setopt(m, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
    return load() ? lib.multi_add_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
    return lib.ok ? lib.multi_remove_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
    return load() ? lib.multi_perform(m, running) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd *extra, unsigned int n, int timeout_ms, int *numfds)
{
    return load() ? lib.multi_poll(m, extra, n, timeout_ms, numfds) : CURLM_BAD_HANDLE;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
    return load() ? lib.multi_info_read(m, left) : NULL;
}
