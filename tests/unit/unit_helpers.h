/* unit_helpers.h: small file-system helpers shared by the unit tests.
 * Include after the feature-test macro and before cmocka.h's users need it.
 * Everything is static inline so that a test not using a helper does not
 * trip -Wunused-function. */
#ifndef WF_UNIT_HELPERS_H
#define WF_UNIT_HELPERS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh private directory below $TMPDIR (or /tmp). Caller frees. */
static inline char *unit_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t len = strlen(base) + 32;
    char *dir = malloc(len);
    if (!dir) return NULL;
    snprintf(dir, len, "%s/wf2jsm-unit.XXXXXX", base);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

static inline int unit_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf dir. */
static inline void unit_rmtree(const char *dir)
{
    if (dir) nftw(dir, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir + "/" + name, newly allocated. */
static inline char *unit_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Writes text to path (truncating). Returns 0 on success. */
static inline int unit_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, fp) == len;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

/* The whole file as a NUL-terminated string (NULL when unreadable). */
static inline char *unit_read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(fp);
    if (!buf && !(buf = calloc(1, 1))) return NULL;
    buf[len] = '\0';
    return buf;
}

/* Number of non-overlapping occurrences of needle in hay. */
static inline size_t unit_count(const char *hay, const char *needle)
{
    size_t n = 0, nlen = strlen(needle);
    for (const char *p = hay; nlen && (p = strstr(p, needle)) != NULL; p += nlen) n++;
    return n;
}

/* Starts a throwaway PostgreSQL server (tests/lib/pgtmp.sh, so run from
 * the repository root) in a new directory below $TMPDIR, and writes its URL
 * (postgresql://postgres@127.0.0.1:PORT/DB) into url. Returns the directory
 * (caller passes it to unit_pg_stop()), or NULL with a message on stderr. */
static inline char *unit_pg_start(const char *who, char *url, size_t len)
{
    char *dir = unit_mkdtemp();
    if (!dir) return NULL;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "tests/lib/pgtmp.sh start %s/pg", dir);
    FILE *p = popen(cmd, "r");
    url[0] = '\0';
    if (p && !fgets(url, (int)len, p)) url[0] = '\0';
    if (!p || pclose(p) != 0 || !url[0]) {
        fprintf(stderr, "%s: tests/lib/pgtmp.sh could not start a server (run from the repository root)\n", who);
        unit_rmtree(dir);
        free(dir);
        return NULL;
    }
    url[strcspn(url, "\n")] = '\0';
    return dir;
}

/* Stops the server unit_pg_start() put in dir, removes dir and frees it. */
static inline void unit_pg_stop(const char *who, char *dir)
{
    if (!dir) return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "tests/lib/pgtmp.sh stop %s/pg >/dev/null 2>&1", dir);
    if (system(cmd) != 0) fprintf(stderr, "%s: stopping the server failed\n", who);
    unit_rmtree(dir);
    free(dir);
}

#endif
