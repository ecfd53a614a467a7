// The C++ binding's scenario against the sandbox and the real mail stack: typed results (status,
// test report, folders, messages, accounts, registrations, the refresher's report) and typed
// errors (mailconnect::Error's code, name and diagnostic fields), read as struct members; a
// MessageSpec (umlaut subject, named recipient, attachments from bytes and from a file) sent over
// SMTP and read back, refused without recipients; graph_token refused when not connected.
// usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE [host]
// With "host" it runs the host integration part instead (the emulator then issues 4-second tokens):
// the device code driven by the host, events (EventListener thread and next_event), nativeclient
// refusals and abort.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mailconnect.hpp"

using mailconnect::AccountState;
using mailconnect::EventKind;

static int passed = 0, failed = 0;
static void check(bool ok, const std::string &what) {
    (ok ? passed : failed)++;
    std::cout << (ok ? "ok " : "FAIL ") << what << std::endl;
}

static void sign_in(const std::string &cli, const std::string &user, const std::string &code, const std::string &uri) {
    std::string cmd = cli + " sandbox sign-in --user " + user + " --password " + user.substr(0, user.find('@')) +
                      "-password --device-code " + code + " --verification-uri " + uri + " > /dev/null";
    if (std::system(cmd.c_str()) != 0) std::cerr << "sign-in failed" << std::endl;
}

static std::string s(const rust::String &r) { return std::string(r); }

static std::string describe(const mailconnect::Event &e) {
    if (e.kind == EventKind::ConnectProgress) return "progress:" + s(e.stage);
    if (e.kind == EventKind::StateChanged) return std::string("state:") + mailconnect::to_string(e.from) + "->" + mailconnect::to_string(e.to);
    return mailconnect::to_string(e.kind);
}

static bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

/// Standard base64 decoded (whitespace skipped).
static std::string unbase64(const std::string &in) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char ch : in) {
        int v;
        if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
        else if (ch == '+') v = 62;
        else if (ch == '/') v = 63;
        else continue;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

/// A header of a raw message, unfolded, with its RFC 2047 "B" encoded words (UTF-8) decoded.
static std::string header_of(const std::string &raw, const std::string &name) {
    std::string head = "\r\n" + raw.substr(0, raw.find("\r\n\r\n")) + "\r\n";
    for (size_t p; (p = head.find("\r\n ")) != std::string::npos || (p = head.find("\r\n\t")) != std::string::npos;) head.replace(p, 3, " ");
    auto at = head.find("\r\n" + name + ":");
    if (at == std::string::npos) return "";
    auto start = at + name.size() + 3;
    std::string v = head.substr(start, head.find("\r\n", start) - start), out;
    size_t i = v.find_first_not_of(' ');
    v = i == std::string::npos ? "" : v.substr(i);
    while (!v.empty()) {
        auto w = v.find("=?");
        if (w == std::string::npos) {
            out += v;
            break;
        }
        out += v.substr(0, w);
        auto q = v.find('?', w + 2);          // charset?B?
        auto end = v.find("?=", q + 3);
        out += unbase64(v.substr(q + 3, end - q - 3));
        v = v.substr(end + 2);
        auto next = v.find_first_not_of(' ');
        if (next != std::string::npos && v.compare(next, 2, "=?") == 0) v = v.substr(next);
    }
    return out;
}

/// The base64 body of the MIME part whose headers contain `marker` (e.g. its encoded file name), decoded.
static std::string part_bytes(const std::string &raw, const std::string &marker) {
    auto at = raw.find(marker);
    if (at == std::string::npos) return "";
    auto body = raw.find("\r\n\r\n", at);
    if (body == std::string::npos) return "";
    body += 4;
    return unbase64(raw.substr(body, raw.find("\r\n--", body) - body));
}

/// A MessageSpec built by mailconnect (umlaut subject, a named recipient, an attachment from bytes
/// and one from a file) goes over the real Postfix and comes back over IMAP as written; bad input
/// names the field.
static void send_built_message(mailconnect::Client &c, const std::string &store) {
    std::string pdf, scan;
    for (int i = 0; i < 1000; i++) pdf.push_back(static_cast<char>(i * 7));
    for (int i = 0; i < 777; i++) scan.push_back(static_cast<char>(255 - i % 256));
    auto slash = store.rfind('/');
    std::string scan_path = (slash == std::string::npos ? std::string(".") : store.substr(0, slash)) + "/scan.bin";
    std::ofstream(scan_path, std::ios::binary) << scan;

    mailconnect::MessageSpec m;
    m.to.push_back(mailconnect::address("alice@example.test", "Alice Müller"));
    m.subject = "Rechnung für März";
    m.text = "Guten Tag,\nanbei die Rechnung für März.\n";
    m.attachments.push_back(mailconnect::attachment_from_bytes(pdf, "Rechnung März.pdf", "application/pdf"));
    m.attachments.push_back(mailconnect::attachment_from_file(scan_path));
    m.headers.push_back(mailconnect::header("X-Invoice-Number", "2026-03-17"));
    m.importance = "high";
    mailconnect::Cancel cancel;
    auto sent = c.send_message("alice", m, cancel);
    std::string id = s(sent.message_id);
    check(sent.transport == "smtp" && id.front() == '<' && contains(id, "@example.test>") && sent.size > pdf.size() &&
              s(sent.reply).front() == '2',
          "send_message over SMTP: transport smtp and a Message-ID (" + id + ", " + s(sent.reply) + ")");
    mailconnect::FetchRequest unread;
    unread.protocol = "imap";
    unread.unread_only = true;
    unread.transport = "smtp_imap";
    std::string raw;
    for (int i = 0; i < 40 && raw.empty(); i++) {
        for (const auto &msg : c.fetch("alice", unread))
            if (contains(mailconnect::raw_string(msg), id)) raw = mailconnect::raw_string(msg);
        if (raw.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    check(!raw.empty(), "the built message arrives over IMAP (unread_only)");
    check(header_of(raw, "Subject") == "Rechnung für März" && !contains(raw, "Subject: Rechnung für März"),
          "the umlaut subject travels encoded and decodes as written: " + header_of(raw, "Subject"));
    check(header_of(raw, "To") == "Alice Müller <alice@example.test>", "the named recipient: " + header_of(raw, "To"));
    check(header_of(raw, "X-Invoice-Number") == "2026-03-17" && header_of(raw, "Importance") == "high", "extra header and importance");
    bool pdf_ok = part_bytes(raw, "Rechnung%20M%C3%A4rz.pdf") == pdf, scan_ok = part_bytes(raw, "scan.bin") == scan;
    check(pdf_ok, "the attachment from bytes arrives byte for byte under its umlaut name");
    check(scan_ok, "the attachment from a file arrives byte for byte");
    check(header_of(raw, "Subject") == "Rechnung für März" && pdf_ok && scan_ok,
          "the built message came back: umlaut subject, named recipient, both attachments' bytes");
    mailconnect::MessageSpec nobody;
    nobody.subject = "nobody";
    try {
        c.send_message("alice", nobody);
        check(false, "a message without recipients throws");
    } catch (const mailconnect::Error &e) {
        check(e.code() == MC_E_INVALID_ARGUMENT && e.diagnostic().evidence.field == "to", "a message without recipients throws MC_E_INVALID_ARGUMENT naming \"to\"");
    }
    mailconnect::MessageSpec missing;
    missing.to.push_back(mailconnect::address("alice@example.test"));
    missing.attachments.push_back(mailconnect::attachment_from_file(scan_path + ".missing"));
    try {
        c.send_message("alice", missing);
        check(false, "a missing attachment file throws");
    } catch (const mailconnect::Error &e) {
        check(e.code() == MC_E_INVALID_ARGUMENT && e.diagnostic().evidence.field == "attachments[0].path",
              "a missing attachment file names " + s(e.diagnostic().evidence.field));
    }
}

static void host_part(const std::string &store, const std::string &emulator, const std::string &cli) {
    using namespace std::chrono;
    const std::string native_client = "https://login.microsoftonline.com/common/oauth2/nativeclient";
    mailconnect::Client c("{\"store\":\"" + store + "\",\"no_proxy\":true}");
    c.put_registration("{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"" + emulator +
                       "\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}");
    c.put_account("{\"id\":\"carol\",\"mailbox\":\"carol@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\"}");
    c.configure_events(256, "info");
    std::mutex m;
    std::vector<mailconnect::Event> got;
    std::atomic<bool> refreshed{false}, lost{false}, off_main{true};
    const auto main_id = std::this_thread::get_id();
    {
        mailconnect::EventListener listener(c, [&](const mailconnect::Event &e) {
            std::lock_guard<std::mutex> g(m);
            got.push_back(e);
            if (std::this_thread::get_id() == main_id) off_main = false;
            if (e.kind == EventKind::TokenRefreshed) refreshed = true;
            if (e.kind == EventKind::StateChanged && e.to == AccountState::NeedsReauthorization) lost = true;
        });
        auto a = c.begin_authorization("carol");
        check(a.flow == "device_code" && !a.user_code.empty() && contains(s(a.message), s(a.user_code)) && a.expires_in_secs > 60 &&
                  a.interval_secs >= 1 && a.url.empty(),
              "begin_authorization gives the device code");
        auto p = c.poll_authorization(a);
        check(!p.connected && p.retry_after_ms > 0, "poll_authorization is pending before the user acts");
        sign_in(cli, "carol@example.test", s(a.user_code), s(a.verification_uri));
        auto deadline = steady_clock::now() + seconds(30);
        while (!p.connected && steady_clock::now() < deadline) {
            std::this_thread::sleep_for(milliseconds(p.retry_after_ms));
            p = c.poll_authorization(a);
        }
        check(p.connected && p.status.state == AccountState::Connected && p.status.mailbox == "carol@example.test" &&
                  p.status.account_id == "carol",
              "polling until connected (host-driven device code)");
        try {
            c.poll_authorization(a);
            check(false, "a used handle is refused");
        } catch (const mailconnect::Error &e) {
            check(e.code() == MC_E_STATE && e.diagnostic().code == "MC-SIGN-IN-NOT-PENDING", "a used handle is refused with MC-SIGN-IN-NOT-PENDING");
        }
        std::this_thread::sleep_for(milliseconds(2600));
        check(c.access_token("carol").size() > 1000, "access token after half the lifetime (refresh)");
        deadline = steady_clock::now() + seconds(5);
        while (!refreshed && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
        check(refreshed, "the listener reports token_refreshed");
        // An admin revokes the sessions: the next refresh fails and the events say so.
        std::string revoke = "curl -sf -o /dev/null -X POST " + emulator + "/_sandbox/users/carol@example.test/revoke";
        check(std::system(revoke.c_str()) == 0, "the emulator revoked carol's refresh tokens");
        std::this_thread::sleep_for(milliseconds(2600));
        try {
            c.access_token("carol");
            check(false, "a revoked refresh token throws");
        } catch (const mailconnect::Error &e) {
            check(e.code() == MC_E_REAUTHORIZATION_REQUIRED && e.name() == "MC_E_REAUTHORIZATION_REQUIRED" &&
                      e.diagnostic().kind == "reauthorization_required",
                  "a revoked refresh token throws MC_E_REAUTHORIZATION_REQUIRED (" + s(e.diagnostic().code) + ")");
        }
        deadline = steady_clock::now() + seconds(5);
        while (!lost && steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
        check(lost, "the listener reports the state change to needs_reauthorization");
        auto t0 = steady_clock::now();
        listener.stop();
        check(steady_clock::now() - t0 < seconds(2), "the listener stops promptly");
    }
    std::vector<std::string> kinds;
    bool logs = false, no_token = true, seq_up = true;
    for (size_t i = 0; i < got.size(); i++) {
        const auto &e = got[i];
        if (e.kind == EventKind::Log) logs = true;
        else kinds.push_back(describe(e));
        for (const auto *text : {&e.message, &e.target, &e.expires_at, &e.diagnostic.message})
            if (contains(s(*text), "eyJ")) no_token = false;
        if (i > 0 && e.seq <= got[i - 1].seq) seq_up = false;
    }
    std::string line;
    for (auto &k : kinds) line += k + " ";
    std::cout << "events: " << line << std::endl;
    auto pos = [&](const std::string &k) { return std::find(kinds.begin(), kinds.end(), k) - kinds.begin(); };
    auto n = static_cast<long>(kinds.size());
    check(pos("progress:starting") < pos("progress:connected") && pos("progress:connected") < pos("state:not_connected->connected") &&
              pos("state:not_connected->connected") < pos("token_refreshed") && pos("token_refreshed") < n,
          "events in order: connect_progress, state_changed, token_refreshed");
    check(pos("token_refreshed") < pos("needs_reauthorization") && pos("needs_reauthorization") < pos("state:connected->needs_reauthorization") &&
              pos("state:connected->needs_reauthorization") < n,
          "then needs_reauthorization and its state change, in order");
    auto reauth = std::find_if(got.begin(), got.end(), [](const mailconnect::Event &e) { return e.kind == EventKind::NeedsReauthorization; });
    check(reauth != got.end() && reauth->reason == "refresh_token_revoked" && reauth->account_id == "carol" && reauth->diagnostic.present &&
              reauth->diagnostic.code == "MC-REFRESH-TOKEN-REVOKED" && !reauth->diagnostic.en.fix.empty() && !reauth->diagnostic.de.title.empty(),
          "needs_reauthorization carries the reason and the diagnostic (a struct: code, en/de texts)");
    check(off_main, "the listener calls back on its own thread");
    check(logs && no_token && seq_up, "log events arrive, seq increases, no token in any event");

    // Pull.
    c.configure_events(0, "off");
    c.disconnect("carol");
    std::optional<mailconnect::Event> e;
    do e = c.next_event(seconds(5));
    while (e && e->kind == EventKind::Log);
    check(e && e->kind == EventKind::StateChanged && e->from == AccountState::NeedsReauthorization && e->to == AccountState::NotConnected &&
              e->account_id == "carol",
          "next_event pulls the disconnect's state change");
    auto t0 = steady_clock::now();
    check(!c.next_event(milliseconds(300)) && steady_clock::now() - t0 >= milliseconds(250), "next_event gives nothing after its timeout");

    // An embedded web view's redirect URI: refusals with diagnostics, then abort.
    auto nc = c.begin_authorization("carol", "browser", native_client);
    check(!nc.loopback && nc.redirect_uri == native_client && contains(s(nc.url), "code_challenge_method=S256"), "begin_authorization for an embedded view");
    try {
        c.complete_authorization(nc, native_client + "?code=abc&state=older");
        check(false, "a redirect of another sign-in is refused");
    } catch (const mailconnect::Error &e) {
        check(e.code() == MC_E_STATE && e.diagnostic().code == "MC-SIGN-IN-STATE-MISMATCH", "a redirect of another sign-in is refused (state mismatch)");
    }
    // A wait cancelled from another thread: the sign-in stays pending, then it is aborted.
    mailconnect::Cancel cancel;
    std::thread canceller([&cancel] {
        std::this_thread::sleep_for(milliseconds(300));
        cancel.cancel();
    });
    auto browser = c.begin_authorization("carol", "browser");
    try {
        c.wait_authorization(browser, cancel);
        check(false, "a cancelled wait throws");
    } catch (const mailconnect::Error &e) {
        check(e.code() == MC_E_CANCELLED, "a Cancel ends wait_authorization (" + e.name() + ")");
    }
    canceller.join();
    c.abort_authorization(browser);
    c.abort_authorization(nc);
    try {
        c.wait_authorization(nc);
        check(false, "an aborted sign-in is refused");
    } catch (const mailconnect::Error &e) {
        check(e.code() == MC_E_STATE && contains(e.message(), "aborted"), "an aborted sign-in is refused");
    }
}

/// The password of an http://user:password@host:port URL as written ("" when none).
static std::string url_password(const std::string &url) {
    auto scheme = url.find("://"), at = url.rfind('@');
    if (scheme == std::string::npos || at == std::string::npos || at < scheme) return "";
    auto userinfo = url.substr(scheme + 3, at - scheme - 3);
    auto colon = userinfo.find(':');
    return colon == std::string::npos ? "" : userinfo.substr(colon + 1);
}

/// With MC_TEST_PROXY (an http URL with Basic credentials of a real proxy): store it as the proxy
/// of every connection and read it back (stored, with a password that is never shown). Returns the
/// proxy's "host:port", or "" without one. Never prints the password.
static std::string use_test_proxy(mailconnect::Client &c) {
    const char *env = std::getenv("MC_TEST_PROXY");
    if (env == nullptr || *env == '\0') return "";
    std::string proxy = env, password = url_password(proxy);
    c.set_proxy(proxy);
    auto p = c.proxy();
    const auto &st = p.stored;
    bool hidden = !password.empty();
    for (const auto &field : {st.url, st.https, st.imap, st.pop3, st.smtp, st.username}) hidden = hidden && !contains(s(field), password);
    check(p.source == "stored" && st.present && st.has_password && hidden, "proxy stored: source stored, no password shown");
    auto hostport = proxy.substr(proxy.rfind('@') + 1);
    return hostport.substr(0, hostport.find('/'));
}

static void main_part(char **argv) {
    using mailconnect::Error;
    std::string store = argv[1], emulator = argv[2], cli = argv[3], host = argv[4];
    check(mailconnect::abi_version() == MC_ABI_VERSION && mailconnect::version() == MAILCONNECT_VERSION,
          "library version " + mailconnect::version() + ", ABI " + std::to_string(mailconnect::abi_version()));
    std::mutex log_mutex;
    std::vector<std::string> log_lines;
    mailconnect::set_log_sink(
        [&](mailconnect::LogLevel level, const std::string &target, const std::string &message) {
            std::lock_guard<std::mutex> g(log_mutex);
            if (level <= mailconnect::LogLevel::Info) log_lines.push_back(target + ": " + message);
        },
        mailconnect::LogLevel::Info);

    mailconnect::Client c("{\"store\":\"" + store + "\",\"extra_ca_file\":\"" + argv[8] + "\"}");
    // Every connection from here on (sign-in, Test, send, fetch) through MC_TEST_PROXY when set.
    std::string proxy = use_test_proxy(c);
    c.put_registration("{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"" + emulator +
                       "\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}");
    c.put_account(std::string("{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\",\"servers\":{") +
                  "\"imap\":{\"host\":\"" + host + "\",\"port\":" + argv[5] + ",\"security\":\"tls\"}," +
                  "\"pop3\":{\"host\":\"" + host + "\",\"port\":" + argv[6] + ",\"security\":\"tls\"}," +
                  "\"smtp\":{\"host\":\"" + host + "\",\"port\":" + argv[7] + ",\"security\":\"starttls\"}}}");

    // Registrations and accounts read back as structs.
    auto reg = c.registration("desktop");
    check(reg.id == "desktop" && reg.provider == "microsoft" && reg.tenant == "organizations" && reg.authority_host == emulator &&
              reg.client_id == "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90" && !reg.has_client_secret && reg.verify_identity && reg.scopes.empty(),
          "registration read back as a struct");
    auto acc = c.account("alice");
    check(acc.mailbox == "alice@example.test" && acc.registration == "desktop" && acc.flow == "device_code" && acc.login.empty() &&
              acc.servers.present && acc.servers.imap.present && acc.servers.imap.port == std::stoi(argv[5]) &&
              acc.servers.smtp.security == "starttls" && acc.servers.pop3.host == host && acc.options.pop3.leave_on_server &&
              acc.options.interactive_timeout_secs > 0,
          "account read back as a struct (servers, options)");
    check(c.accounts().size() == 1 && c.accounts()[0].id == "alice" && c.registrations().size() == 1, "accounts and registrations listed");

    // Typed errors: the code, its name and the diagnostic's fields.
    try {
        c.account("nobody");
        check(false, "an unknown account throws");
    } catch (const Error &e) {
        const auto &d = e.diagnostic();
        check(e.code() == MC_E_NOT_FOUND && e.name() == "MC_E_NOT_FOUND" && contains(e.message(), "nobody") && d.present &&
                  d.status == "MC_E_NOT_FOUND" && d.kind == "not_found" && !d.code.empty() && !d.en.title.empty(),
              "an unknown account throws MC_E_NOT_FOUND with diagnostic " + s(d.code));
    }
    try {
        c.put_account("{\"id\":\"bad\",\"mailbox\":\"bad@example.test\",\"registration\":\"desktop\",\"flow\":\"sideways\"}");
        check(false, "a bad account field throws");
    } catch (const Error &e) {
        check(e.code() == MC_E_INVALID_ARGUMENT && e.diagnostic().evidence.field == "flow",
              "a bad field is named in the diagnostic's evidence (" + s(e.diagnostic().evidence.field) + ")");
    }
    c.put_registration("{\"id\":\"spare\",\"provider\":\"microsoft\",\"client_id\":\"00000000-0000-4000-8000-000000000001\"}");
    c.put_account("{\"id\":\"temp\",\"mailbox\":\"temp@example.test\",\"registration\":\"spare\"}");
    try {
        c.remove_registration("spare");
        check(false, "a registration in use cannot be removed");
    } catch (const Error &e) {
        check(e.code() == MC_E_STATE, "a registration in use cannot be removed (" + e.name() + ")");
    }
    c.remove_account("temp");
    c.remove_registration("spare");
    try {
        c.registration("spare");
        check(false, "a removed registration is gone");
    } catch (const Error &e) {
        check(e.code() == MC_E_NOT_FOUND && c.accounts().size() == 1, "removed account and registration are gone");
    }

    // Connect, then the typed status.
    check(c.status("alice").state == AccountState::NotConnected && !c.status("alice").identity.present, "status before connect: not_connected");
    std::atomic<int> shown{0};
    std::string last_stage;
    mailconnect::Events ev;
    ev.on_device_code = [&](const std::string &code, const std::string &uri, const std::string &) {
        shown++;
        std::thread([cli, code, uri] { sign_in(cli, "alice@example.test", code, uri); }).detach();
    };
    ev.on_progress = [&](const std::string &stage) { last_stage = stage; };
    c.connect("alice", ev);
    check(shown == 1, "device code callback ran once");
    check(last_stage == "connected", "progress reached connected");
    auto st = c.status("alice");
    check(st.state == AccountState::Connected && st.account_id == "alice" && st.mailbox == "alice@example.test" && st.flow == "device_code" &&
              st.identity.present && !st.identity.names.empty() && st.has_refresh_token && !st.expires_at.empty() && st.expires_in_secs > 0 &&
              !st.connected_at.empty() && !st.reauthorization_due.present && st.reason.empty(),
          "status connected (state, identity, expiry as members)");

    // The test report as a struct.
    auto report = c.test("alice");
    bool each = report.results.size() == 3;
    for (const auto &r : report.results)
        each = each && r.ok && !r.error.present && !r.mechanism_used.empty() && r.phases_ms.connect >= 0 && r.phases_ms.auth >= 0 &&
               r.auth_attempts >= 1 && r.host == host;
    check(report.ok && report.schema == 1 && report.account_id == "alice" && each && !report.token.error.present && !report.probe.present,
          "Test ok for IMAP, POP3, SMTP (per-protocol results, phases, mechanisms)");
    if (!proxy.empty()) {
        bool via = report.results.size() == 3;
        for (const auto &r : report.results) via = via && r.path == "http proxy " + proxy;
        check(via, "Test paths name the stored proxy");
    }

    check(c.access_token("alice").size() > 1000, "access token");
    check(c.sasl_xoauth2("alice").rfind("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB", 0) == 0, "SASL XOAUTH2 string");
    c.send("alice", "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: from cpp\r\n\r\nHello.\r\n");
    mailconnect::FetchRequest imap;
    imap.protocol = "imap";
    imap.headers_only = true;
    bool found = false;
    for (int i = 0; i < 40 && !found; i++) {
        for (const auto &msg : c.fetch("alice", imap))
            if (contains(mailconnect::raw_string(msg), "Subject: from cpp") && !msg.id.empty()) found = true;
        if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    check(found, "fetch over IMAP finds the message (Message structs with raw bytes)");
    mailconnect::FetchRequest pop3;
    pop3.protocol = "pop3";
    auto popped = c.fetch("alice", pop3);
    check(!popped.empty() && !popped[0].raw.empty() && !popped[0].id.empty(), "fetch over POP3");
    auto folders = c.folders("alice");
    auto inbox = std::find_if(folders.begin(), folders.end(), [](const mailconnect::Folder &f) { return f.name == "INBOX"; });
    check(inbox != folders.end() && inbox->selectable, "folders (Folder structs, INBOX selectable)");
    send_built_message(c, store);
    check(acc.transport == "smtp_imap" && !st.transport.present && !report.graph.present && !report.transport.present,
          "an smtp_imap account has no Graph check and no transport status");

    // The refresher: one round's report, start/stop.
    auto round = c.run_refresher();
    check(round.accounts == 1 && round.fresh + round.refreshed == 1 && round.failed == 0 && round.needs_reauthorization == 0,
          "refresher round report: " + std::to_string(round.accounts) + " account, " + std::to_string(round.fresh) + " fresh");
    c.start_refresher("{\"interval_secs\":60}");
    try {
        c.start_refresher();
        check(false, "a second start_refresher is refused");
    } catch (const Error &e) {
        check(e.code() == MC_E_STATE, "a second start_refresher is refused (MC_E_STATE)");
    }
    c.stop_refresher();
    c.stop_refresher();

    // A cancelled call, then disconnect.
    mailconnect::Cancel cancelled;
    cancelled.cancel();
    try {
        c.disconnect("alice", cancelled);
        check(false, "a cancelled disconnect throws");
    } catch (const Error &e) {
        check(e.code() == MC_E_CANCELLED && c.status("alice").state == AccountState::Connected,
              "a cancelled disconnect throws MC_E_CANCELLED and changes nothing");
    }
    c.disconnect("alice");
    c.disconnect("alice");
    try {
        c.access_token("alice");
        check(false, "a failing call throws");
    } catch (const Error &e) {
        check(e.code() == MC_E_STATE && e.name() == "MC_E_STATE", "failing call has code " + std::to_string(e.code()) + " " + e.name());
        check(e.diagnostic().code == "MC-NOT-CONNECTED" && !e.diagnostic().en.fix.empty() && !e.diagnostic().de.title.empty(),
              "failing call has the diagnostic");
    }
    try {
        c.graph_token("alice");
        check(false, "graph_token of a disconnected account throws");
    } catch (const Error &e) {
        check(e.code() == MC_E_STATE && e.diagnostic().code == "MC-NOT-CONNECTED", "graph_token of a disconnected account throws MC_E_STATE");
    }

    mailconnect::set_log_sink(nullptr, mailconnect::LogLevel::Off);
    std::lock_guard<std::mutex> g(log_mutex);
    bool clean = std::none_of(log_lines.begin(), log_lines.end(), [](const std::string &l) { return contains(l, "eyJ"); });
    check(!log_lines.empty() && clean, "the log sink got " + std::to_string(log_lines.size()) + " records, none with a token");
}

int main(int argc, char **argv) {
    bool host = argc >= 10 && std::string(argv[9]) == "host";
    if (argc < 9) return 2;
    try {
        if (host) host_part(argv[1], argv[2], argv[3]);
        else main_part(argv);
    } catch (const mailconnect::Error &e) {
        check(false, std::string("unexpected mailconnect::Error: ") + e.what() + " (" + std::string(e.diagnostic().code) + ")");
    } catch (const std::exception &e) {
        check(false, std::string("unexpected exception: ") + e.what());
    }
    std::cout << passed << " passed, " << failed << " failed" << std::endl;
    return failed == 0 ? 0 : 1;
}
