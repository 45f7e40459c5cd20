/* unique_key.c: canonical encoding and SHA-256 of key columns. */
#include "unique_key.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends "<tag><decimal length>:<bytes>" so that no byte sequence can be
 * read as two different lists. */
static int append_field(unsigned char **buf, size_t *len, size_t *cap, char tag, const char *s)
{
    size_t slen = s ? strlen(s) : 0;
    char head[32];
    int hlen = s ? snprintf(head, sizeof head, "%c%zu:", tag, slen) : snprintf(head, sizeof head, "N;");
    size_t need = *len + (size_t)hlen + slen;
    if (need > *cap) {
        size_t ncap = need * 2 + 64;
        unsigned char *nb = realloc(*buf, ncap);
        if (!nb) return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, head, (size_t)hlen);
    *len += (size_t)hlen;
    if (s) {
        memcpy(*buf + *len, s, slen);
        *len += slen;
    }
    return 0;
}

wf_err wf_key_encode(const wf_submission *sub, const char *const *columns, size_t ncolumns,
                     unsigned char **out, size_t *outlen, char *errbuf, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    wf_err rc = WF_OK;
    for (size_t i = 0; i < ncolumns; i++) {
        int found = 0;
        const char *value = wf_submission_get(sub, columns[i], &found);
        if (!found) {
            snprintf(errbuf, errlen, "WEBFORM_KEY_COLUMNS names column '%s', which the source table does not have", columns[i]);
            rc = WF_ERR_CONFIG;
            goto fail;
        }
        if (append_field(&buf, &len, &cap, 'C', columns[i]) != 0 ||
            append_field(&buf, &len, &cap, 'V', value) != 0) {
            rc = WF_ERR_NOMEM;
            goto fail;
        }
    }
    *out = buf;
    *outlen = len;
    return WF_OK;
fail:
    free(buf);
    return rc;
}

struct wf_key_hasher {
    EVP_MD *sha256;
    EVP_MD_CTX *ctx;
};

wf_err wf_key_hasher_new(wf_key_hasher **out)
{
    wf_key_hasher *h = calloc(1, sizeof *h);
    *out = NULL;
    if (!h) return WF_ERR_NOMEM;
    h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    /* The first digest initialisation is where OpenSSL 3.0 does its one-off
     * work (the engine lookup loads openssl.cnf, with or without a library
     * context of our own; about 0.8 ms with the fetch): done here, it lands
     * where the caller creates the hasher, which sync does while the server
     * runs the window query, rather than on the first row. */
    if (!h->sha256 || !h->ctx || EVP_DigestInit_ex(h->ctx, h->sha256, NULL) != 1) {
        wf_err rc = h->ctx ? WF_ERR_FILE : WF_ERR_NOMEM;
        wf_key_hasher_free(h);
        return rc;
    }
    *out = h;
    return WF_OK;
}

void wf_key_hasher_free(wf_key_hasher *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->sha256);
    free(h);
}

static wf_err hash_hex(wf_key_hasher *h, const void *data, size_t len, char hex[WF_KEY_HEX_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_DigestInit_ex(h->ctx, h->sha256, NULL) != 1 || EVP_DigestUpdate(h->ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(h->ctx, digest, &dlen) != 1 || dlen != 32)
        return WF_ERR_FILE;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < dlen; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[2 * dlen] = '\0';
    return WF_OK;
}

wf_err wf_sha256_hex(const void *data, size_t len, char hex[WF_KEY_HEX_LEN + 1])
{
    wf_key_hasher *h;
    wf_err rc = wf_key_hasher_new(&h);
    if (rc != WF_OK) return rc;
    rc = hash_hex(h, data, len, hex);
    wf_key_hasher_free(h);
    return rc;
}

wf_err wf_key_compute_with(wf_key_hasher *h, const wf_submission *sub, const char *const *columns,
                           size_t ncolumns, char hex[WF_KEY_HEX_LEN + 1], char *errbuf, size_t errlen)
{
    unsigned char *enc = NULL;
    size_t enclen = 0;
    wf_err rc = wf_key_encode(sub, columns, ncolumns, &enc, &enclen, errbuf, errlen);
    if (rc != WF_OK) return rc;
    rc = hash_hex(h, enc, enclen, hex);
    free(enc);
    return rc;
}

wf_err wf_key_compute(const wf_submission *sub, const char *const *columns, size_t ncolumns,
                      char hex[WF_KEY_HEX_LEN + 1], char *errbuf, size_t errlen)
{
    wf_key_hasher *h;
    wf_err rc = wf_key_hasher_new(&h);
    if (rc != WF_OK) return rc;
    rc = wf_key_compute_with(h, sub, columns, ncolumns, hex, errbuf, errlen);
    wf_key_hasher_free(h);
    return rc;
}

char *wf_key_scheme(const char *const *columns, size_t ncolumns, const char *id_column, const char *time_column)
{
    size_t len = strlen("v1;keys=;id=;time=") + strlen(id_column) + strlen(time_column) + 1;
    for (size_t i = 0; i < ncolumns; i++) len += strlen(columns[i]) + 1;
    char *scheme = malloc(len);
    if (!scheme) return NULL;
    size_t pos = (size_t)snprintf(scheme, len, "v1;keys=");
    for (size_t i = 0; i < ncolumns; i++) pos += (size_t)snprintf(scheme + pos, len - pos, "%s%s", i ? "," : "", columns[i]);
    snprintf(scheme + pos, len - pos, ";id=%s;time=%s", id_column, time_column);
    return scheme;
}

bool wf_key_follows_id_and_time(const char *const *columns, size_t ncolumns, const char *id_column,
                                const char *time_column)
{
    for (size_t i = 0; i < ncolumns; i++)
        if (strcmp(columns[i], id_column) != 0 && strcmp(columns[i], time_column) != 0) return false;
    return ncolumns > 0;
}
