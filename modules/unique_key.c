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

wf_err wf_sha256_hex(const void *data, size_t len, char hex[WF_KEY_HEX_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    wf_err rc = WF_ERR_FILE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return WF_ERR_NOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen != 32)
        goto done;
    for (unsigned int i = 0; i < dlen; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    rc = WF_OK;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

wf_err wf_key_compute(const wf_submission *sub, const char *const *columns, size_t ncolumns,
                      char hex[WF_KEY_HEX_LEN + 1], char *errbuf, size_t errlen)
{
    unsigned char *enc = NULL;
    size_t enclen = 0;
    wf_err rc = wf_key_encode(sub, columns, ncolumns, &enc, &enclen, errbuf, errlen);
    if (rc != WF_OK) return rc;
    rc = wf_sha256_hex(enc, enclen, hex);
    free(enc);
    return rc;
}
