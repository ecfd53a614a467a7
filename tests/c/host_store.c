/*
 * A C host that keeps mailconnect's records in its own SQLite table through the store callbacks
 * (mc_client_open_with_store), drives the device-code sign-in itself (mc_authorization_begin /
 * mc_authorization_poll) and pulls events (mc_events_next). Written against
 * include/mailconnect_store.h (which includes mailconnect.h), ABI 2.
 *
 * usage: host_store MODE DB_FILE EMULATOR_URL [HOST IMAPS POP3S SMTP CA_FILE]
 *   MODE story    : connect -> Test (when the mail stack is given) -> a due refresh cancelled (the
 *                   host's row stays as it was) -> refresh -> disconnect
 *   MODE truncate : the host's column keeps only 1024 bytes of each token blob; the next read must
 *                   report MC-TOKEN-TRUNCATED ("stored incompletely"), not crash or sign in again
 *
 * The driver (tests/c_program.rs) reads stdout: on "DEVICE <user_code> <uri>" it completes the
 * sign-in with the sandbox's scripted browser. Exit status 0 = every check passed.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailconnect_store.h"
#include "check.h"

static int truncate_blobs = 0;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the host's own table -------------------------------------------------------------------- */

/* One connection shared by mailconnect's threads; the lock makes each callback atomic (a
 * compare-and-swap must not interleave with another write, and sqlite3_changes must be ours). */
static sqlite3 *db;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define LOCKED(call)                                                                               \
    do {                                                                                           \
        pthread_mutex_lock(&lock);                                                                 \
        int32_t r_ = (call);                                                                       \
        pthread_mutex_unlock(&lock);                                                               \
        return r_;                                                                                 \
    } while (0)

static int32_t load_(const char *kind, const char *id, mc_store_record *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT blob, version FROM vendor_tokens WHERE kind=?1 AND id=?2", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    int32_t rc = MC_STORE_NOT_FOUND;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        rc = mc_store_record_set(out, (const uint8_t *)blob, (size_t)len, sqlite3_column_int64(st, 1)) == MC_OK ? MC_STORE_OK : -2;
    } else if (step != SQLITE_DONE) {
        rc = -3;
    }
    sqlite3_finalize(st);
    return rc;
}

static int32_t cb_load(void *ud, const char *kind, const char *id, mc_store_record *out) {
    (void)ud;
    LOCKED(load_(kind, id, out));
}

static int32_t cas_(const char *kind, const char *id, const uint8_t *data, size_t len,
                      int64_t expected, int64_t new_version) {
    if (truncate_blobs && strcmp(kind, "tokens") == 0 && len > 1024) len = 1024; /* a too-small column */
    sqlite3_stmt *st;
    const char *sql = expected == 0
        ? "INSERT OR IGNORE INTO vendor_tokens(kind, id, version, blob) VALUES(?1, ?2, ?4, ?3)"
        : "UPDATE vendor_tokens SET blob=?3, version=?4 WHERE kind=?1 AND id=?2 AND version=?5";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, new_version);
    if (expected != 0) sqlite3_bind_int64(st, 5, expected);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) return -3;
    return sqlite3_changes(db) == 1 ? MC_STORE_OK : MC_STORE_CONFLICT;
}

static int32_t cb_cas(void *ud, const char *kind, const char *id, const uint8_t *data, size_t len,
                      int64_t expected, int64_t new_version) {
    (void)ud;
    LOCKED(cas_(kind, id, data, len, expected, new_version));
}

static int32_t remove_(const char *kind, const char *id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM vendor_tokens WHERE kind=?1 AND id=?2", -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) return -3;
    return sqlite3_changes(db) == 1 ? MC_STORE_OK : MC_STORE_NOT_FOUND;
}

static int32_t cb_remove(void *ud, const char *kind, const char *id) {
    (void)ud;
    LOCKED(remove_(kind, id));
}

static int32_t list_(const char *kind, mc_store_list *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT id, blob, version FROM vendor_tokens WHERE kind=?1", -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    int32_t rc = MC_STORE_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (mc_store_list_add(out, (const char *)sqlite3_column_text(st, 0), (const uint8_t *)sqlite3_column_blob(st, 1),
                              (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int64(st, 2)) != MC_OK) {
            rc = -2;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int32_t cb_list(void *ud, const char *kind, mc_store_list *out) {
    (void)ud;
    LOCKED(list_(kind, out));
}

/* Does any stored blob contain `needle` in clear? */
static int table_contains(const char *needle) {
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT blob FROM vendor_tokens", -1, &st, NULL) != SQLITE_OK) return 1;
    size_t n = strlen(needle);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        for (int i = 0; b && i + (int)n <= len; i++)
            if (memcmp(b + i, needle, n) == 0) found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

/* The version of the host's row (kind, id); 0 when there is none, -1 on an error. */
static int64_t row_version(const char *kind, const char *id) {
    sqlite3_stmt *st;
    int64_t v = -1;
    pthread_mutex_lock(&lock);
    if (sqlite3_prepare_v2(db, "SELECT version FROM vendor_tokens WHERE kind=?1 AND id=?2", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        v = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : step == SQLITE_DONE ? 0 : -1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&lock);
    return v;
}

/* ---- the story ------------------------------------------------------------------------------- */

static mc_client *open_client(const char *ca_file) {
    static const mc_store_callbacks cbs = {MC_STORE_CALLBACKS_VERSION, NULL, cb_load, cb_cas, cb_remove, cb_list};
    char opts[2048];
    /* The key comes from the host's own secret store; here a fixed test key. */
    snprintf(opts, sizeof opts,
             "{\"key\":{\"base64\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"},\"http_timeout_secs\":10%s%s%s}",
             ca_file ? ",\"extra_ca_file\":\"" : "", ca_file ? ca_file : "", ca_file ? "\"" : "");
    mc_client *c = NULL;
    CHECK(mc_client_open_with_store(opts, &cbs, &c) == MC_OK && c, "mc_client_open_with_store");
    return c;
}

/* Drive the device-code sign-in as the host: begin, show the code, poll. */
static int connect_device(mc_client *c) {
    char *a = NULL;
    CHECK(mc_authorization_begin(c, "alice", "{\"flow\":\"device\"}", NULL, &a) == MC_OK && contains(a, "\"user_code\""), "mc_authorization_begin (device)");
    if (!a) return 0;
    char code[64] = {0}, uri[512] = {0}, handle[128] = {0};
    const char *p;
    if ((p = strstr(a, "\"user_code\":\""))) sscanf(p + 13, "%63[^\"]", code);
    if ((p = strstr(a, "\"verification_uri\":\""))) sscanf(p + 20, "%511[^\"]", uri);
    if ((p = strstr(a, "\"handle\":\""))) sscanf(p + 10, "%127[^\"]", handle);
    mc_string_free(a);
    printf("DEVICE %s %s\n", code, uri);
    fflush(stdout);
    for (int i = 0; i < 120; i++) {
        char *r = NULL;
        if (mc_authorization_poll(c, handle, NULL, &r) != MC_OK) {
            CHECK(0, "mc_authorization_poll");
            return 0;
        }
        int done = contains(r, "\"state\":\"connected\"");
        long wait = 500;
        if ((p = strstr(r, "\"retry_after_ms\":"))) wait = atol(p + 17);
        mc_string_free(r);
        if (done) return 1;
        sleep_ms(wait > 0 && wait < 10000 ? wait : 500);
    }
    return 0;
}

static int story(const char *url, int argc, char **argv) {
    mc_client *c = open_client(argc >= 9 ? argv[8] : NULL);
    if (!c) return 1;
    char reg[1024];
    snprintf(reg, sizeof reg,
             "{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"%s\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}", url);
    CHECK(mc_registration_put(c, reg) == MC_OK, "mc_registration_put into the host's table");
    char *got = NULL;
    CHECK(mc_registration_get(c, "desktop", &got) == MC_OK && contains(got, "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"),
          "mc_registration_get from the host's table");
    mc_string_free(got);
    CHECK(row_version("registration", "desktop") > 0, "the registration is a row of the host's table");
    char acc[2048];
    if (argc >= 9)
        snprintf(acc, sizeof acc,
                 "{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\","
                 "\"servers\":{\"imap\":{\"host\":\"%s\",\"port\":%s,\"security\":\"tls\"},"
                 "\"pop3\":{\"host\":\"%s\",\"port\":%s,\"security\":\"tls\"},"
                 "\"smtp\":{\"host\":\"%s\",\"port\":%s,\"security\":\"starttls\"}}}",
                 argv[4], argv[5], argv[4], argv[6], argv[4], argv[7]);
    else
        snprintf(acc, sizeof acc, "{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\"}");
    CHECK(mc_account_put(c, acc) == MC_OK, "mc_account_put into the host's table");
    CHECK(mc_events_configure(c, "{\"capacity\":64}") == MC_OK, "mc_events_configure");

    CHECK(connect_device(c), "device-code sign-in driven by the host");
    CHECK(!table_contains("eyJ") && !table_contains("alice@"), "the host's table holds opaque blobs only");

    if (argc >= 9) {
        char *report = NULL;
        CHECK(mc_account_test(c, "alice", 0, NULL, &report) == MC_OK && contains(report, "\"ok\":true"), "mc_account_test against Dovecot and Postfix");
        mc_string_free(report);
    }

    /* The emulator issues 4-second tokens: after 2.5 s the next call refreshes. */
    sleep_ms(2600);
    /* First with a triggered cancel: the due refresh ends with MC_E_CANCELLED and the host's row
       is not written (same version, no token_refreshed event queued). */
    char *tok = NULL;
    int64_t before = row_version("tokens", "alice");
    mc_cancel *fired = NULL;
    CHECK(mc_cancel_new(&fired) == MC_OK, "mc_cancel_new");
    mc_cancel_trigger(fired);
    CHECK(mc_token_get(c, "alice", fired, &tok) == MC_E_CANCELLED && tok == NULL, "mc_token_get with a triggered cancel returns MC_E_CANCELLED");
    CHECK(mc_sasl_xoauth2_get(c, "alice", fired, &tok) == MC_E_CANCELLED && tok == NULL, "mc_sasl_xoauth2_get with a triggered cancel returns MC_E_CANCELLED");
    mc_cancel_free(fired);
    CHECK(before > 0 && row_version("tokens", "alice") == before, "the cancelled refreshes left the host's token row as it was");
    int refreshed_early = 0;
    for (;;) { /* what is queued so far: the sign-in's events, no refresh */
        char *ev = NULL;
        if (mc_events_next(c, 0, &ev) != MC_OK || !ev) break;
        printf("event %s\n", ev);
        refreshed_early |= contains(ev, "\"type\":\"token_refreshed\"");
        mc_string_free(ev);
    }
    CHECK(!refreshed_early, "no token_refreshed event from the cancelled calls");
    CHECK(mc_token_get(c, "alice", NULL, &tok) == MC_OK && tok && strlen(tok) > 1000, "mc_token_get refreshes through the host's table");
    CHECK(row_version("tokens", "alice") > 0 && row_version("tokens", "alice") != before, "the refresh wrote a new version of the host's token row");
    mc_string_free(tok);
    int refreshed = 0;
    for (int i = 0; i < 40 && !refreshed; i++) {
        char *ev = NULL;
        if (mc_events_next(c, 100, &ev) == MC_OK && ev) {
            printf("event %s\n", ev);
            refreshed = contains(ev, "\"type\":\"token_refreshed\"");
        }
        mc_string_free(ev);
    }
    CHECK(refreshed, "a token_refreshed event arrives");

    /* A second client on the same table (the vendor's mail service) sees the refreshed account. */
    mc_client *other = open_client(NULL);
    char *st = NULL;
    CHECK(other && mc_account_status_get(other, "alice", &st) == MC_OK && contains(st, "\"state\":\"connected\"") && contains(st, "\"refreshed_at\""),
          "a second client reads the refreshed record");
    mc_string_free(st);
    mc_client_free(other);

    CHECK(mc_account_disconnect(c, "alice", NULL) == MC_OK, "mc_account_disconnect");
    CHECK(mc_account_status_get(c, "alice", &st) == MC_OK && contains(st, "\"not_connected\""), "not connected afterwards");
    mc_string_free(st);
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int truncate_mode(const char *url) {
    truncate_blobs = 1;
    mc_client *c = open_client(NULL);
    if (!c) return 1;
    char reg[1024];
    snprintf(reg, sizeof reg,
             "{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"%s\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}", url);
    CHECK(mc_registration_put(c, reg) == MC_OK, "mc_registration_put");
    CHECK(mc_account_put(c, "{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\"}") == MC_OK, "mc_account_put");
    connect_device(c); /* the write "succeeds" at the host, cut to 1024 bytes */
    char *tok = NULL;
    int32_t rc = mc_token_get(c, "alice", NULL, &tok);
    CHECK(rc == MC_E_STORE && tok == NULL, "mc_token_get fails with MC_E_STORE");
    CHECK(contains(mc_error_diagnostic_get(), "\"code\":\"MC-TOKEN-TRUNCATED\""), "diagnostic MC-TOKEN-TRUNCATED");
    CHECK(contains(mc_error_message_get(), "stored incompletely: 1024 of"), "the message says how much came back");
    printf("message %s\n", mc_error_message_get());
    mc_client_free(c);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s story|truncate DB_FILE EMULATOR_URL [HOST IMAPS POP3S SMTP CA_FILE]\n", argv[0]);
        return 2;
    }
    if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    sqlite3_exec(db,
                 "CREATE TABLE IF NOT EXISTS vendor_tokens(kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,"
                 " blob BLOB NOT NULL, PRIMARY KEY(kind, id))",
                 NULL, NULL, NULL);
    int rc;
    if (strcmp(argv[1], "story") == 0) rc = story(argv[3], argc, argv);
    else if (strcmp(argv[1], "truncate") == 0) rc = truncate_mode(argv[3]);
    else {
        fprintf(stderr, "unknown mode\n");
        rc = 2;
    }
    sqlite3_close(db);
    printf("%s %d failures\n", rc == 0 ? "PASS" : "FAIL", failures);
    return rc;
}
