// The C++ binding's scenario against the sandbox and the real mail stack.
// usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE [host]
// With "host" it runs the host integration part instead (the emulator then issues 4-second tokens):
// the device code driven by the host, events (EventListener thread and next_event), nativeclient
// refusals and abort.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mailconnect.hpp"

static int passed = 0, failed = 0;
static void check(bool ok, const std::string &what) {
    (ok ? passed : failed)++;
    std::cout << (ok ? "ok " : "FAIL ") << what << std::endl;
}

static std::string b64decode(const std::string &in) {
    static const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned v = 0;
    int bits = 0;
    for (char c : in) {
        auto p = a.find(c);
        if (p == std::string::npos) continue;
        v = (v << 6) | static_cast<unsigned>(p);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((v >> bits) & 0xff));
        }
    }
    return out;
}

static bool raw_contains(const std::string &json, const std::string &needle) {
    for (auto at = json.find("\"raw\":\""); at != std::string::npos; at = json.find("\"raw\":\"", at)) {
        at += 7;
        auto end = json.find('"', at);
        if (b64decode(json.substr(at, end - at)).find(needle) != std::string::npos) return true;
        at = end;
    }
    return false;
}

static void sign_in(const std::string &cli, const std::string &user, const std::string &code, const std::string &uri) {
    std::string cmd = cli + " sandbox sign-in --user " + user + " --password " + user.substr(0, user.find('@')) +
                      "-password --device-code " + code + " --verification-uri " + uri + " > /dev/null";
    if (std::system(cmd.c_str()) != 0) std::cerr << "sign-in failed" << std::endl;
}

static std::string describe(const mailconnect::Event &e) {
    if (e.type == "connect_progress") return "progress:" + e.stage;
    if (e.type == "state_changed") return "state:" + e.from + "->" + e.to;
    return e.type;
}

static bool contains(const std::string &hay, const std::string &needle) { return hay.find(needle) != std::string::npos; }

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
            if (e.type == "token_refreshed") refreshed = true;
            if (e.type == "state_changed" && e.to == "needs_reauthorization") lost = true;
        });
        auto a = c.begin_authorization("carol");
        check(a.is_device_code() && !a.user_code.empty() && contains(a.message, a.user_code) && a.expires_in > seconds(60) &&
                  a.interval >= seconds(1) && a.url.empty(),
              "begin_authorization gives the device code");
        auto p = c.poll_authorization(a);
        check(!p.connected && p.retry_after > milliseconds(0), "poll_authorization is pending before the user acts");
        sign_in(cli, "carol@example.test", a.user_code, a.verification_uri);
        auto deadline = steady_clock::now() + seconds(30);
        while (!p.connected && steady_clock::now() < deadline) {
            std::this_thread::sleep_for(p.retry_after);
            p = c.poll_authorization(a);
        }
        check(p.connected && contains(p.status, "\"state\":\"connected\"") && contains(p.status, "carol@example.test"),
              "polling until connected (host-driven device code)");
        try {
            c.poll_authorization(a);
            check(false, "a used handle is refused");
        } catch (const mailconnect::Error &e) {
            check(e.status() == "MC_E_STATE" && contains(e.diagnostic(), "MC-SIGN-IN-NOT-PENDING"), "a used handle is refused with MC-SIGN-IN-NOT-PENDING");
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
            check(e.status() == "MC_E_REAUTHORIZATION_REQUIRED", "a revoked refresh token throws MC_E_REAUTHORIZATION_REQUIRED");
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
        if (got[i].type == "log") logs = true;
        else kinds.push_back(describe(got[i]));
        if (contains(got[i].json, "eyJ")) no_token = false;
        if (i > 0 && got[i].seq <= got[i - 1].seq) seq_up = false;
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
    auto reauth = std::find_if(got.begin(), got.end(), [](const mailconnect::Event &e) { return e.type == "needs_reauthorization"; });
    check(reauth != got.end() && reauth->reason == "refresh_token_revoked" && reauth->account_id == "carol" &&
              contains(reauth->diagnostic, "\"code\":\"MC-REFRESH-TOKEN-REVOKED\""),
          "needs_reauthorization carries the reason and the diagnostic");
    check(off_main, "the listener calls back on its own thread");
    check(logs && no_token && seq_up, "log events arrive, seq increases, no token in any event");

    // Pull.
    c.configure_events(0, "off");
    c.disconnect("carol");
    std::optional<mailconnect::Event> e;
    do e = c.next_event(seconds(5));
    while (e && e->type == "log");
    check(e && e->type == "state_changed" && e->from == "needs_reauthorization" && e->to == "not_connected" && e->account_id == "carol",
          "next_event pulls the disconnect's state change");
    auto t0 = steady_clock::now();
    check(!c.next_event(milliseconds(300)) && steady_clock::now() - t0 >= milliseconds(250), "next_event gives nothing after its timeout");

    // An embedded web view's redirect URI: refusals with diagnostics, then abort.
    auto nc = c.begin_authorization("carol", "browser", native_client);
    check(!nc.loopback && nc.redirect_uri == native_client && contains(nc.url, "code_challenge_method=S256"), "begin_authorization for an embedded view");
    try {
        c.complete_authorization(nc, native_client + "?code=abc&state=older");
        check(false, "a redirect of another sign-in is refused");
    } catch (const mailconnect::Error &e) {
        check(e.status() == "MC_E_STATE" && contains(e.diagnostic(), "MC-SIGN-IN-STATE-MISMATCH"), "a redirect of another sign-in is refused (state mismatch)");
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
        check(e.status() == "MC_E_CANCELLED", "a Cancel ends wait_authorization (" + e.status() + ")");
    }
    canceller.join();
    c.abort_authorization(browser);
    c.abort_authorization(nc);
    try {
        c.wait_authorization(nc);
        check(false, "an aborted sign-in is refused");
    } catch (const mailconnect::Error &e) {
        check(e.status() == "MC_E_STATE" && contains(e.what(), "aborted"), "an aborted sign-in is refused");
    }
}

int main(int argc, char **argv) {
    if (argc >= 10 && std::string(argv[9]) == "host") {
        try {
            host_part(argv[1], argv[2], argv[3]);
        } catch (const std::exception &e) {
            check(false, std::string("unexpected exception: ") + e.what());
        }
        std::cout << passed << " passed, " << failed << " failed" << std::endl;
        return failed == 0 ? 0 : 1;
    }
    if (argc < 9) return 2;
    std::string store = argv[1], emulator = argv[2], cli = argv[3], host = argv[4];
    try {
        mailconnect::Client c("{\"store\":\"" + store + "\",\"extra_ca_file\":\"" + argv[8] + "\"}");
        c.put_registration("{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"" + emulator +
                           "\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}");
        c.put_account(std::string("{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\",\"servers\":{") +
                      "\"imap\":{\"host\":\"" + host + "\",\"port\":" + argv[5] + ",\"security\":\"tls\"}," +
                      "\"pop3\":{\"host\":\"" + host + "\",\"port\":" + argv[6] + ",\"security\":\"tls\"}," +
                      "\"smtp\":{\"host\":\"" + host + "\",\"port\":" + argv[7] + ",\"security\":\"starttls\"}}}");
        std::atomic<int> shown{0};
        std::string last_stage;
        mailconnect::Events ev;
        ev.on_device_code = [&](const std::string &code, const std::string &uri, const std::string &) {
            shown++;
            std::thread([cli, code, uri] {
                std::string cmd = cli + " sandbox sign-in --user alice@example.test --password alice-password --device-code " + code +
                                  " --verification-uri " + uri + " > /dev/null";
                if (std::system(cmd.c_str()) != 0) std::cerr << "sign-in failed" << std::endl;
            }).detach();
        };
        ev.on_progress = [&](const std::string &stage) { last_stage = stage; };
        c.connect("alice", ev);
        check(shown == 1, "device code callback ran once");
        check(last_stage == "connected", "progress reached connected");
        check(c.status("alice").find("\"state\":\"connected\"") != std::string::npos, "status connected");
        check(c.test("alice").find("\"ok\":true") != std::string::npos, "Test ok for IMAP, POP3, SMTP");
        check(c.access_token("alice").size() > 1000, "access token");
        check(c.sasl_xoauth2("alice").rfind("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB", 0) == 0, "SASL XOAUTH2 string");
        c.send("alice", "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: from cpp\r\n\r\nHello.\r\n");
        bool found = false;
        for (int i = 0; i < 40 && !found; i++) {
            found = raw_contains(c.fetch("alice", "{\"protocol\":\"imap\",\"headers_only\":true}"), "Subject: from cpp");
            if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        check(found, "fetch over IMAP finds the message");
        check(c.fetch("alice", "{\"protocol\":\"pop3\"}").find("\"raw\"") != std::string::npos, "fetch over POP3");
        check(c.folders("alice").find("INBOX") != std::string::npos, "folders");
        c.disconnect("alice");
        c.disconnect("alice");
        try {
            c.access_token("alice");
            check(false, "a failing call throws");
        } catch (const mailconnect::Error &e) {
            check(e.code() == -11 && e.status() == "MC_E_STATE", "failing call has code " + std::to_string(e.code()) + " " + e.status());
            check(e.diagnostic().find("MC-NOT-CONNECTED") != std::string::npos, "failing call has the diagnostic");
        }
    } catch (const std::exception &e) {
        check(false, std::string("unexpected exception: ") + e.what());
    }
    std::cout << passed << " passed, " << failed << " failed" << std::endl;
    return failed == 0 ? 0 : 1;
}
