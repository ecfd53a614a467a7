/*
 * The C test program: a host written in C11 against include/mailconnect.h (ABI 2) and the cdylib.
 *
 * usage: mc_scenario MODE STORE EMULATOR_URL [STACK_JSON_VALUES...]
 *   MODE connect-device  : put a registration and an account, connect with the device-code callback
 *   MODE connect-browser : the same with the open-URL callback (the host "opens its own web view")
 *   MODE mail HOST IMAPS POP3S SMTP CA_FILE : test, access token, SASL string, send to self, fetch, folders
 *   MODE connect-system-browser : the same without an open-URL callback: mailconnect opens the
 *                          system browser (on Windows the registered http handler, ShellExecute)
 *   MODE check-connected : reopen the store (a second process) and find the account connected
 *   MODE refresh         : take the access token, wait until it has expired, take it again: a new one
 *                          (a call with a triggered cancel ends the due refresh with MC_E_CANCELLED
 *                          and never refreshes)
 *   MODE disconnect      : a disconnect with a triggered cancel changes nothing; disconnect twice
 *                          and check the state
 *   MODE proxy-set PROXY PASSWORD : store PROXY (a URL holding PASSWORD) with mc_proxy_set; a
 *                          second client on the store (another process would be the same) reports
 *                          it as stored, with a password, without showing it; a bad URL is refused
 *                          and changes nothing
 *   MODE proxy-clear     : remove the stored proxy; the source is the environment again
 *
 * The store may be a Windows path (C:\Users\J\u00fcrgen\...): it is JSON-escaped into the options.
 * MC_OPTIONS_EXTRA, when set, is appended to the options object (e.g. ,"key":{"dpapi":"machine"}).
 * Portable C11 for gcc and MinGW (also the 32-bit build with -mrtd, where stdcall is the default:
 * every callback is declared MC_CALL, as the header asks).
 *
 * The driver (tests/c_program.rs) reads our stdout: on "DEVICE <user_code> <uri>" or "OPEN <url>" it
 * completes the sign-in in the sandbox with its scripted browser. Every other line is a log line.
 * Exit status 0 = every check passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailconnect.h"
#include "check.h"

#ifdef _WIN32
#include <wchar.h>
__declspec(dllimport) void __stdcall Sleep(unsigned long milliseconds);
static void sleep_ms(unsigned ms) { Sleep(ms); }

/* UTF-16 (with surrogate pairs) to UTF-8. Windows gives main() its arguments in the ANSI code
   page (Windows-1252 for "Jürgen"), but mailconnect takes UTF-8, as a Windows host must give it
   every string: the program starts at wmain (-municode) and converts, as WideCharToMultiByte with
   CP_UTF8 would. */
static char *utf8_from_wide(const wchar_t *w) {
    size_t n = wcslen(w);
    char *out = (char *)malloc(n * 3 + 1), *o = out;
    for (size_t i = 0; out && i < n; i++) {
        unsigned long c = (unsigned short)w[i];
        if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && (unsigned short)w[i + 1] >= 0xDC00 && (unsigned short)w[i + 1] < 0xE000)
            c = 0x10000 + ((c - 0xD800) << 10) + ((unsigned short)w[++i] - 0xDC00);
        if (c < 0x80) *o++ = (char)c;
        else if (c < 0x800) { *o++ = (char)(0xC0 | (c >> 6)); *o++ = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) { *o++ = (char)(0xE0 | (c >> 12)); *o++ = (char)(0x80 | ((c >> 6) & 0x3F)); *o++ = (char)(0x80 | (c & 0x3F)); }
        else { *o++ = (char)(0xF0 | (c >> 18)); *o++ = (char)(0x80 | ((c >> 12) & 0x3F)); *o++ = (char)(0x80 | ((c >> 6) & 0x3F)); *o++ = (char)(0x80 | (c & 0x3F)); }
    }
    if (out) *o = 0;
    return out;
}
#else
static void sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
#endif


static void MC_CALL on_device_code(void *user_data, const char *user_code, const char *uri, const char *message) {
    (void)message;
    int *seen = (int *)user_data;
    *seen += 1;
    printf("DEVICE %s %s\n", user_code, uri);
    fflush(stdout);
}

static int32_t MC_CALL on_open_url(void *user_data, const char *url) {
    int *seen = (int *)user_data;
    *seen += 1;
    printf("OPEN %s\n", url);
    fflush(stdout);
    return 1; /* the host handles it (its own web view) */
}

static void MC_CALL on_progress(void *user_data, const char *stage) {
    (void)user_data;
    printf("progress %s\n", stage);
}

static void MC_CALL on_log(void *user_data, int32_t level, const char *target, const char *message) {
    (void)user_data;
    fprintf(stderr, "log %d %s: %s\n", level, target, message);
}

static mc_client *open_client(const char *store, const char *ca_file) {
    char opts[4096], store_json[1024], ca_json[1024];
    const char *extra = getenv("MC_OPTIONS_EXTRA");
    json_escape(store, store_json, sizeof store_json);
    if (ca_file && *ca_file)
        snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"language\":\"de\",\"http_timeout_secs\":10,\"extra_ca_file\":\"%s\"%s}", store_json,
                 json_escape(ca_file, ca_json, sizeof ca_json), extra ? extra : "");
    else
        snprintf(opts, sizeof opts, "{\"store\":\"%s\",\"language\":\"de\",\"http_timeout_secs\":10%s}", store_json, extra ? extra : "");
    mc_client *c = NULL;
    int32_t rc = mc_client_open(opts, &c);
    CHECK(rc == MC_OK && c != NULL, "mc_client_open");
    return c;
}

/* Decode standard base64 (with padding) into out; returns the length. */
static size_t b64decode(const char *in, size_t n, char *out) {
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(a, in[i]);
        if (!p || !*p) continue;
        v = (v << 6) | (unsigned)(p - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = 0;
    return o;
}

/* Whether any message's base64 "raw" field in a fetch result decodes to text containing needle. */
static int raw_contains(const char *json, const char *needle) {
    const char *p = json;
    while (p && (p = strstr(p, "\"raw\":\"")) != NULL) {
        p += 7;
        const char *end = strchr(p, '"');
        if (!end) break;
        size_t n = (size_t)(end - p);
        char *buf = malloc(n + 1);
        if (!buf) return 0;
        b64decode(p, n, buf);
        int hit = strstr(buf, needle) != NULL;
        free(buf);
        if (hit) return 1;
        p = end;
    }
    return 0;
}

/* browser: 0 device code, 1 the host's open-URL callback, 2 the system browser (no callback). */
static int connect_mode(const char *store, const char *emulator, int browser) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    char reg[2048];
    snprintf(reg, sizeof reg,
             "{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"%s\","
             "\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}",
             emulator);
    CHECK(mc_registration_put(c, reg) == MC_OK, "mc_registration_put");
    char *json = NULL;
    CHECK(mc_registration_get(c, "desktop", &json) == MC_OK && contains(json, "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90") &&
              contains(json, "\"has_client_secret\":false"),
          "mc_registration_get");
    mc_string_free(json);
    json = NULL;
    char acc[1024];
    snprintf(acc, sizeof acc, "{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"%s\"}",
             browser ? "browser" : "device_code");
    CHECK(mc_account_put(c, acc) == MC_OK, "mc_account_put");

    CHECK(mc_account_get(c, "alice", &json) == MC_OK && contains(json, "alice@example.test"), "mc_account_get");
    mc_string_free(json);

    int seen = 0;
    mc_connect_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.version = MC_CONNECT_CALLBACKS_VERSION;
    cb.user_data = &seen;
    cb.on_device_code = on_device_code;
    cb.on_open_url = browser == 2 ? NULL : on_open_url;
    cb.on_progress = on_progress;
    mc_cancel *cancel = NULL;
    CHECK(mc_cancel_new(&cancel) == MC_OK, "mc_cancel_new");
    int32_t rc = mc_account_connect(c, "alice", &cb, cancel);
    CHECK(rc == MC_OK, "mc_account_connect");
    if (browser == 2)
        CHECK(seen == 0, "no callback ran: the system browser showed the sign-in");
    else
        CHECK(seen == 1, browser ? "the open-URL callback ran once" : "the device-code callback ran once");
    mc_cancel_free(cancel);

    CHECK(mc_account_status_get(c, "alice", &json) == MC_OK && contains(json, "\"state\":\"connected\""), "mc_account_status_get connected");
    mc_string_free(json);

    char *token = NULL;
    CHECK(mc_token_get(c, "alice", NULL, &token) == MC_OK && token && strlen(token) > 1000, "mc_token_get");
    mc_string_free(token);
    char *sasl = NULL;
    CHECK(mc_sasl_xoauth2_get(c, "alice", NULL, &sasl) == MC_OK && sasl && strncmp(sasl, "dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB", 32) == 0,
          "mc_sasl_xoauth2_get starts with base64(\"user=alice@example.test\\x01\")");
    mc_string_free(sasl);

    /* A failing call carries code, message and diagnostic. */
    rc = mc_token_get(c, "nobody", NULL, &token);
    CHECK(rc == MC_E_NOT_FOUND && mc_error_code_get() == MC_E_NOT_FOUND && contains(mc_error_message_get(), "nobody") &&
              contains(mc_error_diagnostic_get(), "\"kind\":\"not_found\""),
          "a failing call has code, message and diagnostic");
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int mail_mode(const char *store, const char *host, const char *imaps, const char *pop3s, const char *smtp, const char *ca) {
    mc_client *c = open_client(store, ca);
    if (!c) return 1;
    char acc[2048];
    snprintf(acc, sizeof acc,
             "{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\","
             "\"servers\":{\"imap\":{\"host\":\"%s\",\"port\":%s,\"security\":\"tls\"},"
             "\"pop3\":{\"host\":\"%s\",\"port\":%s,\"security\":\"tls\"},"
             "\"smtp\":{\"host\":\"%s\",\"port\":%s,\"security\":\"starttls\"}}}",
             host, imaps, host, pop3s, host, smtp);
    CHECK(mc_account_put(c, acc) == MC_OK, "mc_account_put with servers (tokens kept)");
    char *report = NULL;
    CHECK(mc_account_test(c, "alice", 0, NULL, &report) == MC_OK && contains(report, "\"ok\":true"), "mc_account_test all protocols ok");
    if (report) printf("report %s\n", report);
    mc_string_free(report);

    const char *msg = "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: from the C program\r\n\r\nHello from C.\r\n";
    CHECK(mc_mail_send(c, "alice", (const uint8_t *)msg, strlen(msg), NULL) == MC_OK, "mc_mail_send");

    char *folders = NULL;
    CHECK(mc_folder_list(c, "alice", NULL, &folders) == MC_OK && contains(folders, "\"special_use\":\"inbox\""), "mc_folder_list");
    mc_string_free(folders);

    int found = 0;
    for (int i = 0; i < 40 && !found; i++) {
        char *json = NULL;
        if (mc_mail_fetch(c, "alice", "{\"protocol\":\"imap\",\"headers_only\":true}", NULL, &json) == MC_OK && json) {
            found = raw_contains(json, "Subject: from the C program");
        }
        mc_string_free(json);
        if (!found) sleep_ms(250);
    }
    CHECK(found, "mc_mail_fetch over IMAP finds the message sent from C");
    char *pop = NULL;
    CHECK(mc_mail_fetch(c, "alice", "{\"protocol\":\"pop3\"}", NULL, &pop) == MC_OK && contains(pop, "\"raw\""), "mc_mail_fetch over POP3");
    mc_string_free(pop);
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int check_connected_mode(const char *store) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    char *json = NULL;
    CHECK(mc_account_status_get(c, "alice", &json) == MC_OK && contains(json, "\"state\":\"connected\""), "second process finds the account connected");
    mc_string_free(json);
    char *token = NULL;
    CHECK(mc_token_get(c, "alice", NULL, &token) == MC_OK, "second process gets a token");
    mc_string_free(token);
    mc_client_free(c);
    return failures ? 1 : 0;
}

/* The token in use expires (the driver made the emulator issue short-lived ones); the next call
   refreshes it with the refresh token. Until then the token is asked for with a triggered cancel:
   it may hand out the current token, but never refreshes; once the refresh is due it returns
   MC_E_CANCELLED, the stored tokens stay as they were, and the next call without a cancel
   refreshes. */
static int refresh_mode(const char *store) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    char *first = NULL, *status = NULL;
    CHECK(mc_token_get(c, "alice", NULL, &first) == MC_OK && first, "access token before expiry");
    mc_cancel *fired = NULL;
    CHECK(mc_cancel_new(&fired) == MC_OK, "mc_cancel_new");
    mc_cancel_trigger(fired);
    int cancelled = 0, refreshed_anyway = 0, other = 0;
    for (int i = 0; i < 240 && !cancelled && !other; i++) { /* up to a minute: tokens last a few seconds */
        char *now = NULL;
        int32_t rc = mc_token_get(c, "alice", fired, &now);
        if (rc == MC_E_CANCELLED) cancelled = now == NULL;
        else if (rc == MC_OK && now && first && strcmp(now, first) != 0) refreshed_anyway = other = 1;
        else if (rc != MC_OK) other = 1;
        mc_string_free(now);
        if (!cancelled && !other) sleep_ms(250);
    }
    CHECK(!refreshed_anyway, "a call with a triggered cancel never refreshes the token");
    CHECK(cancelled && !other, "once the refresh is due, mc_token_get with a triggered cancel returns MC_E_CANCELLED");
    char *sasl = NULL;
    CHECK(mc_sasl_xoauth2_get(c, "alice", fired, &sasl) == MC_E_CANCELLED && sasl == NULL,
          "mc_sasl_xoauth2_get with a triggered cancel returns MC_E_CANCELLED too");
    mc_cancel_free(fired);
    CHECK(mc_account_status_get(c, "alice", &status) == MC_OK && contains(status, "\"state\":\"connected\""),
          "still connected after the cancelled refreshes");
    mc_string_free(status);
    status = NULL;
    int refreshed = 0;
    for (int i = 0; i < 240 && !refreshed; i++) { /* up to a minute */
        char *now = NULL;
        if (mc_token_get(c, "alice", NULL, &now) == MC_OK && now && first && strcmp(now, first) != 0) refreshed = 1;
        mc_string_free(now);
        if (!refreshed) sleep_ms(250);
    }
    CHECK(refreshed, "a new access token after the first expired (refreshed with the refresh token)");
    CHECK(mc_account_status_get(c, "alice", &status) == MC_OK && contains(status, "\"state\":\"connected\""), "still connected after the refresh");
    if (status) printf("status %s\n", status);
    mc_string_free(status);
    mc_string_free(first);
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int disconnect_mode(const char *store) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    char *json = NULL, *token = NULL;
    /* A cancel fired before the tokens are deleted: MC_E_CANCELLED and nothing changes. */
    mc_cancel *fired = NULL;
    CHECK(mc_cancel_new(&fired) == MC_OK, "mc_cancel_new");
    mc_cancel_trigger(fired);
    CHECK(mc_account_disconnect(c, "alice", fired) == MC_E_CANCELLED && mc_error_code_get() == MC_E_CANCELLED,
          "mc_account_disconnect with a triggered cancel returns MC_E_CANCELLED");
    mc_cancel_free(fired);
    CHECK(mc_account_status_get(c, "alice", &json) == MC_OK && contains(json, "\"state\":\"connected\""),
          "the cancelled disconnect left the account connected");
    mc_string_free(json);
    json = NULL;
    CHECK(mc_token_get(c, "alice", NULL, &token) == MC_OK && token, "the cancelled disconnect left the tokens");
    mc_string_free(token);
    token = NULL;
    CHECK(mc_account_disconnect(c, "alice", NULL) == MC_OK, "mc_account_disconnect");
    CHECK(mc_account_disconnect(c, "alice", NULL) == MC_OK, "mc_account_disconnect again");
    CHECK(mc_account_status_get(c, "alice", &json) == MC_OK && contains(json, "\"state\":\"not_connected\""), "status not_connected");
    mc_string_free(json);
    CHECK(mc_token_get(c, "alice", NULL, &token) == MC_E_STATE && token == NULL, "no token after disconnect");
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int proxy_set_mode(const char *store, const char *proxy, const char *password) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    CHECK(mc_proxy_set(c, proxy) == MC_OK, "mc_proxy_set");
    CHECK(mc_proxy_set(c, "ftp://nobody@127.0.0.1:21") == MC_E_INVALID_ARGUMENT, "mc_proxy_set refuses an ftp:// proxy");
    mc_client_free(c);
    mc_client *again = open_client(store, NULL);
    if (!again) return 1;
    char *json = NULL;
    CHECK(mc_proxy_get(again, &json) == MC_OK && json, "mc_proxy_get");
    CHECK(contains(json, "\"source\":\"stored\"") && contains(json, "\"has_password\":true"), "the proxy is stored, with a password");
    CHECK(!contains(json, password), "mc_proxy_get does not show the password");
    mc_string_free(json);
    mc_client_free(again);
    return failures ? 1 : 0;
}

static int proxy_clear_mode(const char *store) {
    mc_client *c = open_client(store, NULL);
    if (!c) return 1;
    CHECK(mc_proxy_set(c, NULL) == MC_OK, "mc_proxy_set(NULL)");
    char *json = NULL;
    CHECK(mc_proxy_get(c, &json) == MC_OK && contains(json, "\"stored\":null") && contains(json, "\"source\":\"environment\""), "the stored proxy is gone");
    mc_string_free(json);
    mc_client_free(c);
    return failures ? 1 : 0;
}

static int run(int argc, char **argv) {
    if (mc_abi_version_get() != MC_ABI_VERSION) {
        fprintf(stderr, "ABI mismatch: library %u, header %u\n", mc_abi_version_get(), (unsigned)MC_ABI_VERSION);
        return 2;
    }
    CHECK(mc_log_callback_set(on_log, NULL, MC_LOG_INFO) == MC_OK, "mc_log_callback_set");
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODE STORE [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *store = argv[2];
    int rc;
    if (strcmp(mode, "connect-device") == 0 && argc >= 4) rc = connect_mode(store, argv[3], 0);
    else if (strcmp(mode, "connect-browser") == 0 && argc >= 4) rc = connect_mode(store, argv[3], 1);
    else if (strcmp(mode, "connect-system-browser") == 0 && argc >= 4) rc = connect_mode(store, argv[3], 2);
    else if (strcmp(mode, "refresh") == 0) rc = refresh_mode(store);
    else if (strcmp(mode, "mail") == 0 && argc >= 7) rc = mail_mode(store, argv[3], argv[4], argv[5], argv[6], argc >= 8 ? argv[7] : NULL);
    else if (strcmp(mode, "check-connected") == 0) rc = check_connected_mode(store);
    else if (strcmp(mode, "disconnect") == 0) rc = disconnect_mode(store);
    else if (strcmp(mode, "proxy-set") == 0 && argc >= 5) rc = proxy_set_mode(store, argv[3], argv[4]);
    else if (strcmp(mode, "proxy-clear") == 0) rc = proxy_clear_mode(store);
    else {
        fprintf(stderr, "unknown mode or missing arguments\n");
        return 2;
    }
    mc_log_callback_set(NULL, NULL, MC_LOG_OFF);
    printf("%s %d failures\n", rc == 0 ? "PASS" : "FAIL", failures);
    return rc;
}

#ifdef _WIN32
int __cdecl wmain(int argc, wchar_t **wargv) { /* the C runtime calls it cdecl, also under -mrtd */
    char **argv = (char **)calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; argv && i < argc; i++) argv[i] = utf8_from_wide(wargv[i]);
    return argv ? run(argc, argv) : 2;
}
#else
int main(int argc, char **argv) { return run(argc, argv); }
#endif
