// mailconnect for .NET: C# 7 source over the C ABI (include/mailconnect.h). Compiles with Mono's
// mcs and runs on Mono and .NET 8. One SafeHandle per native object; failures throw
// MailconnectException with Code, Status and the Diagnostic JSON; Task wrappers take a
// CancellationToken that triggers the native mc_cancel (every call that goes to the network takes
// one). Host integration: the host's own sign-in window (BeginAuthorization ...), events
// (EventReceived from a worker thread, NextEvent to pull), a host-owned store (IHostStore), the
// background refresher (StartRefresher/StopRefresher, RunRefresher for one round) and the log
// (Client.SetLogCallback, process-wide). Mail: SendMessage builds a MessageSpec (addresses, umlaut
// subjects, attachments) and sends it over the account's transport (SMTP or Microsoft Graph);
// GraphToken hands out a Microsoft Graph access token for the host's own Graph calls. Network: SetProxy stores the
// proxy every connection takes (sealed with its password), GetProxy reads it back as a ProxyInfo without it.
// Tenant setup for a vendor's setup wizard: AdminRegister creates the app registration through Microsoft Graph
// with one administrator sign-in, AdminCheck reads one back and reports what deviates.
#define TRACE // Trace.TraceError reports failures of host callbacks and event handlers (as MSBuild builds do).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

// The workspace version (Cargo.toml); ffi/dist/versions.py refuses to package when these differ.
[assembly: System.Reflection.AssemblyVersion("0.1.0.0")]
[assembly: System.Reflection.AssemblyFileVersion("0.1.0.0")]
[assembly: System.Reflection.AssemblyInformationalVersion("0.1.0")]
[assembly: System.Reflection.AssemblyProduct("mailconnect")]
[assembly: System.Reflection.AssemblyDescription("OAuth 2.0 for Microsoft 365 mailboxes over the mailconnect native library")]

namespace Mailconnect
{
    /// <summary>A failed mailconnect call.</summary>
    public sealed class MailconnectException : Exception
    {
        /// <summary>The negative status code (MC_E_*), as mc_error_code_get reported it for the failed call.</summary>
        public int Code { get; private set; }
        /// <summary>The status name, e.g. "MC_E_REAUTHORIZATION_REQUIRED".</summary>
        public string Status { get; private set; }
        /// <summary>The diagnostic JSON: catalog code, en/de title, explanation and fix, evidence.</summary>
        public string Diagnostic { get; private set; }

        internal MailconnectException(int code, string status, string message, string diagnostic)
            : base(status + ": " + message)
        {
            Code = code; Status = status; Diagnostic = diagnostic;
        }
    }

    internal static class Native
    {
        internal const string Lib = "mailconnect";
        internal const uint AbiVersion = 2;

        // Every export of mailconnect.dll is cdecl (the header's MC_CALL); on 32-bit Windows a
        // DllImport or callback without CallingConvention.Cdecl would be stdcall and break the stack.

        static Native()
        {
            Preload();
        }

        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern IntPtr LoadLibraryW(string path);

        /// <summary>Windows: when mailconnect.dll is not beside the application, load it from
        /// runtimes\&lt;rid&gt;\native\ (where a NuGet package puts it) for this process's architecture, so the
        /// DllImports below bind to it. .NET Core finds it there by itself; .NET Framework does not. Elsewhere the
        /// platform's own search applies (LD_LIBRARY_PATH, Mono's dllmap).</summary>
        private static void Preload()
        {
            if (Environment.OSVersion.Platform != PlatformID.Win32NT)
                return;
            string rid;
            switch (RuntimeInformation.ProcessArchitecture)
            {
                case Architecture.X64: rid = "win-x64"; break;
                case Architecture.X86: rid = "win-x86"; break;
                case Architecture.Arm64: rid = "win-arm64"; break;
                default: return;
            }
            var dirs = new List<string> { AppDomain.CurrentDomain.BaseDirectory };
            string own = System.IO.Path.GetDirectoryName(typeof(Native).Assembly.Location);
            if (!string.IsNullOrEmpty(own)) dirs.Add(own);
            foreach (string dir in dirs)
            {
                if (string.IsNullOrEmpty(dir) || System.IO.File.Exists(System.IO.Path.Combine(dir, "mailconnect.dll")))
                    return; // beside the application: Windows' own search finds it first
                string candidate = System.IO.Path.Combine(dir, "runtimes", rid, "native", "mailconnect.dll");
                if (System.IO.File.Exists(candidate) && LoadLibraryW(candidate) != IntPtr.Zero)
                    return;
            }
        }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int OpenUrlFn(IntPtr userData, IntPtr url);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void DeviceCodeFn(IntPtr userData, IntPtr userCode, IntPtr verificationUri, IntPtr message);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void ProgressFn(IntPtr userData, IntPtr stage);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogFn(IntPtr userData, int level, IntPtr target, IntPtr message);

        [StructLayout(LayoutKind.Sequential)]
        internal struct Callbacks
        {
            public uint Version;
            public IntPtr UserData;
            public IntPtr OnOpenUrl;
            public IntPtr OnDeviceCode;
            public IntPtr OnProgress;
        }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern uint mc_abi_version_get();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_version_get();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_result_name_get(int code);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_error_code_get();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_error_message_get();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_error_diagnostic_get();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_string_free(IntPtr s);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_client_open(byte[] optionsJson, out ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_client_free(IntPtr client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_log_callback_set(LogFn cb, IntPtr userData, int maxLevel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_registration_put(ClientHandle c, byte[] json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_registration_get(ClientHandle c, byte[] id, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_registration_list(ClientHandle c, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_registration_remove(ClientHandle c, byte[] id);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_proxy_set(ClientHandle c, byte[] proxy);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_proxy_get(ClientHandle c, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_put(ClientHandle c, byte[] json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_get(ClientHandle c, byte[] id, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_list(ClientHandle c, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_remove(ClientHandle c, byte[] id);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_status_get(ClientHandle c, byte[] id, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_connect(ClientHandle c, byte[] id, ref Callbacks cb, CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_disconnect(ClientHandle c, byte[] id, CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_test(ClientHandle c, byte[] id, uint protocols, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_admin_register(ClientHandle c, byte[] optionsJson, ref Callbacks cb, CancelHandle cancel, out IntPtr reportJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_admin_check(ClientHandle c, byte[] registrationId, byte[] optionsJson, ref Callbacks cb, CancelHandle cancel, out IntPtr reportJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_token_get(ClientHandle c, byte[] id, CancelHandle cancel, out IntPtr token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_sasl_xoauth2_get(ClientHandle c, byte[] id, CancelHandle cancel, out IntPtr sasl);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_graph_token_get(ClientHandle c, byte[] id, CancelHandle cancel, out IntPtr token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_message_send(ClientHandle c, byte[] id, byte[] messageJson, CancelHandle cancel, out IntPtr resultJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_mail_send(ClientHandle c, byte[] id, byte[] msg, UIntPtr len, CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_folder_list(ClientHandle c, byte[] id, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_mail_fetch(ClientHandle c, byte[] id, byte[] query, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_cancel_new(out CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_cancel_trigger(CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_cancel_free(IntPtr cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_authorization_begin(ClientHandle c, byte[] id, byte[] optionsJson, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_authorization_complete(ClientHandle c, byte[] handle, byte[] redirect, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_authorization_poll(ClientHandle c, byte[] handle, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_authorization_wait(ClientHandle c, byte[] handle, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_authorization_abort(ClientHandle c, byte[] handle);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_events_configure(ClientHandle c, byte[] optionsJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_events_next(ClientHandle c, int timeoutMs, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_refresher_start(ClientHandle c, byte[] optionsJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_refresher_stop(ClientHandle c);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_refresher_run(ClientHandle c, byte[] optionsJson, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_client_open_with_store(byte[] optionsJson, ref StoreCallbacks callbacks, out ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_store_record_set(IntPtr rec, byte[] data, UIntPtr len, long version);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_store_list_add(IntPtr list, byte[] id, byte[] data, UIntPtr len, long version);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int StoreLoadFn(IntPtr userData, IntPtr kind, IntPtr id, IntPtr record);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int StoreCasFn(IntPtr userData, IntPtr kind, IntPtr id, IntPtr data, UIntPtr len, long expectedVersion, long newVersion);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int StoreRemoveFn(IntPtr userData, IntPtr kind, IntPtr id);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int StoreListFn(IntPtr userData, IntPtr kind, IntPtr list);

        [StructLayout(LayoutKind.Sequential)]
        internal struct StoreCallbacks
        {
            public uint Version;
            public IntPtr UserData;
            public IntPtr Load;
            public IntPtr CompareAndSwap;
            public IntPtr Remove;
            public IntPtr List;
        }

        /// <summary>NUL-terminated UTF-8 (the C ABI's strings).</summary>
        internal static byte[] Utf8(string s)
        {
            if (s == null) return null;
            var b = Encoding.UTF8.GetBytes(s);
            var z = new byte[b.Length + 1];
            Buffer.BlockCopy(b, 0, z, 0, b.Length);
            return z;
        }

        internal static string FromUtf8(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            var b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Encoding.UTF8.GetString(b);
        }

        /// <summary>Take an owned string and free it.</summary>
        internal static string Take(IntPtr p)
        {
            try { return FromUtf8(p); } finally { mc_string_free(p); }
        }

        /// <summary>Throw for a failed call with the calling thread's last error (the P/Invoke ran on this thread,
        /// where mailconnect keeps it): code, message and diagnostic.</summary>
        internal static void Check(int rc)
        {
            if (rc == 0) return;
            int code = mc_error_code_get();
            if (code == 0) code = rc;
            string message = FromUtf8(mc_error_message_get());
            string diagnostic = FromUtf8(mc_error_diagnostic_get());
            throw new MailconnectException(code, FromUtf8(mc_result_name_get(code)), message, diagnostic);
        }
    }

    /// <summary>The native client (released with mc_client_free).</summary>
    public sealed class ClientHandle : SafeHandle
    {
        /// <summary>An empty handle (filled by mc_client_open).</summary>
        public ClientHandle() : base(IntPtr.Zero, true) { }
        /// <summary>Objects the native client calls into (the host store's delegates): reachable as long as the handle.</summary>
        internal object KeepAlive;
        /// <summary>Whether no client is held.</summary>
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        /// <summary>Frees the client (cancelling calls in progress on other threads first).</summary>
        protected override bool ReleaseHandle() { Native.mc_client_free(handle); return true; }
    }

    /// <summary>A native cancellation token (released with mc_cancel_free).</summary>
    public sealed class CancelHandle : SafeHandle
    {
        /// <summary>An empty handle (filled by mc_cancel_new).</summary>
        public CancelHandle() : base(IntPtr.Zero, true) { }
        /// <summary>Whether no token is held.</summary>
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        /// <summary>Frees the token.</summary>
        protected override bool ReleaseHandle() { Native.mc_cancel_free(handle); return true; }
        internal static CancelHandle Null { get { return new CancelHandle(); } }
    }

    /// <summary>Protocol bits for Test.</summary>
    [Flags]
    public enum Protocols : uint
    {
        /// <summary>Every configured protocol.</summary>
        All = 0,
        /// <summary>IMAP.</summary>
        Imap = 1,
        /// <summary>POP3.</summary>
        Pop3 = 2,
        /// <summary>SMTP submission.</summary>
        Smtp = 4,
        /// <summary>Also send one message to the mailbox itself and find it again.</summary>
        SendProbe = 0x100,
    }

    /// <summary>A small reader for the flat JSON objects mailconnect returns (the binding targets C# 7 and
    /// netstandard2.0 without a JSON package): top-level fields as strings, numbers and booleans, nested
    /// objects and arrays as their raw JSON text.</summary>
    internal sealed class JsonFields
    {
        private readonly Dictionary<string, object> _values = new Dictionary<string, object>();
        private readonly Dictionary<string, string> _raw = new Dictionary<string, string>();

        internal static JsonFields Parse(string json)
        {
            var f = new JsonFields();
            int i = 0;
            Ws(json, ref i);
            Expect(json, ref i, '{');
            Ws(json, ref i);
            if (Peek(json, i) == '}') return f;
            while (true)
            {
                Ws(json, ref i);
                string key = ReadString(json, ref i);
                Ws(json, ref i);
                Expect(json, ref i, ':');
                Ws(json, ref i);
                int start = i;
                object v = ReadValue(json, ref i);
                f._values[key] = v;
                f._raw[key] = json.Substring(start, i - start);
                Ws(json, ref i);
                char c = Peek(json, i);
                i++;
                if (c == '}') return f;
                if (c != ',') throw new FormatException("unexpected '" + c + "' in JSON at " + (i - 1));
            }
        }

        /// <summary>A string field, or null.</summary>
        internal string Str(string key) { object v; return _values.TryGetValue(key, out v) ? v as string : null; }
        /// <summary>A numeric field, or def.</summary>
        internal long Long(string key, long def)
        {
            object v;
            if (!_values.TryGetValue(key, out v)) return def;
            if (v is long) return (long)v;
            if (v is double) return (long)(double)v;
            return def;
        }
        /// <summary>A boolean field, or def.</summary>
        internal bool Bool(string key, bool def) { object v; return _values.TryGetValue(key, out v) && v is bool ? (bool)v : def; }
        /// <summary>The raw JSON text of a field (for nested objects), or null.</summary>
        internal string Raw(string key) { string v; return _raw.TryGetValue(key, out v) ? v : null; }
        /// <summary>An RFC 3339 time field, or null.</summary>
        internal DateTimeOffset? Time(string key)
        {
            DateTimeOffset t;
            var s = Str(key);
            return s != null && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out t) ? t : (DateTimeOffset?)null;
        }

        /// <summary>A JSON string literal for s.</summary>
        internal static string Quote(string s)
        {
            var b = new StringBuilder("\"");
            foreach (char c in s)
            {
                if (c == '"' || c == '\\') b.Append('\\').Append(c);
                else if (c < ' ') b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else b.Append(c);
            }
            return b.Append('"').ToString();
        }

        private static char Peek(string s, int i)
        {
            if (i >= s.Length) throw new FormatException("JSON ends early");
            return s[i];
        }

        private static void Expect(string s, ref int i, char c)
        {
            if (Peek(s, i) != c) throw new FormatException("expected '" + c + "' in JSON at " + i);
            i++;
        }

        private static void Ws(string s, ref int i)
        {
            while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        }

        private static string ReadString(string s, ref int i)
        {
            Expect(s, ref i, '"');
            var b = new StringBuilder();
            while (true)
            {
                char c = Peek(s, i++);
                if (c == '"') return b.ToString();
                if (c != '\\') { b.Append(c); continue; }
                char e = Peek(s, i++);
                switch (e)
                {
                    case 'b': b.Append('\b'); break;
                    case 'f': b.Append('\f'); break;
                    case 'n': b.Append('\n'); break;
                    case 'r': b.Append('\r'); break;
                    case 't': b.Append('\t'); break;
                    case 'u':
                        if (i + 4 > s.Length) throw new FormatException("JSON ends early");
                        b.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: b.Append(e); break;
                }
            }
        }

        private static object ReadValue(string s, ref int i)
        {
            char c = Peek(s, i);
            if (c == '"') return ReadString(s, ref i);
            if (c == '{' || c == '[')
            {
                int depth = 0;
                do
                {
                    char d = Peek(s, i);
                    if (d == '"') { ReadString(s, ref i); continue; }
                    if (d == '{' || d == '[') depth++;
                    else if (d == '}' || d == ']') depth--;
                    i++;
                } while (depth > 0);
                return null;
            }
            foreach (var lit in new[] { "true", "false", "null" })
            {
                if (string.CompareOrdinal(s, i, lit, 0, lit.Length) == 0)
                {
                    i += lit.Length;
                    return lit == "null" ? null : (object)(lit == "true");
                }
            }
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            if (start == i) throw new FormatException("unexpected '" + c + "' in JSON at " + i);
            var text = s.Substring(start, i - start);
            long l;
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
            return double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Levels of mailconnect's log (MC_LOG_*), for Client.SetLogCallback.</summary>
    public enum LogLevel
    {
        /// <summary>Nothing.</summary>
        Off = 0,
        /// <summary>Errors.</summary>
        Error = 1,
        /// <summary>Warnings.</summary>
        Warn = 2,
        /// <summary>Information.</summary>
        Info = 3,
        /// <summary>Debugging.</summary>
        Debug = 4,
        /// <summary>Tracing.</summary>
        Trace = 5,
    }

    /// <summary>Options of the background refresher (Client.StartRefresher, Client.RunRefresher). Null keeps
    /// mailconnect's default; durations are passed in whole seconds (rounded up).</summary>
    public sealed class RefresherOptions
    {
        /// <summary>Time between rounds (default 30 s; StartRefresher only).</summary>
        public TimeSpan? Interval { get; set; }
        /// <summary>Refresh tokens expiring within this time (default 10 min; never more often than every half
        /// token lifetime).</summary>
        public TimeSpan? Ahead { get; set; }
        /// <summary>Spread refreshes over up to this much extra time ahead, per account (default 2 min).</summary>
        public TimeSpan? Jitter { get; set; }
        /// <summary>Refreshes at once (default 8).</summary>
        public int? Concurrency { get; set; }
        /// <summary>Back-off of a tenant after a 429 without Retry-After, doubled per repeat (default 30 s).</summary>
        public TimeSpan? BackoffMin { get; set; }
        /// <summary>Longest back-off (default 15 min).</summary>
        public TimeSpan? BackoffMax { get; set; }

        private static string Secs(TimeSpan t)
        {
            return ((long)Math.Ceiling(t.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        /// <summary>The options JSON mailconnect reads.</summary>
        public string ToJson()
        {
            var parts = new List<string>();
            if (Interval.HasValue) parts.Add("\"interval_secs\":" + Secs(Interval.Value));
            if (Ahead.HasValue) parts.Add("\"ahead_secs\":" + Secs(Ahead.Value));
            if (Jitter.HasValue) parts.Add("\"jitter_secs\":" + Secs(Jitter.Value));
            if (Concurrency.HasValue) parts.Add("\"concurrency\":" + Concurrency.Value.ToString(CultureInfo.InvariantCulture));
            if (BackoffMin.HasValue) parts.Add("\"backoff_min_secs\":" + Secs(BackoffMin.Value));
            if (BackoffMax.HasValue) parts.Add("\"backoff_max_secs\":" + Secs(BackoffMax.Value));
            return "{" + string.Join(",", parts.ToArray()) + "}";
        }
    }

    /// <summary>What one refresher round did (Client.RunRefresher), as counts of accounts. Failures of single
    /// accounts are also raised as events.</summary>
    public sealed class RefreshReport
    {
        /// <summary>Accounts looked at.</summary>
        public int Accounts { get; private set; }
        /// <summary>Connected accounts not due yet.</summary>
        public int Fresh { get; private set; }
        /// <summary>Refreshed (by this round, or by another process meanwhile).</summary>
        public int Refreshed { get; private set; }
        /// <summary>Failed (transient; retried next round).</summary>
        public int Failed { get; private set; }
        /// <summary>Accounts that need re-authorization (now, or already before).</summary>
        public int NeedsReauthorization { get; private set; }
        /// <summary>Skipped because their tenant is backing off after a 429.</summary>
        public int BackingOff { get; private set; }
        /// <summary>Not connected.</summary>
        public int NotConnected { get; private set; }
        /// <summary>The JSON mailconnect returned.</summary>
        public string Json { get; private set; }

        internal static RefreshReport FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            return new RefreshReport
            {
                Accounts = (int)f.Long("accounts", 0),
                Fresh = (int)f.Long("fresh", 0),
                Refreshed = (int)f.Long("refreshed", 0),
                Failed = (int)f.Long("failed", 0),
                NeedsReauthorization = (int)f.Long("needs_reauthorization", 0),
                BackingOff = (int)f.Long("backing_off", 0),
                NotConnected = (int)f.Long("not_connected", 0),
                Json = json,
            };
        }

        /// <summary>The JSON of the report.</summary>
        public override string ToString() { return Json; }
    }

    /// <summary>The proxy settings of a client (Client.GetProxy): where its proxy comes from and the stored setting
    /// without its password. The path each connection takes is in Client.Test's report ("path").</summary>
    public sealed class ProxyInfo
    {
        /// <summary>Where this client's proxy comes from: "no_proxy_option", "option", "stored" (Client.SetProxy)
        /// or "environment" (HTTPS_PROXY, ALL_PROXY, NO_PROXY, else the system settings for HTTPS).</summary>
        public string Source { get; private set; }
        /// <summary>The stored setting as JSON, every password removed ("url" without it, "username", the
        /// per-protocol fields, "no_proxy", "has_password"); null when none is stored.</summary>
        public string Stored { get; private set; }
        /// <summary>The stored setting's URL (without a password), or null.</summary>
        public string StoredUrl { get; private set; }
        /// <summary>Whether the stored setting has a password (it is never returned).</summary>
        public bool HasPassword { get; private set; }
        /// <summary>Whether proxy environment variables are set.</summary>
        public bool Environment { get; private set; }
        /// <summary>The JSON mailconnect returned.</summary>
        public string Json { get; private set; }

        internal static ProxyInfo FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            var stored = f.Raw("stored");
            if (stored == "null") stored = null;
            var s = stored != null ? JsonFields.Parse(stored) : null;
            return new ProxyInfo
            {
                Source = f.Str("source"),
                Stored = stored,
                StoredUrl = s != null ? s.Str("url") : null,
                HasPassword = s != null && s.Bool("has_password", false),
                Environment = f.Bool("environment", false),
                Json = json,
            };
        }

        /// <summary>The JSON of the settings.</summary>
        public override string ToString() { return Json; }
    }

    /// <summary>A sign-in begun with Client.BeginAuthorization: what the host shows. Browser flow: show Url
    /// (in your web view or the system browser); Loopback says whether mailconnect listens on RedirectUri
    /// (then WaitAuthorization) or your web view must capture the redirect (then CompleteAuthorization).
    /// Device flow: show Message (or UserCode and VerificationUri), then PollAuthorization or
    /// WaitAuthorization. Single-use; it ends at ExpiresAt.</summary>
    public sealed class Authorization
    {
        /// <summary>The handle passed to complete, poll, wait and abort.</summary>
        public string Handle { get; private set; }
        /// <summary>The account being signed in.</summary>
        public string AccountId { get; private set; }
        /// <summary>"browser" or "device_code".</summary>
        public string Flow { get; private set; }
        /// <summary>Whether this is a device-code sign-in.</summary>
        public bool IsDeviceCode { get { return Flow == "device_code"; } }
        /// <summary>Browser flow: the sign-in page to show.</summary>
        public string Url { get; private set; }
        /// <summary>Browser flow: where the provider sends the browser back.</summary>
        public string RedirectUri { get; private set; }
        /// <summary>Browser flow: true when mailconnect listens on RedirectUri (call WaitAuthorization), false when
        /// the host's web view must capture the redirect (call CompleteAuthorization).</summary>
        public bool Loopback { get; private set; }
        /// <summary>Device flow: the code the user types.</summary>
        public string UserCode { get; private set; }
        /// <summary>Device flow: where the user types it.</summary>
        public string VerificationUri { get; private set; }
        /// <summary>Device flow: the URI with the code filled in, when the provider offers one (else null).</summary>
        public string VerificationUriComplete { get; private set; }
        /// <summary>Device flow: the provider's ready sentence for the user.</summary>
        public string Message { get; private set; }
        /// <summary>Device flow: the polling interval the provider asks for.</summary>
        public TimeSpan Interval { get; private set; }
        /// <summary>When the sign-in stops being accepted.</summary>
        public DateTimeOffset ExpiresAt { get; private set; }
        /// <summary>The JSON mailconnect returned.</summary>
        public string Json { get; private set; }

        internal static Authorization FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            return new Authorization
            {
                Handle = f.Str("handle"),
                AccountId = f.Str("account_id"),
                Flow = f.Str("flow"),
                Url = f.Str("url"),
                RedirectUri = f.Str("redirect_uri"),
                Loopback = f.Bool("loopback", false),
                UserCode = f.Str("user_code"),
                VerificationUri = f.Str("verification_uri"),
                VerificationUriComplete = f.Str("verification_uri_complete"),
                Message = f.Str("message"),
                Interval = TimeSpan.FromSeconds(f.Long("interval_secs", 0)),
                ExpiresAt = f.Time("expires_at") ?? DateTimeOffset.UtcNow.AddSeconds(f.Long("expires_in_secs", 0)),
                Json = json,
            };
        }
    }

    /// <summary>A mail address with an optional display name. A string converts to one implicitly, so
    /// <c>message.To.Add("anna@example.com")</c> works.</summary>
    public sealed class EmailAddress
    {
        /// <summary>An address, e.g. new EmailAddress("anna@example.com", "Anna Müller").</summary>
        public EmailAddress(string address, string name = null)
        {
            if (address == null) throw new ArgumentNullException("address");
            Address = address;
            Name = name;
        }
        /// <summary>The address (anna@example.com).</summary>
        public string Address { get; private set; }
        /// <summary>The display name, or null (non-ASCII names are encoded as mail needs).</summary>
        public string Name { get; private set; }
        /// <summary>A plain address.</summary>
        public static implicit operator EmailAddress(string address) { return address == null ? null : new EmailAddress(address); }
        /// <summary>"Name &lt;address&gt;" or the address.</summary>
        public override string ToString() { return string.IsNullOrEmpty(Name) ? Address : Name + " <" + Address + ">"; }

        internal string ToJson()
        {
            if (string.IsNullOrEmpty(Name)) return JsonFields.Quote(Address);
            return "{\"name\":" + JsonFields.Quote(Name) + ",\"address\":" + JsonFields.Quote(Address) + "}";
        }
    }

    /// <summary>An attachment of a MessageSpec: a file (read by mailconnect while sending) or bytes. FileName is
    /// what the recipient sees (default: the file's name; non-ASCII names such as "Rechnung für März.pdf" are
    /// encoded as mail needs); ContentType defaults to application/octet-stream; with a ContentId it is an inline
    /// part the HTML body shows as cid:ContentId.</summary>
    public sealed class MessageAttachment
    {
        /// <summary>A file to attach (exclusive with Content).</summary>
        public string Path { get; set; }
        /// <summary>The bytes to attach (exclusive with Path).</summary>
        public byte[] Content { get; set; }
        /// <summary>The file name the recipient sees.</summary>
        public string FileName { get; set; }
        /// <summary>MIME type, e.g. "application/pdf".</summary>
        public string ContentType { get; set; }
        /// <summary>Makes it an inline part (an image the HTML body shows as cid:ContentId).</summary>
        public string ContentId { get; set; }

        /// <summary>A file; fileName null: the file's own name.</summary>
        public static MessageAttachment FromFile(string path, string fileName = null, string contentType = null)
        {
            return new MessageAttachment { Path = path, FileName = fileName, ContentType = contentType };
        }

        /// <summary>Bytes under a file name.</summary>
        public static MessageAttachment FromBytes(byte[] content, string fileName, string contentType = null)
        {
            return new MessageAttachment { Content = content, FileName = fileName, ContentType = contentType };
        }

        /// <summary>An inline image (or other part) the HTML body refers to as cid:contentId.</summary>
        public static MessageAttachment Inline(byte[] content, string contentId, string contentType, string fileName = null)
        {
            return new MessageAttachment { Content = content, ContentId = contentId, ContentType = contentType, FileName = fileName };
        }

        internal string ToJson()
        {
            if ((Path == null) == (Content == null))
                throw new ArgumentException("a MessageAttachment needs exactly one of Path and Content");
            var parts = new List<string>();
            if (Path != null) parts.Add("\"path\":" + JsonFields.Quote(Path));
            else parts.Add("\"content_base64\":\"" + Convert.ToBase64String(Content) + "\"");
            if (FileName != null) parts.Add("\"file_name\":" + JsonFields.Quote(FileName));
            if (ContentType != null) parts.Add("\"content_type\":" + JsonFields.Quote(ContentType));
            if (ContentId != null) parts.Add("\"content_id\":" + JsonFields.Quote(ContentId));
            return "{" + string.Join(",", parts.ToArray()) + "}";
        }
    }

    /// <summary>How important a message is (the Importance and X-Priority headers Outlook writes).</summary>
    public enum Importance
    {
        /// <summary>No header.</summary>
        Normal,
        /// <summary>Low.</summary>
        Low,
        /// <summary>High.</summary>
        High,
    }

    /// <summary>A message for Client.SendMessage: mailconnect builds the MIME (non-ASCII subjects, names and file
    /// names encoded as mail needs) and sends it over the account's transport (SMTP or Microsoft Graph). At least one
    /// recipient (To, Cc or Bcc) is needed; From defaults to the account's mailbox.</summary>
    public sealed class MessageSpec
    {
        /// <summary>The sender; null: the account's mailbox.</summary>
        public EmailAddress From { get; set; }
        /// <summary>Recipients.</summary>
        public List<EmailAddress> To { get; } = new List<EmailAddress>();
        /// <summary>Copy.</summary>
        public List<EmailAddress> Cc { get; } = new List<EmailAddress>();
        /// <summary>Blind copy.</summary>
        public List<EmailAddress> Bcc { get; } = new List<EmailAddress>();
        /// <summary>Where answers go.</summary>
        public List<EmailAddress> ReplyTo { get; } = new List<EmailAddress>();
        /// <summary>The subject.</summary>
        public string Subject { get; set; }
        /// <summary>The plain-text body (null: none).</summary>
        public string Text { get; set; }
        /// <summary>The HTML body (null: none).</summary>
        public string Html { get; set; }
        /// <summary>Attachments and inline parts.</summary>
        public List<MessageAttachment> Attachments { get; } = new List<MessageAttachment>();
        /// <summary>Extra headers (e.g. X-Invoice-Number), in order.</summary>
        public List<KeyValuePair<string, string>> Headers { get; } = new List<KeyValuePair<string, string>>();
        /// <summary>Importance (Normal: no header).</summary>
        public Importance Importance { get; set; }
        /// <summary>Ask for a read receipt (Disposition-Notification-To the sender).</summary>
        public bool ReadReceipt { get; set; }

        private static string AddressList(List<EmailAddress> list)
        {
            var items = new List<string>();
            foreach (var a in list) if (a != null) items.Add(a.ToJson());
            return "[" + string.Join(",", items.ToArray()) + "]";
        }

        /// <summary>The message JSON of mc_message_send.</summary>
        public string ToJson()
        {
            var parts = new List<string>();
            if (From != null) parts.Add("\"from\":" + From.ToJson());
            if (To.Count > 0) parts.Add("\"to\":" + AddressList(To));
            if (Cc.Count > 0) parts.Add("\"cc\":" + AddressList(Cc));
            if (Bcc.Count > 0) parts.Add("\"bcc\":" + AddressList(Bcc));
            if (ReplyTo.Count > 0) parts.Add("\"reply_to\":" + AddressList(ReplyTo));
            parts.Add("\"subject\":" + JsonFields.Quote(Subject ?? ""));
            if (Text != null) parts.Add("\"text\":" + JsonFields.Quote(Text));
            if (Html != null) parts.Add("\"html\":" + JsonFields.Quote(Html));
            if (Attachments.Count > 0)
            {
                var items = new List<string>();
                foreach (var a in Attachments) items.Add(a.ToJson());
                parts.Add("\"attachments\":[" + string.Join(",", items.ToArray()) + "]");
            }
            if (Headers.Count > 0)
            {
                var items = new List<string>();
                foreach (var h in Headers) items.Add("{\"name\":" + JsonFields.Quote(h.Key) + ",\"value\":" + JsonFields.Quote(h.Value) + "}");
                parts.Add("\"headers\":[" + string.Join(",", items.ToArray()) + "]");
            }
            if (Importance == Importance.Low) parts.Add("\"importance\":\"low\"");
            if (Importance == Importance.High) parts.Add("\"importance\":\"high\"");
            if (ReadReceipt) parts.Add("\"read_receipt\":true");
            return "{" + string.Join(",", parts.ToArray()) + "}";
        }
    }

    /// <summary>What Client.SendMessage did.</summary>
    public sealed class SendResult
    {
        /// <summary>"smtp" or "graph": what carried the message.</summary>
        public string Transport { get; private set; }
        /// <summary>The message's Message-ID (&lt;...@...&gt;), to find it or thread answers.</summary>
        public string MessageId { get; private set; }
        /// <summary>The server's acceptance ("250 2.0.0 Ok: queued as ...", "202 Accepted by Microsoft Graph ...").</summary>
        public string Reply { get; private set; }
        /// <summary>Bytes sent.</summary>
        public long Size { get; private set; }
        /// <summary>The JSON mailconnect returned.</summary>
        public string Json { get; private set; }

        internal static SendResult FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            return new SendResult
            {
                Transport = f.Str("transport"),
                MessageId = f.Str("message_id"),
                Reply = f.Str("reply"),
                Size = f.Long("size", 0),
                Json = json,
            };
        }

        /// <summary>The JSON of the result.</summary>
        public override string ToString() { return Json; }
    }

    /// <summary>One check of a device-code sign-in (Client.PollAuthorization).</summary>
    public sealed class PollResult
    {
        /// <summary>True when the account is connected (the sign-in is finished).</summary>
        public bool Connected { get; private set; }
        /// <summary>Pending: wait this long before the next poll.</summary>
        public TimeSpan RetryAfter { get; private set; }
        /// <summary>Connected: the account's status JSON (else null).</summary>
        public string Status { get; private set; }

        internal static PollResult FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            bool connected = f.Str("state") == "connected";
            return new PollResult
            {
                Connected = connected,
                RetryAfter = TimeSpan.FromMilliseconds(connected ? 0 : f.Long("retry_after_ms", 1000)),
                Status = connected ? f.Raw("status") : null,
            };
        }
    }

    /// <summary>What an event reports.</summary>
    public enum EventKind
    {
        /// <summary>A type this binding does not know (see MailconnectEvent.Type).</summary>
        Unknown,
        /// <summary>A new access token was obtained (AccountId, ExpiresAt).</summary>
        TokenRefreshed,
        /// <summary>The account must be connected again (AccountId, Reason, Diagnostic).</summary>
        NeedsReauthorization,
        /// <summary>A connect or host-driven sign-in reached a stage (AccountId, Stage).</summary>
        ConnectProgress,
        /// <summary>The account's state changed (AccountId, From, To).</summary>
        StateChanged,
        /// <summary>A log record (Level, Target, Message), when enabled with ConfigureEvents.</summary>
        Log,
        /// <summary>Events were dropped because they were not taken fast enough (Count).</summary>
        EventsDropped,
        /// <summary>The account has no refresh token and needs a new sign-in at At (AccountId, At, Code: the
        /// diagnostic to show, MC-NO-REFRESH-TOKEN); from the background refresher, ahead of time.</summary>
        ReauthorizationDue,
    }

    /// <summary>An event of the client's queue (mc_events_next). Fields that do not belong to the Kind are null or 0.</summary>
    public sealed class MailconnectEvent
    {
        /// <summary>Increasing per client; a gap means events were dropped.</summary>
        public long Seq { get; private set; }
        /// <summary>When it happened.</summary>
        public DateTimeOffset Time { get; private set; }
        /// <summary>What happened.</summary>
        public EventKind Kind { get; private set; }
        /// <summary>The type as mailconnect names it, e.g. "token_refreshed".</summary>
        public string Type { get; private set; }
        /// <summary>The account, for account events.</summary>
        public string AccountId { get; private set; }
        /// <summary>ConnectProgress: the stage ("starting" ... "connected").</summary>
        public string Stage { get; private set; }
        /// <summary>StateChanged: the state before ("not_connected", "connected", "needs_reauthorization", "error").</summary>
        public string From { get; private set; }
        /// <summary>StateChanged: the state after.</summary>
        public string To { get; private set; }
        /// <summary>NeedsReauthorization: why (e.g. "refresh_token_revoked").</summary>
        public string Reason { get; private set; }
        /// <summary>NeedsReauthorization: the diagnostic JSON (as MailconnectException.Diagnostic).</summary>
        public string Diagnostic { get; private set; }
        /// <summary>TokenRefreshed: the new expiry.</summary>
        public DateTimeOffset? ExpiresAt { get; private set; }
        /// <summary>ReauthorizationDue: when the access token expires and a new sign-in is needed.</summary>
        public DateTimeOffset? At { get; private set; }
        /// <summary>ReauthorizationDue: the diagnostic code to show (MC-NO-REFRESH-TOKEN).</summary>
        public string Code { get; private set; }
        /// <summary>Log: "error", "warn", "info", "debug" or "trace".</summary>
        public string Level { get; private set; }
        /// <summary>Log: the module that logged.</summary>
        public string Target { get; private set; }
        /// <summary>Log: the text (never contains secrets).</summary>
        public string Message { get; private set; }
        /// <summary>EventsDropped: how many.</summary>
        public long Count { get; private set; }
        /// <summary>The event's JSON.</summary>
        public string Json { get; private set; }

        /// <summary>Parse one event's JSON as mc_event_next returns it (e.g. handed over from the
        /// program's Windows service); unknown types become EventKind.Unknown with Json kept.</summary>
        public static MailconnectEvent FromJson(string json)
        {
            var f = JsonFields.Parse(json);
            string type = f.Str("type");
            EventKind kind;
            switch (type)
            {
                case "token_refreshed": kind = EventKind.TokenRefreshed; break;
                case "needs_reauthorization": kind = EventKind.NeedsReauthorization; break;
                case "reauthorization_due": kind = EventKind.ReauthorizationDue; break;
                case "connect_progress": kind = EventKind.ConnectProgress; break;
                case "state_changed": kind = EventKind.StateChanged; break;
                case "log": kind = EventKind.Log; break;
                case "events_dropped": kind = EventKind.EventsDropped; break;
                default: kind = EventKind.Unknown; break;
            }
            return new MailconnectEvent
            {
                Seq = f.Long("seq", 0),
                Time = f.Time("time") ?? DateTimeOffset.UtcNow,
                Kind = kind,
                Type = type,
                AccountId = f.Str("account_id"),
                Stage = f.Str("stage"),
                From = f.Str("from"),
                To = f.Str("to"),
                Reason = f.Str("reason"),
                Diagnostic = f.Raw("diagnostic"),
                ExpiresAt = f.Time("expires_at"),
                At = f.Time("at"),
                Code = f.Str("code"),
                Level = f.Str("level"),
                Target = f.Str("target"),
                Message = f.Str("message"),
                Count = f.Long("count", 0),
                Json = json,
            };
        }

        /// <summary>The JSON of the event.</summary>
        public override string ToString() { return Json; }
    }

    /// <summary>The argument of Client.EventReceived.</summary>
    public sealed class MailconnectEventArgs : EventArgs
    {
        /// <summary>Wraps an event.</summary>
        public MailconnectEventArgs(MailconnectEvent e) { Event = e; }
        /// <summary>The event.</summary>
        public MailconnectEvent Event { get; private set; }
    }

    /// <summary>One record of a host-owned store: its id, opaque blob and version.</summary>
    public sealed class HostRecord
    {
        /// <summary>A record.</summary>
        public HostRecord(string id, byte[] blob, long version) { Id = id; Blob = blob; Version = version; }
        /// <summary>The record's id within its kind.</summary>
        public string Id { get; private set; }
        /// <summary>The opaque encrypted blob, every byte of it.</summary>
        public byte[] Blob { get; private set; }
        /// <summary>The version stored with it (at least 1).</summary>
        public long Version { get; private set; }
    }

    /// <summary>A host-owned store: mailconnect's registrations, accounts, tokens and refresh leases kept in the
    /// host's own database as opaque blobs encrypted with the client's key (see mc_store_callbacks in the C header).
    /// Records are identified by (kind, id); kind is "tokens", "account", "registration" or "lease". The methods run
    /// on mailconnect threads, possibly several at once: they must be thread-safe and must not call the Client.
    /// Blobs have no size limit: store every byte (varbinary(max), BLOB, bytea); a blob cut short is reported as
    /// "stored incompletely" (MC-TOKEN-TRUNCATED). An exception thrown by a method never reaches native code: the
    /// operation fails with MC_E_STORE and the exception goes to Trace.</summary>
    public interface IHostStore
    {
        /// <summary>The record's blob and version; false when there is none.</summary>
        bool TryLoad(string kind, string id, out byte[] blob, out long version);
        /// <summary>Atomically store blob with newVersion if the stored version is expectedVersion (0: the record
        /// must not exist); false on a conflict.</summary>
        bool CompareAndSwap(string kind, string id, byte[] blob, long expectedVersion, long newVersion);
        /// <summary>Delete the record; false when there was none.</summary>
        bool Remove(string kind, string id);
        /// <summary>Every record of the kind.</summary>
        IEnumerable<HostRecord> List(string kind);
    }

    /// <summary>The native callbacks over an IHostStore; its delegates live as long as the client handle.</summary>
    internal sealed class StoreBridge
    {
        private const int Ok = 0, NotFound = 1, Conflict = 2, Failed = -1, BadRecord = -2;
        private readonly IHostStore _store;
        private readonly Native.StoreLoadFn _load;
        private readonly Native.StoreCasFn _cas;
        private readonly Native.StoreRemoveFn _remove;
        private readonly Native.StoreListFn _list;

        internal StoreBridge(IHostStore store)
        {
            _store = store;
            _load = Load;
            _cas = Cas;
            _remove = Remove;
            _list = List;
        }

        internal Native.StoreCallbacks Callbacks()
        {
            return new Native.StoreCallbacks
            {
                Version = 1,
                UserData = IntPtr.Zero,
                Load = Marshal.GetFunctionPointerForDelegate(_load),
                CompareAndSwap = Marshal.GetFunctionPointerForDelegate(_cas),
                Remove = Marshal.GetFunctionPointerForDelegate(_remove),
                List = Marshal.GetFunctionPointerForDelegate(_list),
            };
        }

        private static int Fail(string op, IntPtr kind, IntPtr id, Exception e)
        {
            try { Trace.TraceError("mailconnect store callback {0}({1}, {2}) failed: {3}", op, Native.FromUtf8(kind), Native.FromUtf8(id), e); }
            catch { }
            return Failed;
        }

        private int Load(IntPtr ud, IntPtr kind, IntPtr id, IntPtr rec)
        {
            try
            {
                byte[] blob;
                long version;
                if (!_store.TryLoad(Native.FromUtf8(kind), Native.FromUtf8(id), out blob, out version)) return NotFound;
                blob = blob ?? new byte[0];
                return Native.mc_store_record_set(rec, blob, (UIntPtr)blob.Length, version) == 0 ? Ok : BadRecord;
            }
            catch (Exception e) { return Fail("load", kind, id, e); }
        }

        private int Cas(IntPtr ud, IntPtr kind, IntPtr id, IntPtr data, UIntPtr len, long expected, long newVersion)
        {
            try
            {
                var blob = new byte[checked((int)len.ToUInt64())];
                if (blob.Length > 0) Marshal.Copy(data, blob, 0, blob.Length);
                return _store.CompareAndSwap(Native.FromUtf8(kind), Native.FromUtf8(id), blob, expected, newVersion) ? Ok : Conflict;
            }
            catch (Exception e) { return Fail("compare_and_swap", kind, id, e); }
        }

        private int Remove(IntPtr ud, IntPtr kind, IntPtr id)
        {
            try { return _store.Remove(Native.FromUtf8(kind), Native.FromUtf8(id)) ? Ok : NotFound; }
            catch (Exception e) { return Fail("remove", kind, id, e); }
        }

        private int List(IntPtr ud, IntPtr kind, IntPtr list)
        {
            try
            {
                foreach (var r in _store.List(Native.FromUtf8(kind)))
                {
                    var blob = r.Blob ?? new byte[0];
                    if (Native.mc_store_list_add(list, Native.Utf8(r.Id), blob, (UIntPtr)blob.Length, r.Version) != 0) return BadRecord;
                }
                return Ok;
            }
            catch (Exception e) { return Fail("list", kind, IntPtr.Zero, e); }
        }
    }

    /// <summary>A mailconnect client over one token store. Thread-safe; calls block (use the *Async wrappers in UIs).</summary>
    public sealed class Client : IDisposable
    {
        static Client()
        {
            uint abi = Native.mc_abi_version_get();
            if (abi != Native.AbiVersion)
                throw new InvalidOperationException("libmailconnect has ABI version " + abi + ", this binding needs " + Native.AbiVersion);
        }

        private readonly ClientHandle _h;
        private volatile bool _disposed;
        private readonly object _eventsGate = new object();
        private EventWorker _worker;

        /// <summary>mc_events_next is called in slices of this many ms so that stopping the worker or disposing the
        /// client never waits longer (the native client is freed only after the slice returns).</summary>
        private const int EventSliceMs = 250;

        private sealed class EventWorker
        {
            public volatile bool Stop;
            public Thread Thread;
            public SynchronizationContext Context;
        }

        /// <summary>The library version.</summary>
        public static string Version { get { return Native.FromUtf8(Native.mc_version_get()); } }

        /// <summary>Open a client; optionsJson as in the README ("Client options").</summary>
        public Client(string optionsJson)
        {
            ClientHandle h;
            Native.Check(Native.mc_client_open(Native.Utf8(optionsJson), out h));
            _h = h;
        }

        /// <summary>Open a client whose registrations, accounts, tokens and leases live in the host's own database
        /// through store (see IHostStore). optionsJson has no "store" but needs a "key" ({"base64": ...} from your
        /// secret store, or {"file": PATH}): it encrypts every blob.</summary>
        public Client(string optionsJson, IHostStore store)
        {
            if (store == null) throw new ArgumentNullException("store");
            var bridge = new StoreBridge(store);
            var cb = bridge.Callbacks();
            ClientHandle h;
            int rc = Native.mc_client_open_with_store(Native.Utf8(optionsJson), ref cb, out h);
            Native.Check(rc);
            // The delegates must stay callable until mc_client_free has returned: they live as long as the handle.
            h.KeepAlive = bridge;
            _h = h;
        }

        /// <summary>Stops the event worker, then frees the client: calls in progress on other threads end with
        /// MC_E_CANCELLED.</summary>
        public void Dispose()
        {
            _disposed = true;
            StopEvents();
            _h.Dispose();
        }

        /// <summary>Insert or update an app registration (JSON; see the README).</summary>
        public void PutRegistration(string json) { Native.Check(Native.mc_registration_put(_h, Native.Utf8(json))); }
        /// <summary>The app registration as JSON (a client secret shows as has_client_secret only).</summary>
        public string Registration(string id) { IntPtr o; Native.Check(Native.mc_registration_get(_h, Native.Utf8(id), out o)); return Native.Take(o); }
        /// <summary>All app registrations as a JSON array.</summary>
        public string Registrations() { IntPtr o; Native.Check(Native.mc_registration_list(_h, out o)); return Native.Take(o); }
        /// <summary>Remove an app registration; MC_E_STATE while accounts use it.</summary>
        public void RemoveRegistration(string id) { Native.Check(Native.mc_registration_remove(_h, Native.Utf8(id))); }
        /// <summary>Store the proxy every connection takes (identity provider, Graph, IMAP, POP3, SMTP), sealed in the
        /// store with its password, and use it at once: in this client whatever it was opened with, and in every client
        /// opened later on the same store without a "proxy" or "no_proxy" option. proxy is a URL
        /// ("http://user:password@host:3128", "socks5://…", "socks5h://…"), "direct", or a JSON object (url, https,
        /// imap, pop3, smtp, username, password, no_proxy); null removes the stored setting (ClearProxy). Blocks while
        /// the store is written; not from a mailconnect callback. Throws MC_E_INVALID_ARGUMENT (not a proxy; the
        /// message never repeats a password) or MC_E_STORE; then nothing is stored and the client keeps its path.</summary>
        public void SetProxy(string proxy) { Native.Check(Native.mc_proxy_set(_h, Native.Utf8(proxy))); }
        /// <summary>Remove the stored proxy: this client goes back to its options, else the environment.</summary>
        public void ClearProxy() { SetProxy(null); }
        /// <summary>The proxy settings (source, the stored setting without its password, environment); any thread
        /// but a mailconnect callback. Throws MC_E_STORE when the stored setting cannot be opened (another key).</summary>
        public ProxyInfo GetProxy() { IntPtr o; Native.Check(Native.mc_proxy_get(_h, out o)); return ProxyInfo.FromJson(Native.Take(o)); }
        /// <summary>Insert or update an account (JSON); an invalid field throws MC_E_INVALID_ARGUMENT naming it.</summary>
        public void PutAccount(string json) { Native.Check(Native.mc_account_put(_h, Native.Utf8(json))); }
        /// <summary>Remove an account and its tokens.</summary>
        public void RemoveAccount(string id) { Native.Check(Native.mc_account_remove(_h, Native.Utf8(id))); }
        /// <summary>The account as JSON.</summary>
        public string Account(string id) { IntPtr o; Native.Check(Native.mc_account_get(_h, Native.Utf8(id), out o)); return Native.Take(o); }
        /// <summary>All accounts as a JSON array.</summary>
        public string Accounts() { IntPtr o; Native.Check(Native.mc_account_list(_h, out o)); return Native.Take(o); }
        /// <summary>The status JSON (state, expiry, identity); never contacts a server.</summary>
        public string Status(string id) { IntPtr o; Native.Check(Native.mc_account_status_get(_h, Native.Utf8(id), out o)); return Native.Take(o); }

        /// <summary>Forget the tokens (revoking them where the provider offers it). Idempotent. Cancelled before the
        /// tokens are deleted, it throws MC_E_CANCELLED and changes nothing; cancelled during the revocation, it stops
        /// waiting for the provider and succeeds.</summary>
        public void Disconnect(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
                Native.Check(Native.mc_account_disconnect(_h, Native.Utf8(id), c));
        }

        /// <summary>Disconnect on a worker thread.</summary>
        public Task DisconnectAsync(string id, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Disconnect(id, ct));
        }

        /// <summary>A valid access token (refreshed ahead of expiry; one token serves IMAP, POP3 and SMTP). A secret:
        /// never log it. The token cancels a refresh in progress (the stored tokens stay as they were).</summary>
        public string AccessToken(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_token_get(_h, Native.Utf8(id), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>AccessToken on a worker thread.</summary>
        public Task<string> AccessTokenAsync(string id, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => AccessToken(id, ct));
        }

        /// <summary>The SASL XOAUTH2 initial response (base64) for your own mail code. A secret.</summary>
        public string SaslXoauth2(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_sasl_xoauth2_get(_h, Native.Utf8(id), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>A Microsoft Graph access token (audience https://graph.microsoft.com) for the host's own Graph
        /// calls, minted from the account's refresh token and refreshed like the mail token. A secret: never log it.
        /// Microsoft registrations only (else MC_E_INVALID_ARGUMENT); missing consent for Graph's Mail.Send /
        /// Mail.ReadWrite throws with a diagnostic that says which.</summary>
        public string GraphToken(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_graph_token_get(_h, Native.Utf8(id), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>GraphToken on a worker thread.</summary>
        public Task<string> GraphTokenAsync(string id, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => GraphToken(id, ct));
        }

        // ---- the log (process-wide) ----

        private static readonly object LogGate = new object();
        /// <summary>The delegate mailconnect calls: referenced here for as long as it is registered.</summary>
        private static Native.LogFn _logFn;
        private static bool _logExitHooked;

        /// <summary>Receive mailconnect's log records at or above maxLevel as callback(level, target, message); a null
        /// callback or LogLevel.Off stops it. Process-wide (every client); replaces the previous callback and returns
        /// after calls of the previous one in progress have returned. The callback runs on the thread that logs (often
        /// a mailconnect thread), possibly on several at once; it must not call into mailconnect. Exceptions thrown by
        /// it are caught and traced. Records never contain tokens, codes or secrets.</summary>
        public static void SetLogCallback(Action<LogLevel, string, string> callback, LogLevel maxLevel = LogLevel.Info)
        {
            lock (LogGate)
            {
                Native.LogFn fn = null;
                if (callback != null && maxLevel != LogLevel.Off)
                {
                    fn = (ud, level, target, message) =>
                    {
                        try { callback((LogLevel)level, Native.FromUtf8(target), Native.FromUtf8(message)); }
                        catch (Exception e)
                        {
                            try { Trace.TraceError("mailconnect log callback failed: {0}", e.Message); } catch { }
                        }
                    };
                }
                Native.Check(Native.mc_log_callback_set(fn, IntPtr.Zero, (int)maxLevel));
                // mailconnect no longer calls the previous delegate: it may be collected now.
                _logFn = fn;
                if (fn != null && !_logExitHooked)
                {
                    // No call into managed code while the runtime shuts down.
                    AppDomain.CurrentDomain.ProcessExit += (s, e) =>
                    {
                        lock (LogGate)
                        {
                            if (_logFn != null) Native.mc_log_callback_set(null, IntPtr.Zero, 0);
                            _logFn = null;
                        }
                    };
                    _logExitHooked = true;
                }
            }
        }

        // ---- the background refresher ----

        private static byte[] OptionsOf(RefresherOptions options)
        {
            return options == null ? null : Native.Utf8(options.ToJson());
        }

        /// <summary>Keep every connected account's access token fresh in the background, on the client's own threads,
        /// until StopRefresher or Dispose. Returns at once; MC_E_STATE when it already runs. An account that needs
        /// re-authorization is reported at once as a NeedsReauthorization event.</summary>
        public void StartRefresher(RefresherOptions options = null)
        {
            Native.Check(Native.mc_refresher_start(_h, OptionsOf(options)));
        }

        /// <summary>Stop the background refresher (stopping a stopped one succeeds). Returns at once.</summary>
        public void StopRefresher()
        {
            Native.Check(Native.mc_refresher_stop(_h));
        }

        /// <summary>Run one refresher round now, on the calling thread (for a host with its own timer, e.g. a Windows
        /// service's): refresh every account that is due under options.</summary>
        public RefreshReport RunRefresher(RefresherOptions options = null, CancellationToken ct = default(CancellationToken))
        {
            var json = OptionsOf(options);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_refresher_run(_h, json, c, out o));
                return RefreshReport.FromJson(Native.Take(o));
            }
        }

        /// <summary>RunRefresher on a worker thread.</summary>
        public Task<RefreshReport> RunRefresherAsync(RefresherOptions options = null, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => RunRefresher(options, ct));
        }

        private static CancelHandle NativeCancel(CancellationToken ct, out CancellationTokenRegistration reg)
        {
            CancelHandle c;
            Native.Check(Native.mc_cancel_new(out c));
            var captured = c;
            reg = ct.Register(() => Native.mc_cancel_trigger(captured));
            return c;
        }

        /// <summary>mc_connect_callbacks over the host's delegates (Connect, AdminRegister, AdminCheck). Exceptions
        /// in the delegates are swallowed (they cannot cross the C boundary). The function pointers stay valid
        /// while this object is reachable: GC.KeepAlive it after the native call.</summary>
        private sealed class HostCallbacks
        {
            private readonly Native.DeviceCodeFn _device;
            private readonly Native.OpenUrlFn _open;
            private readonly Native.ProgressFn _progress;
            /// <summary>The struct to pass by reference.</summary>
            internal Native.Callbacks Value;

            internal HostCallbacks(Action<string, string, string> onDeviceCode, Func<string, bool> onOpenUrl, Action<string> onProgress)
            {
                _device = (ud, code, uri, msg) =>
                {
                    try { if (onDeviceCode != null) onDeviceCode(Native.FromUtf8(code), Native.FromUtf8(uri), Native.FromUtf8(msg)); } catch { }
                };
                _open = (ud, url) =>
                {
                    try { return onOpenUrl != null && onOpenUrl(Native.FromUtf8(url)) ? 1 : 0; } catch { return 0; }
                };
                _progress = (ud, stage) =>
                {
                    try { if (onProgress != null) onProgress(Native.FromUtf8(stage)); } catch { }
                };
                Value = new Native.Callbacks
                {
                    Version = 1,
                    UserData = IntPtr.Zero,
                    OnOpenUrl = Marshal.GetFunctionPointerForDelegate(_open),
                    OnDeviceCode = Marshal.GetFunctionPointerForDelegate(_device),
                    OnProgress = Marshal.GetFunctionPointerForDelegate(_progress),
                };
            }
        }

        /// <summary>Authorize the account. Callbacks run on a mailconnect thread (marshal to the UI yourself);
        /// onOpenUrl returns true when the host showed the page itself.</summary>
        public void Connect(string id, Action<string, string, string> onDeviceCode = null, Func<string, bool> onOpenUrl = null,
                            Action<string> onProgress = null, CancellationToken ct = default(CancellationToken))
        {
            // The delegates must stay alive for the whole native call.
            var cb = new HostCallbacks(onDeviceCode, onOpenUrl, onProgress);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                int rc = Native.mc_account_connect(_h, Native.Utf8(id), ref cb.Value, c);
                GC.KeepAlive(cb);
                Native.Check(rc);
            }
        }

        /// <summary>Connect on a worker thread; the token cancels it.</summary>
        public Task ConnectAsync(string id, Action<string, string, string> onDeviceCode = null, Func<string, bool> onOpenUrl = null,
                                 Action<string> onProgress = null, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Connect(id, onDeviceCode, onOpenUrl, onProgress, ct));
        }

        /// <summary>The Test report JSON (schema 1).</summary>
        public string Test(string id, Protocols protocols = Protocols.All, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_account_test(_h, Native.Utf8(id), (uint)protocols, c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Test on a worker thread.</summary>
        public Task<string> TestAsync(string id, Protocols protocols = Protocols.All, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Test(id, protocols, ct));
        }

        // ---- tenant setup (a vendor's setup wizard) ----

        /// <summary>Create the app registration mailconnect needs through Microsoft Graph with one administrator
        /// sign-in to the vendor's setup registration (mc_admin_register), store it and read it back. optionsJson:
        /// {"setup_registration": "...", "registration_id": "...", "display_name", "flow": "browser" | "device_code",
        /// "login_hint", "graph": bool, "app_only": bool, "secret_days": 1..730, "replace": bool} (the first two
        /// required). The callbacks are Connect's: they run on a mailconnect thread (marshal to the UI yourself);
        /// none given = the system browser. Returns the report JSON: tenant_id, tenant_name, client_id,
        /// registration_id, app_registration_id, secret_expires, steps, exchange_steps and findings (empty when
        /// everything is as needed); the client secret is stored sealed and is in no output. Blocks; not from a
        /// mailconnect callback. Throws MailconnectException: MC_E_INVALID_ARGUMENT (options, an existing
        /// registration id without "replace"), MC_E_NOT_FOUND (the setup registration), MC_E_AUTHORIZATION_DENIED
        /// (declined, or too few rights: diagnostic code MC-SETUP-INSUFFICIENT-PRIVILEGES),
        /// MC_E_PROVIDER_CONFIGURATION, MC_E_TIMEOUT, MC_E_CANCELLED, MC_E_NETWORK, MC_E_TLS,
        /// MC_E_PROVIDER_UNAVAILABLE, MC_E_STORE.</summary>
        public string AdminRegister(string optionsJson, Action<string, string, string> onDeviceCode = null, Func<string, bool> onOpenUrl = null,
                                    Action<string> onProgress = null, CancellationToken ct = default(CancellationToken))
        {
            // The delegates must stay alive for the whole native call.
            var cb = new HostCallbacks(onDeviceCode, onOpenUrl, onProgress);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                int rc = Native.mc_admin_register(_h, Native.Utf8(optionsJson), ref cb.Value, c, out o);
                GC.KeepAlive(cb);
                Native.Check(rc);
                return Native.Take(o);
            }
        }

        /// <summary>AdminRegister on a worker thread; the token cancels it.</summary>
        public Task<string> AdminRegisterAsync(string optionsJson, Action<string, string, string> onDeviceCode = null, Func<string, bool> onOpenUrl = null,
                                               Action<string> onProgress = null, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => AdminRegister(optionsJson, onDeviceCode, onOpenUrl, onProgress, ct));
        }

        /// <summary>Read the stored registration registrationId back through Microsoft Graph (an administrator signs
        /// in to the setup registration; mc_admin_check) and report every deviation from what mailconnect needs, each
        /// with the catalog code the sign-in would fail with. optionsJson: {"setup_registration": "...", "flow",
        /// "login_hint", "graph": bool, "app_only": bool}. Callbacks as for AdminRegister. Returns the report JSON:
        /// registration_id, client_id, tenant_id, display_name, graph, app_only, findings (errors first) and ok;
        /// deviations are in the report, not thrown. Throws as AdminRegister, and MC_E_NOT_FOUND for an unknown
        /// registrationId.</summary>
        public string AdminCheck(string registrationId, string optionsJson, Action<string, string, string> onDeviceCode = null,
                                 Func<string, bool> onOpenUrl = null, Action<string> onProgress = null,
                                 CancellationToken ct = default(CancellationToken))
        {
            var cb = new HostCallbacks(onDeviceCode, onOpenUrl, onProgress);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                int rc = Native.mc_admin_check(_h, Native.Utf8(registrationId), Native.Utf8(optionsJson), ref cb.Value, c, out o);
                GC.KeepAlive(cb);
                Native.Check(rc);
                return Native.Take(o);
            }
        }

        /// <summary>AdminCheck on a worker thread; the token cancels it.</summary>
        public Task<string> AdminCheckAsync(string registrationId, string optionsJson, Action<string, string, string> onDeviceCode = null,
                                            Func<string, bool> onOpenUrl = null, Action<string> onProgress = null,
                                            CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => AdminCheck(registrationId, optionsJson, onDeviceCode, onOpenUrl, onProgress, ct));
        }

        /// <summary>Send a ready RFC 5322 message over SMTP (envelope from the header; Bcc removed). To have
        /// mailconnect build the message and choose the transport, use SendMessage.</summary>
        public void Send(string id, byte[] rfc5322, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
                Native.Check(Native.mc_mail_send(_h, Native.Utf8(id), rfc5322, (UIntPtr)rfc5322.Length, c));
        }

        /// <summary>Send on a worker thread.</summary>
        public Task SendAsync(string id, byte[] rfc5322, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Send(id, rfc5322, ct));
        }

        /// <summary>Build the message and send it over the account's transport: SMTP, Microsoft Graph, or "auto"
        /// (SMTP until the server says SMTP AUTH is disabled, then Graph). Sent at most once. A bad message throws
        /// MC_E_INVALID_ARGUMENT before anything is sent; the diagnostic's evidence.field names the field ("to"
        /// without recipients, "attachments[1].path", ...).</summary>
        public SendResult SendMessage(string id, MessageSpec message, CancellationToken ct = default(CancellationToken))
        {
            if (message == null) throw new ArgumentNullException("message");
            var json = Native.Utf8(message.ToJson());
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_message_send(_h, Native.Utf8(id), json, c, out o));
                return SendResult.FromJson(Native.Take(o));
            }
        }

        /// <summary>SendMessage on a worker thread.</summary>
        public Task<SendResult> SendMessageAsync(string id, MessageSpec message, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => SendMessage(id, message, ct));
        }

        /// <summary>Folders as JSON.</summary>
        public string Folders(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_folder_list(_h, Native.Utf8(id), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Messages as JSON (raw is base64); queryJson may be null. Query fields (all optional): protocol
        /// ("imap"/"pop3"), folder, uid_from, uid_to, since ("YYYY-MM-DD"), headers_only, limit, mark_seen,
        /// unread_only, transport ("graph" to read over Microsoft Graph, "smtp_imap" for IMAP/POP3).</summary>
        public string Fetch(string id, string queryJson = null, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_mail_fetch(_h, Native.Utf8(id), Native.Utf8(queryJson), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Fetch on a worker thread.</summary>
        public Task<string> FetchAsync(string id, string queryJson = null, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Fetch(id, queryJson, ct));
        }
    
        // ---- the host's own sign-in window ----

        /// <summary>Begin a sign-in the host shows itself. flow: "browser" or "device" (null: the account's).
        /// redirectUri (browser flow): a loopback URI (mailconnect listens; default the registration's) or a
        /// registered URI your web view intercepts, such as https://login.microsoftonline.com/common/oauth2/nativeclient.</summary>
        public Authorization BeginAuthorization(string accountId, string flow = null, string redirectUri = null,
                                                CancellationToken ct = default(CancellationToken))
        {
            string options = null;
            if (flow != null || redirectUri != null)
            {
                var parts = new List<string>();
                if (flow != null) parts.Add("\"flow\":" + JsonFields.Quote(flow));
                if (redirectUri != null) parts.Add("\"redirect_uri\":" + JsonFields.Quote(redirectUri));
                options = "{" + string.Join(",", parts.ToArray()) + "}";
            }
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_authorization_begin(_h, Native.Utf8(accountId), Native.Utf8(options), c, out o));
                return Authorization.FromJson(Native.Take(o));
            }
        }

        private static byte[] HandleOf(Authorization authorization)
        {
            if (authorization == null) throw new ArgumentNullException("authorization");
            return Native.Utf8(authorization.Handle);
        }

        /// <summary>Finish a browser sign-in with the redirect your web view captured (the full URL, its query, or the
        /// code); returns the account's status JSON. A URL of another sign-in or redirect URI throws MC_E_STATE and the
        /// sign-in stays pending; an error redirect ends it with the provider's diagnostic.</summary>
        public string CompleteAuthorization(Authorization authorization, string redirect, CancellationToken ct = default(CancellationToken))
        {
            var handle = HandleOf(authorization);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_authorization_complete(_h, handle, Native.Utf8(redirect), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Check a device-code sign-in once (no request to the provider before its interval has passed).</summary>
        public PollResult PollAuthorization(Authorization authorization, CancellationToken ct = default(CancellationToken))
        {
            var handle = HandleOf(authorization);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_authorization_poll(_h, handle, c, out o));
                return PollResult.FromJson(Native.Take(o));
            }
        }

        /// <summary>Block until the sign-in finishes (the loopback redirect arrives, or the device code is entered);
        /// returns the account's status JSON. Cancelled, the sign-in stays pending.</summary>
        public string WaitAuthorization(Authorization authorization, CancellationToken ct = default(CancellationToken))
        {
            var handle = HandleOf(authorization);
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_authorization_wait(_h, handle, c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>WaitAuthorization on a worker thread.</summary>
        public Task<string> WaitAuthorizationAsync(Authorization authorization, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => WaitAuthorization(authorization, ct));
        }

        /// <summary>Abandon a pending sign-in (the user closed the window); its handle is refused afterwards.</summary>
        public void AbortAuthorization(Authorization authorization)
        {
            Native.Check(Native.mc_authorization_abort(_h, HandleOf(authorization)));
        }

        // ---- events ----

        /// <summary>Raised for every event while the worker runs (StartEvents), on the worker thread, or posted to the
        /// SynchronizationContext given to StartEvents. Subscribe before starting. Exceptions thrown by handlers are
        /// caught (and traced) so the worker keeps running.</summary>
        public event EventHandler<MailconnectEventArgs> EventReceived;

        /// <summary>Size the event queue (2..100000; default 1024) and turn log records at or above logLevel ("error",
        /// "warn", "info", "debug", "trace"; default "off") into Log events. Null keeps the default.</summary>
        public void ConfigureEvents(int? capacity = null, string logLevel = null)
        {
            var parts = new List<string>();
            if (capacity.HasValue) parts.Add("\"capacity\":" + capacity.Value.ToString(CultureInfo.InvariantCulture));
            if (logLevel != null) parts.Add("\"log_level\":" + JsonFields.Quote(logLevel));
            Native.Check(Native.mc_events_configure(_h, Native.Utf8("{" + string.Join(",", parts.ToArray()) + "}")));
        }

        /// <summary>Take the next event, waiting up to timeout (TimeSpan.Zero: do not wait; Timeout.InfiniteTimeSpan:
        /// until one arrives or the client is disposed). Null when none came in time or the client was disposed
        /// meanwhile. While the worker runs (StartEvents), events go to whichever of the two takes them first.</summary>
        public MailconnectEvent NextEvent(TimeSpan timeout)
        {
            if (_disposed) throw new ObjectDisposedException("Client");
            bool forever = timeout == Timeout.InfiniteTimeSpan;
            var deadline = DateTime.UtcNow + (forever || timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout);
            while (true)
            {
                int ms = forever ? EventSliceMs : (int)Math.Max(0, Math.Min(EventSliceMs, (deadline - DateTime.UtcNow).TotalMilliseconds));
                var ev = NextEventSlice(ms);
                if (ev != null) return ev;
                if (_disposed || (!forever && DateTime.UtcNow >= deadline)) return null;
            }
        }

        /// <summary>NextEvent on a worker thread.</summary>
        public Task<MailconnectEvent> NextEventAsync(TimeSpan timeout)
        {
            return Task.Run(() => NextEvent(timeout));
        }

        private MailconnectEvent NextEventSlice(int ms)
        {
            IntPtr o;
            try
            {
                Native.Check(Native.mc_events_next(_h, ms, out o));
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            return o == IntPtr.Zero ? null : MailconnectEvent.FromJson(Native.Take(o));
        }

        /// <summary>Start the background worker that takes events (mc_events_next) and raises EventReceived: on the
        /// worker thread, or posted to context (e.g. SynchronizationContext.Current on a WinForms/WPF UI thread).
        /// Idempotent. Dispose stops it.</summary>
        public void StartEvents(SynchronizationContext context = null)
        {
            if (_disposed) throw new ObjectDisposedException("Client");
            lock (_eventsGate)
            {
                if (_worker != null) return;
                var w = new EventWorker { Context = context };
                w.Thread = new Thread(() => EventLoop(w)) { IsBackground = true, Name = "mailconnect events" };
                _worker = w;
                w.Thread.Start();
            }
        }

        /// <summary>Stop the worker and wait for it (at most a quarter second plus a running handler). From a handler
        /// on the worker thread it only asks the worker to stop.</summary>
        public void StopEvents()
        {
            EventWorker w;
            lock (_eventsGate)
            {
                w = _worker;
                _worker = null;
            }
            if (w == null) return;
            w.Stop = true;
            if (Thread.CurrentThread != w.Thread) w.Thread.Join();
        }

        /// <summary>Whether the event worker runs.</summary>
        public bool EventsRunning { get { lock (_eventsGate) return _worker != null; } }

        private void EventLoop(EventWorker w)
        {
            while (!w.Stop)
            {
                MailconnectEvent ev;
                try
                {
                    ev = NextEventSlice(EventSliceMs);
                }
                catch (Exception e)
                {
                    try { Trace.TraceError("mailconnect event worker: {0}", e.Message); } catch { }
                    Thread.Sleep(EventSliceMs);
                    continue;
                }
                if (ev == null) continue;
                var handler = EventReceived;
                if (handler == null) continue;
                if (w.Context != null) w.Context.Post(_ => Raise(handler, ev), null);
                else Raise(handler, ev);
            }
        }

        private void Raise(EventHandler<MailconnectEventArgs> handler, MailconnectEvent ev)
        {
            try { handler(this, new MailconnectEventArgs(ev)); }
            catch (Exception e)
            {
                try { Trace.TraceError("mailconnect EventReceived handler failed: {0}", e); } catch { }
            }
        }
    }
}
