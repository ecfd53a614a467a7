// mailconnect for .NET: C# 7 source over the C ABI (include/mailconnect.h). Compiles with Mono's
// mcs and runs on Mono and .NET 8. One SafeHandle per native object; failures throw
// MailconnectException with Code, Status and the Diagnostic JSON; Task wrappers take a
// CancellationToken that triggers the native mc_cancel.
using System;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Mailconnect
{
    /// <summary>A failed mailconnect call.</summary>
    public sealed class MailconnectException : Exception
    {
        /// <summary>The negative status code (MC_E_*).</summary>
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
        internal const uint AbiVersion = 1;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int OpenUrlFn(IntPtr userData, IntPtr url);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void DeviceCodeFn(IntPtr userData, IntPtr userCode, IntPtr verificationUri, IntPtr message);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void ProgressFn(IntPtr userData, IntPtr stage);

        [StructLayout(LayoutKind.Sequential)]
        internal struct Callbacks
        {
            public uint Version;
            public IntPtr UserData;
            public IntPtr OnOpenUrl;
            public IntPtr OnDeviceCode;
            public IntPtr OnProgress;
        }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern uint mc_abi_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_status_name(int code);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_last_error_code();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_last_error_message();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr mc_last_error_diagnostic();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_string_free(IntPtr s);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_client_open(byte[] optionsJson, out ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_client_free(IntPtr client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_registration_put(ClientHandle c, byte[] json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_put(ClientHandle c, byte[] json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_get(ClientHandle c, byte[] id, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_list(ClientHandle c, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_account_remove(ClientHandle c, byte[] id);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_status(ClientHandle c, byte[] id, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_connect(ClientHandle c, byte[] id, ref Callbacks cb, CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_disconnect(ClientHandle c, byte[] id);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_test(ClientHandle c, byte[] id, uint protocols, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_access_token(ClientHandle c, byte[] id, uint protocol, out IntPtr token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_sasl_xoauth2(ClientHandle c, byte[] id, uint protocol, out IntPtr sasl);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_send(ClientHandle c, byte[] id, byte[] msg, UIntPtr len, CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_list_folders(ClientHandle c, byte[] id, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_fetch(ClientHandle c, byte[] id, byte[] query, CancelHandle cancel, out IntPtr json);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int mc_cancel_new(out CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_cancel_trigger(CancelHandle cancel);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void mc_cancel_free(IntPtr cancel);

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

        internal static void Check(int rc)
        {
            if (rc == 0) return;
            throw new MailconnectException(rc, FromUtf8(mc_status_name(rc)), FromUtf8(mc_last_error_message()), FromUtf8(mc_last_error_diagnostic()));
        }
    }

    /// <summary>The native client (released with mc_client_free).</summary>
    public sealed class ClientHandle : SafeHandle
    {
        /// <summary>An empty handle (filled by mc_client_open).</summary>
        public ClientHandle() : base(IntPtr.Zero, true) { }
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

    /// <summary>A mailconnect client over one token store. Thread-safe; calls block (use the *Async wrappers in UIs).</summary>
    public sealed class Client : IDisposable
    {
        static Client()
        {
            uint abi = Native.mc_abi_version();
            if (abi != Native.AbiVersion)
                throw new InvalidOperationException("libmailconnect has ABI version " + abi + ", this binding needs " + Native.AbiVersion);
        }

        private readonly ClientHandle _h;

        /// <summary>The library version.</summary>
        public static string Version { get { return Native.FromUtf8(Native.mc_version()); } }

        /// <summary>Open a client; optionsJson as in the README ("Client options").</summary>
        public Client(string optionsJson)
        {
            ClientHandle h;
            Native.Check(Native.mc_client_open(Native.Utf8(optionsJson), out h));
            _h = h;
        }

        /// <summary>Calls in progress on other threads end with MC_E_CANCELLED; then the client is freed.</summary>
        public void Dispose() { _h.Dispose(); }

        /// <summary>Insert or update an app registration (JSON; see the README).</summary>
        public void PutRegistration(string json) { Native.Check(Native.mc_registration_put(_h, Native.Utf8(json))); }
        /// <summary>Insert or update an account (JSON); an invalid field throws MC_E_INVALID_ARGUMENT naming it.</summary>
        public void PutAccount(string json) { Native.Check(Native.mc_account_put(_h, Native.Utf8(json))); }
        /// <summary>Remove an account and its tokens.</summary>
        public void RemoveAccount(string id) { Native.Check(Native.mc_account_remove(_h, Native.Utf8(id))); }
        /// <summary>The account as JSON.</summary>
        public string Account(string id) { IntPtr o; Native.Check(Native.mc_account_get(_h, Native.Utf8(id), out o)); return Native.Take(o); }
        /// <summary>All accounts as a JSON array.</summary>
        public string Accounts() { IntPtr o; Native.Check(Native.mc_account_list(_h, out o)); return Native.Take(o); }
        /// <summary>The status JSON (state, expiry, identity); never contacts a server.</summary>
        public string Status(string id) { IntPtr o; Native.Check(Native.mc_status(_h, Native.Utf8(id), out o)); return Native.Take(o); }
        /// <summary>Forget the tokens. Idempotent.</summary>
        public void Disconnect(string id) { Native.Check(Native.mc_disconnect(_h, Native.Utf8(id))); }
        /// <summary>A valid access token (refreshed ahead of expiry). A secret: never log it.</summary>
        public string AccessToken(string id) { IntPtr o; Native.Check(Native.mc_access_token(_h, Native.Utf8(id), 0, out o)); return Native.Take(o); }
        /// <summary>The SASL XOAUTH2 initial response (base64) for your own mail code.</summary>
        public string SaslXoauth2(string id) { IntPtr o; Native.Check(Native.mc_sasl_xoauth2(_h, Native.Utf8(id), 0, out o)); return Native.Take(o); }

        private static CancelHandle NativeCancel(CancellationToken ct, out CancellationTokenRegistration reg)
        {
            CancelHandle c;
            Native.Check(Native.mc_cancel_new(out c));
            var captured = c;
            reg = ct.Register(() => Native.mc_cancel_trigger(captured));
            return c;
        }

        /// <summary>Authorize the account. Callbacks run on a mailconnect thread (marshal to the UI yourself);
        /// onOpenUrl returns true when the host showed the page itself.</summary>
        public void Connect(string id, Action<string, string, string> onDeviceCode = null, Func<string, bool> onOpenUrl = null,
                            Action<string> onProgress = null, CancellationToken ct = default(CancellationToken))
        {
            // The delegates must stay alive for the whole native call.
            Native.DeviceCodeFn device = (ud, code, uri, msg) =>
            {
                try { if (onDeviceCode != null) onDeviceCode(Native.FromUtf8(code), Native.FromUtf8(uri), Native.FromUtf8(msg)); } catch { }
            };
            Native.OpenUrlFn open = (ud, url) =>
            {
                try { return onOpenUrl != null && onOpenUrl(Native.FromUtf8(url)) ? 1 : 0; } catch { return 0; }
            };
            Native.ProgressFn progress = (ud, stage) =>
            {
                try { if (onProgress != null) onProgress(Native.FromUtf8(stage)); } catch { }
            };
            var cb = new Native.Callbacks
            {
                Version = 1,
                UserData = IntPtr.Zero,
                OnOpenUrl = Marshal.GetFunctionPointerForDelegate(open),
                OnDeviceCode = Marshal.GetFunctionPointerForDelegate(device),
                OnProgress = Marshal.GetFunctionPointerForDelegate(progress),
            };
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                int rc = Native.mc_connect(_h, Native.Utf8(id), ref cb, c);
                GC.KeepAlive(device); GC.KeepAlive(open); GC.KeepAlive(progress);
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
                Native.Check(Native.mc_test(_h, Native.Utf8(id), (uint)protocols, c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Test on a worker thread.</summary>
        public Task<string> TestAsync(string id, Protocols protocols = Protocols.All, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Test(id, protocols, ct));
        }

        /// <summary>Send a raw RFC 5322 message (envelope from the header; Bcc removed).</summary>
        public void Send(string id, byte[] rfc5322, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
                Native.Check(Native.mc_send(_h, Native.Utf8(id), rfc5322, (UIntPtr)rfc5322.Length, c));
        }

        /// <summary>Send on a worker thread.</summary>
        public Task SendAsync(string id, byte[] rfc5322, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Send(id, rfc5322, ct));
        }

        /// <summary>Folders as JSON.</summary>
        public string Folders(string id, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_list_folders(_h, Native.Utf8(id), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Messages as JSON (raw is base64); queryJson may be null.</summary>
        public string Fetch(string id, string queryJson = null, CancellationToken ct = default(CancellationToken))
        {
            CancellationTokenRegistration reg;
            using (var c = NativeCancel(ct, out reg))
            using (reg)
            {
                IntPtr o;
                Native.Check(Native.mc_fetch(_h, Native.Utf8(id), Native.Utf8(queryJson), c, out o));
                return Native.Take(o);
            }
        }

        /// <summary>Fetch on a worker thread.</summary>
        public Task<string> FetchAsync(string id, string queryJson = null, CancellationToken ct = default(CancellationToken))
        {
            return Task.Run(() => Fetch(id, queryJson, ct));
        }
    }
}
