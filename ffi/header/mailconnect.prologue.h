/*
 * mailconnect — OAuth 2.0 for Microsoft 365 (and other) mailboxes, behind a stable C ABI.
 *
 * Walk-through
 *   mc_client *c;  mc_client_open("{\"store\":\"/var/lib/app/mc.db\"}", &c);
 *   mc_account_put(c, "{\"id\":\"sales\",\"mailbox\":\"sales@contoso.com\",\"registration\":{...}}");
 *   mc_account_connect(c, "sales", &callbacks_or_NULL, cancel_or_NULL);  // "Authorize" button
 *   mc_account_test(c, "sales", 0, NULL, &report_json);                  // "Test e-mail configuration"
 *   mc_mail_send(c, "sales", msg, len, NULL);
 *   mc_mail_fetch(c, "sales", "{\"protocol\":\"imap\"}", NULL, &json);
 *   mc_token_get(c, "sales", NULL, &token);                              // or: your own mail code
 *   mc_account_disconnect(c, "sales", NULL);  mc_client_free(c);
 *
 * Rules
 *   1. Every fallible function returns int32_t: MC_OK (0) or a negative MC_E_* code (append-only).
 *      Details of the last failure on the calling thread: mc_error_code_get(),
 *      mc_error_message_get() (never NULL) and mc_error_diagnostic_get() (JSON).
 *   2. Strings are UTF-8 and NUL-terminated. Strings returned through char** are owned by the
 *      caller and released with mc_string_free(). Borrowed strings (const char* results) stay
 *      valid until the next call on the same thread.
 *   3. Objects are opaque, created into an **out and released with their _free (NULL-safe).
 *      Every out-parameter is set to NULL when the call starts, before anything can fail, and
 *      receives a value only with MC_OK: a failed call never leaves a stale pointer in it.
 *   4. Every pointer is checked (MC_E_NULL_POINTER), every string validated (MC_E_INVALID_UTF8);
 *      a panic never crosses the boundary (MC_E_INTERNAL).
 *   5. Calls block. Every call that goes to the network takes an mc_cancel (NULL = none) that
 *      ends it from any thread (MC_E_CANCELLED).
 *   6. A client is thread-safe. mc_client_free cancels calls in progress and waits for them.
 *   7. Callbacks are optional and run on mailconnect threads; never call a blocking mailconnect
 *      function from a callback (MC_E_STATE), marshal to your UI thread yourself.
 *   8. Check mc_abi_version_get() == MC_ABI_VERSION when loading the library dynamically.
 *   9. Rich data (accounts, status, test reports, messages) is JSON with schemas in the README.
 *  10. Names are mc_<noun>_<verb>: mc_account_put, mc_mail_send, mc_error_code_get.
 *
 * A host that keeps tokens in its own database includes mailconnect_store.h as well.
 */
