/* fuzz_util.h: what the libFuzzer targets share: the input as a C string,
 * as a file, and split into parts. Built by `make fuzz` (see the Makefile). */
#ifndef WF_FUZZ_UTIL_H
#define WF_FUZZ_UTIL_H

#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The input as a NUL-terminated string (stops at its first NUL byte).
 * Caller frees. Aborts when out of memory: that is not a finding. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Writes size bytes to a per-process file and returns its path (static
 * storage; the file is reused by every run of the target). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *tag)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/wf2jsm-fuzz-%s-%ld", tag, (long)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (size && fwrite(data, 1, size, fp) != size) abort();
    fclose(fp);
    return path;
}

/* Splits the input at NUL bytes into at most max NUL-terminated parts in
 * one allocation (*buf, caller frees). Returns the number of parts. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **parts, size_t max, char **buf)
{
    *buf = fuzz_cstr(data, size);
    size_t n = 0;
    char *p = *buf, *end = *buf + size;
    while (n < max) {
        parts[n++] = p;
        char *z = memchr(p, '\0', (size_t)(end - p));
        if (!z || z >= end) break;
        p = z + 1;
    }
    return n;
}

#endif
