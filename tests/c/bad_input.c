/*
 * Bad input through the C ABI, from a host written only against include/mailconnect.h and
 * include/mailconnect_store.h (ABI 2): what ffi/tests/bad_input.rs checks from Rust, checked again
 * from C.
 *
 * usage: bad_input STORE_PATH
 *   STORE_PATH : a fresh token store file (may be a Windows path such as C:\x\y.db; it is
 *                JSON-escaped into the options). Nothing here contacts a server: every account
 *                used is unknown, not connected, or the call is refused before any I/O.
 *
 * Covered, for every function of the header: NULL client, NULL out pointers, NULL and invalid
 * UTF-8 string arguments; plus empty and 2 MiB strings, JSON that is not an object or not JSON,
 * unknown option fields, values out of range, wrong hosts, unknown accounts / registrations /
 * sign-in handles, wrong callback versions, missing callbacks, unknown protocol bits, a cancel
 * triggered before the call (refused arguments are still reported as such; a disconnect is
 * cancelled and changes nothing), the NULL-safe frees, mc_result_name_get of unknown codes and the ABI
 * version. After every failing call: mc_error_code_get() is the returned code,
 * mc_error_message_get() is non-NULL and non-empty, mc_error_diagnostic_get() is JSON naming the
 * status, and out pointers are left NULL.
 *
 * Portable ISO C11 (gcc, MinGW-w64 64- and 32-bit; the 32-bit build uses -mrtd, where stdcall is
 * the default: every callback is declared MC_CALL, as the header asks). No POSIX.
 * Prints "ok <what>" per passing check and "FAIL ..." to stderr; ends with "PASS 0 failures" or
 * "FAIL n failures". Exit status 0 = every check passed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailconnect_store.h" /* includes mailconnect.h */
#include "check.h"


static char *copy_of(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* Check a failing call, right after it: it returned `want`, the thread's last error code is the
 * same, the message is non-NULL and non-empty (and contains msg_needle when given), and the
 * diagnostic is JSON naming the status (and contains diag_needle when given). The borrowed
 * strings are copied before any other mailconnect call. */
static void expect_at(int line, int32_t rc, int32_t want, const char *what, const char *msg_needle, const char *diag_needle) {
    int32_t last = mc_error_code_get();
    const char *m = mc_error_message_get();
    int msg_null = m == NULL;
    char *msg = copy_of(m);
    const char *d = mc_error_diagnostic_get();
    int diag_null = d == NULL;
    char *diag = copy_of(d);
    char status[96];
    snprintf(status, sizeof status, "\"status\":\"%s\"", mc_result_name_get(want));
    const char *problem = NULL;
    if (rc != want) problem = "wrong return code";
    else if (last != rc) problem = "mc_error_code_get() differs from the returned code";
    else if (msg_null) problem = "mc_error_message_get() is NULL";
    else if (!msg || !*msg) problem = "mc_error_message_get() is empty";
    else if (msg_needle && !contains(msg, msg_needle)) problem = "the message does not name what is wrong";
    else if (diag_null) problem = "mc_error_diagnostic_get() is NULL";
    else if (!diag || diag[0] != '{' || !contains(diag, status)) problem = "the diagnostic does not name the status";
    else if (diag_needle && !contains(diag, diag_needle)) problem = "the diagnostic lacks the expected evidence";
    if (problem) {
        /* Messages may quote a 2 MiB argument: print their beginning only. */
        fprintf(stderr, "FAIL %s:%d %s: %s: returned %d (%s), want %d (%s); last code %d; message '%.400s'%s%s%s; diagnostic %.4000s%s%s\n",
                __FILE__, line, what, problem, (int)rc, mc_result_name_get(rc), (int)want, mc_result_name_get(want), (int)last,
                msg_null ? "(NULL)" : (msg ? msg : "?"), msg_needle ? " (want '" : "", msg_needle ? msg_needle : "",
                msg_needle ? "')" : "", diag_null ? "(NULL)" : (diag ? diag : "?"), diag_needle ? " want " : "",
                diag_needle ? diag_needle : "");
        failures++;
    } else {
        printf("ok %s -> %s\n", what, mc_result_name_get(want));
    }
    free(msg);
    free(diag);
}

#define EXPECT(call, want, what) expect_at(__LINE__, (call), (want), (what), NULL, NULL)
#define EXPECT_MSG(call, want, what, needle) expect_at(__LINE__, (call), (want), (what), (needle), NULL)
#define EXPECT_DIAG(call, want, what, needle) expect_at(__LINE__, (call), (want), (what), NULL, (needle))

/* A failed call must not hand out a string: *out is still NULL. Frees whatever was handed out. */
static void out_left_null_at(int line, char **out, const char *what) {
    if (*out != NULL) {
        fprintf(stderr, "FAIL %s:%d %s: *out was set on failure\n", __FILE__, line, what);
        failures++;
    } else {
        printf("ok %s leaves *out NULL\n", what);
    }
    mc_string_free(*out);
    *out = NULL;
}
#define OUT_NULL(out, what) out_left_null_at(__LINE__, &(out), (what))

/* A failing call with a string out-parameter: the code, the last error, and *out left NULL. */
#define EXPECT_OUT(call, want, what, out)                                                          \
    do {                                                                                           \
        EXPECT(call, want, what);                                                                  \
        OUT_NULL(out, what);                                                                       \
    } while (0)

/* After a success the last error is cleared. */
static void cleared_at(int line, const char *what) {
    int32_t last = mc_error_code_get();
    const char *m = mc_error_message_get();
    int ok = last == MC_OK && m != NULL && m[0] == 0;
    const char *d = mc_error_diagnostic_get();
    ok = ok && d != NULL && strcmp(d, "{}") == 0;
    if (!ok) {
        fprintf(stderr, "FAIL %s:%d %s: last error not cleared after a success: code %d, message '%s', diagnostic %s\n",
                __FILE__, line, what, (int)last, m ? m : "(NULL)", d ? d : "(NULL)");
        failures++;
    } else {
        printf("ok %s clears the last error\n", what);
    }
}
#define CLEARED(what) cleared_at(__LINE__, (what))

static const char BAD_UTF8[] = "\xff\xfe";   /* never valid UTF-8 */
static const char TRUNCATED_UTF8[] = "caf\xc3"; /* a sequence cut short */
#define HUGE_LEN ((size_t)2 * 1024 * 1024)    /* 2 MiB */

static const char REG[] = "{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"authority_host\":\"http://127.0.0.1:9\"}";
static const char ACC[] = "{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\"}";
static const char KEY_OPTS[] = "{\"key\":{\"base64\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}}";

/* ---- callbacks (never expected to be called where they would matter; all MC_CALL) ---------- */

static void MC_CALL on_log(void *user_data, int32_t level, const char *target, const char *message) {
    (void)user_data;
    fprintf(stderr, "log %d %s: %s\n", (int)level, target ? target : "", message ? message : "");
}

static int32_t MC_CALL on_open_url(void *user_data, const char *url) {
    int *calls = (int *)user_data;
    *calls += 1;
    printf("unexpected open-URL callback: %s\n", url);
    return 1;
}

static void MC_CALL on_device_code(void *user_data, const char *user_code, const char *uri, const char *message) {
    int *calls = (int *)user_data;
    (void)message;
    *calls += 1;
    printf("unexpected device-code callback: %s %s\n", user_code, uri);
}

static void MC_CALL on_progress(void *user_data, const char *stage) {
    int *calls = (int *)user_data;
    *calls += 1;
    printf("progress %s\n", stage);
}

/* ---- a host-owned store that is always empty, probing the record/list exports from inside ---- */

#define PROBES 6
typedef struct {
    int load_calls, list_calls;
    int load_probed, list_probed;
    int32_t rc[2][PROBES];   /* [0] load probes, [1] list probes: returned code */
    int32_t last[2][PROBES]; /* mc_error_code_get() right after */
    int msg_ok[2][PROBES];   /* mc_error_message_get() non-NULL and non-empty */
    int32_t ok_rc;           /* a valid mc_store_record_set inside load */
} store_probe;

static void record_probe(store_probe *p, int which, int i, int32_t rc) {
    const char *m;
    p->rc[which][i] = rc;
    p->last[which][i] = mc_error_code_get();
    m = mc_error_message_get();
    p->msg_ok[which][i] = m != NULL && m[0] != 0;
}

static int32_t MC_CALL st_load(void *user_data, const char *kind, const char *id, mc_store_record *out) {
    store_probe *p = (store_probe *)user_data;
    static const uint8_t blob[4] = {1, 2, 3, 4};
    (void)kind;
    (void)id;
    p->load_calls++;
    if (!p->load_probed) {
        p->load_probed = 1;
        record_probe(p, 0, 0, mc_store_record_set(NULL, blob, sizeof blob, 1));
        record_probe(p, 0, 1, mc_store_record_set(out, NULL, 5, 1));
        record_probe(p, 0, 2, mc_store_record_set(out, blob, sizeof blob, 0));
        record_probe(p, 0, 3, mc_store_record_set(out, blob, sizeof blob, -1));
        record_probe(p, 0, 4, mc_store_record_set(out, blob, sizeof blob, INT64_MIN));
        record_probe(p, 0, 5, mc_store_record_set(out, NULL, 0, 0));
        /* A valid set; the record is then reported as not found, so it is ignored. */
        p->ok_rc = mc_store_record_set(out, blob, sizeof blob, 1);
    }
    return MC_STORE_NOT_FOUND;
}

static int32_t MC_CALL st_cas(void *user_data, const char *kind, const char *id, const uint8_t *data, size_t len,
                              int64_t expected_version, int64_t new_version) {
    (void)user_data, (void)kind, (void)id, (void)data, (void)len, (void)expected_version, (void)new_version;
    return -7; /* this host's database is read-only: never expected to be called */
}

static int32_t MC_CALL st_remove(void *user_data, const char *kind, const char *id) {
    (void)user_data, (void)kind, (void)id;
    return MC_STORE_NOT_FOUND;
}

static int32_t MC_CALL st_list(void *user_data, const char *kind, mc_store_list *out) {
    store_probe *p = (store_probe *)user_data;
    static const uint8_t blob[4] = {1, 2, 3, 4};
    (void)kind;
    p->list_calls++;
    if (!p->list_probed) {
        p->list_probed = 1;
        record_probe(p, 1, 0, mc_store_list_add(NULL, "x", blob, sizeof blob, 1));
        record_probe(p, 1, 1, mc_store_list_add(out, NULL, blob, sizeof blob, 1));
        record_probe(p, 1, 2, mc_store_list_add(out, BAD_UTF8, blob, sizeof blob, 1));
        record_probe(p, 1, 3, mc_store_list_add(out, "x", NULL, 5, 1));
        record_probe(p, 1, 4, mc_store_list_add(out, "x", blob, sizeof blob, 0));
        record_probe(p, 1, 5, mc_store_list_add(out, "x", blob, sizeof blob, -3));
    }
    return MC_STORE_OK; /* nothing was added: an empty list */
}

static void check_probe_at(int line, const store_probe *p, int which, int i, int32_t want, const char *what) {
    int32_t rc = p->rc[which][i], last = p->last[which][i];
    if (rc != want || last != rc || !p->msg_ok[which][i]) {
        fprintf(stderr, "FAIL %s:%d %s: returned %d (%s), want %d (%s); last code %d; message %s\n", __FILE__, line, what,
                (int)rc, mc_result_name_get(rc), (int)want, mc_result_name_get(want), (int)last,
                p->msg_ok[which][i] ? "ok" : "NULL or empty");
        failures++;
    } else {
        printf("ok %s -> %s\n", what, mc_result_name_get(want));
    }
}

/* ---- the checks -------------------------------------------------------------------------------- */

static void versions_and_names(void) {
    CHECK(mc_abi_version_get() == MC_ABI_VERSION, "mc_abi_version_get() == MC_ABI_VERSION");
    CHECK(mc_version_get() != NULL && strcmp(mc_version_get(), MAILCONNECT_VERSION) == 0, "mc_version_get() == MAILCONNECT_VERSION");
    static const struct {
        int32_t code;
        const char *name;
    } known[] = {
#define NAME(c) {c, #c}
        NAME(MC_OK), NAME(MC_E_INVALID_ARGUMENT), NAME(MC_E_NULL_POINTER), NAME(MC_E_INVALID_UTF8),
        NAME(MC_E_NOT_FOUND), NAME(MC_E_STATE), NAME(MC_E_REAUTHORIZATION_REQUIRED),
        NAME(MC_E_PROVIDER_CONFIGURATION), NAME(MC_E_AUTHORIZATION_DENIED), NAME(MC_E_PROVIDER_UNAVAILABLE),
        NAME(MC_E_NETWORK), NAME(MC_E_TLS), NAME(MC_E_MAIL_SERVER), NAME(MC_E_STORE), NAME(MC_E_CANCELLED),
        NAME(MC_E_TIMEOUT), NAME(MC_E_INTERNAL),
#undef NAME
    };
    int all = 1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *n = mc_result_name_get(known[i].code);
        if (!n || strcmp(n, known[i].name) != 0) {
            fprintf(stderr, "FAIL mc_result_name_get(%d) = %s, want %s\n", (int)known[i].code, n ? n : "(NULL)", known[i].name);
            all = 0;
        }
    }
    CHECK(all, "mc_result_name_get names every code of the header");
    static const int32_t unknown[] = {1, 2, 12345, -4, -9, -12, -24, -32, -41, -51, -62, -98, -100, INT32_MIN, INT32_MAX};
    all = 1;
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *n = mc_result_name_get(unknown[i]);
        if (!n || strcmp(n, "MC_E_INTERNAL") != 0) {
            fprintf(stderr, "FAIL mc_result_name_get(%d) = %s, want MC_E_INTERNAL\n", (int)unknown[i], n ? n : "(NULL)");
            all = 0;
        }
    }
    CHECK(all, "mc_result_name_get of unknown codes (1, 12345, -4, INT32_MIN, INT32_MAX, ...) is \"MC_E_INTERNAL\"");
}

static void log_callback(void) {
    EXPECT_MSG(mc_log_callback_set(on_log, NULL, 6), MC_E_INVALID_ARGUMENT, "mc_log_callback_set level 6", "max_level");
    EXPECT(mc_log_callback_set(on_log, NULL, -1), MC_E_INVALID_ARGUMENT, "mc_log_callback_set level -1");
    EXPECT(mc_log_callback_set(on_log, NULL, INT32_MIN), MC_E_INVALID_ARGUMENT, "mc_log_callback_set level INT32_MIN");
    CHECK(mc_log_callback_set(NULL, NULL, MC_LOG_WARN) == MC_OK, "mc_log_callback_set with a NULL callback (stops forwarding)");
    CLEARED("mc_log_callback_set(NULL, ...)");
    CHECK(mc_log_callback_set(on_log, NULL, MC_LOG_WARN) == MC_OK, "mc_log_callback_set with an MC_CALL callback");
}

static void client_options(const char *store_json, const char *huge) {
    char opts[4096];
    mc_client *c = NULL;
    EXPECT_MSG(mc_client_open(NULL, &c), MC_E_NULL_POINTER, "mc_client_open NULL options", "options_json");
    CHECK(c == NULL, "mc_client_open NULL options leaves *out NULL");
    c = (mc_client *)(uintptr_t)0x1; /* a host's stale value: cleared at entry, not kept */
    EXPECT(mc_client_open("{not json", &c), MC_E_INVALID_ARGUMENT, "mc_client_open with garbage in *out");
    CHECK(c == NULL, "mc_client_open sets *out to NULL before failing (no stale pointer kept)");
    c = NULL;
    snprintf(opts, sizeof opts, "{\"store\":\"%s\"}", store_json);
    EXPECT_MSG(mc_client_open(opts, NULL), MC_E_NULL_POINTER, "mc_client_open NULL out", "out");
    EXPECT_MSG(mc_client_open(BAD_UTF8, &c), MC_E_INVALID_UTF8, "mc_client_open invalid UTF-8 options", "UTF-8");
    EXPECT(mc_client_open(TRUNCATED_UTF8, &c), MC_E_INVALID_UTF8, "mc_client_open truncated UTF-8 options");
    static const char *const not_objects[] = {"[]", "[1,2]", "42", "\"store\"", "null", "true", "", "   ", "{not json", "{\"store\":", "{}}"};
    for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "mc_client_open options '%s' (not a JSON object)", not_objects[i]);
        EXPECT(mc_client_open(not_objects[i], &c), MC_E_INVALID_ARGUMENT, what);
    }
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"colour\":\"red\"}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open unknown option field 'colour'", "\"field\":\"colour\"");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"language\":\"fr\"}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open language 'fr'", "\"field\":\"language\"");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"log_level\":\"loud\"}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open log_level 'loud'", "\"field\":\"log_level\"");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"http_timeout_secs\":0}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open http_timeout_secs 0", "\"field\":\"http_timeout_secs\"");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"http_timeout_secs\":-5}", store_json);
    EXPECT(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open http_timeout_secs -5");
    snprintf(opts, sizeof opts, "{\"store\":42}");
    EXPECT(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open store 42 (wrong type)");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"key\":{}}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open key {} (no source)", "\"field\":\"key\"");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"key\":{\"base64\":\"not base64!\"}}", store_json);
    EXPECT(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open key base64 that is not base64");
    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"extra_ca_file\":\".\"}", store_json);
    EXPECT_DIAG(mc_client_open(opts, &c), MC_E_INVALID_ARGUMENT, "mc_client_open extra_ca_file a directory", "\"field\":\"extra_ca_file\"");
    EXPECT(mc_client_open(huge, &c), MC_E_INVALID_ARGUMENT, "mc_client_open 2 MiB options (not JSON)");
    CHECK(c == NULL, "mc_client_open failures leave *out NULL");
    if (c) mc_client_free(c);
}

/* Every failure of a host-owned store's open, then an empty host store probing the record exports. */
static void host_store(void) {
    store_probe probe;
    memset(&probe, 0, sizeof probe);
    mc_store_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.version = MC_STORE_CALLBACKS_VERSION;
    cb.user_data = &probe;
    cb.load = st_load;
    cb.compare_and_swap = st_cas;
    cb.remove = st_remove;
    cb.list = st_list;
    mc_client *c = NULL;

    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, NULL), MC_E_NULL_POINTER, "mc_client_open_with_store NULL out", "out");
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, NULL, &c), MC_E_NULL_POINTER, "mc_client_open_with_store NULL callbacks", "callbacks");
    EXPECT_MSG(mc_client_open_with_store(NULL, &cb, &c), MC_E_NULL_POINTER, "mc_client_open_with_store NULL options", "options_json");
    EXPECT(mc_client_open_with_store(BAD_UTF8, &cb, &c), MC_E_INVALID_UTF8, "mc_client_open_with_store invalid UTF-8 options");
    EXPECT(mc_client_open_with_store("[]", &cb, &c), MC_E_INVALID_ARGUMENT, "mc_client_open_with_store options '[]'");
    EXPECT(mc_client_open_with_store("{\"key\":", &cb, &c), MC_E_INVALID_ARGUMENT, "mc_client_open_with_store options not JSON");
    EXPECT_DIAG(mc_client_open_with_store("{}", &cb, &c), MC_E_INVALID_ARGUMENT, "mc_client_open_with_store without a key", "\"field\":\"key\"");
    EXPECT_MSG(mc_client_open_with_store("{\"store\":\"x.db\",\"key\":{\"base64\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}}", &cb, &c),
               MC_E_INVALID_ARGUMENT, "mc_client_open_with_store with a 'store'", "store");
    EXPECT_DIAG(mc_client_open_with_store("{\"key\":{\"base64\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"},\"colour\":1}", &cb, &c),
                MC_E_INVALID_ARGUMENT, "mc_client_open_with_store unknown option field", "\"field\":\"colour\"");
    cb.version = 99;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_INVALID_ARGUMENT, "mc_client_open_with_store callbacks version 99", "version");
    cb.version = 0;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_INVALID_ARGUMENT, "mc_client_open_with_store callbacks version 0", "version");
    cb.version = MC_STORE_CALLBACKS_VERSION;
    cb.load = NULL;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_NULL_POINTER, "mc_client_open_with_store without load", "load");
    cb.load = st_load;
    cb.compare_and_swap = NULL;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_NULL_POINTER, "mc_client_open_with_store without compare_and_swap", "compare_and_swap");
    cb.compare_and_swap = st_cas;
    cb.remove = NULL;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_NULL_POINTER, "mc_client_open_with_store without remove", "remove");
    cb.remove = st_remove;
    cb.list = NULL;
    EXPECT_MSG(mc_client_open_with_store(KEY_OPTS, &cb, &c), MC_E_NULL_POINTER, "mc_client_open_with_store without list", "list");
    cb.list = st_list;
    CHECK(c == NULL, "mc_client_open_with_store failures leave *out NULL");
    CHECK(probe.load_calls == 0 && probe.list_calls == 0, "no store callback ran for a refused open");

    /* Outside a callback, NULL record / list pointers. */
    EXPECT_MSG(mc_store_record_set(NULL, NULL, 0, 1), MC_E_NULL_POINTER, "mc_store_record_set NULL rec", "rec");
    EXPECT_MSG(mc_store_list_add(NULL, "x", NULL, 0, 1), MC_E_NULL_POINTER, "mc_store_list_add NULL list", "list");

    CHECK(mc_client_open_with_store(KEY_OPTS, &cb, &c) == MC_OK && c != NULL, "mc_client_open_with_store on an empty host store");
    if (!c) return;
    char *out = NULL;
    CHECK(mc_account_list(c, &out) == MC_OK && out && strcmp(out, "[]") == 0, "mc_account_list on the empty host store is []");
    mc_string_free(out);
    out = NULL;
    CHECK(probe.list_probed, "the list callback ran (and probed mc_store_list_add)");
    if (probe.list_probed) {
        check_probe_at(__LINE__, &probe, 1, 0, MC_E_NULL_POINTER, "mc_store_list_add NULL list (inside list)");
        check_probe_at(__LINE__, &probe, 1, 1, MC_E_NULL_POINTER, "mc_store_list_add NULL id");
        check_probe_at(__LINE__, &probe, 1, 2, MC_E_INVALID_UTF8, "mc_store_list_add invalid UTF-8 id");
        check_probe_at(__LINE__, &probe, 1, 3, MC_E_NULL_POINTER, "mc_store_list_add NULL data with len 5");
        check_probe_at(__LINE__, &probe, 1, 4, MC_E_INVALID_ARGUMENT, "mc_store_list_add version 0");
        check_probe_at(__LINE__, &probe, 1, 5, MC_E_INVALID_ARGUMENT, "mc_store_list_add version -3");
    }
    EXPECT_OUT(mc_account_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_account_get unknown account on the host store", out);
    CHECK(probe.load_probed, "the load callback ran (and probed mc_store_record_set)");
    if (probe.load_probed) {
        check_probe_at(__LINE__, &probe, 0, 0, MC_E_NULL_POINTER, "mc_store_record_set NULL rec (inside load)");
        check_probe_at(__LINE__, &probe, 0, 1, MC_E_NULL_POINTER, "mc_store_record_set NULL data with len 5");
        check_probe_at(__LINE__, &probe, 0, 2, MC_E_INVALID_ARGUMENT, "mc_store_record_set version 0");
        check_probe_at(__LINE__, &probe, 0, 3, MC_E_INVALID_ARGUMENT, "mc_store_record_set version -1");
        check_probe_at(__LINE__, &probe, 0, 4, MC_E_INVALID_ARGUMENT, "mc_store_record_set version INT64_MIN");
        check_probe_at(__LINE__, &probe, 0, 5, MC_E_INVALID_ARGUMENT, "mc_store_record_set NULL data, len 0, version 0");
        CHECK(probe.ok_rc == MC_OK, "mc_store_record_set with valid arguments inside load succeeds");
    }
    EXPECT_OUT(mc_account_status_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_account_status_get unknown account on the host store", out);
    mc_client_free(c);
}

static void events(mc_client *c, const char *huge) {
    char *ev = NULL;
    EXPECT_OUT(mc_events_next(NULL, 0, &ev), MC_E_NULL_POINTER, "mc_events_next NULL client", ev);
    EXPECT_MSG(mc_events_next(c, 0, NULL), MC_E_NULL_POINTER, "mc_events_next NULL out", "out_event_json");
    EXPECT(mc_events_next(NULL, 10, NULL), MC_E_NULL_POINTER, "mc_events_next NULL client and out");
    /* A fresh client has no event yet: success with *out set to NULL (even if it held garbage). */
    static char sentinel[] = "not an event";
    ev = sentinel;
    CHECK(mc_events_next(c, 0, &ev) == MC_OK && ev == NULL, "mc_events_next on a fresh client: MC_OK and *out NULL");
    if (ev != sentinel) mc_string_free(ev);
    ev = NULL;
    CLEARED("mc_events_next");

    EXPECT(mc_events_configure(NULL, "{}"), MC_E_NULL_POINTER, "mc_events_configure NULL client");
    EXPECT_MSG(mc_events_configure(c, NULL), MC_E_NULL_POINTER, "mc_events_configure NULL options", "options_json");
    EXPECT_MSG(mc_events_configure(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_events_configure invalid UTF-8", "UTF-8");
    static const char *const bad[] = {"{\"capacity\": 1}", "{\"capacity\": 100001}", "{\"capacity\": -1}", "{\"capacity\": \"big\"}",
                                      "{\"log_level\": \"loud\"}", "{\"log_level\": 3}", "{\"size\": 3}", "[]", "", "nonsense", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "mc_events_configure '%s'", bad[i]);
        EXPECT(mc_events_configure(c, bad[i]), MC_E_INVALID_ARGUMENT, what);
    }
    EXPECT_DIAG(mc_events_configure(c, "{\"size\": 3}"), MC_E_INVALID_ARGUMENT, "mc_events_configure unknown field names it", "\"field\":\"size\"");
    EXPECT(mc_events_configure(c, huge), MC_E_INVALID_ARGUMENT, "mc_events_configure 2 MiB string");
    CHECK(mc_events_configure(c, "{\"capacity\": 2}") == MC_OK, "mc_events_configure capacity 2 (the lower bound) is accepted");
    CLEARED("mc_events_configure");
    CHECK(mc_events_configure(c, "{}") == MC_OK, "mc_events_configure {} restores the defaults");
}

static void registrations_and_accounts(mc_client *c, const char *huge) {
    char *out = NULL;
    /* Registrations. */
    EXPECT(mc_registration_put(NULL, REG), MC_E_NULL_POINTER, "mc_registration_put NULL client");
    EXPECT_MSG(mc_registration_put(c, NULL), MC_E_NULL_POINTER, "mc_registration_put NULL json", "registration_json");
    EXPECT_MSG(mc_registration_put(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_registration_put invalid UTF-8", "UTF-8");
    static const struct {
        const char *json, *field, *what;
    } bad_regs[] = {
        {"[]", NULL, "mc_registration_put '[]'"},
        {"", NULL, "mc_registration_put empty string"},
        {"{not json", NULL, "mc_registration_put not JSON"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"colour\":1}", "colour", "mc_registration_put unknown field"},
        {"{\"id\":\"r\",\"provider\":\"carrier-pigeon\",\"client_id\":\"c\"}", "provider", "mc_registration_put unknown provider"},
        {"{\"id\":\"\",\"provider\":\"microsoft\",\"client_id\":\"c\"}", "id", "mc_registration_put empty id"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"\"}", "client_id", "mc_registration_put empty client_id"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"authority_host\":\"http://login.example.com\"}", "authority_host",
         "mc_registration_put wrong host: http authority on a non-loopback host"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"authority_host\":\"ftp://127.0.0.1\"}", "authority_host",
         "mc_registration_put wrong host: ftp authority"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"authority_host\":\"not a url\"}", "authority_host",
         "mc_registration_put wrong host: not a URL"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"authority_host\":\"https://login.example.com/tenant/path\"}",
         "authority_host", "mc_registration_put wrong host: authority with a path"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"tenant\":\"a b\"}", "tenant", "mc_registration_put bad tenant"},
        {"{\"id\":\"r\",\"provider\":\"microsoft\",\"client_id\":\"c\",\"cloud\":\"mars\"}", "cloud", "mc_registration_put unknown cloud"},
    };
    for (size_t i = 0; i < sizeof bad_regs / sizeof bad_regs[0]; i++) {
        char needle[96];
        if (bad_regs[i].field) {
            snprintf(needle, sizeof needle, "\"field\":\"%s\"", bad_regs[i].field);
            EXPECT_DIAG(mc_registration_put(c, bad_regs[i].json), MC_E_INVALID_ARGUMENT, bad_regs[i].what, needle);
        } else {
            EXPECT(mc_registration_put(c, bad_regs[i].json), MC_E_INVALID_ARGUMENT, bad_regs[i].what);
        }
    }
    EXPECT(mc_registration_put(c, huge), MC_E_INVALID_ARGUMENT, "mc_registration_put 2 MiB string");
    EXPECT_OUT(mc_registration_list(NULL, &out), MC_E_NULL_POINTER, "mc_registration_list NULL client", out);
    EXPECT_MSG(mc_registration_list(c, NULL), MC_E_NULL_POINTER, "mc_registration_list NULL out", "out_json");
    CHECK(mc_registration_list(c, &out) == MC_OK && out && strcmp(out, "[]") == 0, "no registration was written by the refused puts");
    mc_string_free(out);
    out = NULL;
    EXPECT(mc_registration_remove(NULL, "r"), MC_E_NULL_POINTER, "mc_registration_remove NULL client");
    EXPECT_MSG(mc_registration_remove(c, NULL), MC_E_NULL_POINTER, "mc_registration_remove NULL id", "registration_id");
    EXPECT(mc_registration_remove(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_registration_remove invalid UTF-8");
    EXPECT(mc_registration_remove(c, ""), MC_E_INVALID_ARGUMENT, "mc_registration_remove empty id");
    EXPECT_MSG(mc_registration_remove(c, "nobody"), MC_E_NOT_FOUND, "mc_registration_remove unknown registration", "nobody");
    EXPECT(mc_registration_remove(c, huge), MC_E_NOT_FOUND, "mc_registration_remove 2 MiB id");
    EXPECT_OUT(mc_registration_get(NULL, "r", &out), MC_E_NULL_POINTER, "mc_registration_get NULL client", out);
    EXPECT(mc_registration_get(NULL, "r", NULL), MC_E_NULL_POINTER, "mc_registration_get NULL client and out");
    expect_at(__LINE__, mc_registration_get(c, NULL, &out), MC_E_NULL_POINTER, "mc_registration_get NULL id", "registration_id", NULL);
    OUT_NULL(out, "mc_registration_get NULL id");
    EXPECT_MSG(mc_registration_get(c, "r", NULL), MC_E_NULL_POINTER, "mc_registration_get NULL out", "out_json");
    EXPECT_OUT(mc_registration_get(c, BAD_UTF8, &out), MC_E_INVALID_UTF8, "mc_registration_get invalid UTF-8 id", out);
    EXPECT_OUT(mc_registration_get(c, TRUNCATED_UTF8, &out), MC_E_INVALID_UTF8, "mc_registration_get truncated UTF-8 id", out);
    EXPECT_OUT(mc_registration_get(c, "", &out), MC_E_INVALID_ARGUMENT, "mc_registration_get empty id", out);
    expect_at(__LINE__, mc_registration_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_registration_get unknown registration", "nobody", NULL);
    OUT_NULL(out, "mc_registration_get unknown registration");
    EXPECT_OUT(mc_registration_get(c, "r", &out), MC_E_NOT_FOUND, "mc_registration_get of a registration whose puts were refused", out);
    EXPECT_OUT(mc_registration_get(c, huge, &out), MC_E_NOT_FOUND, "mc_registration_get 2 MiB id", out);
    static char stale[] = "stale";
    out = stale; /* a host's stale value: cleared at entry */
    EXPECT(mc_registration_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_registration_get with a stale *out");
    CHECK(out == NULL, "mc_registration_get sets *out to NULL before failing");
    out = NULL;
    CHECK(mc_registration_put(c, REG) == MC_OK, "mc_registration_put (valid)");
    CLEARED("mc_registration_put");
    CHECK(mc_registration_get(c, "r", &out) == MC_OK && contains(out, "\"id\":\"r\"") && contains(out, "\"client_id\":\"c\"") &&
              contains(out, "\"has_client_secret\":false"),
          "mc_registration_get returns the registration put");
    CLEARED("mc_registration_get");
    mc_string_free(out);
    out = NULL;
    /* A secret is stored but never handed back: get and list show has_client_secret only. */
    CHECK(mc_registration_put(c, "{\"id\":\"r2\",\"provider\":\"microsoft\",\"client_id\":\"c2\",\"client_secret\":\"s3cret-Wert-42\"}") == MC_OK,
          "mc_registration_put with a client secret");
    CHECK(mc_registration_get(c, "r2", &out) == MC_OK && contains(out, "\"has_client_secret\":true") && !contains(out, "s3cret-Wert-42"),
          "mc_registration_get shows has_client_secret, never the secret");
    mc_string_free(out);
    out = NULL;
    CHECK(mc_registration_list(c, &out) == MC_OK && contains(out, "\"id\":\"r2\"") && !contains(out, "s3cret-Wert-42"),
          "mc_registration_list never shows the secret");
    mc_string_free(out);
    out = NULL;
    CHECK(mc_registration_remove(c, "r2") == MC_OK, "mc_registration_remove of an unused registration");
    EXPECT_OUT(mc_registration_get(c, "r2", &out), MC_E_NOT_FOUND, "mc_registration_get after mc_registration_remove", out);

    /* Accounts. */
    EXPECT(mc_account_put(NULL, ACC), MC_E_NULL_POINTER, "mc_account_put NULL client");
    EXPECT_MSG(mc_account_put(c, NULL), MC_E_NULL_POINTER, "mc_account_put NULL json", "account_json");
    EXPECT_MSG(mc_account_put(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_account_put invalid UTF-8", "UTF-8");
    EXPECT(mc_account_put(c, TRUNCATED_UTF8), MC_E_INVALID_UTF8, "mc_account_put truncated UTF-8");
    static const struct {
        const char *json, *field, *what;
    } bad_accs[] = {
        {"[]", NULL, "mc_account_put '[]'"},
        {"", NULL, "mc_account_put empty string"},
        {"{not json", NULL, "mc_account_put not JSON"},
        {"42", NULL, "mc_account_put a number"},
        {"{\"id\":\"a\",\"mailbox\":42,\"registration\":\"r\"}", "mailbox", "mc_account_put mailbox 42"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"flow\":\"telepathy\"}", "flow", "mc_account_put flow 'telepathy'"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"missing\"}", "registration", "mc_account_put unknown registration"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"colour\":1}", "colour", "mc_account_put unknown field"},
        {"{\"id\":\"a\",\"mailbox\":\"not an address\",\"registration\":\"r\"}", "mailbox", "mc_account_put mailbox not an address"},
        {"{\"id\":\"\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\"}", "id", "mc_account_put empty id"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"servers\":{\"imap\":{\"host\":\"bad host!\",\"port\":993,"
         "\"security\":\"tls\"}}}",
         "servers.imap.host", "mc_account_put wrong host: IMAP host 'bad host!'"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"servers\":{\"smtp\":{\"host\":\"mail.example.com\","
         "\"port\":25,\"security\":\"none\"}}}",
         "servers.smtp.security", "mc_account_put wrong host: cleartext SMTP to a non-loopback host"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"servers\":{\"pop3\":{\"host\":\"mail.example.com\","
         "\"port\":0,\"security\":\"tls\"}}}",
         "servers.pop3.port", "mc_account_put POP3 port 0"},
        {"{\"id\":\"a\",\"mailbox\":\"alice@example.test\",\"registration\":\"r\",\"options\":{\"interactive_timeout_secs\":0}}",
         "options.interactive_timeout_secs", "mc_account_put interactive_timeout_secs 0"},
    };
    for (size_t i = 0; i < sizeof bad_accs / sizeof bad_accs[0]; i++) {
        char needle[96];
        if (bad_accs[i].field) {
            snprintf(needle, sizeof needle, "\"field\":\"%s\"", bad_accs[i].field);
            EXPECT_DIAG(mc_account_put(c, bad_accs[i].json), MC_E_INVALID_ARGUMENT, bad_accs[i].what, needle);
        } else {
            EXPECT(mc_account_put(c, bad_accs[i].json), MC_E_INVALID_ARGUMENT, bad_accs[i].what);
        }
    }
    EXPECT(mc_account_put(c, huge), MC_E_INVALID_ARGUMENT, "mc_account_put 2 MiB string");
    EXPECT_OUT(mc_account_list(NULL, &out), MC_E_NULL_POINTER, "mc_account_list NULL client", out);
    EXPECT_MSG(mc_account_list(c, NULL), MC_E_NULL_POINTER, "mc_account_list NULL out", "out_json");
    CHECK(mc_account_list(c, &out) == MC_OK && out && strcmp(out, "[]") == 0, "no account was written by the refused puts");
    mc_string_free(out);
    out = NULL;
    CHECK(mc_account_put(c, ACC) == MC_OK, "mc_account_put (valid)");
    CLEARED("mc_account_put");

    EXPECT_OUT(mc_account_get(NULL, "a", &out), MC_E_NULL_POINTER, "mc_account_get NULL client", out);
    EXPECT_OUT(mc_account_get(c, NULL, &out), MC_E_NULL_POINTER, "mc_account_get NULL id", out);
    EXPECT_MSG(mc_account_get(c, "a", NULL), MC_E_NULL_POINTER, "mc_account_get NULL out", "out_json");
    EXPECT_OUT(mc_account_get(c, BAD_UTF8, &out), MC_E_INVALID_UTF8, "mc_account_get invalid UTF-8 id", out);
    EXPECT_OUT(mc_account_get(c, "", &out), MC_E_INVALID_ARGUMENT, "mc_account_get empty id", out);
    EXPECT_OUT(mc_account_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_account_get unknown account", out);
    EXPECT_OUT(mc_account_get(c, huge, &out), MC_E_NOT_FOUND, "mc_account_get 2 MiB id", out);

    EXPECT(mc_account_remove(NULL, "a"), MC_E_NULL_POINTER, "mc_account_remove NULL client");
    EXPECT_MSG(mc_account_remove(c, NULL), MC_E_NULL_POINTER, "mc_account_remove NULL id", "account_id");
    EXPECT(mc_account_remove(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_account_remove invalid UTF-8 id");
    EXPECT(mc_account_remove(c, ""), MC_E_INVALID_ARGUMENT, "mc_account_remove empty id");
    EXPECT_MSG(mc_account_remove(c, "nobody"), MC_E_NOT_FOUND, "mc_account_remove unknown account", "nobody");

    EXPECT_MSG(mc_registration_remove(c, "r"), MC_E_STATE, "mc_registration_remove of a registration in use", "r");
}

static void status_and_tokens(mc_client *c, const char *huge) {
    char *out = NULL;
    EXPECT_OUT(mc_account_status_get(NULL, "a", &out), MC_E_NULL_POINTER, "mc_account_status_get NULL client", out);
    EXPECT_OUT(mc_account_status_get(c, NULL, &out), MC_E_NULL_POINTER, "mc_account_status_get NULL id", out);
    EXPECT_MSG(mc_account_status_get(c, "a", NULL), MC_E_NULL_POINTER, "mc_account_status_get NULL out", "out_json");
    EXPECT_OUT(mc_account_status_get(c, BAD_UTF8, &out), MC_E_INVALID_UTF8, "mc_account_status_get invalid UTF-8 id", out);
    EXPECT_OUT(mc_account_status_get(c, "", &out), MC_E_INVALID_ARGUMENT, "mc_account_status_get empty id", out);
    EXPECT_OUT(mc_account_status_get(c, "nobody", &out), MC_E_NOT_FOUND, "mc_account_status_get unknown account", out);
    EXPECT_OUT(mc_account_status_get(c, huge, &out), MC_E_NOT_FOUND, "mc_account_status_get 2 MiB id", out);
    CHECK(mc_account_status_get(c, "a", &out) == MC_OK && contains(out, "\"state\":\"not_connected\""), "mc_account_status_get of the new account: not_connected");
    mc_string_free(out);
    out = NULL;

    /* mc_token_get and mc_sasl_xoauth2_get share their checks; both are run, without a cancel and
       with one triggered before the call: argument errors are reported as such either way. */
    mc_cancel *fired = NULL;
    CHECK(mc_cancel_new(&fired) == MC_OK && fired != NULL, "mc_cancel_new (for the token calls)");
    mc_cancel_trigger(fired);
    for (int sasl = 0; sasl < 2; sasl++) {
        int32_t (MC_CALL *fn)(mc_client *, const char *, mc_cancel *, char **) = sasl ? mc_sasl_xoauth2_get : mc_token_get;
        const char *name = sasl ? "mc_sasl_xoauth2_get" : "mc_token_get";
        const char *out_name = sasl ? "out_base64" : "out_token";
        char what[160];
        for (int k = 0; k < 2; k++) {
            mc_cancel *cancel = k ? fired : NULL;
            const char *with = k ? ", cancel triggered" : "";
#define W(s) (snprintf(what, sizeof what, "%s %s%s", name, s, with), what)
            EXPECT_OUT(fn(NULL, "a", cancel, &out), MC_E_NULL_POINTER, W("NULL client"), out);
            EXPECT_OUT(fn(c, NULL, cancel, &out), MC_E_NULL_POINTER, W("NULL id"), out);
            EXPECT_MSG(fn(c, "a", cancel, NULL), MC_E_NULL_POINTER, W("NULL out"), out_name);
            EXPECT_OUT(fn(c, BAD_UTF8, cancel, &out), MC_E_INVALID_UTF8, W("invalid UTF-8 id"), out);
            EXPECT_OUT(fn(c, "", cancel, &out), MC_E_INVALID_ARGUMENT, W("empty id"), out);
            EXPECT_OUT(fn(c, "nobody", cancel, &out), MC_E_NOT_FOUND, W("unknown account"), out);
            EXPECT_OUT(fn(c, huge, cancel, &out), MC_E_NOT_FOUND, W("2 MiB id"), out);
#undef W
        }
        snprintf(what, sizeof what, "%s of an account that is not connected", name);
        expect_at(__LINE__, fn(c, "a", NULL, &out), MC_E_STATE, what, "not connected", NULL);
        OUT_NULL(out, what);
    }
    mc_cancel_free(fired);
}

static void connect_and_test(mc_client *c, const char *huge) {
    int calls = 0;
    mc_connect_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.version = MC_CONNECT_CALLBACKS_VERSION;
    cb.user_data = &calls;
    cb.on_open_url = on_open_url;
    cb.on_device_code = on_device_code;
    cb.on_progress = on_progress;

    EXPECT_MSG(mc_account_connect(NULL, "a", &cb, NULL), MC_E_NULL_POINTER, "mc_account_connect NULL client", "client");
    EXPECT_MSG(mc_account_connect(c, NULL, &cb, NULL), MC_E_NULL_POINTER, "mc_account_connect NULL id", "account_id");
    EXPECT(mc_account_connect(c, NULL, NULL, NULL), MC_E_NULL_POINTER, "mc_account_connect NULL id and callbacks");
    EXPECT(mc_account_connect(c, BAD_UTF8, &cb, NULL), MC_E_INVALID_UTF8, "mc_account_connect invalid UTF-8 id");
    EXPECT(mc_account_connect(c, "", &cb, NULL), MC_E_INVALID_ARGUMENT, "mc_account_connect empty id");
    EXPECT_MSG(mc_account_connect(c, "nobody", &cb, NULL), MC_E_NOT_FOUND, "mc_account_connect unknown account", "nobody");
    EXPECT(mc_account_connect(c, "nobody", NULL, NULL), MC_E_NOT_FOUND, "mc_account_connect unknown account, NULL callbacks");
    EXPECT(mc_account_connect(c, huge, &cb, NULL), MC_E_NOT_FOUND, "mc_account_connect 2 MiB id");
    cb.version = 99;
    EXPECT_MSG(mc_account_connect(c, "a", &cb, NULL), MC_E_INVALID_ARGUMENT, "mc_account_connect callbacks version 99", "version");
    cb.version = 0;
    EXPECT_MSG(mc_account_connect(c, "a", &cb, NULL), MC_E_INVALID_ARGUMENT, "mc_account_connect callbacks version 0", "version");
    cb.version = MC_CONNECT_CALLBACKS_VERSION;

    mc_cancel *cancel = NULL;
    EXPECT_MSG(mc_cancel_new(NULL), MC_E_NULL_POINTER, "mc_cancel_new NULL out", "out");
    CHECK(mc_cancel_new(&cancel) == MC_OK && cancel != NULL, "mc_cancel_new");
    CLEARED("mc_cancel_new");
    mc_cancel_trigger(NULL);
    CHECK(1, "mc_cancel_trigger(NULL) is harmless");
    mc_cancel_trigger(cancel);
    mc_cancel_trigger(cancel);
    CHECK(1, "mc_cancel_trigger twice is harmless");
    time_t t0 = time(NULL);
    EXPECT(mc_account_connect(c, "a", &cb, cancel), MC_E_CANCELLED, "mc_account_connect with a cancel triggered before the call");
    /* The sign-in itself would wait up to its interactive timeout (300 s). */
    CHECK(difftime(time(NULL), t0) < 60.0, "the cancelled mc_account_connect did not wait for the sign-in");
    char *out = NULL;
    EXPECT_OUT(mc_account_test(c, "a", 0, cancel, &out), MC_E_CANCELLED, "mc_account_test with a cancel triggered before the call", out);
    CHECK(calls == 0, "no connect callback ran for refused or cancelled calls");

    /* Disconnect: without a cancel and with the triggered one. */
    EXPECT(mc_account_disconnect(NULL, "a", NULL), MC_E_NULL_POINTER, "mc_account_disconnect NULL client");
    EXPECT(mc_account_disconnect(NULL, "a", cancel), MC_E_NULL_POINTER, "mc_account_disconnect NULL client, cancel triggered");
    EXPECT_MSG(mc_account_disconnect(c, NULL, NULL), MC_E_NULL_POINTER, "mc_account_disconnect NULL id", "account_id");
    EXPECT_MSG(mc_account_disconnect(c, NULL, cancel), MC_E_NULL_POINTER, "mc_account_disconnect NULL id, cancel triggered", "account_id");
    EXPECT(mc_account_disconnect(c, BAD_UTF8, NULL), MC_E_INVALID_UTF8, "mc_account_disconnect invalid UTF-8 id");
    EXPECT(mc_account_disconnect(c, BAD_UTF8, cancel), MC_E_INVALID_UTF8, "mc_account_disconnect invalid UTF-8 id, cancel triggered");
    EXPECT(mc_account_disconnect(c, "", NULL), MC_E_INVALID_ARGUMENT, "mc_account_disconnect empty id");
    EXPECT_MSG(mc_account_disconnect(c, "nobody", NULL), MC_E_NOT_FOUND, "mc_account_disconnect unknown account", "nobody");
    EXPECT_MSG(mc_account_disconnect(c, "nobody", cancel), MC_E_NOT_FOUND, "mc_account_disconnect unknown account, cancel triggered", "nobody");
    EXPECT(mc_account_disconnect(c, huge, NULL), MC_E_NOT_FOUND, "mc_account_disconnect 2 MiB id");
    /* A cancel fired before the tokens are deleted: MC_E_CANCELLED, and nothing changes. */
    EXPECT(mc_account_disconnect(c, "a", cancel), MC_E_CANCELLED, "mc_account_disconnect with a cancel triggered before the call");
    CHECK(mc_account_get(c, "a", &out) == MC_OK && contains(out, "\"id\":\"a\""), "the cancelled mc_account_disconnect left the account");
    mc_string_free(out);
    out = NULL;
    CHECK(mc_account_disconnect(c, "a", NULL) == MC_OK, "mc_account_disconnect of a not-connected account");
    CHECK(mc_account_disconnect(c, "a", NULL) == MC_OK, "mc_account_disconnect again (idempotent)");
    CLEARED("mc_account_disconnect");

    /* Test. */
    EXPECT_OUT(mc_account_test(NULL, "a", 0, NULL, &out), MC_E_NULL_POINTER, "mc_account_test NULL client", out);
    EXPECT_OUT(mc_account_test(c, NULL, 0, NULL, &out), MC_E_NULL_POINTER, "mc_account_test NULL id", out);
    EXPECT_MSG(mc_account_test(c, "a", 0, NULL, NULL), MC_E_NULL_POINTER, "mc_account_test NULL out", "out_report_json");
    EXPECT_OUT(mc_account_test(c, BAD_UTF8, 0, NULL, &out), MC_E_INVALID_UTF8, "mc_account_test invalid UTF-8 id", out);
    EXPECT_OUT(mc_account_test(c, "", 0, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_account_test empty id", out);
    EXPECT_OUT(mc_account_test(c, "nobody", 0, NULL, &out), MC_E_NOT_FOUND, "mc_account_test unknown account", out);
    EXPECT_OUT(mc_account_test(c, huge, 0, NULL, &out), MC_E_NOT_FOUND, "mc_account_test 2 MiB id", out);
    EXPECT_OUT(mc_account_test(c, "a", 0x8000, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_account_test unknown protocol bits 0x8000", out);
    EXPECT_OUT(mc_account_test(c, "a", 0xffffffffu, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_account_test protocol bits 0xffffffff", out);
    CHECK(mc_account_test(c, "a", 0, NULL, &out) == MC_OK && contains(out, "\"ok\":false") && contains(out, "not_connected"),
          "mc_account_test of a not-connected account: a report with ok false and not_connected");
    mc_string_free(out);
    out = NULL;

    /* The host-driven sign-in. */
    EXPECT_OUT(mc_authorization_begin(NULL, "a", NULL, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_begin NULL client", out);
    EXPECT_OUT(mc_authorization_begin(c, NULL, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_begin NULL id", out);
    EXPECT_MSG(mc_authorization_begin(c, "a", NULL, NULL, NULL), MC_E_NULL_POINTER, "mc_authorization_begin NULL out", "out_json");
    EXPECT_OUT(mc_authorization_begin(c, BAD_UTF8, NULL, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_begin invalid UTF-8 id", out);
    EXPECT_OUT(mc_authorization_begin(c, "a", BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_begin invalid UTF-8 options", out);
    EXPECT_OUT(mc_authorization_begin(c, "", NULL, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_begin empty id", out);
    EXPECT_OUT(mc_authorization_begin(c, "nobody", NULL, NULL, &out), MC_E_NOT_FOUND, "mc_authorization_begin unknown account", out);
    EXPECT_OUT(mc_authorization_begin(c, huge, NULL, NULL, &out), MC_E_NOT_FOUND, "mc_authorization_begin 2 MiB id", out);
    EXPECT_OUT(mc_authorization_begin(c, "a", "[]", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_begin options '[]'", out);
    EXPECT_OUT(mc_authorization_begin(c, "a", "{\"flow\":", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_begin options not JSON", out);
    EXPECT_OUT(mc_authorization_begin(c, "a", "{\"flow\":\"carrier-pigeon\"}", NULL, &out), MC_E_INVALID_ARGUMENT,
               "mc_authorization_begin unknown flow", out);
    expect_at(__LINE__, mc_authorization_begin(c, "a", "{\"flow\":\"browser\",\"redirect\":\"x\"}", NULL, &out), MC_E_INVALID_ARGUMENT,
              "mc_authorization_begin unknown option field 'redirect'", "redirect", NULL);
    OUT_NULL(out, "mc_authorization_begin unknown option field");
    EXPECT_OUT(mc_authorization_begin(c, "a", huge, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_begin 2 MiB options", out);
    /* With the triggered cancel: the arguments are still checked first. */
    EXPECT_MSG(mc_authorization_begin(c, "a", NULL, cancel, NULL), MC_E_NULL_POINTER, "mc_authorization_begin NULL out, cancel triggered", "out_json");
    EXPECT_OUT(mc_authorization_begin(c, NULL, NULL, cancel, &out), MC_E_NULL_POINTER, "mc_authorization_begin NULL id, cancel triggered", out);
    EXPECT_OUT(mc_authorization_begin(c, "a", "[]", cancel, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_begin options '[]', cancel triggered", out);
    EXPECT_OUT(mc_authorization_begin(c, "nobody", NULL, cancel, &out), MC_E_NOT_FOUND, "mc_authorization_begin unknown account, cancel triggered", out);

    const char *h = "auth-nothing", *url = "https://x/?code=1&state=2";
    EXPECT_OUT(mc_authorization_complete(NULL, h, url, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_complete NULL client", out);
    EXPECT_OUT(mc_authorization_complete(c, NULL, url, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_complete NULL handle", out);
    EXPECT_OUT(mc_authorization_complete(c, h, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_complete NULL redirect", out);
    EXPECT(mc_authorization_complete(c, h, NULL, NULL, NULL), MC_E_NULL_POINTER, "mc_authorization_complete NULL redirect and out");
    EXPECT_OUT(mc_authorization_complete(c, BAD_UTF8, url, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_complete invalid UTF-8 handle", out);
    EXPECT_OUT(mc_authorization_complete(c, h, BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_complete invalid UTF-8 redirect", out);
    EXPECT_OUT(mc_authorization_complete(c, "", url, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_complete empty handle", out);
    EXPECT_DIAG(mc_authorization_complete(c, h, url, NULL, &out), MC_E_STATE, "mc_authorization_complete unknown handle",
                "\"code\":\"MC-SIGN-IN-NOT-PENDING\"");
    OUT_NULL(out, "mc_authorization_complete unknown handle");
    EXPECT(mc_authorization_complete(c, h, url, NULL, NULL), MC_E_STATE, "mc_authorization_complete unknown handle, NULL out");
    EXPECT_OUT(mc_authorization_complete(c, huge, url, NULL, &out), MC_E_STATE, "mc_authorization_complete 2 MiB handle", out);
    EXPECT_OUT(mc_authorization_complete(c, h, huge, NULL, &out), MC_E_STATE, "mc_authorization_complete 2 MiB redirect", out);

    EXPECT_OUT(mc_authorization_poll(NULL, h, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_poll NULL client", out);
    EXPECT_OUT(mc_authorization_poll(c, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_poll NULL handle", out);
    EXPECT_MSG(mc_authorization_poll(c, h, NULL, NULL), MC_E_NULL_POINTER, "mc_authorization_poll NULL out", "out_json");
    EXPECT_OUT(mc_authorization_poll(c, BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_poll invalid UTF-8 handle", out);
    EXPECT_OUT(mc_authorization_poll(c, "", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_poll empty handle", out);
    EXPECT_OUT(mc_authorization_poll(c, h, NULL, &out), MC_E_STATE, "mc_authorization_poll unknown handle", out);

    EXPECT_OUT(mc_authorization_wait(NULL, h, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_wait NULL client", out);
    EXPECT_OUT(mc_authorization_wait(c, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_authorization_wait NULL handle", out);
    EXPECT_OUT(mc_authorization_wait(c, BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_authorization_wait invalid UTF-8 handle", out);
    EXPECT_OUT(mc_authorization_wait(c, "", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_authorization_wait empty handle", out);
    EXPECT_OUT(mc_authorization_wait(c, h, NULL, &out), MC_E_STATE, "mc_authorization_wait unknown handle", out);
    EXPECT(mc_authorization_wait(c, h, NULL, NULL), MC_E_STATE, "mc_authorization_wait unknown handle, NULL out");

    EXPECT(mc_authorization_abort(NULL, h), MC_E_NULL_POINTER, "mc_authorization_abort NULL client");
    EXPECT_MSG(mc_authorization_abort(c, NULL), MC_E_NULL_POINTER, "mc_authorization_abort NULL handle", "handle");
    EXPECT(mc_authorization_abort(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_authorization_abort invalid UTF-8 handle");
    EXPECT(mc_authorization_abort(c, ""), MC_E_INVALID_ARGUMENT, "mc_authorization_abort empty handle");
    EXPECT(mc_authorization_abort(c, h), MC_E_STATE, "mc_authorization_abort unknown handle");
    EXPECT(mc_authorization_abort(c, huge), MC_E_STATE, "mc_authorization_abort 2 MiB handle");

    mc_cancel_free(cancel);
}

static void mail(mc_client *c, const char *huge) {
    char *out = NULL;
    const char *msg = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nbody\r\n";
    const char *no_rcpt = "From: alice@example.test\r\nSubject: x\r\n\r\nbody\r\n";
    size_t len = strlen(msg);

    EXPECT(mc_mail_send(NULL, "a", (const uint8_t *)msg, len, NULL), MC_E_NULL_POINTER, "mc_mail_send NULL client");
    EXPECT_MSG(mc_mail_send(c, NULL, (const uint8_t *)msg, len, NULL), MC_E_NULL_POINTER, "mc_mail_send NULL id", "account_id");
    EXPECT_MSG(mc_mail_send(c, "a", NULL, 10, NULL), MC_E_NULL_POINTER, "mc_mail_send NULL message with len 10", "rfc5322");
    EXPECT(mc_mail_send(c, "nobody", NULL, 10, NULL), MC_E_NULL_POINTER, "mc_mail_send NULL message with len 10, unknown account");
    EXPECT(mc_mail_send(c, BAD_UTF8, (const uint8_t *)msg, len, NULL), MC_E_INVALID_UTF8, "mc_mail_send invalid UTF-8 id");
    EXPECT(mc_mail_send(c, "", (const uint8_t *)msg, len, NULL), MC_E_INVALID_ARGUMENT, "mc_mail_send empty id");
    EXPECT_MSG(mc_mail_send(c, "nobody", (const uint8_t *)msg, len, NULL), MC_E_NOT_FOUND, "mc_mail_send unknown account", "nobody");
    EXPECT(mc_mail_send(c, huge, (const uint8_t *)msg, len, NULL), MC_E_NOT_FOUND, "mc_mail_send 2 MiB id");
    EXPECT_DIAG(mc_mail_send(c, "a", (const uint8_t *)no_rcpt, strlen(no_rcpt), NULL), MC_E_INVALID_ARGUMENT, "mc_mail_send a message without recipients",
                "\"field\":\"message\"");
    EXPECT(mc_mail_send(c, "a", NULL, 0, NULL), MC_E_INVALID_ARGUMENT, "mc_mail_send an empty message (NULL, 0)");
    EXPECT(mc_mail_send(c, "a", (const uint8_t *)huge, HUGE_LEN, NULL), MC_E_INVALID_ARGUMENT, "mc_mail_send a 2 MiB message of 'a' (no header)");

    EXPECT_OUT(mc_folder_list(NULL, "a", NULL, &out), MC_E_NULL_POINTER, "mc_folder_list NULL client", out);
    EXPECT_OUT(mc_folder_list(c, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_folder_list NULL id", out);
    EXPECT_MSG(mc_folder_list(c, "a", NULL, NULL), MC_E_NULL_POINTER, "mc_folder_list NULL out", "out_json");
    EXPECT_OUT(mc_folder_list(c, BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_folder_list invalid UTF-8 id", out);
    EXPECT_OUT(mc_folder_list(c, "", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_folder_list empty id", out);
    EXPECT_OUT(mc_folder_list(c, "nobody", NULL, &out), MC_E_NOT_FOUND, "mc_folder_list unknown account", out);
    EXPECT_OUT(mc_folder_list(c, huge, NULL, &out), MC_E_NOT_FOUND, "mc_folder_list 2 MiB id", out);

    EXPECT_OUT(mc_mail_fetch(NULL, "a", NULL, NULL, &out), MC_E_NULL_POINTER, "mc_mail_fetch NULL client", out);
    EXPECT_OUT(mc_mail_fetch(c, NULL, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_mail_fetch NULL id", out);
    EXPECT_MSG(mc_mail_fetch(c, "a", NULL, NULL, NULL), MC_E_NULL_POINTER, "mc_mail_fetch NULL out", "out_json");
    EXPECT_OUT(mc_mail_fetch(c, BAD_UTF8, NULL, NULL, &out), MC_E_INVALID_UTF8, "mc_mail_fetch invalid UTF-8 id", out);
    EXPECT_OUT(mc_mail_fetch(c, "a", BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_mail_fetch invalid UTF-8 query", out);
    EXPECT_OUT(mc_mail_fetch(c, "", NULL, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch empty id", out);
    EXPECT_OUT(mc_mail_fetch(c, "nobody", NULL, NULL, &out), MC_E_NOT_FOUND, "mc_mail_fetch unknown account", out);
    EXPECT_OUT(mc_mail_fetch(c, "nobody", "{\"protocol\":\"imap\"}", NULL, &out), MC_E_NOT_FOUND, "mc_mail_fetch unknown account with a query", out);
    EXPECT_OUT(mc_mail_fetch(c, huge, NULL, NULL, &out), MC_E_NOT_FOUND, "mc_mail_fetch 2 MiB id", out);
    EXPECT_OUT(mc_mail_fetch(c, "a", "[]", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch query '[]'", out);
    EXPECT_OUT(mc_mail_fetch(c, "a", "", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch query ''", out);
    EXPECT_OUT(mc_mail_fetch(c, "a", "{\"limit\":", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch query not JSON", out);
    EXPECT_DIAG(mc_mail_fetch(c, "a", "{\"colour\":1}", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch unknown query field", "\"field\":\"colour\"");
    OUT_NULL(out, "mc_mail_fetch unknown query field");
    EXPECT_DIAG(mc_mail_fetch(c, "a", "{\"protocol\":\"carrier-pigeon\"}", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch unknown protocol",
                "\"field\":\"protocol\"");
    OUT_NULL(out, "mc_mail_fetch unknown protocol");
    EXPECT_DIAG(mc_mail_fetch(c, "a", "{\"limit\":-1}", NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch limit -1", "\"field\":\"limit\"");
    OUT_NULL(out, "mc_mail_fetch limit -1");
    EXPECT_OUT(mc_mail_fetch(c, "a", huge, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_mail_fetch 2 MiB query", out);
}

static void refresher(mc_client *c, const char *huge) {
    char *out = NULL;
    EXPECT(mc_refresher_start(NULL, NULL), MC_E_NULL_POINTER, "mc_refresher_start NULL client");
    EXPECT(mc_refresher_start(c, BAD_UTF8), MC_E_INVALID_UTF8, "mc_refresher_start invalid UTF-8 options");
    static const char *const bad[] = {"[]", "{", "42", "{\"interval_secs\": 0}", "{\"interval_secs\": 86401}", "{\"concurrency\": 0}",
                                      "{\"concurrency\": 999}", "{\"backoff_min_secs\": 0}", "{\"backoff_min_secs\": 60, \"backoff_max_secs\": 30}",
                                      "{\"ahead\": 1}", "{\"interval_secs\": -1}", "{\"interval_secs\": \"often\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "mc_refresher_start '%s'", bad[i]);
        EXPECT(mc_refresher_start(c, bad[i]), MC_E_INVALID_ARGUMENT, what);
        snprintf(what, sizeof what, "mc_refresher_run '%s'", bad[i]);
        EXPECT_OUT(mc_refresher_run(c, bad[i], NULL, &out), MC_E_INVALID_ARGUMENT, what, out);
    }
    EXPECT_DIAG(mc_refresher_start(c, "{\"ahead\": 1}"), MC_E_INVALID_ARGUMENT, "mc_refresher_start unknown field names it", "\"field\":\"ahead\"");
    EXPECT(mc_refresher_start(c, huge), MC_E_INVALID_ARGUMENT, "mc_refresher_start 2 MiB options");
    EXPECT(mc_refresher_stop(NULL), MC_E_NULL_POINTER, "mc_refresher_stop NULL client");
    CHECK(mc_refresher_stop(c) == MC_OK, "mc_refresher_stop of a stopped refresher");
    CLEARED("mc_refresher_stop");
    CHECK(mc_refresher_start(c, "{\"interval_secs\": 3600}") == MC_OK, "mc_refresher_start (valid)");
    EXPECT_MSG(mc_refresher_start(c, NULL), MC_E_STATE, "mc_refresher_start while running", "already running");
    CHECK(mc_refresher_stop(c) == MC_OK, "mc_refresher_stop");
    CHECK(mc_refresher_stop(c) == MC_OK, "mc_refresher_stop again");

    EXPECT_OUT(mc_refresher_run(NULL, NULL, NULL, &out), MC_E_NULL_POINTER, "mc_refresher_run NULL client", out);
    EXPECT_MSG(mc_refresher_run(c, NULL, NULL, NULL), MC_E_NULL_POINTER, "mc_refresher_run NULL out", "out_report_json");
    EXPECT_OUT(mc_refresher_run(c, BAD_UTF8, NULL, &out), MC_E_INVALID_UTF8, "mc_refresher_run invalid UTF-8 options", out);
    EXPECT_OUT(mc_refresher_run(c, huge, NULL, &out), MC_E_INVALID_ARGUMENT, "mc_refresher_run 2 MiB options", out);
    CHECK(mc_refresher_run(c, NULL, NULL, &out) == MC_OK && contains(out, "\"accounts\":1") && contains(out, "\"not_connected\":1"),
          "mc_refresher_run (defaults): one account, not connected");
    if (out) printf("report %s\n", out);
    mc_string_free(out);
}

/* A 2 MiB string that turns invalid at its very end: the whole string is checked, and the
   message says where. */
static void huge_invalid_utf8(mc_client *c, char *huge) {
    char *out = NULL;
    huge[HUGE_LEN - 1] = (char)0xff;
    expect_at(__LINE__, mc_account_status_get(c, huge, &out), MC_E_INVALID_UTF8, "mc_account_status_get 2 MiB id with an invalid last byte", "2097151", NULL);
    OUT_NULL(out, "mc_account_status_get 2 MiB invalid id");
    EXPECT(mc_account_put(c, huge), MC_E_INVALID_UTF8, "mc_account_put 2 MiB JSON with an invalid last byte");
    huge[HUGE_LEN - 1] = 'a';
}

#ifdef _WIN32
#define MAIN_CALL __cdecl /* the C runtime calls main cdecl, also under -mrtd */
#else
#define MAIN_CALL
#endif

int MAIN_CALL main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_PATH\n", argc > 0 ? argv[0] : "bad_input");
        return 2;
    }
    char store_json[2048], opts[4096];
    if (strlen(argv[1]) >= sizeof store_json / 2) {
        fprintf(stderr, "store path too long\n");
        return 2;
    }
    json_escape(argv[1], store_json, sizeof store_json);

    char *huge = malloc(HUGE_LEN + 1);
    if (!huge) {
        fprintf(stderr, "FAIL cannot allocate 2 MiB\n");
        printf("FAIL 1 failures\n");
        return 1;
    }
    memset(huge, 'a', HUGE_LEN);
    huge[HUGE_LEN] = 0;

    versions_and_names();
    log_callback();
    client_options(store_json, huge);
    host_store();

    snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"http_timeout_secs\":5}", store_json);
    mc_client *c = NULL;
    CHECK(mc_client_open(opts, &c) == MC_OK && c != NULL, "mc_client_open on a fresh store");
    if (c) {
        CLEARED("mc_client_open");
        events(c, huge);
        registrations_and_accounts(c, huge);
        status_and_tokens(c, huge);
        connect_and_test(c, huge);
        mail(c, huge);
        refresher(c, huge);
        huge_invalid_utf8(c, huge);
        char *out = NULL;
        CHECK(mc_account_list(c, &out) == MC_OK && contains(out, "\"id\":\"a\"") && !contains(out, "\"id\":\"nobody\""),
              "after all that, the store holds exactly what was put");
        mc_string_free(out);
        mc_client_free(c);
    }

    /* The NULL-safe releases. */
    mc_string_free(NULL);
    CHECK(1, "mc_string_free(NULL) is harmless");
    mc_client_free(NULL);
    CHECK(1, "mc_client_free(NULL) is harmless");
    mc_cancel_free(NULL);
    CHECK(1, "mc_cancel_free(NULL) is harmless");
    mc_cancel_trigger(NULL);
    CHECK(1, "mc_cancel_trigger(NULL) is harmless");

    free(huge);
    mc_log_callback_set(NULL, NULL, MC_LOG_OFF);
    printf("%s %d failures\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}
