// The .NET binding's scenario against the sandbox and the real mail stack.
// usage: Scenario.exe STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE
using System;
using System.Diagnostics;
using System.Text;
using System.Threading;
using Mailconnect;

public static class Scenario
{
    static int passed, failed;

    static void Check(bool ok, string what)
    {
        if (ok) { passed++; Console.WriteLine("ok " + what); }
        else { failed++; Console.WriteLine("FAIL " + what); }
    }

    /// <summary>Whether any message's base64 "raw" field decodes to text containing needle.</summary>
    static bool RawContains(string json, string needle)
    {
        int at = 0;
        while ((at = json.IndexOf("\"raw\":\"", at)) >= 0)
        {
            at += 7;
            int end = json.IndexOf('"', at);
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(json.Substring(at, end - at)));
            if (text.Contains(needle)) return true;
            at = end;
        }
        return false;
    }

    public static int Main(string[] a)
    {
        string store = a[0], emulator = a[1], cli = a[2], host = a[3], imaps = a[4], pop3s = a[5], smtp = a[6], ca = a[7];
        Check(Client.Version.Length > 0, "library version " + Client.Version);
        using (var c = new Client("{\"store\":\"" + store + "\",\"extra_ca_file\":\"" + ca + "\"}"))
        {
            c.PutRegistration("{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"" + emulator + "\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}");
            c.PutAccount("{\"id\":\"alice\",\"mailbox\":\"alice@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\",\"servers\":{"
                + "\"imap\":{\"host\":\"" + host + "\",\"port\":" + imaps + ",\"security\":\"tls\"},"
                + "\"pop3\":{\"host\":\"" + host + "\",\"port\":" + pop3s + ",\"security\":\"tls\"},"
                + "\"smtp\":{\"host\":\"" + host + "\",\"port\":" + smtp + ",\"security\":\"starttls\"}}}");
            int shown = 0;
            string lastStage = null;
            c.ConnectAsync("alice", (code, uri, message) =>
            {
                Interlocked.Increment(ref shown);
                // Play the user with the sandbox's scripted browser.
                var psi = new ProcessStartInfo(cli, "sandbox sign-in --user alice@example.test --password alice-password --device-code " + code + " --verification-uri " + uri);
                psi.UseShellExecute = false;
                psi.RedirectStandardOutput = true;
                Process.Start(psi);
            }, null, stage => lastStage = stage).Wait();
            Check(shown == 1, "device code callback ran once");
            Check(lastStage == "connected", "progress reached connected");
            Check(c.Status("alice").Contains("\"state\":\"connected\""), "status connected");
            var report = c.TestAsync("alice").Result;
            Check(report.Contains("\"ok\":true"), "Test ok for IMAP, POP3, SMTP");
            Check(c.AccessToken("alice").Length > 1000, "access token");
            Check(c.SaslXoauth2("alice").StartsWith("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB"), "SASL XOAUTH2 string");
            c.SendAsync("alice", Encoding.UTF8.GetBytes("From: alice@example.test\r\nTo: alice@example.test\r\nSubject: from dotnet\r\n\r\nHello.\r\n")).Wait();
            bool found = false;
            for (int i = 0; i < 40 && !found; i++)
            {
                found = RawContains(c.FetchAsync("alice", "{\"protocol\":\"imap\",\"headers_only\":true}").Result, "Subject: from dotnet");
                if (!found) Thread.Sleep(250);
            }
            Check(found, "fetch over IMAP finds the message");
            Check(c.Fetch("alice", "{\"protocol\":\"pop3\"}").Contains("\"raw\""), "fetch over POP3");
            Check(c.Folders("alice").Contains("INBOX"), "folders");
            c.Disconnect("alice");
            c.Disconnect("alice");
            try
            {
                c.AccessToken("alice");
                Check(false, "a failing call throws");
            }
            catch (MailconnectException e)
            {
                Check(e.Code == -11 && e.Status == "MC_E_STATE", "failing call has code " + e.Status);
                Check(e.Diagnostic.Contains("\"code\":\"MC-NOT-CONNECTED\"") && e.Diagnostic.Contains("\"de\""), "failing call has the diagnostic");
            }
            // Cancellation through a CancellationToken.
            c.PutAccount("{\"id\":\"b\",\"mailbox\":\"bob@example.test\",\"registration\":\"desktop\",\"flow\":\"device_code\"}");
            using (var cts = new CancellationTokenSource(500))
            {
                try
                {
                    c.ConnectAsync("b", (x, y, z) => { }, null, null, cts.Token).Wait();
                    Check(false, "cancelled connect throws");
                }
                catch (AggregateException e)
                {
                    var me = e.InnerException as MailconnectException;
                    Check(me != null && me.Status == "MC_E_CANCELLED", "CancellationToken cancels the connect");
                }
            }
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
