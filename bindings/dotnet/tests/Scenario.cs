// The .NET binding's scenario against the sandbox and the real mail stack.
// usage: Scenario.exe STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE [host]
// Without "host": connect, Test, a refresher round, tokens (with a CancellationToken), send, fetch,
// a MessageSpec (umlaut subject, named recipient, attachments from bytes and from a file) sent over
// SMTP and read back, refused without recipients, a cancelled Disconnect, GraphToken refused when
// not connected, the log callback, registrations (get, list, remove), the refresher's
// options and states, error codes. With "host" it runs the host integration part instead (the
// emulator then issues 4-second tokens): device code driven by the host, events (EventReceived
// worker and NextEvent), a refresher round counting a revoked account, nativeclient refusals and
// abort, a host-owned store (in memory) with a refresher round, the background refresher, and
// truncation.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
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

    /// <summary>The decoded text of the first message whose base64 "raw" field contains needle, or null.</summary>
    static string FindRaw(string json, string needle)
    {
        int at = 0;
        while ((at = json.IndexOf("\"raw\":\"", at)) >= 0)
        {
            at += 7;
            int end = json.IndexOf('"', at);
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(json.Substring(at, end - at)));
            if (text.Contains(needle)) return text;
            at = end;
        }
        return null;
    }

    /// <summary>A header of a raw message, unfolded, with its RFC 2047 encoded words (UTF-8) decoded.</summary>
    static string Header(string raw, string name)
    {
        int end = raw.IndexOf("\r\n\r\n");
        string head = Regex.Replace(end < 0 ? raw : raw.Substring(0, end), "\r\n[ \t]+", " ");
        foreach (var line in head.Split(new[] { "\r\n" }, StringSplitOptions.None))
        {
            if (!line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)) continue;
            var v = Regex.Replace(line.Substring(name.Length + 1).Trim(), @"\?=\s+=\?", "?==?");
            return Regex.Replace(v, @"=\?[^?]+\?([bBqQ])\?([^?]*)\?=", m =>
            {
                if (m.Groups[1].Value == "b" || m.Groups[1].Value == "B")
                    return Encoding.UTF8.GetString(Convert.FromBase64String(m.Groups[2].Value));
                var bytes = new List<byte>();
                string t = m.Groups[2].Value;
                for (int i = 0; i < t.Length; i++)
                {
                    if (t[i] == '_') bytes.Add(32);
                    else if (t[i] == '=' && i + 2 < t.Length) { bytes.Add(Convert.ToByte(t.Substring(i + 1, 2), 16)); i += 2; }
                    else bytes.Add((byte)t[i]);
                }
                return Encoding.UTF8.GetString(bytes.ToArray());
            });
        }
        return null;
    }

    /// <summary>The base64 body of the MIME part whose headers contain marker (e.g. its encoded file name), decoded.</summary>
    static byte[] PartBytes(string raw, string marker)
    {
        int at = raw.IndexOf(marker);
        if (at < 0) return null;
        int body = raw.IndexOf("\r\n\r\n", at);
        if (body < 0) return null;
        body += 4;
        int end = raw.IndexOf("\r\n--", body);
        if (end < 0) return null;
        return Convert.FromBase64String(raw.Substring(body, end - body).Replace("\r\n", ""));
    }

    /// <summary>A MessageSpec built by mailconnect (umlaut subject, a named recipient, an attachment from bytes and one
    /// from a file) goes over the real Postfix and comes back over IMAP as written; bad input names the field.</summary>
    static void SendBuiltMessage(Client c, string store)
    {
        var pdf = new byte[1000];
        for (int i = 0; i < pdf.Length; i++) pdf[i] = (byte)(i * 7);
        var scan = new byte[777];
        for (int i = 0; i < scan.Length; i++) scan[i] = (byte)(255 - i % 256);
        string scanPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(store)), "scan.bin");
        System.IO.File.WriteAllBytes(scanPath, scan);
        var m = new MessageSpec
        {
            Subject = "Rechnung für März",
            Text = "Guten Tag,\nanbei die Rechnung für März.\n",
            Importance = Importance.High,
        };
        m.To.Add(new EmailAddress("alice@example.test", "Alice Müller"));
        m.Attachments.Add(MessageAttachment.FromBytes(pdf, "Rechnung März.pdf", "application/pdf"));
        m.Attachments.Add(MessageAttachment.FromFile(scanPath));
        m.Headers.Add(new KeyValuePair<string, string>("X-Invoice-Number", "2026-03-17"));
        SendResult sent;
        using (var cts = new CancellationTokenSource())
            sent = c.SendMessageAsync("alice", m, cts.Token).Result;
        Check(sent.Transport == "smtp" && sent.MessageId.StartsWith("<") && sent.MessageId.EndsWith("@example.test>") && sent.Size > pdf.Length
              && sent.Reply.StartsWith("2"), "SendMessage over SMTP: transport smtp and a Message-ID (" + sent + ")");
        string raw = null;
        for (int i = 0; i < 40 && raw == null; i++)
        {
            raw = FindRaw(c.Fetch("alice", "{\"protocol\":\"imap\",\"unread_only\":true,\"transport\":\"smtp_imap\"}"), sent.MessageId);
            if (raw == null) Thread.Sleep(250);
        }
        Check(raw != null, "the built message arrives over IMAP (unread_only)");
        if (raw == null) return;
        Check(Header(raw, "Subject") == "Rechnung für März" && !raw.Contains("Subject: Rechnung für März"), "the umlaut subject arrives encoded and decodes as written");
        Check(Header(raw, "To") == "Alice Müller <alice@example.test>", "the named recipient: " + Header(raw, "To"));
        Check(Header(raw, "X-Invoice-Number") == "2026-03-17" && Header(raw, "Importance") == "high", "extra header and importance");
        var gotPdf = PartBytes(raw, "Rechnung%20M%C3%A4rz.pdf");
        var gotScan = PartBytes(raw, "scan.bin");
        Check(gotPdf != null && gotPdf.SequenceEqual(pdf) && raw.Contains("Content-Type: application/pdf"), "the attachment from bytes arrives byte for byte under its umlaut name");
        Check(gotScan != null && gotScan.SequenceEqual(scan), "the attachment from a file arrives byte for byte");
        Check(true, "the built message came back: umlaut subject, named recipient, both attachments' bytes");
        try
        {
            c.SendMessage("alice", new MessageSpec { Subject = "nobody", Text = "x" });
            Check(false, "a message without recipients throws");
        }
        catch (MailconnectException e)
        {
            Check(e.Status == "MC_E_INVALID_ARGUMENT" && e.Code == -1 && e.Diagnostic.Contains("\"field\":\"to\""), "a message without recipients throws MC_E_INVALID_ARGUMENT naming \"to\"");
        }
        var missing = new MessageSpec();
        missing.To.Add("alice@example.test");
        missing.Attachments.Add(MessageAttachment.FromFile(scanPath + ".missing"));
        try
        {
            c.SendMessage("alice", missing);
            Check(false, "a missing attachment file throws");
        }
        catch (MailconnectException e)
        {
            Check(e.Status == "MC_E_INVALID_ARGUMENT" && e.Diagnostic.Contains("\"field\":\"attachments[0].path\""), "a missing attachment file names attachments[0].path");
        }
    }

    /// <summary>The JSON a MessageSpec becomes, and a reauthorization_due event read back.</summary>
    static void Offline()
    {
        var m = new MessageSpec { From = new EmailAddress("me@example.test", "Me \"Boss\""), Subject = "Grüße", Html = "<p>Hallo</p>", ReadReceipt = true, Importance = Importance.Low };
        m.To.Add("a@example.test");
        m.Cc.Add(new EmailAddress("b@example.test", "Bernd Groß"));
        m.Attachments.Add(MessageAttachment.Inline(new byte[] { 0, 255 }, "img1", "image/png"));
        m.Headers.Add(new KeyValuePair<string, string>("X-A", "1"));
        Check(m.ToJson() == "{\"from\":{\"name\":\"Me \\\"Boss\\\"\",\"address\":\"me@example.test\"},\"to\":[\"a@example.test\"],\"cc\":[{\"name\":\"Bernd Groß\",\"address\":\"b@example.test\"}],"
              + "\"subject\":\"Grüße\",\"html\":\"<p>Hallo</p>\",\"attachments\":[{\"content_base64\":\"AP8=\",\"content_type\":\"image/png\",\"content_id\":\"img1\"}],"
              + "\"headers\":[{\"name\":\"X-A\",\"value\":\"1\"}],\"importance\":\"low\",\"read_receipt\":true}", "MessageSpec.ToJson: " + m.ToJson());
        try
        {
            var bad = new MessageSpec();
            bad.To.Add("a@example.test");
            bad.Attachments.Add(new MessageAttachment { FileName = "x" });
            bad.ToJson();
            Check(false, "an attachment without Path or Content is refused");
        }
        catch (ArgumentException)
        {
            Check(true, "an attachment without Path or Content is refused");
        }
        var due = MailconnectEvent.FromJson("{\"seq\":4,\"time\":\"2030-01-01T00:00:00.000Z\",\"type\":\"reauthorization_due\",\"account_id\":\"a\",\"at\":\"2030-01-01T01:00:00Z\",\"code\":\"MC-NO-REFRESH-TOKEN\"}");
        Check(due.Kind == EventKind.ReauthorizationDue && due.AccountId == "a" && due.Code == "MC-NO-REFRESH-TOKEN"
              && due.At == new DateTimeOffset(2030, 1, 1, 1, 0, 0, TimeSpan.Zero), "reauthorization_due is EventKind.ReauthorizationDue with At and Code");
    }

    /// <summary>With MC_TEST_PROXY (an http URL with Basic credentials of a real proxy): store it as the proxy of every
    /// connection and read it back (stored, with a password that is never shown). Returns the proxy's "host:port", or null
    /// without one. Never prints the password.</summary>
    static string UseTestProxy(Client c)
    {
        var proxy = System.Environment.GetEnvironmentVariable("MC_TEST_PROXY");
        if (string.IsNullOrEmpty(proxy)) return null;
        var uri = new Uri(proxy);
        int colon = uri.UserInfo.IndexOf(':');
        string password = colon < 0 ? "" : uri.UserInfo.Substring(colon + 1);
        c.SetProxy(proxy);
        var info = c.GetProxy();
        Check(info.Source == "stored" && info.Stored != null && info.HasPassword && password.Length > 0
              && !info.Json.Contains(password) && !info.Json.Contains(Uri.UnescapeDataString(password)),
              "proxy stored: source stored, no password shown");
        return uri.Host + ":" + uri.Port;
    }

    const string Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const string NativeClient = "https://login.microsoftonline.com/common/oauth2/nativeclient";

    /// <summary>Play the user with the sandbox's scripted browser (in the background).</summary>
    static Process SignIn(string cli, string user, string code, string uri)
    {
        var psi = new ProcessStartInfo(cli, "sandbox sign-in --user " + user + " --password " + user.Split('@')[0] + "-password --device-code " + code + " --verification-uri " + uri);
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        return Process.Start(psi);
    }

    /// <summary>The emulator's control API: the user's refresh tokens stop working.</summary>
    static void Revoke(string emulator, string user)
    {
        var psi = new ProcessStartInfo("curl", "-sf -X POST " + emulator + "/_sandbox/users/" + user + "/revoke");
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        using (var p = Process.Start(psi))
        {
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Check(p.ExitCode == 0, "the emulator revoked " + user + "'s refresh tokens");
        }
    }

    static string Registration(string emulator)
    {
        return "{\"id\":\"desktop\",\"provider\":\"microsoft\",\"tenant\":\"organizations\",\"authority_host\":\"" + emulator + "\",\"client_id\":\"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90\"}";
    }

    static string Account(string id, string mailbox)
    {
        return "{\"id\":\"" + id + "\",\"mailbox\":\"" + mailbox + "\",\"registration\":\"desktop\",\"flow\":\"device_code\"}";
    }

    static string Describe(MailconnectEvent e)
    {
        switch (e.Kind)
        {
            case EventKind.ConnectProgress: return "progress:" + e.Stage;
            case EventKind.StateChanged: return "state:" + e.From + "->" + e.To;
            default: return e.Type;
        }
    }

    /// <summary>The host's table, in memory: (kind, id) -> (blob, version), optionally cutting token blobs short.</summary>
    sealed class MemoryStore : IHostStore
    {
        public readonly Dictionary<string, KeyValuePair<byte[], long>> Rows = new Dictionary<string, KeyValuePair<byte[], long>>();
        public int TruncateTokensTo;
        public volatile bool Failing;

        public bool TryLoad(string kind, string id, out byte[] blob, out long version)
        {
            if (Failing && kind == "account") throw new InvalidOperationException("the vendor database is down");
            lock (Rows)
            {
                KeyValuePair<byte[], long> r;
                bool found = Rows.TryGetValue(kind + "/" + id, out r);
                blob = found ? r.Key : null;
                version = found ? r.Value : 0;
                return found;
            }
        }

        public bool CompareAndSwap(string kind, string id, byte[] blob, long expectedVersion, long newVersion)
        {
            lock (Rows)
            {
                KeyValuePair<byte[], long> r;
                long current = Rows.TryGetValue(kind + "/" + id, out r) ? r.Value : 0;
                if (current != expectedVersion) return false;
                if (kind == "tokens" && TruncateTokensTo > 0 && blob.Length > TruncateTokensTo) Array.Resize(ref blob, TruncateTokensTo);
                Rows[kind + "/" + id] = new KeyValuePair<byte[], long>(blob, newVersion);
                return true;
            }
        }

        public bool Remove(string kind, string id)
        {
            lock (Rows) return Rows.Remove(kind + "/" + id);
        }

        public IEnumerable<HostRecord> List(string kind)
        {
            lock (Rows)
                return Rows.Where(r => r.Key.StartsWith(kind + "/")).Select(r => new HostRecord(r.Key.Substring(kind.Length + 1), r.Value.Key, r.Value.Value)).ToList();
        }
    }

    static bool HasBytes(byte[] hay, string needle)
    {
        var n = Encoding.ASCII.GetBytes(needle);
        for (int i = 0; i + n.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < n.Length && hay[i + j] == n[j]) j++;
            if (j == n.Length) return true;
        }
        return false;
    }

    static void Host(string store, string emulator, string cli)
    {
        var mainThread = Thread.CurrentThread.ManagedThreadId;
        var sw = new Stopwatch();
        using (var c = new Client("{\"store\":\"" + store + "\",\"no_proxy\":true}"))
        {
            c.PutRegistration(Registration(emulator));
            c.PutAccount(Account("carol", "carol@example.test"));
            c.ConfigureEvents(256, "info");
            var got = new List<MailconnectEvent>();
            var refreshed = new ManualResetEventSlim();
            var reauthorize = new ManualResetEventSlim();
            int handlerThread = 0;
            c.EventReceived += (sender, e) =>
            {
                lock (got) got.Add(e.Event);
                handlerThread = Thread.CurrentThread.ManagedThreadId;
                if (e.Event.Kind == EventKind.TokenRefreshed) refreshed.Set();
                if (e.Event.Kind == EventKind.StateChanged && e.Event.To == "needs_reauthorization") reauthorize.Set();
            };
            c.StartEvents();
            Check(c.EventsRunning, "event worker started");

            Authorization a;
            using (var cts = new CancellationTokenSource())
                a = c.BeginAuthorization("carol", null, null, cts.Token);
            Check(a.IsDeviceCode && a.UserCode.Length > 0 && a.Message.Contains(a.UserCode) && a.VerificationUri.StartsWith("http"), "BeginAuthorization gives the device code");
            Check(a.ExpiresAt > DateTimeOffset.UtcNow.AddSeconds(60) && a.Interval >= TimeSpan.FromSeconds(1) && a.Url == null, "device authorization has expiry and interval");
            var p = c.PollAuthorization(a);
            Check(!p.Connected && p.RetryAfter > TimeSpan.Zero, "PollAuthorization is pending before the user acts");
            SignIn(cli, "carol@example.test", a.UserCode, a.VerificationUri);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!p.Connected && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(p.RetryAfter);
                p = c.PollAuthorization(a);
            }
            Check(p.Connected && p.Status.Contains("\"state\":\"connected\"") && p.Status.Contains("carol@example.test"), "polling until connected (host-driven device code)");
            try
            {
                c.PollAuthorization(a);
                Check(false, "a used handle is refused");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STATE" && e.Diagnostic.Contains("MC-SIGN-IN-NOT-PENDING"), "a used handle is refused with MC-SIGN-IN-NOT-PENDING");
            }
            Thread.Sleep(2600);
            Check(c.AccessToken("carol").Length > 1000, "access token after half the lifetime (refresh)");
            Check(refreshed.Wait(5000), "EventReceived reports token_refreshed");
            // An admin revokes the sessions: the next refresh fails and the events say so.
            Revoke(emulator, "carol@example.test");
            Thread.Sleep(2600);
            try
            {
                c.AccessToken("carol");
                Check(false, "a revoked refresh token throws");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_REAUTHORIZATION_REQUIRED", "a revoked refresh token throws MC_E_REAUTHORIZATION_REQUIRED");
            }
            Check(reauthorize.Wait(5000), "EventReceived reports the state change to needs_reauthorization");
            var counted = c.RunRefresher();
            Check(counted.Accounts == 1 && counted.NeedsReauthorization == 1 && counted.Refreshed == 0 && counted.Failed == 0,
                "RunRefresher counts the account that needs re-authorization: " + counted);
            c.StopEvents();
            Check(!c.EventsRunning, "event worker stopped");
            List<string> kinds;
            lock (got) kinds = got.Where(e => e.Kind != EventKind.Log).Select(Describe).ToList();
            Console.WriteLine("events: " + string.Join(" ", kinds.ToArray()));
            int starting = kinds.IndexOf("progress:starting"), connected = kinds.IndexOf("progress:connected");
            int changed = kinds.IndexOf("state:not_connected->connected"), refresh = kinds.IndexOf("token_refreshed");
            int needs = kinds.IndexOf("needs_reauthorization"), lost = kinds.IndexOf("state:connected->needs_reauthorization");
            Check(starting >= 0 && starting < connected && connected < changed && changed < refresh, "events in order: connect_progress, state_changed, token_refreshed");
            Check(refresh < needs && needs < lost, "then needs_reauthorization and its state change, in order");
            lock (got)
            {
                var n = got.FirstOrDefault(e => e.Kind == EventKind.NeedsReauthorization);
                Check(n != null && n.Reason == "refresh_token_revoked" && n.Diagnostic.Contains("\"code\":\"MC-REFRESH-TOKEN-REVOKED\"") && n.AccountId == "carol",
                    "needs_reauthorization carries the reason and the diagnostic");
            }
            Check(handlerThread != 0 && handlerThread != mainThread, "EventReceived runs on the worker thread");
            lock (got)
            {
                Check(got.Any(e => e.Kind == EventKind.Log && e.Level == "info"), "info log records arrive as Log events");
                Check(got.Select(e => e.Seq).SequenceEqual(got.Select(e => e.Seq).OrderBy(x => x).Distinct()), "seq increases");
                Check(!got.Any(e => e.Json.Contains("eyJ")), "no token in any event");
            }

            // Pull: the disconnect's state change.
            c.ConfigureEvents(null, "off");
            c.Disconnect("carol");
            MailconnectEvent ev;
            do ev = c.NextEvent(TimeSpan.FromSeconds(5)); while (ev != null && ev.Kind == EventKind.Log);
            Check(ev != null && ev.Kind == EventKind.StateChanged && ev.From == "needs_reauthorization" && ev.To == "not_connected" && ev.AccountId == "carol", "NextEvent pulls the disconnect's state change");
            sw.Restart();
            Check(c.NextEvent(TimeSpan.FromMilliseconds(300)) == null && sw.ElapsedMilliseconds >= 250, "NextEvent gives null after its timeout");

            // An embedded web view's redirect URI: refusals with diagnostics, then abort.
            var nc = c.BeginAuthorization("carol", "browser", NativeClient);
            Check(!nc.Loopback && nc.RedirectUri == NativeClient && nc.Url.Contains("code_challenge_method=S256"), "BeginAuthorization for an embedded view");
            try
            {
                c.CompleteAuthorization(nc, NativeClient + "?code=abc&state=older");
                Check(false, "a redirect of another sign-in is refused");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STATE" && e.Diagnostic.Contains("MC-SIGN-IN-STATE-MISMATCH"), "a redirect of another sign-in is refused (state mismatch)");
            }
            c.AbortAuthorization(nc);
            try
            {
                c.WaitAuthorization(nc);
                Check(false, "an aborted sign-in is refused");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STATE" && e.Message.Contains("aborted"), "an aborted sign-in is refused");
            }
            c.StartEvents();
            sw.Restart();
        }
        Check(sw.ElapsedMilliseconds < 2000, "Dispose stops a running event worker promptly (" + sw.ElapsedMilliseconds + " ms)");

        // A host-owned store.
        string options = "{\"key\":{\"base64\":\"" + Key + "\"},\"no_proxy\":true,\"http_timeout_secs\":5}";
        var mem = new MemoryStore();
        using (var c = new Client(options, mem))
        {
            c.PutRegistration(Registration(emulator));
            c.PutAccount(Account("alice", "alice@example.test"));
            var a = c.BeginAuthorization("alice", "device");
            SignIn(cli, "alice@example.test", a.UserCode, a.VerificationUri);
            var st = c.WaitAuthorizationAsync(a).Result;
            Check(st.Contains("\"state\":\"connected\""), "host store: connected (WaitAuthorizationAsync)");
            lock (mem.Rows)
            {
                Check(mem.Rows.ContainsKey("tokens/alice") && mem.Rows.ContainsKey("account/alice") && mem.Rows.ContainsKey("registration/desktop"), "host store holds tokens, account and registration");
                Check(mem.Rows.Values.All(r => r.Value > 0 && HasBytes(r.Key, "MCB1") && !HasBytes(r.Key, "eyJ") && !HasBytes(r.Key, "alice")), "host store holds only opaque blobs");
            }
            Thread.Sleep(2600);
            var round = c.RunRefresher(new RefresherOptions { Jitter = TimeSpan.Zero });
            Check(round.Accounts == 1 && round.Refreshed == 1 && round.Failed == 0, "RunRefresher refreshes through the host store: " + round);
            Check(c.AccessToken("alice").Length > 1000 && c.Status("alice").Contains("\"refreshed_at\""), "host store: refresh");
            // The background refresher: no call asks for a token, yet it is refreshed (half the 4 s lifetime).
            while (c.NextEvent(TimeSpan.Zero) != null) { }
            c.StartRefresher(new RefresherOptions { Interval = TimeSpan.FromSeconds(1), Jitter = TimeSpan.Zero });
            MailconnectEvent bg = null;
            var until = DateTime.UtcNow.AddSeconds(30);
            while (bg == null && DateTime.UtcNow < until)
            {
                var e = c.NextEvent(TimeSpan.FromSeconds(1));
                if (e != null && e.Kind == EventKind.TokenRefreshed) bg = e;
            }
            c.StopRefresher();
            Check(bg != null && bg.AccountId == "alice", "the background refresher refreshed without a call");
            using (var other = new Client(options, mem))
                Check(other.Status("alice").Contains("\"state\":\"connected\""), "a second client on the same store sees the account");
            c.Disconnect("alice");
            lock (mem.Rows) Check(!mem.Rows.ContainsKey("tokens/alice"), "host store: disconnect removes the tokens");
            mem.Failing = true;
            try
            {
                c.Status("alice");
                Check(false, "a failing store callback throws");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STORE" && e.Message.Contains("returned -1"), "an exception in the host store becomes MC_E_STORE");
            }
        }
        var cut = new MemoryStore { TruncateTokensTo = 1024 };
        using (var c = new Client(options, cut))
        {
            c.PutRegistration(Registration(emulator));
            c.PutAccount(Account("bob", "bob@example.test"));
            try
            {
                var a = c.BeginAuthorization("bob", "device");
                SignIn(cli, "bob@example.test", a.UserCode, a.VerificationUri);
                c.WaitAuthorization(a);
                c.AccessToken("bob");
                Check(false, "a truncated blob is reported");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STORE" && e.Diagnostic.Contains("MC-TOKEN-TRUNCATED"), "a truncating host gets MC-TOKEN-TRUNCATED");
            }
        }
    }

    public static int Main(string[] a)
    {
        if (a.Length > 8 && a[8] == "host")
        {
            try { Host(a[0], a[1], a[2]); }
            catch (Exception e) { Check(false, "unexpected exception: " + e); }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }
        string store = a[0], emulator = a[1], cli = a[2], host = a[3], imaps = a[4], pop3s = a[5], smtp = a[6], ca = a[7];
        Check(Client.Version.Length > 0, "library version " + Client.Version);
        Offline();
        // The log callback: "LEVEL TARGET MESSAGE" lines, from mailconnect's threads too.
        var logLines = new List<string>();
        Client.SetLogCallback((level, target, message) => { lock (logLines) logLines.Add((int)level + " " + target + " " + message); }, LogLevel.Info);
        try
        {
            Client.SetLogCallback((level, target, message) => { }, (LogLevel)9);
            Check(false, "a bad log level throws");
        }
        catch (MailconnectException e)
        {
            Check(e.Status == "MC_E_INVALID_ARGUMENT", "a bad log level throws MC_E_INVALID_ARGUMENT and keeps the callback");
        }
        using (var c = new Client("{\"store\":\"" + store + "\",\"extra_ca_file\":\"" + ca + "\"}"))
        {
            // Every connection from here on (sign-in, Test, send, fetch) through MC_TEST_PROXY when set.
            string proxy = UseTestProxy(c);
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
            lock (logLines) Check(logLines.Count > 0, "log lines during Connect");
            var report = c.TestAsync("alice").Result;
            Check(report.Contains("\"ok\":true"), "Test ok for IMAP, POP3, SMTP");
            if (proxy != null)
                Check(Regex.Matches(report, Regex.Escape("\"path\":\"http proxy " + proxy + "\"")).Count == 3, "Test paths name the stored proxy");
            var round = c.RunRefresher();
            Check(round.Accounts == 1 && round.Fresh == 1 && round.Refreshed == 0 && round.Failed == 0 && round.Json.Contains("\"backing_off\":0"),
                "RunRefresher reports the fresh account: " + round);
            Check(c.AccessToken("alice").Length > 1000, "access token");
            using (var cts = new CancellationTokenSource())
            {
                Check(c.AccessTokenAsync("alice", cts.Token).Result.Length > 1000, "access token with a CancellationToken");
                Check(c.SaslXoauth2("alice", cts.Token).StartsWith("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB"), "SASL XOAUTH2 string");
            }
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
            SendBuiltMessage(c, store);
            using (var cts = new CancellationTokenSource())
            {
                cts.Cancel();
                try
                {
                    c.Disconnect("alice", cts.Token);
                    Check(false, "a cancelled Disconnect throws");
                }
                catch (MailconnectException e)
                {
                    Check(e.Status == "MC_E_CANCELLED" && e.Code == -60 && c.Status("alice").Contains("\"state\":\"connected\""),
                        "a cancelled Disconnect changes nothing");
                }
            }
            using (var cts = new CancellationTokenSource())
                c.DisconnectAsync("alice", cts.Token).Wait();
            Check(c.Status("alice").Contains("\"state\":\"not_connected\""), "Disconnect with a CancellationToken");
            // Stopped: SetLogCallback returns after calls in progress returned, so nothing arrives afterwards.
            Client.SetLogCallback(null);
            List<string> heard;
            lock (logLines) heard = logLines.ToList();
            c.Disconnect("alice");
            lock (logLines) Check(logLines.Count == heard.Count, "a stopped log callback receives nothing");
            Check(heard.Any(l => l.Contains("disconnected")) && heard.Any(l => l.Contains(" mailconnect")), "the log callback received lines (" + heard.Count + ")");
            Check(heard.All(l => l[0] >= '1' && l[0] <= '3') && !heard.Any(l => l.Contains("eyJ")), "log lines at info and above, without a token");
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
            try
            {
                c.GraphTokenAsync("alice").Wait();
                Check(false, "GraphToken of a disconnected account throws");
            }
            catch (AggregateException e)
            {
                var me = e.InnerException as MailconnectException;
                Check(me != null && me.Status == "MC_E_STATE" && me.Diagnostic.Contains("MC-NOT-CONNECTED"), "GraphToken of a disconnected account throws MC_E_STATE");
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

            // Registrations: get, list, remove (refused while an account uses one).
            c.PutRegistration("{\"id\":\"spare\",\"provider\":\"microsoft\",\"client_id\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\",\"client_secret\":\"s3cr3t-value\"}");
            var spare = c.Registration("spare");
            Check(spare.Contains("\"id\":\"spare\"") && spare.Contains("\"has_client_secret\":true") && !spare.Contains("s3cr3t"), "Registration shows no secret");
            var all = c.Registrations();
            Check(all.StartsWith("[") && all.Contains("\"id\":\"desktop\"") && all.Contains("\"id\":\"spare\""), "Registrations lists both");
            try
            {
                c.RemoveRegistration("desktop");
                Check(false, "removing a registration in use throws");
            }
            catch (MailconnectException e)
            {
                Check(e.Code == -11 && e.Status == "MC_E_STATE", "removing a registration in use throws MC_E_STATE");
            }
            c.RemoveRegistration("spare");
            try
            {
                c.Registration("spare");
                Check(false, "a removed registration is gone");
            }
            catch (MailconnectException e)
            {
                Check(e.Code == -10 && e.Status == "MC_E_NOT_FOUND" && !c.Registrations().Contains("spare"), "Registration, Registrations and RemoveRegistration");
            }

            // The refresher's options and states.
            try
            {
                c.RunRefresher(new RefresherOptions { Concurrency = 0 });
                Check(false, "bad refresher options throw");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_INVALID_ARGUMENT" && e.Diagnostic.Contains("concurrency"), "bad refresher options throw MC_E_INVALID_ARGUMENT");
            }
            c.StartRefresher(new RefresherOptions { Interval = TimeSpan.FromSeconds(1), Ahead = TimeSpan.FromMinutes(5) });
            try
            {
                c.StartRefresher();
                Check(false, "a running refresher cannot start again");
            }
            catch (MailconnectException e)
            {
                Check(e.Status == "MC_E_STATE", "a running refresher cannot start again");
            }
            c.StopRefresher();
            c.StopRefresher();
            c.StartRefresher();
            Check(true, "StopRefresher stops it (it starts again)");
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
