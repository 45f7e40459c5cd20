/* unique_key.h: the submission's unique key, SHA-256 over its key columns.
 *
 * The encoding is unambiguous: every column contributes its name and its
 * value, each length-prefixed, and SQL NULL has its own tag. So ("a|b","c")
 * and ("a","b|c") never share an encoding, nor do NULL and "". */
#ifndef WF_UNIQUE_KEY_H
#define WF_UNIQUE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include "errors.h"
#include "submission.h"

#define WF_KEY_HEX_LEN 64
/* Characters of the key used in the Jira label wf2jsm-<prefix>: 128 bits is
 * ample against collisions among one desk's tickets and keeps JQL short. */
#define WF_KEY_LABEL_PREFIX_LEN 32

/* Writes the canonical encoding of the named columns of sub into a newly
 * allocated buffer (*out, *outlen; the caller frees *out). Returns
 * WF_ERR_CONFIG when a key column is not in the row (errbuf names it), or
 * WF_ERR_NOMEM. */
wf_err wf_key_encode(const wf_submission *sub, const char *const *columns, size_t ncolumns,
                     unsigned char **out, size_t *outlen, char *errbuf, size_t errlen);

/* Computes the hex SHA-256 of the canonical encoding into hex (65 bytes,
 * NUL-terminated), through OpenSSL's EVP interface. Returns WF_ERR_CONFIG
 * as wf_key_encode does, WF_ERR_NOMEM, or WF_ERR_FILE if libcrypto fails. */
wf_err wf_key_compute(const wf_submission *sub, const char *const *columns, size_t ncolumns,
                      char hex[WF_KEY_HEX_LEN + 1], char *errbuf, size_t errlen);

/* A reusable hasher. OpenSSL 3 looks the SHA-256 implementation up again
 * on every EVP_DigestInit_ex(EVP_sha256()) call, which costs more than
 * hashing a key; a run that keys many rows fetches it once here. */
typedef struct wf_key_hasher wf_key_hasher;

/* Returns WF_ERR_NOMEM, or WF_ERR_FILE when libcrypto has no SHA-256.
 * Does OpenSSL's one-off set-up (a first digest initialisation), so that
 * the caller chooses when that cost is paid. Free with
 * wf_key_hasher_free() (NULL allowed). */
wf_err wf_key_hasher_new(wf_key_hasher **out);
void wf_key_hasher_free(wf_key_hasher *h);

/* wf_key_compute() through h: same result, same errors. */
wf_err wf_key_compute_with(wf_key_hasher *h, const wf_submission *sub, const char *const *columns,
                           size_t ncolumns, char hex[WF_KEY_HEX_LEN + 1], char *errbuf, size_t errlen);

/* The key scheme: what a tracker's keys are computed from, as one string
 * for its meta table ("v1;keys=id,submitted_date;id=id;time=submitted_date":
 * the encoding's version, the key columns in order, and the id and time
 * columns whose texts the tracker records beside each key). Returns a new
 * string the caller frees, or NULL when memory ran out. */
char *wf_key_scheme(const char *const *columns, size_t ncolumns, const char *id_column, const char *time_column);

/* True when every key column is the id or the time column: a row's key is
 * then a function of its id and time texts alone, so that a tracker whose
 * keys all follow the scheme (wf_tracker_keys_follow_scheme()) can be asked
 * for a row by those texts instead of by a key computed first. Never fails. */
bool wf_key_follows_id_and_time(const char *const *columns, size_t ncolumns, const char *id_column,
                                const char *time_column);

/* Hex SHA-256 of an arbitrary buffer (used for content checksums). Returns
 * WF_ERR_FILE if libcrypto fails. */
wf_err wf_sha256_hex(const void *data, size_t len, char hex[WF_KEY_HEX_LEN + 1]);

#endif
