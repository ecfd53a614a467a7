// The C++ binding's scenario against the sandbox and the real mail stack.
// usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

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

int main(int argc, char **argv) {
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
