/* test_log.c: the per-module event logs: line format, quoting, redaction,
 * file modes and names, one line per event. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../modules/log.h"
#include "unit_helpers.h"

typedef struct {
    char *dir;      /* the test's temp dir */
    char *logdir;   /* dir/logs, created by wf_log_open */
    wf_log *log;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->dir = unit_mkdtemp();
    if (!fx->dir) return -1;
    fx->logdir = unit_path(fx->dir, "logs");
    char err[512] = "";
    mode_t old = umask(022);
    fx->log = wf_log_open(fx->logdir, err, sizeof err);
    umask(old);
    if (!fx->log) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_log_close(fx->log);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx->logdir);
    free(fx);
    return 0;
}

/* The contents of <logdir>/<module>.log (caller frees). */
static char *read_log(const fixture *fx, const char *module)
{
    char name[128];
    snprintf(name, sizeof name, "%s.log", module);
    char *path = unit_path(fx->logdir, name);
    char *text = unit_read_file(path);
    free(path);
    return text;
}

static void now_stamp(char buf[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int matches(const char *re, const char *text)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&rx, text, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* ---- an independent reader for one line ---------------------------------- */

/* Finds " key=" in line and unescapes its value into out ("" when absent;
 * returns 0 then). Values are either bare (up to the next space) or quoted
 * with \" \\ \n \r escapes. */
static int field_value(const char *line, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    out[0] = '\0';
    if (!p) return 0;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < outlen; p++) {
            if (*p == '\\') {
                p++;
                if (*p == 'x' && p[1] && p[2]) {
                    char hex[3] = {p[1], p[2], 0};
                    out[n++] = (char)strtol(hex, NULL, 16);
                    p += 2;
                    continue;
                }
                char c = *p == 'n' ? '\n' : *p == 'r' ? '\r' : *p == 't' ? '\t' : *p;
                out[n++] = c;
            } else {
                out[n++] = *p;
            }
        }
        if (*p != '"') return 0;
    } else {
        while (*p && *p != ' ' && *p != '\n' && n + 1 < outlen) out[n++] = *p++;
    }
    out[n] = '\0';
    return 1;
}

/* ---- format ---------------------------------------------------------------- */

static void test_line_format(void **state)
{
    fixture *fx = *state;
    char before[32], after[32];
    now_stamp(before);
    wf_log_set_run(fx->log, 7);
    wf_log_kv(fx->log, "process_batch", "INFO", "event", "created", "key", "abc123", "jsm_key", "HELP-1", NULL);
    now_stamp(after);

    char *text = read_log(fx, "process_batch");
    assert_non_null(text);
    if (!matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z INFO run=7 "
                 "event=created key=abc123 jsm_key=HELP-1\n$", text))
        fail_msg("unexpected line: %s", text);
    /* The stamp is now, in UTC (ISO stamps sort as text). */
    assert_true(strncmp(text, before, 20) >= 0);
    assert_true(strncmp(text, after, 20) <= 0);
    free(text);
}

static void test_run_dash_levels_and_null_value(void **state)
{
    fixture *fx = *state;
    wf_log_kv(fx->log, "m", "WARN", "a", NULL, NULL);
    wf_log_set_run(fx->log, 12);
    wf_log_kv(fx->log, "m", "ERROR", NULL);
    char *text = read_log(fx, "m");
    assert_true(matches("^[0-9T:Z-]{20} WARN run=- a=-\n[0-9T:Z-]{20} ERROR run=12\n$", text));
    free(text);
}

static void test_values_are_quoted_and_escaped(void **state)
{
    fixture *fx = *state;
    static const struct { const char *value, *rendered; } cases[] = {
        {"plain", "plain"},
        {"two words", "\"two words\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"a=b", "\"a=b\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"line1\nline2\r", "\"line1\\nline2\\r\""},
        {"tab\there", "\"tab\\there\""},
        /* A terminal tailing the log must never get a raw ESC or BEL, and a
         * newline must not start a forged line. */
        {"\x1b[31mred\x1b[0m\a", "\"\\x1B[31mred\\x1B[0m\\x07\""},
        {"ok\n2026-01-01T00:00:00Z ERROR run=1 forged=1", "\"ok\\n2026-01-01T00:00:00Z ERROR run=1 forged=1\""},
        {"\x7f\x01", "\"\\x7F\\x01\""},
        {"", "\"\""},
        {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
        /* Emoji and right-to-left letters stay as they are. */
        {"\xf0\x9f\x98\x80\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", "\xf0\x9f\x98\x80\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        wf_log_kv(fx->log, "quote", "INFO", "v", cases[i].value, "end", "1", NULL);

    char *text = read_log(fx, "quote");
    char *save = NULL;
    size_t i = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        assert_true(i < sizeof cases / sizeof *cases);
        /* The exact rendering... */
        char expect[128];
        snprintf(expect, sizeof expect, " v=%s end=1", cases[i].rendered);
        const char *tail = line + strlen(line) - strlen(expect);
        if (strlen(line) < strlen(expect) || strcmp(tail, expect) != 0)
            fail_msg("case %zu: line ends \"%s\", expected \"%s\"", i, line, expect);
        /* ...and an unescaping reader gets the value back. */
        char got[128];
        assert_true(field_value(line, "v", got, sizeof got));
        assert_string_equal(got, cases[i].value);
        assert_true(field_value(line, "end", got, sizeof got));
        assert_string_equal(got, "1");
    }
    assert_int_equal(i, sizeof cases / sizeof *cases);
    free(text);
}

/* ---- secrets --------------------------------------------------------------- */

static void test_secret_is_redacted(void **state)
{
    fixture *fx = *state;
    static const char secret[] = "ATATT3xFfGF0-s3cr3t";
    wf_log_add_secret(fx->log, secret);
    wf_log_kv(fx->log, "jsm_client", "ERROR", "token", secret,
              "header", "Authorization: Basic ATATT3xFfGF0-s3cr3t!", /* embedded */
              "url", "https://u:ATATT3xFfGF0-s3cr3t@host/x?t=ATATT3xFfGF0-s3cr3t", /* twice, quoted */
              NULL);
    char *text = read_log(fx, "jsm_client");
    assert_null(strstr(text, secret));
    assert_null(strstr(text, "s3cr3t"));
    assert_int_equal(unit_count(text, "[redacted]"), 4);
    assert_non_null(strstr(text, "header=\"Authorization: Basic [redacted]!\""));
    free(text);

    /* The same filter for text shown to the operator. */
    char buf[128] = "curl: (22) token ATATT3xFfGF0-s3cr3t refused";
    wf_log_redact(fx->log, buf);
    assert_string_equal(buf, "curl: (22) token [redacted] refused");
}

/* A secret shorter than the mask is still removed completely. */
static void test_short_secret(void **state)
{
    fixture *fx = *state;
    wf_log_add_secret(fx->log, "pw9");
    wf_log_kv(fx->log, "m", "INFO", "dsn", "host=db password=pw9 user=pw9x", NULL);
    char *text = read_log(fx, "m");
    assert_null(strstr(text, "pw9"));
    free(text);
}

/* Several secrets; empty and NULL ones are ignored, not matched. */
static void test_several_secrets(void **state)
{
    fixture *fx = *state;
    wf_log_add_secret(fx->log, "");
    wf_log_add_secret(fx->log, NULL);
    wf_log_add_secret(fx->log, "token-one-1234567");
    wf_log_add_secret(fx->log, "bearer-two-7654321");
    wf_log_kv(fx->log, "m", "INFO", "a", "token-one-1234567", "b", "xbearer-two-7654321x", "c", "harmless", NULL);
    char *text = read_log(fx, "m");
    assert_null(strstr(text, "token-one"));
    assert_null(strstr(text, "bearer-two"));
    assert_non_null(strstr(text, "c=harmless"));
    free(text);
}

/* A secret holding characters the logger escapes (a password with a quote
 * or a backslash) must not survive in its escaped form either. */
static void test_secret_with_escaped_characters(void **state)
{
    fixture *fx = *state;
    static const char secret[] = "pa\"ss\\word";
    wf_log_add_secret(fx->log, secret);
    wf_log_kv(fx->log, "m", "ERROR", "dsn", "postgresql://app:pa\"ss\\word@db/forms", NULL);
    char *text = read_log(fx, "m");
    assert_null(strstr(text, secret));
    assert_null(strstr(text, "pa\\\"ss\\\\word")); /* the escaped form */
    assert_null(strstr(text, "ss\\\\word"));
    assert_non_null(strstr(text, "[redacted]"));
    free(text);
}

/* A secret that the mask itself contains must not make redaction loop. A
 * hang here is a failure: the alarm kills the test binary. */
static void test_secret_inside_the_mask_terminates(void **state)
{
    fixture *fx = *state;
    wf_log_add_secret(fx->log, "[redacted]");
    wf_log_add_secret(fx->log, "red");
    alarm(10);
    wf_log_kv(fx->log, "m", "INFO", "v", "x [redacted] red y", NULL);
    char buf[64] = "a [redacted] b";
    wf_log_redact(fx->log, buf);
    alarm(0);
    char *text = read_log(fx, "m");
    assert_null(strstr(text, " red "));
    free(text);
}

/* ---- files ----------------------------------------------------------------- */

static void test_files_are_private_and_per_module(void **state)
{
    fixture *fx = *state;
    struct stat st;
    assert_int_equal(stat(fx->logdir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);

    mode_t old = umask(0);  /* the mode must not depend on a lenient umask */
    wf_log_kv(fx->log, "fetch_submissions", "INFO", "event", "fetched", NULL);
    wf_log_kv(fx->log, "jsm_client", "INFO", "event", "created", NULL);
    wf_log_kv(fx->log, "fetch_submissions", "INFO", "event", "fetched_again", NULL);
    umask(old);

    static const char *const modules[] = {"fetch_submissions", "jsm_client"};
    for (size_t i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.log", modules[i]);
        char *path = unit_path(fx->logdir, name);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        free(path);
    }
    char *a = read_log(fx, "fetch_submissions"), *b = read_log(fx, "jsm_client");
    assert_int_equal(unit_count(a, "\n"), 2);
    assert_non_null(strstr(a, "event=fetched\n"));
    assert_non_null(strstr(a, "event=fetched_again\n"));
    assert_null(strstr(a, "created"));
    assert_int_equal(unit_count(b, "\n"), 1);
    assert_non_null(strstr(b, "event=created\n"));
    free(a);
    free(b);
    assert_int_equal(wf_log_errors(fx->log), 0);
}

/* Appends to an existing file, never truncates it (logrotate's
 * copytruncate and tail -f rely on it). */
static void test_appends_to_existing_file(void **state)
{
    fixture *fx = *state;
    char *path = unit_path(fx->logdir, "m.log");
    assert_int_equal(unit_write_file(path, "old line\n"), 0);
    wf_log_kv(fx->log, "m", "INFO", "event", "new", NULL);
    char *text = unit_read_file(path);
    assert_memory_equal(text, "old line\n", 9);
    assert_int_equal(unit_count(text, "\n"), 2);
    free(text);
    free(path);
}

static void test_one_line_per_event(void **state)
{
    fixture *fx = *state;
    char big[20000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        if (i % 50 == 7)
            wf_log_kv(fx->log, "m", "INFO", "i", n, "big", big, "after", "x", NULL);   /* longer than a line */
        else
            wf_log_kv(fx->log, "m", "INFO", "i", n, "text", "multi\nline\r\nvalue", NULL);
    }
    char *text = read_log(fx, "m");
    assert_int_equal(unit_count(text, "\n"), 200);
    char *save = NULL;
    int i = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z INFO run=- i=[0-9]+ ", line));
        char got[16], expect[16];
        snprintf(expect, sizeof expect, "%d", i);
        assert_true(field_value(line, "i", got, sizeof got));
        assert_string_equal(got, expect);
        assert_true(strlen(line) < 8192);
    }
    assert_int_equal(i, 200);
    free(text);
}

static void test_null_logger_and_null_log(void **state)
{
    (void)state;
    wf_log *null = wf_log_open_null();
    assert_non_null(null);
    wf_log_set_run(null, 3);
    wf_log_add_secret(null, "s");
    wf_log_kv(null, "m", "ERROR", "k", "v", NULL);
    assert_int_equal(wf_log_errors(null), 0);
    wf_log_close(null);
    wf_log_kv(NULL, "m", "INFO", "k", "v", NULL);
    wf_log_set_run(NULL, 1);
    wf_log_close(NULL);
    assert_int_equal(wf_log_errors(NULL), 0);
}

static void test_uncreatable_directory(void **state)
{
    fixture *fx = *state;
    char *blocker = unit_path(fx->dir, "file");
    assert_int_equal(unit_write_file(blocker, "x"), 0);
    char *dir = unit_path(blocker, "logs");
    char err[512] = "";
    assert_null(wf_log_open(dir, err, sizeof err));
    assert_non_null(strstr(err, dir));
    assert_non_null(strstr(err, "SYNC_LOG_DIR"));
    free(dir);
    free(blocker);
}

/* Lines at WARN and above are copied to stderr when asked; INFO is not. */
static void test_echo_to_stderr(void **state)
{
    fixture *fx = *state;
    char *errpath = unit_path(fx->dir, "stderr.txt");
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);

    wf_log_add_secret(fx->log, "hunter2hunter2");
    wf_log_echo_stderr(fx->log, "WARN");
    wf_log_kv(fx->log, "m", "INFO", "event", "quiet", NULL);
    wf_log_kv(fx->log, "m", "WARN", "event", "loud", "pw", "hunter2hunter2", NULL);
    wf_log_kv(fx->log, "m", "ERROR", "event", "louder", NULL);
    wf_log_echo_stderr(fx->log, NULL);
    wf_log_kv(fx->log, "m", "ERROR", "event", "silenced", NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    char *echoed = unit_read_file(errpath);
    assert_null(strstr(echoed, "quiet"));
    assert_non_null(strstr(echoed, "event=loud"));
    assert_non_null(strstr(echoed, "event=louder"));
    assert_null(strstr(echoed, "silenced"));
    assert_null(strstr(echoed, "hunter2"));
    assert_int_equal(unit_count(echoed, "\n"), 2);
    free(echoed);
    free(errpath);
    /* The file still has every line. */
    char *text = read_log(fx, "m");
    assert_int_equal(unit_count(text, "\n"), 4);
    free(text);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_line_format),
        T(test_run_dash_levels_and_null_value),
        T(test_values_are_quoted_and_escaped),
        T(test_secret_is_redacted),
        T(test_short_secret),
        T(test_several_secrets),
        T(test_secret_with_escaped_characters),
        T(test_secret_inside_the_mask_terminates),
        T(test_files_are_private_and_per_module),
        T(test_appends_to_existing_file),
        T(test_one_line_per_event),
        cmocka_unit_test(test_null_logger_and_null_log),
        T(test_uncreatable_directory),
        T(test_echo_to_stderr),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
