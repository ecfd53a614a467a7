{ mailconnect for Delphi (2009+, Unicode strings) and Free Pascal ($mode delphi).
  A thin unit over the C ABI 2 in include/mailconnect.h and include/mailconnect_store.h: cdecl
  externals for every export, UTF8String conversions, EMailconnect with Code, Status and Diagnostic,
  TMailconnectClient with a destructor, TMailconnectCancel (mc_cancel) for every blocking call, the
  process-wide log callback (TMailconnectClient.SetLogCallback), and TMailconnectHostStore for hosts
  that keep mailconnect's records in their own database (mc_client_open_with_store).
  Callbacks run on mailconnect threads: never touch the VCL/LCL from them; post to the UI thread
  with TThread.Queue (see README.md). FPC programs must list cthreads first in their uses clause.
  Host integration: the host's own sign-in window (BeginAuthorization, then CompleteAuthorization,
  PollAuthorization or WaitAuthorization, or AbortAuthorization; results as records), events
  (NextEvent to pull, or TMcEventThread / StartEvents handing each event to the main thread with
  TThread.Queue), and the background refresher (StartRefresher / StopRefresher, or RunRefresher
  from the host's own timer). Mail: SendMessage builds a TMcMessage (addresses, umlaut subjects,
  attachments from files or bytes) and sends it over the account's transport (SMTP or Microsoft
  Graph); GraphToken hands out a Microsoft Graph access token for the host's own Graph calls.
  Network: SetProxy stores the proxy every connection takes (sealed with its password), ClearProxy
  removes it, GetProxy reads it back as a TMcProxyInfo without the password. Tenant setup for a
  vendor's setup wizard: AdminRegister creates the app registration through Microsoft Graph with
  one administrator sign-in, AdminCheck reads one back and reports what deviates. }
unit Mailconnect;

{$IFDEF FPC}{$MODE DELPHI}{$H+}{$PACKRECORDS C}{$ENDIF}

interface

uses
  SysUtils, Classes, SyncObjs;

const
{$IFDEF MSWINDOWS}
  { Win32 and Win64: the x86 or x64 mailconnect.dll (target/windows/<arch>/) beside the .exe; a 32-bit
    program loads the x86 DLL on 64-bit Windows too. Every external and callback type below is cdecl,
    as the C header's MC_CALL says: Delphi's default (register) or stdcall would break the stack on
    Win32. Strings cross as UTF-8 (UTF8String), never as AnsiString in the code page. }
  MailconnectLib = 'mailconnect.dll';
{$ELSE}
  MailconnectLib = 'libmailconnect.so';
{$ENDIF}
  MAILCONNECT_ABI = 2; { MC_ABI_VERSION in the C header: the library must report it (mc_abi_version_get) }
  { The release this unit ships with (MAILCONNECT_VERSION in the C header; the library's own is
    mc_version_get). ffi/dist/versions.py refuses to package when it differs from the workspace's. }
  MAILCONNECT_VERSION = '0.1.0';

  { Status codes (EMailconnect.Code). }
  MC_OK = 0;
  MC_E_INVALID_ARGUMENT = -1;
  MC_E_NULL_POINTER = -2;
  MC_E_INVALID_UTF8 = -3;
  MC_E_NOT_FOUND = -10;
  MC_E_STATE = -11;
  MC_E_REAUTHORIZATION_REQUIRED = -20;
  MC_E_PROVIDER_CONFIGURATION = -21;
  MC_E_AUTHORIZATION_DENIED = -22;
  MC_E_PROVIDER_UNAVAILABLE = -23;
  MC_E_NETWORK = -30;
  MC_E_TLS = -31;
  MC_E_MAIL_SERVER = -40;
  MC_E_STORE = -50;
  MC_E_CANCELLED = -60;
  MC_E_TIMEOUT = -61;
  MC_E_INTERNAL = -99;

  { Log levels (SetLogCallback). }
  MC_LOG_OFF = 0;
  MC_LOG_ERROR = 1;
  MC_LOG_WARN = 2;
  MC_LOG_INFO = 3;
  MC_LOG_DEBUG = 4;
  MC_LOG_TRACE = 5;

  { Test: protocol bits and the send probe. }
  MC_PROTO_IMAP = 1;
  MC_PROTO_POP3 = 2;
  MC_PROTO_SMTP = 4;
  MC_TEST_SEND_PROBE = $100;

  MC_CONNECT_CALLBACKS_VERSION = 1;

  { The host-owned store (mailconnect_store.h). }
  MC_STORE_CALLBACKS_VERSION = 1;
  MC_STORE_OK = 0;
  MC_STORE_NOT_FOUND = 1;
  MC_STORE_CONFLICT = 2;

type
  TMcOpenUrl = function(UserData: Pointer; Url: PAnsiChar): Int32; cdecl;
  TMcDeviceCode = procedure(UserData: Pointer; UserCode, VerificationUri, Message: PAnsiChar); cdecl;
  TMcProgress = procedure(UserData: Pointer; Stage: PAnsiChar); cdecl;

  TMcConnectCallbacks = record
    Version: UInt32;
    UserData: Pointer;
    OnOpenUrl: TMcOpenUrl;
    OnDeviceCode: TMcDeviceCode;
    OnProgress: TMcProgress;
  end;
  PMcConnectCallbacks = ^TMcConnectCallbacks;

  { mc_log_fn }
  TMcLogFn = procedure(UserData: Pointer; Level: Int32; Target, Message: PAnsiChar); cdecl;

  { mc_store_callbacks (mailconnect_store.h). Rec and List are the opaque mc_store_record and
    mc_store_list, valid during the callback only. }
  TMcStoreLoadFn = function(UserData: Pointer; Kind, Id: PAnsiChar; Rec: Pointer): Int32; cdecl;
  TMcStoreCompareAndSwapFn = function(UserData: Pointer; Kind, Id: PAnsiChar; Data: PByte; Len: NativeUInt;
    ExpectedVersion, NewVersion: Int64): Int32; cdecl;
  TMcStoreRemoveFn = function(UserData: Pointer; Kind, Id: PAnsiChar): Int32; cdecl;
  TMcStoreListFn = function(UserData: Pointer; Kind: PAnsiChar; List: Pointer): Int32; cdecl;

  TMcStoreCallbacks = record
    Version: UInt32;
    UserData: Pointer;
    Load: TMcStoreLoadFn;
    CompareAndSwap: TMcStoreCompareAndSwapFn;
    Remove: TMcStoreRemoveFn;
    List: TMcStoreListFn;
  end;
  PMcStoreCallbacks = ^TMcStoreCallbacks;

  { A failed call: Code (negative MC_E_*), Status (its name), Diagnostic (JSON: catalog code,
    en/de title, explanation and fix, evidence). }
  EMailconnect = class(Exception)
  public
    Code: Int32;
    Status: string;
    Diagnostic: string;
  end;

  TOpenUrlEvent = function(const Url: string): Boolean of object;
  TDeviceCodeEvent = procedure(const UserCode, VerificationUri, Message: string) of object;
  TProgressEvent = procedure(const Stage: string) of object;
  { A log record: Level is MC_LOG_ERROR .. MC_LOG_TRACE, Target the module. }
  TMcLogEvent = procedure(Level: Integer; const Target, Message: string) of object;

  { A cancellation token (mc_cancel). Pass it to blocking calls; Trigger it from any thread to make
    them raise EMailconnect with Code MC_E_CANCELLED promptly. A triggered token stays triggered:
    calls started with it afterwards are cancelled too. Free it after the calls using it returned. }
  TMailconnectCancel = class
  private
    FHandle: Pointer;
  public
    constructor Create;
    destructor Destroy; override;
    procedure Trigger;
    property Handle: Pointer read FHandle;
  end;

  { One record of a host-owned store: its id within its kind, the opaque blob, the version. }
  TMcStoreRecord = record
    Id: string;
    Blob: TBytes;
    Version: Int64;
  end;
  TMcStoreRecords = array of TMcStoreRecord;

  { A host-owned store (include/mailconnect_store.h): mailconnect's registrations, accounts, tokens
    and refresh leases kept in the host's own database as opaque blobs, encrypted with the client's
    key. Records are identified by (Kind, Id); Kind is 'tokens', 'account', 'registration' or
    'lease'; versions are Int64, 0 is never used. Subclass it over your table and pass it to
    TMailconnectClient.Create(Options, Store). The methods run on mailconnect threads, possibly several
    at once: they must be thread-safe and must not call the client. Blobs have no size limit: keep
    every byte (BLOB, varbinary(max), bytea). An exception raised by a method fails the operation
    (MC_E_STORE); it never reaches mailconnect's threads. }
  TMailconnectHostStore = class
  public
    { The record's blob and version; False when there is none. }
    function Load(const Kind, Id: string; out Blob: TBytes; out Version: Int64): Boolean; virtual; abstract;
    { Atomically store Blob with NewVersion if the stored version is ExpectedVersion (0: the record
      must not exist yet); False on a conflict. E.g. UPDATE ... WHERE kind=? AND id=? AND version=?,
      or INSERT when ExpectedVersion is 0. }
    function CompareAndSwap(const Kind, Id: string; const Blob: TBytes; ExpectedVersion, NewVersion: Int64): Boolean; virtual; abstract;
    { Delete the record; False when there was none. }
    function Remove(const Kind, Id: string): Boolean; virtual; abstract;
    { Every record of the kind. }
    function List(const Kind: string): TMcStoreRecords; virtual; abstract;
  end;

  { A sign-in begun with BeginAuthorization: what the host shows. Browser flow: show Url; Loopback
    says whether mailconnect listens on RedirectUri (then WaitAuthorization) or the host's web view
    must capture the redirect (then CompleteAuthorization). Device flow (Flow = 'device_code'): show
    Message (or UserCode and VerificationUri), then PollAuthorization / WaitAuthorization. }
  TMcAuthorization = record
    Handle: string;
    AccountId: string;
    Flow: string;                    { 'browser' or 'device_code' }
    Url: string;                     { browser }
    RedirectUri: string;             { browser }
    Loopback: Boolean;               { browser }
    UserCode: string;                { device }
    VerificationUri: string;         { device }
    VerificationUriComplete: string; { device, when offered }
    Message: string;                 { device }
    IntervalSecs: Int64;             { device }
    ExpiresAt: string;               { RFC 3339 }
    ExpiresInSecs: Int64;
    Json: string;
  end;

  { One check of a device-code sign-in: Connected with the account's Status JSON, or pending (poll
    again after RetryAfterMs). }
  TMcPollResult = record
    Connected: Boolean;
    RetryAfterMs: Int64;
    Status: string;
  end;

  { What one refresher round did (RunRefresher), as counts of accounts. Failures of single accounts
    are also raised as events. }
  TMcRefreshReport = record
    Accounts: Int64;             { looked at }
    Fresh: Int64;                { connected, not due yet }
    Refreshed: Int64;            { by this round, or by another process meanwhile }
    Failed: Int64;               { transient; retried next round }
    NeedsReauthorization: Int64;
    BackingOff: Int64;           { their tenant backs off after a 429 }
    NotConnected: Int64;
    Json: string;
  end;

  { The proxy settings of a client (GetProxy). The path each connection takes is in Test's report
    ("path"). }
  TMcProxyInfo = record
    Source: string;       { where this client's proxy comes from: 'no_proxy_option', 'option',
                            'stored' (SetProxy) or 'environment' (HTTPS_PROXY, ALL_PROXY, NO_PROXY) }
    Stored: string;       { the stored setting's JSON, every password removed; '' when none }
    StoredUrl: string;    { its "url" without a password ('' when none or per protocol only) }
    HasPassword: Boolean; { whether the stored setting has a password (never returned) }
    Environment: Boolean; { whether proxy environment variables are set }
    Json: string;
  end;

  { An event of the client's queue. EventType: 'token_refreshed', 'needs_reauthorization',
    'reauthorization_due', 'connect_progress', 'state_changed', 'log' or 'events_dropped'; fields of
    other types are empty. }
  TMcEvent = record
    Seq: Int64;
    Time: string;        { RFC 3339 }
    EventType: string;
    AccountId: string;
    Stage: string;       { connect_progress }
    FromState: string;   { state_changed: not_connected, connected, needs_reauthorization, error }
    ToState: string;     { state_changed }
    Reason: string;      { needs_reauthorization }
    Diagnostic: string;  { needs_reauthorization: the diagnostic JSON }
    ExpiresAt: string;   { token_refreshed }
    At: string;          { reauthorization_due: when a new sign-in is needed (RFC 3339) }
    Code: string;        { reauthorization_due: the diagnostic to show (MC-NO-REFRESH-TOKEN) }
    Level: string;       { log }
    Target: string;      { log }
    Message: string;     { log }
    Count: Int64;        { events_dropped }
    Json: string;
  end;

  TMcEventHandler = procedure(const Event: TMcEvent) of object;

  { A mail address; Name '' = none (non-ASCII names are encoded as mail needs). McAddress makes one. }
  TMcAddress = record
    Address: string;
    Name: string;
  end;
  TMcAddresses = array of TMcAddress;

  { An attachment: a file (Path, read by mailconnect while sending) or bytes (Content, when Path is
    ''). FileName is what the recipient sees ('' = the file's name); ContentType '' =
    application/octet-stream; with a ContentId it is an inline part the HTML body shows as
    cid:ContentId. McFileAttachment and McBytesAttachment make one. }
  TMcAttachment = record
    Path: string;
    Content: TBytes;
    FileName: string;
    ContentType: string;
    ContentId: string;
  end;
  TMcAttachments = array of TMcAttachment;

  { An extra header (X-Invoice-Number: 42). }
  TMcHeader = record
    Name: string;
    Value: string;
  end;
  TMcHeaders = array of TMcHeader;

  { The Importance and X-Priority headers Outlook writes; Normal: none. }
  TMcImportance = (mcImportanceNormal, mcImportanceLow, mcImportanceHigh);

  { A message for SendMessage; mailconnect builds the MIME (non-ASCII subjects, names and file
    names encoded as mail needs). Start from McNewMessage (every field cleared), then add with
    McAdd / McAddHeader. At least one recipient (Recipients, Cc or Bcc). }
  TMcMessage = record
    From: TMcAddress;          { Address '' = the account's mailbox }
    Recipients: TMcAddresses;  { To (a Pascal keyword) }
    Cc: TMcAddresses;
    Bcc: TMcAddresses;
    ReplyTo: TMcAddresses;
    Subject: string;
    Text: string;              { the plain-text body; '' = none }
    Html: string;              { the HTML body; '' = none }
    Attachments: TMcAttachments;
    Headers: TMcHeaders;
    Importance: TMcImportance;
    ReadReceipt: Boolean;      { Disposition-Notification-To the sender }
  end;

  { What SendMessage did. }
  TMcSendResult = record
    Transport: string;  { 'smtp' or 'graph': what carried the message }
    MessageId: string;  { the Message-ID, <...@...> }
    Reply: string;      { the server's acceptance }
    Size: Int64;        { bytes sent }
    Json: string;
  end;

  TMailconnectClient = class;

  { A thread that loops on mc_events_next and hands every event to Handler: with QueueToMainThread
    (the default) through TThread.Queue, so Handler runs on the main thread (the VCL/LCL's; a console
    program must call CheckSynchronize), else on this thread. It waits in slices of 250 ms, so
    Terminate + WaitFor (or Free) return promptly; free it before its client. }
  TMcEventThread = class(TThread)
  private
    FClient: TMailconnectClient;
    FHandler: TMcEventHandler;
    FQueue: Boolean;
  protected
    procedure Execute; override;
  public
    constructor Create(Client: TMailconnectClient; Handler: TMcEventHandler; QueueToMainThread: Boolean = True);
  end;

  { A mailconnect client over one token store. Thread-safe; calls block. Every call that goes to the
    network takes an optional TMailconnectCancel (nil = none). }
  TMailconnectClient = class
  private
    FHandle: Pointer;
    FStore: TMailconnectHostStore;
    FOwnsStore: Boolean;
    FOnOpenUrl: TOpenUrlEvent;
    FOnDeviceCode: TDeviceCodeEvent;
    FOnProgress: TProgressEvent;
    FEvents: TMcEventThread;
    function TakeString(P: PAnsiChar): string;
    { mc_connect_callbacks over OnOpenUrl/OnDeviceCode/OnProgress (Connect, AdminRegister, AdminCheck). }
    function ConnectCallbacks: TMcConnectCallbacks;
  public
    (* A client on mailconnect's own store: OptionsJson as mc_client_open ('{"store": PATH, ...}'). *)
    constructor Create(const OptionsJson: string); overload;
    { A client whose records live in the host's own database, through Store. OptionsJson as
      mc_client_open without "store"; "key" is required (it encrypts every blob). Store must stay
      alive until the client is freed; with OwnsStore the client frees it (also when this fails). }
    constructor Create(const OptionsJson: string; Store: TMailconnectHostStore; OwnsStore: Boolean = False); overload;
    destructor Destroy; override;
    { The library's version, e.g. '0.1.0'. }
    class function Version: string;
    { Receive mailconnect's log records at or above MaxLevel (MC_LOG_ERROR .. MC_LOG_TRACE); a nil
      Handler or MC_LOG_OFF stops it. Process-wide; replaces the previous handler and returns after
      calls of the previous one in progress have returned. Handler runs on the thread that logs
      (often a mailconnect thread), possibly on several at once: it must be thread-safe and must not
      call mailconnect; exceptions it raises are swallowed. Records never contain tokens or secrets. }
    class procedure SetLogCallback(Handler: TMcLogEvent; MaxLevel: Integer = MC_LOG_INFO);
    { App registrations. Secrets are stored encrypted and shown as "has_client_secret" only. }
    procedure PutRegistration(const Json: string);
    function Registration(const RegistrationId: string): string;
    function Registrations: string;
    { Refused with MC_E_STATE while accounts use it. }
    procedure RemoveRegistration(const RegistrationId: string);
    { Network. Store the proxy every connection takes (identity provider, Graph, IMAP, POP3, SMTP),
      sealed in the store with its password, and use it at once: in this client whatever it was
      opened with, and in every client opened later on the same store without a "proxy" or
      "no_proxy" option. Proxy is a URL ('http://user:password@host:3128', 'socks5://...',
      'socks5h://...'), 'direct', or a JSON object (url, https, imap, pop3, smtp, username,
      password, no_proxy). Blocks while the store is written; not from a mailconnect callback.
      Raises MC_E_INVALID_ARGUMENT (not a proxy; the message never repeats a password) or
      MC_E_STORE; then nothing is stored and the client keeps its path. }
    procedure SetProxy(const Proxy: string);
    { Remove the stored proxy: the client goes back to its options, else the environment. }
    procedure ClearProxy;
    { The proxy settings, without any password. Raises MC_E_STORE when the stored setting cannot be
      opened (another key). }
    function GetProxy: TMcProxyInfo;
    { Accounts (mailboxes). }
    procedure PutAccount(const Json: string);
    function Account(const AccountId: string): string;
    function Accounts: string;
    { Removes the account and its tokens. }
    procedure RemoveAccount(const AccountId: string);
    function Status(const AccountId: string): string;
    { Authorize; OnOpenUrl/OnDeviceCode/OnProgress are called on a mailconnect thread. }
    procedure Connect(const AccountId: string; Cancel: TMailconnectCancel = nil);
    { Forget the tokens; a Cancel triggered before they are deleted raises MC_E_CANCELLED and changes nothing. }
    procedure Disconnect(const AccountId: string; Cancel: TMailconnectCancel = nil);
    function Test(const AccountId: string; Protocols: UInt32 = 0; Cancel: TMailconnectCancel = nil): string;
    (* Tenant setup for a vendor's setup wizard (mc_admin_register): an administrator signs in once
      to the vendor's setup registration and mailconnect creates through Microsoft Graph the app
      registration it needs, stores it and reads it back. OptionsJson: '{"setup_registration":
      "...", "registration_id": "...", "display_name": "...", "flow": "browser"|"device_code",
      "login_hint": "...", "graph": b, "app_only": b, "secret_days": 1..730, "replace": b}' (the
      first two required). OnOpenUrl/OnDeviceCode/OnProgress are called as for Connect, on a
      mailconnect thread (unassigned: the system browser). Returns the report JSON: tenant_id,
      tenant_name, client_id, registration_id, app_registration_id, secret_expires, steps,
      exchange_steps and findings (empty when everything is as needed); the client secret is
      stored sealed and is in no output. Blocks; not from a mailconnect callback. Raises
      EMailconnect: MC_E_INVALID_ARGUMENT (options, an existing registration id without
      "replace"), MC_E_NOT_FOUND (the setup registration), MC_E_AUTHORIZATION_DENIED (declined, or
      too few rights: MC-SETUP-INSUFFICIENT-PRIVILEGES in the Diagnostic),
      MC_E_PROVIDER_CONFIGURATION, MC_E_TIMEOUT, MC_E_CANCELLED, MC_E_NETWORK, MC_E_TLS,
      MC_E_PROVIDER_UNAVAILABLE, MC_E_STORE. *)
    function AdminRegister(const OptionsJson: string; Cancel: TMailconnectCancel = nil): string;
    (* Read the stored registration RegistrationId back through Microsoft Graph (an administrator
      signs in to the setup registration; mc_admin_check) and report every deviation from what
      mailconnect needs, each with the catalog code the sign-in would fail with. OptionsJson:
      '{"setup_registration": "...", "flow": .., "login_hint": .., "graph": b, "app_only": b}'.
      Callbacks as for AdminRegister. Returns the report JSON: registration_id, client_id,
      tenant_id, display_name, graph, app_only, findings (errors first) and ok; deviations are in
      the report, not raised. Raises as AdminRegister, and MC_E_NOT_FOUND for an unknown
      RegistrationId. *)
    function AdminCheck(const RegistrationId, OptionsJson: string; Cancel: TMailconnectCancel = nil): string;
    { A valid access token (a refresh in progress ends with MC_E_CANCELLED when Cancel is triggered). }
    function AccessToken(const AccountId: string; Cancel: TMailconnectCancel = nil): string;
    function SaslXoauth2(const AccountId: string; Cancel: TMailconnectCancel = nil): string;
    { A Microsoft Graph access token (audience https://graph.microsoft.com) for the host's own Graph
      calls, refreshed like the mail token. A secret: never log it. Microsoft registrations only
      (else MC_E_INVALID_ARGUMENT); missing consent for Mail.Send / Mail.ReadWrite raises with a
      diagnostic that says which. }
    function GraphToken(const AccountId: string; Cancel: TMailconnectCancel = nil): string;
    { Build Message and send it over the account's transport: SMTP, Microsoft Graph, or 'auto'
      (SMTP until the server says SMTP AUTH is disabled, then Graph). Sent at most once. A bad
      message raises MC_E_INVALID_ARGUMENT before anything is sent; the Diagnostic's
      evidence.field names the field ('to' without recipients, 'attachments[1].path', ...). }
    function SendMessage(const AccountId: string; const Message: TMcMessage; Cancel: TMailconnectCancel = nil): TMcSendResult;
    { A ready RFC 5322 message over SMTP (envelope from the header; Bcc removed). }
    procedure Send(const AccountId: string; const Rfc5322: RawByteString; Cancel: TMailconnectCancel = nil);
    (* QueryJson '' = the defaults, else '{"protocol":"imap"|"pop3","folder":..,"uid_from":N,"uid_to":N,
      "since":"YYYY-MM-DD","headers_only":b,"limit":N,"mark_seen":b,"unread_only":b,
      "transport":"graph"|"smtp_imap"}' (any subset; "graph" reads over Microsoft Graph). *)
    function Fetch(const AccountId, QueryJson: string; Cancel: TMailconnectCancel = nil): string;
    function Folders(const AccountId: string; Cancel: TMailconnectCancel = nil): string;
    { The host's own sign-in window. Flow: 'browser', 'device' or '' (the account's). RedirectUri
      (browser): a loopback URI (mailconnect listens; '' = the registration's) or a registered URI
      the host's web view intercepts, such as https://login.microsoftonline.com/common/oauth2/nativeclient. }
    function BeginAuthorization(const AccountId: string; const Flow: string = ''; const RedirectUri: string = '';
      Cancel: TMailconnectCancel = nil): TMcAuthorization;
    { Finish a browser sign-in with the redirect URL the web view captured; returns the status JSON. }
    function CompleteAuthorization(const Auth: TMcAuthorization; const Redirect: string; Cancel: TMailconnectCancel = nil): string;
    { Check a device-code sign-in once. }
    function PollAuthorization(const Auth: TMcAuthorization; Cancel: TMailconnectCancel = nil): TMcPollResult;
    { Block until the sign-in finishes; returns the status JSON. }
    function WaitAuthorization(const Auth: TMcAuthorization; Cancel: TMailconnectCancel = nil): string;
    { Abandon a pending sign-in (the user closed the window). }
    procedure AbortAuthorization(const Auth: TMcAuthorization);
    { Queue size (2..100000; 0 = default 1024) and the level from which log records become
      events ('error' .. 'trace'; '' = off). }
    procedure ConfigureEvents(Capacity: Integer = 0; const LogLevel: string = '');
    { Take the next event, waiting up to TimeoutMs (0 = do not wait, negative = until one arrives).
      False when none came in time. }
    function NextEvent(TimeoutMs: Integer; out Event: TMcEvent): Boolean;
    { Start an owned TMcEventThread (see there); StopEvents or the destructor ends it. }
    procedure StartEvents(Handler: TMcEventHandler; QueueToMainThread: Boolean = True);
    procedure StopEvents;
    (* The background refresher, on the client's own threads until StopRefresher or Free. OptionsJson
      '' = the defaults, else '{"interval_secs":30,"ahead_secs":600,"jitter_secs":120,"concurrency":8,
      "backoff_min_secs":30,"backoff_max_secs":900}' (any subset). MC_E_STATE when it already runs. *)
    procedure StartRefresher(const OptionsJson: string = '');
    { Stopping a stopped refresher succeeds. }
    procedure StopRefresher;
    { One refresher round now, on the calling thread (a host with its own timer, e.g. a service's). }
    function RunRefresher(const OptionsJson: string = ''; Cancel: TMailconnectCancel = nil): TMcRefreshReport;
    property Handle: Pointer read FHandle;
    property OnOpenUrl: TOpenUrlEvent read FOnOpenUrl write FOnOpenUrl;
    property OnDeviceCode: TDeviceCodeEvent read FOnDeviceCode write FOnDeviceCode;
    property OnProgress: TProgressEvent read FOnProgress write FOnProgress;
  end;

{ include/mailconnect.h }
function mc_abi_version_get: UInt32; cdecl; external MailconnectLib;
function mc_version_get: PAnsiChar; cdecl; external MailconnectLib;
function mc_result_name_get(Code: Int32): PAnsiChar; cdecl; external MailconnectLib;
function mc_error_code_get: Int32; cdecl; external MailconnectLib;
function mc_error_message_get: PAnsiChar; cdecl; external MailconnectLib;
function mc_error_diagnostic_get: PAnsiChar; cdecl; external MailconnectLib;
function mc_cancel_new(out Cancel: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_cancel_trigger(Cancel: Pointer); cdecl; external MailconnectLib;
procedure mc_cancel_free(Cancel: Pointer); cdecl; external MailconnectLib;
procedure mc_string_free(S: PAnsiChar); cdecl; external MailconnectLib;
function mc_log_callback_set(Cb: TMcLogFn; UserData: Pointer; MaxLevel: Int32): Int32; cdecl; external MailconnectLib;
function mc_client_open(OptionsJson: PAnsiChar; out Client: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_client_free(Client: Pointer); cdecl; external MailconnectLib;
function mc_registration_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_registration_get(Client: Pointer; RegistrationId: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_registration_list(Client: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_registration_remove(Client: Pointer; RegistrationId: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_proxy_set(Client: Pointer; Proxy: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_proxy_get(Client: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_get(Client: Pointer; AccountId: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_list(Client: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_remove(Client: Pointer; AccountId: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_status_get(Client: Pointer; AccountId: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_begin(Client: Pointer; AccountId, OptionsJson: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_complete(Client: Pointer; Handle, Redirect: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_poll(Client: Pointer; Handle: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_wait(Client: Pointer; Handle: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_abort(Client: Pointer; Handle: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_connect(Client: Pointer; AccountId: PAnsiChar; Callbacks: PMcConnectCallbacks; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_account_disconnect(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_account_test(Client: Pointer; AccountId: PAnsiChar; Protocols: UInt32; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_admin_register(Client: Pointer; OptionsJson: PAnsiChar; Callbacks: PMcConnectCallbacks; Cancel: Pointer; out ReportJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_admin_check(Client: Pointer; RegistrationId, OptionsJson: PAnsiChar; Callbacks: PMcConnectCallbacks; Cancel: Pointer; out ReportJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_token_get(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Token: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_sasl_xoauth2_get(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Sasl: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_graph_token_get(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Token: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_message_send(Client: Pointer; AccountId, MessageJson: PAnsiChar; Cancel: Pointer; out ResultJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_mail_send(Client: Pointer; AccountId: PAnsiChar; Msg: PByte; Len: NativeUInt; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_folder_list(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_mail_fetch(Client: Pointer; AccountId, QueryJson: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_events_configure(Client: Pointer; OptionsJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_events_next(Client: Pointer; TimeoutMs: Int32; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_refresher_start(Client: Pointer; OptionsJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_refresher_stop(Client: Pointer): Int32; cdecl; external MailconnectLib;
function mc_refresher_run(Client: Pointer; OptionsJson: PAnsiChar; Cancel: Pointer; out ReportJson: PAnsiChar): Int32; cdecl; external MailconnectLib;

{ include/mailconnect_store.h }
function mc_store_record_set(Rec: Pointer; Data: PByte; Len: NativeUInt; Version: Int64): Int32; cdecl; external MailconnectLib;
function mc_store_list_add(List: Pointer; Id: PAnsiChar; Data: PByte; Len: NativeUInt; Version: Int64): Int32; cdecl; external MailconnectLib;
function mc_client_open_with_store(OptionsJson: PAnsiChar; Callbacks: PMcStoreCallbacks; out Client: Pointer): Int32; cdecl; external MailconnectLib;

{ The status code of the most recent mailconnect call on this thread (MC_OK after a success). }
function McLastErrorCode: Int32;
{ The name of a status code ('MC_E_TIMEOUT'); unknown codes give 'MC_E_INTERNAL'. }
function McResultName(Code: Int32): string;

{ UTF-8 helpers: the C ABI speaks UTF-8; Delphi strings are UTF-16. }
function ToUtf8(const S: string): UTF8String;
function FromUtf8(P: PAnsiChar): string;

{ A JSON string literal for S. }
function McJsonQuote(const S: string): string;
{ The top-level field Name of the JSON object Json: a string unescaped, a number or literal as
  written, an object or array as its raw JSON. False when there is no such field. A small portable
  reader (Delphi and Free Pascal have no JSON library in common). }
function McJsonField(const Json, Name: string; out Value: string): Boolean;
function McJsonStr(const Json, Name: string): string;
function McJsonInt(const Json, Name: string; Default: Int64 = 0): Int64;

{ Standard base64 of B. }
function McBase64(const B: TBytes): string;

{ Building a TMcMessage. }
function McAddress(const Address: string; const Name: string = ''): TMcAddress;
function McFileAttachment(const Path: string; const FileName: string = ''; const ContentType: string = ''): TMcAttachment;
function McBytesAttachment(const Content: TBytes; const FileName: string; const ContentType: string = '';
  const ContentId: string = ''): TMcAttachment;
function McNewMessage(const Subject: string = ''): TMcMessage;
procedure McAdd(var List: TMcAddresses; const A: TMcAddress); overload;
procedure McAdd(var List: TMcAttachments; const A: TMcAttachment); overload;
procedure McAddHeader(var List: TMcHeaders; const Name, Value: string);
{ The message JSON of mc_message_send. }
function McMessageJson(const M: TMcMessage): string;
{ An event's JSON (mc_events_next) read into a record. }
function McEventFromJson(const Json: string): TMcEvent;

implementation

function ToUtf8(const S: string): UTF8String;
begin
  Result := UTF8String(S);
end;

function FromUtf8(P: PAnsiChar): string;
var
  U: UTF8String;
begin
  if P = nil then
    Exit('');
  U := UTF8String(P);
  Result := string(U);
end;

function McJsonQuote(const S: string): string;
var
  I: Integer;
  C: Char;
begin
  Result := '"';
  for I := 1 to Length(S) do
  begin
    C := S[I];
    if (C = '"') or (C = '\') then
      Result := Result + '\' + C
    else if Ord(C) < 32 then
      Result := Result + '\u' + IntToHex(Ord(C), 4)
    else
      Result := Result + C;
  end;
  Result := Result + '"';
end;

procedure JsonWs(const S: string; var I: Integer);
begin
  while (I <= Length(S)) and ((S[I] = ' ') or (S[I] = #9) or (S[I] = #10) or (S[I] = #13)) do
    Inc(I);
end;

{ Reads the string literal at S[I] (a '"'); False when it is malformed. }
function JsonReadStr(const S: string; var I: Integer; out Value: string): Boolean;
var
  Code: Integer;
begin
  Result := False;
  Value := '';
  if (I > Length(S)) or (S[I] <> '"') then
    Exit;
  Inc(I);
  while I <= Length(S) do
  begin
    if S[I] = '"' then
    begin
      Inc(I);
      Exit(True);
    end;
    if S[I] <> '\' then
    begin
      Value := Value + S[I];
      Inc(I);
      Continue;
    end;
    Inc(I);
    if I > Length(S) then
      Exit;
    case S[I] of
      'b': Value := Value + #8;
      'f': Value := Value + #12;
      'n': Value := Value + #10;
      'r': Value := Value + #13;
      't': Value := Value + #9;
      'u':
        begin
          if (I + 4 > Length(S)) or not TryStrToInt('$' + Copy(S, I + 1, 4), Code) then
            Exit;
          if Code < 128 then
            Value := Value + Char(Code)
          else
            Value := Value + string(UnicodeString(WideChar(Code)));
          Inc(I, 4);
        end;
    else
      Value := Value + S[I];
    end;
    Inc(I);
  end;
end;

{ Skips the value at S[I]; False when it is malformed. }
function JsonSkipValue(const S: string; var I: Integer): Boolean;
var
  Depth: Integer;
  Ignored: string;
begin
  Result := False;
  if I > Length(S) then
    Exit;
  if S[I] = '"' then
    Exit(JsonReadStr(S, I, Ignored));
  if (S[I] = '{') or (S[I] = '[') then
  begin
    Depth := 0;
    repeat
      if I > Length(S) then
        Exit;
      if S[I] = '"' then
      begin
        if not JsonReadStr(S, I, Ignored) then
          Exit;
        Continue;
      end;
      if (S[I] = '{') or (S[I] = '[') then
        Inc(Depth)
      else if (S[I] = '}') or (S[I] = ']') then
        Dec(Depth);
      Inc(I);
    until Depth = 0;
    Exit(True);
  end;
  while (I <= Length(S)) and (Pos(S[I], '+-0123456789.eEtruefalsn') > 0) do
    Inc(I);
  Result := True;
end;

function McJsonField(const Json, Name: string; out Value: string): Boolean;
var
  I, Start: Integer;
  Key: string;
begin
  Result := False;
  Value := '';
  I := 1;
  JsonWs(Json, I);
  if (I > Length(Json)) or (Json[I] <> '{') then
    Exit;
  Inc(I);
  while True do
  begin
    JsonWs(Json, I);
    if (I > Length(Json)) or (Json[I] = '}') then
      Exit;
    if not JsonReadStr(Json, I, Key) then
      Exit;
    JsonWs(Json, I);
    if (I > Length(Json)) or (Json[I] <> ':') then
      Exit;
    Inc(I);
    JsonWs(Json, I);
    Start := I;
    if Key = Name then
    begin
      if (I <= Length(Json)) and (Json[I] = '"') then
        Exit(JsonReadStr(Json, I, Value));
      if not JsonSkipValue(Json, I) then
        Exit;
      Value := Copy(Json, Start, I - Start);
      Exit(True);
    end;
    if not JsonSkipValue(Json, I) then
      Exit;
    JsonWs(Json, I);
    if (I <= Length(Json)) and (Json[I] = ',') then
      Inc(I);
  end;
end;

function McJsonStr(const Json, Name: string): string;
begin
  if not McJsonField(Json, Name, Result) then
    Result := '';
end;

function McJsonInt(const Json, Name: string; Default: Int64): Int64;
var
  V: string;
begin
  if McJsonField(Json, Name, V) then
    Result := StrToInt64Def(V, Default)
  else
    Result := Default;
end;

function McBase64(const B: TBytes): string;
const
  Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
var
  I, N: Integer;
  V: Cardinal;
begin
  Result := '';
  I := 0;
  N := Length(B);
  while I + 2 < N do
  begin
    V := (Cardinal(B[I]) shl 16) or (Cardinal(B[I + 1]) shl 8) or B[I + 2];
    Result := Result + Alphabet[(V shr 18) and 63 + 1] + Alphabet[(V shr 12) and 63 + 1] +
      Alphabet[(V shr 6) and 63 + 1] + Alphabet[V and 63 + 1];
    Inc(I, 3);
  end;
  if N - I = 1 then
  begin
    V := Cardinal(B[I]) shl 16;
    Result := Result + Alphabet[(V shr 18) and 63 + 1] + Alphabet[(V shr 12) and 63 + 1] + '==';
  end
  else if N - I = 2 then
  begin
    V := (Cardinal(B[I]) shl 16) or (Cardinal(B[I + 1]) shl 8);
    Result := Result + Alphabet[(V shr 18) and 63 + 1] + Alphabet[(V shr 12) and 63 + 1] +
      Alphabet[(V shr 6) and 63 + 1] + '=';
  end;
end;

function McAddress(const Address, Name: string): TMcAddress;
begin
  Result.Address := Address;
  Result.Name := Name;
end;

function McFileAttachment(const Path, FileName, ContentType: string): TMcAttachment;
begin
  Result.Path := Path;
  Result.Content := nil;
  Result.FileName := FileName;
  Result.ContentType := ContentType;
  Result.ContentId := '';
end;

function McBytesAttachment(const Content: TBytes; const FileName, ContentType, ContentId: string): TMcAttachment;
begin
  Result.Path := '';
  Result.Content := Copy(Content);
  Result.FileName := FileName;
  Result.ContentType := ContentType;
  Result.ContentId := ContentId;
end;

function McNewMessage(const Subject: string): TMcMessage;
begin
  Result.From := McAddress('');
  Result.Recipients := nil;
  Result.Cc := nil;
  Result.Bcc := nil;
  Result.ReplyTo := nil;
  Result.Subject := Subject;
  Result.Text := '';
  Result.Html := '';
  Result.Attachments := nil;
  Result.Headers := nil;
  Result.Importance := mcImportanceNormal;
  Result.ReadReceipt := False;
end;

procedure McAdd(var List: TMcAddresses; const A: TMcAddress);
begin
  SetLength(List, Length(List) + 1);
  List[High(List)] := A;
end;

procedure McAdd(var List: TMcAttachments; const A: TMcAttachment);
begin
  SetLength(List, Length(List) + 1);
  List[High(List)] := A;
end;

procedure McAddHeader(var List: TMcHeaders; const Name, Value: string);
begin
  SetLength(List, Length(List) + 1);
  List[High(List)].Name := Name;
  List[High(List)].Value := Value;
end;

function AddressJson(const A: TMcAddress): string;
begin
  if A.Name = '' then
    Result := McJsonQuote(A.Address)
  else
    Result := '{"name":' + McJsonQuote(A.Name) + ',"address":' + McJsonQuote(A.Address) + '}';
end;

{ ',"key":[...]' for a non-empty list, else ''. }
function AddressesJson(const Key: string; const L: TMcAddresses): string;
var
  I: Integer;
begin
  Result := '';
  if Length(L) = 0 then
    Exit;
  for I := 0 to High(L) do
  begin
    if I > 0 then
      Result := Result + ',';
    Result := Result + AddressJson(L[I]);
  end;
  Result := ',"' + Key + '":[' + Result + ']';
end;

function AttachmentJson(const A: TMcAttachment): string;
begin
  if A.Path <> '' then
    Result := '{"path":' + McJsonQuote(A.Path)
  else
    Result := '{"content_base64":"' + McBase64(A.Content) + '"';
  if A.FileName <> '' then
    Result := Result + ',"file_name":' + McJsonQuote(A.FileName);
  if A.ContentType <> '' then
    Result := Result + ',"content_type":' + McJsonQuote(A.ContentType);
  if A.ContentId <> '' then
    Result := Result + ',"content_id":' + McJsonQuote(A.ContentId);
  Result := Result + '}';
end;

function McMessageJson(const M: TMcMessage): string;
var
  I: Integer;
  Items: string;
begin
  Result := '{"subject":' + McJsonQuote(M.Subject);
  if M.From.Address <> '' then
    Result := Result + ',"from":' + AddressJson(M.From);
  Result := Result + AddressesJson('to', M.Recipients) + AddressesJson('cc', M.Cc) + AddressesJson('bcc', M.Bcc) +
    AddressesJson('reply_to', M.ReplyTo);
  if M.Text <> '' then
    Result := Result + ',"text":' + McJsonQuote(M.Text);
  if M.Html <> '' then
    Result := Result + ',"html":' + McJsonQuote(M.Html);
  if Length(M.Attachments) > 0 then
  begin
    Items := '';
    for I := 0 to High(M.Attachments) do
    begin
      if I > 0 then
        Items := Items + ',';
      Items := Items + AttachmentJson(M.Attachments[I]);
    end;
    Result := Result + ',"attachments":[' + Items + ']';
  end;
  if Length(M.Headers) > 0 then
  begin
    Items := '';
    for I := 0 to High(M.Headers) do
    begin
      if I > 0 then
        Items := Items + ',';
      Items := Items + '{"name":' + McJsonQuote(M.Headers[I].Name) + ',"value":' + McJsonQuote(M.Headers[I].Value) + '}';
    end;
    Result := Result + ',"headers":[' + Items + ']';
  end;
  case M.Importance of
    mcImportanceLow: Result := Result + ',"importance":"low"';
    mcImportanceHigh: Result := Result + ',"importance":"high"';
  end;
  if M.ReadReceipt then
    Result := Result + ',"read_receipt":true';
  Result := Result + '}';
end;

function McLastErrorCode: Int32;
begin
  Result := mc_error_code_get;
end;

function McResultName(Code: Int32): string;
begin
  Result := FromUtf8(mc_result_name_get(Code));
end;

procedure Check(Rc: Int32);
var
  E: EMailconnect;
begin
  if Rc = MC_OK then
    Exit;
  E := EMailconnect.Create(McResultName(Rc) + ': ' + FromUtf8(mc_error_message_get));
  E.Code := Rc;
  E.Status := McResultName(Rc);
  E.Diagnostic := FromUtf8(mc_error_diagnostic_get);
  raise E;
end;

procedure CheckAbi;
begin
  if mc_abi_version_get <> MAILCONNECT_ABI then
    raise Exception.CreateFmt('libmailconnect has ABI version %d, this unit needs %d', [mc_abi_version_get, MAILCONNECT_ABI]);
end;

{ The mc_cancel of C, or nil. }
function CancelOf(C: TMailconnectCancel): Pointer;
begin
  if C = nil then
    Result := nil
  else
    Result := C.FHandle;
end;

{ An optional JSON argument: nil for '' (mailconnect's defaults); Buf keeps the UTF-8 alive. }
function OptionalUtf8(const S: string; out Buf: UTF8String): PAnsiChar;
begin
  Buf := ToUtf8(S);
  if S = '' then
    Result := nil
  else
    Result := PAnsiChar(Buf);
end;

{ ---- TMailconnectCancel ---- }

constructor TMailconnectCancel.Create;
begin
  inherited Create;
  Check(mc_cancel_new(FHandle));
end;

destructor TMailconnectCancel.Destroy;
begin
  mc_cancel_free(FHandle);
  FHandle := nil;
  inherited Destroy;
end;

procedure TMailconnectCancel.Trigger;
begin
  mc_cancel_trigger(FHandle);
end;

{ ---- the log callback ---- }

type
  { What mailconnect calls back with as user_data: the handler of one SetLogCallback. }
  TMcLogSink = class
    Handler: TMcLogEvent;
  end;

var
  LogLock: TCriticalSection;
  LogSink: TMcLogSink;

procedure LogTrampoline(UserData: Pointer; Level: Int32; Target, Message: PAnsiChar); cdecl;
begin
  try
    TMcLogSink(UserData).Handler(Level, FromUtf8(Target), FromUtf8(Message));
  except
    { a handler's exception never reaches mailconnect's threads }
  end;
end;

class procedure TMailconnectClient.SetLogCallback(Handler: TMcLogEvent; MaxLevel: Integer);
var
  Sink, Old: TMcLogSink;
  Rc: Int32;
begin
  CheckAbi;
  LogLock.Acquire;
  try
    Sink := nil;
    if Assigned(Handler) and (MaxLevel <> MC_LOG_OFF) then
    begin
      Sink := TMcLogSink.Create;
      Sink.Handler := Handler;
      Rc := mc_log_callback_set(LogTrampoline, Sink, MaxLevel);
    end
    else
      Rc := mc_log_callback_set(nil, nil, MaxLevel);
    if Rc <> MC_OK then
    begin
      Sink.Free; { the previous handler stays }
      Check(Rc);
    end;
    { mc_log_callback_set returns after calls of the previous handler in progress have returned. }
    Old := LogSink;
    LogSink := Sink;
    Old.Free;
  finally
    LogLock.Release;
  end;
end;

{ ---- the host-owned store: cdecl trampolines over TMailconnectHostStore ---- }

const
  StoreFailed = -1;    { the host's method raised }
  StoreBadRecord = -2; { mailconnect refused what the host gave back (see mc_store_record_set) }

function BytesOf(Data: PByte; Len: NativeUInt): TBytes;
begin
  Result := nil;
  SetLength(Result, Len);
  if Len > 0 then
    Move(Data^, Result[0], Len);
end;

function FirstByte(const B: TBytes): PByte;
begin
  if Length(B) = 0 then
    Result := nil
  else
    Result := @B[0];
end;

function StoreLoad(UserData: Pointer; Kind, Id: PAnsiChar; Rec: Pointer): Int32; cdecl;
var
  Blob: TBytes;
  Version: Int64;
begin
  try
    if not TMailconnectHostStore(UserData).Load(FromUtf8(Kind), FromUtf8(Id), Blob, Version) then
      Result := MC_STORE_NOT_FOUND
    else if mc_store_record_set(Rec, FirstByte(Blob), Length(Blob), Version) = MC_OK then
      Result := MC_STORE_OK
    else
      Result := StoreBadRecord;
  except
    Result := StoreFailed;
  end;
end;

function StoreCompareAndSwap(UserData: Pointer; Kind, Id: PAnsiChar; Data: PByte; Len: NativeUInt;
  ExpectedVersion, NewVersion: Int64): Int32; cdecl;
begin
  try
    if TMailconnectHostStore(UserData).CompareAndSwap(FromUtf8(Kind), FromUtf8(Id), BytesOf(Data, Len), ExpectedVersion, NewVersion) then
      Result := MC_STORE_OK
    else
      Result := MC_STORE_CONFLICT;
  except
    Result := StoreFailed;
  end;
end;

function StoreRemove(UserData: Pointer; Kind, Id: PAnsiChar): Int32; cdecl;
begin
  try
    if TMailconnectHostStore(UserData).Remove(FromUtf8(Kind), FromUtf8(Id)) then
      Result := MC_STORE_OK
    else
      Result := MC_STORE_NOT_FOUND;
  except
    Result := StoreFailed;
  end;
end;

function StoreList(UserData: Pointer; Kind: PAnsiChar; List: Pointer): Int32; cdecl;
var
  Records: TMcStoreRecords;
  I: Integer;
begin
  try
    Records := TMailconnectHostStore(UserData).List(FromUtf8(Kind));
    Result := MC_STORE_OK;
    for I := 0 to High(Records) do
      if mc_store_list_add(List, PAnsiChar(ToUtf8(Records[I].Id)), FirstByte(Records[I].Blob), Length(Records[I].Blob),
        Records[I].Version) <> MC_OK then
      begin
        Result := StoreBadRecord;
        Break;
      end;
  except
    Result := StoreFailed;
  end;
end;

{ ---- connect callbacks: the client object travels in UserData. Exceptions never cross into C. ---- }

function OpenUrlTrampoline(UserData: Pointer; Url: PAnsiChar): Int32; cdecl;
var
  C: TMailconnectClient;
begin
  Result := 0;
  C := TMailconnectClient(UserData);
  try
    if Assigned(C.FOnOpenUrl) and C.FOnOpenUrl(FromUtf8(Url)) then
      Result := 1;
  except
    Result := 0; { mailconnect opens the system browser }
  end;
end;

procedure DeviceCodeTrampoline(UserData: Pointer; UserCode, VerificationUri, Message: PAnsiChar); cdecl;
var
  C: TMailconnectClient;
begin
  C := TMailconnectClient(UserData);
  try
    if Assigned(C.FOnDeviceCode) then
      C.FOnDeviceCode(FromUtf8(UserCode), FromUtf8(VerificationUri), FromUtf8(Message));
  except
  end;
end;

procedure ProgressTrampoline(UserData: Pointer; Stage: PAnsiChar); cdecl;
var
  C: TMailconnectClient;
begin
  C := TMailconnectClient(UserData);
  try
    if Assigned(C.FOnProgress) then
      C.FOnProgress(FromUtf8(Stage));
  except
  end;
end;

{ ---- TMailconnectClient ---- }

constructor TMailconnectClient.Create(const OptionsJson: string);
begin
  inherited Create;
  CheckAbi;
  Check(mc_client_open(PAnsiChar(ToUtf8(OptionsJson)), FHandle));
end;

constructor TMailconnectClient.Create(const OptionsJson: string; Store: TMailconnectHostStore; OwnsStore: Boolean);
var
  Cb: TMcStoreCallbacks;
begin
  inherited Create;
  FStore := Store;
  FOwnsStore := OwnsStore;
  CheckAbi;
  if Store = nil then
    raise Exception.Create('TMailconnectClient.Create: Store is nil');
  Cb.Version := MC_STORE_CALLBACKS_VERSION;
  Cb.UserData := Store;
  Cb.Load := StoreLoad;
  Cb.CompareAndSwap := StoreCompareAndSwap;
  Cb.Remove := StoreRemove;
  Cb.List := StoreList;
  Check(mc_client_open_with_store(PAnsiChar(ToUtf8(OptionsJson)), @Cb, FHandle));
end;

destructor TMailconnectClient.Destroy;
begin
  StopEvents;
  if FHandle <> nil then
    mc_client_free(FHandle);
  FHandle := nil;
  if FOwnsStore then
    FreeAndNil(FStore);
  inherited Destroy;
end;

class function TMailconnectClient.Version: string;
begin
  Result := FromUtf8(mc_version_get);
end;

function TMailconnectClient.TakeString(P: PAnsiChar): string;
begin
  Result := FromUtf8(P);
  mc_string_free(P);
end;

procedure TMailconnectClient.PutRegistration(const Json: string);
begin
  Check(mc_registration_put(FHandle, PAnsiChar(ToUtf8(Json))));
end;

function TMailconnectClient.Registration(const RegistrationId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_registration_get(FHandle, PAnsiChar(ToUtf8(RegistrationId)), P));
  Result := TakeString(P);
end;

function TMailconnectClient.Registrations: string;
var
  P: PAnsiChar;
begin
  Check(mc_registration_list(FHandle, P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.RemoveRegistration(const RegistrationId: string);
begin
  Check(mc_registration_remove(FHandle, PAnsiChar(ToUtf8(RegistrationId))));
end;

procedure TMailconnectClient.SetProxy(const Proxy: string);
begin
  Check(mc_proxy_set(FHandle, PAnsiChar(ToUtf8(Proxy))));
end;

procedure TMailconnectClient.ClearProxy;
begin
  Check(mc_proxy_set(FHandle, nil));
end;

function TMailconnectClient.GetProxy: TMcProxyInfo;
var
  P: PAnsiChar;
begin
  Check(mc_proxy_get(FHandle, P));
  Result.Json := TakeString(P);
  Result.Source := McJsonStr(Result.Json, 'source');
  Result.Stored := McJsonStr(Result.Json, 'stored');
  if Result.Stored = 'null' then
    Result.Stored := '';
  Result.StoredUrl := McJsonStr(Result.Stored, 'url');
  Result.HasPassword := McJsonStr(Result.Stored, 'has_password') = 'true';
  Result.Environment := McJsonStr(Result.Json, 'environment') = 'true';
end;

procedure TMailconnectClient.PutAccount(const Json: string);
begin
  Check(mc_account_put(FHandle, PAnsiChar(ToUtf8(Json))));
end;

function TMailconnectClient.Account(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_account_get(FHandle, PAnsiChar(ToUtf8(AccountId)), P));
  Result := TakeString(P);
end;

function TMailconnectClient.Accounts: string;
var
  P: PAnsiChar;
begin
  Check(mc_account_list(FHandle, P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.RemoveAccount(const AccountId: string);
begin
  Check(mc_account_remove(FHandle, PAnsiChar(ToUtf8(AccountId))));
end;

function TMailconnectClient.Status(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_account_status_get(FHandle, PAnsiChar(ToUtf8(AccountId)), P));
  Result := TakeString(P);
end;

function TMailconnectClient.ConnectCallbacks: TMcConnectCallbacks;
begin
  Result.Version := MC_CONNECT_CALLBACKS_VERSION;
  Result.UserData := Self;
  Result.OnOpenUrl := OpenUrlTrampoline;
  Result.OnDeviceCode := DeviceCodeTrampoline;
  Result.OnProgress := ProgressTrampoline;
end;

procedure TMailconnectClient.Connect(const AccountId: string; Cancel: TMailconnectCancel);
var
  Cb: TMcConnectCallbacks;
begin
  Cb := ConnectCallbacks;
  Check(mc_account_connect(FHandle, PAnsiChar(ToUtf8(AccountId)), @Cb, CancelOf(Cancel)));
end;

procedure TMailconnectClient.Disconnect(const AccountId: string; Cancel: TMailconnectCancel);
begin
  Check(mc_account_disconnect(FHandle, PAnsiChar(ToUtf8(AccountId)), CancelOf(Cancel)));
end;

function TMailconnectClient.Test(const AccountId: string; Protocols: UInt32; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_account_test(FHandle, PAnsiChar(ToUtf8(AccountId)), Protocols, CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.AdminRegister(const OptionsJson: string; Cancel: TMailconnectCancel): string;
var
  Cb: TMcConnectCallbacks;
  P: PAnsiChar;
begin
  Cb := ConnectCallbacks;
  Check(mc_admin_register(FHandle, PAnsiChar(ToUtf8(OptionsJson)), @Cb, CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.AdminCheck(const RegistrationId, OptionsJson: string; Cancel: TMailconnectCancel): string;
var
  Cb: TMcConnectCallbacks;
  P: PAnsiChar;
begin
  Cb := ConnectCallbacks;
  Check(mc_admin_check(FHandle, PAnsiChar(ToUtf8(RegistrationId)), PAnsiChar(ToUtf8(OptionsJson)), @Cb, CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.AccessToken(const AccountId: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_token_get(FHandle, PAnsiChar(ToUtf8(AccountId)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.SaslXoauth2(const AccountId: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_sasl_xoauth2_get(FHandle, PAnsiChar(ToUtf8(AccountId)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.GraphToken(const AccountId: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_graph_token_get(FHandle, PAnsiChar(ToUtf8(AccountId)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.SendMessage(const AccountId: string; const Message: TMcMessage; Cancel: TMailconnectCancel): TMcSendResult;
var
  P: PAnsiChar;
  Json: string;
begin
  P := nil;
  Check(mc_message_send(FHandle, PAnsiChar(ToUtf8(AccountId)), PAnsiChar(ToUtf8(McMessageJson(Message))), CancelOf(Cancel), P));
  Json := TakeString(P);
  Result.Json := Json;
  Result.Transport := McJsonStr(Json, 'transport');
  Result.MessageId := McJsonStr(Json, 'message_id');
  Result.Reply := McJsonStr(Json, 'reply');
  Result.Size := McJsonInt(Json, 'size');
end;

procedure TMailconnectClient.Send(const AccountId: string; const Rfc5322: RawByteString; Cancel: TMailconnectCancel);
begin
  Check(mc_mail_send(FHandle, PAnsiChar(ToUtf8(AccountId)), PByte(PAnsiChar(Rfc5322)), Length(Rfc5322), CancelOf(Cancel)));
end;

function TMailconnectClient.Fetch(const AccountId, QueryJson: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
  Query: UTF8String;
begin
  Check(mc_mail_fetch(FHandle, PAnsiChar(ToUtf8(AccountId)), OptionalUtf8(QueryJson, Query), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.Folders(const AccountId: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_folder_list(FHandle, PAnsiChar(ToUtf8(AccountId)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function ToAuthorization(const Json: string): TMcAuthorization;
begin
  Result.Json := Json;
  Result.Handle := McJsonStr(Json, 'handle');
  Result.AccountId := McJsonStr(Json, 'account_id');
  Result.Flow := McJsonStr(Json, 'flow');
  Result.Url := McJsonStr(Json, 'url');
  Result.RedirectUri := McJsonStr(Json, 'redirect_uri');
  Result.Loopback := McJsonStr(Json, 'loopback') = 'true';
  Result.UserCode := McJsonStr(Json, 'user_code');
  Result.VerificationUri := McJsonStr(Json, 'verification_uri');
  Result.VerificationUriComplete := McJsonStr(Json, 'verification_uri_complete');
  Result.Message := McJsonStr(Json, 'message');
  Result.IntervalSecs := McJsonInt(Json, 'interval_secs');
  Result.ExpiresAt := McJsonStr(Json, 'expires_at');
  Result.ExpiresInSecs := McJsonInt(Json, 'expires_in_secs');
end;

function McEventFromJson(const Json: string): TMcEvent;
begin
  Result.Json := Json;
  Result.Seq := McJsonInt(Json, 'seq');
  Result.Time := McJsonStr(Json, 'time');
  Result.EventType := McJsonStr(Json, 'type');
  Result.AccountId := McJsonStr(Json, 'account_id');
  Result.Stage := McJsonStr(Json, 'stage');
  Result.FromState := McJsonStr(Json, 'from');
  Result.ToState := McJsonStr(Json, 'to');
  Result.Reason := McJsonStr(Json, 'reason');
  Result.Diagnostic := McJsonStr(Json, 'diagnostic');
  Result.ExpiresAt := McJsonStr(Json, 'expires_at');
  Result.At := McJsonStr(Json, 'at');
  Result.Code := McJsonStr(Json, 'code');
  Result.Level := McJsonStr(Json, 'level');
  Result.Target := McJsonStr(Json, 'target');
  Result.Message := McJsonStr(Json, 'message');
  Result.Count := McJsonInt(Json, 'count');
end;

function ToRefreshReport(const Json: string): TMcRefreshReport;
begin
  Result.Json := Json;
  Result.Accounts := McJsonInt(Json, 'accounts');
  Result.Fresh := McJsonInt(Json, 'fresh');
  Result.Refreshed := McJsonInt(Json, 'refreshed');
  Result.Failed := McJsonInt(Json, 'failed');
  Result.NeedsReauthorization := McJsonInt(Json, 'needs_reauthorization');
  Result.BackingOff := McJsonInt(Json, 'backing_off');
  Result.NotConnected := McJsonInt(Json, 'not_connected');
end;

function TMailconnectClient.BeginAuthorization(const AccountId, Flow, RedirectUri: string; Cancel: TMailconnectCancel): TMcAuthorization;
var
  Options: string;
  P: PAnsiChar;
begin
  Options := '';
  if Flow <> '' then
    Options := '"flow":' + McJsonQuote(Flow);
  if RedirectUri <> '' then
  begin
    if Options <> '' then
      Options := Options + ',';
    Options := Options + '"redirect_uri":' + McJsonQuote(RedirectUri);
  end;
  Check(mc_authorization_begin(FHandle, PAnsiChar(ToUtf8(AccountId)), PAnsiChar(ToUtf8('{' + Options + '}')), CancelOf(Cancel), P));
  Result := ToAuthorization(TakeString(P));
end;

function TMailconnectClient.CompleteAuthorization(const Auth: TMcAuthorization; const Redirect: string; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_authorization_complete(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), PAnsiChar(ToUtf8(Redirect)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

function TMailconnectClient.PollAuthorization(const Auth: TMcAuthorization; Cancel: TMailconnectCancel): TMcPollResult;
var
  P: PAnsiChar;
  Json: string;
begin
  Check(mc_authorization_poll(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), CancelOf(Cancel), P));
  Json := TakeString(P);
  Result.Connected := McJsonStr(Json, 'state') = 'connected';
  Result.RetryAfterMs := McJsonInt(Json, 'retry_after_ms', 1000);
  Result.Status := McJsonStr(Json, 'status');
end;

function TMailconnectClient.WaitAuthorization(const Auth: TMcAuthorization; Cancel: TMailconnectCancel): string;
var
  P: PAnsiChar;
begin
  Check(mc_authorization_wait(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), CancelOf(Cancel), P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.AbortAuthorization(const Auth: TMcAuthorization);
begin
  Check(mc_authorization_abort(FHandle, PAnsiChar(ToUtf8(Auth.Handle))));
end;

procedure TMailconnectClient.ConfigureEvents(Capacity: Integer; const LogLevel: string);
var
  Options: string;
begin
  Options := '';
  if Capacity > 0 then
    Options := '"capacity":' + IntToStr(Capacity);
  if LogLevel <> '' then
  begin
    if Options <> '' then
      Options := Options + ',';
    Options := Options + '"log_level":' + McJsonQuote(LogLevel);
  end;
  Check(mc_events_configure(FHandle, PAnsiChar(ToUtf8('{' + Options + '}'))));
end;

function TMailconnectClient.NextEvent(TimeoutMs: Integer; out Event: TMcEvent): Boolean;
var
  P: PAnsiChar;
begin
  P := nil;
  Check(mc_events_next(FHandle, TimeoutMs, P));
  Result := P <> nil;
  if Result then
    Event := McEventFromJson(TakeString(P));
end;

procedure TMailconnectClient.StartEvents(Handler: TMcEventHandler; QueueToMainThread: Boolean);
begin
  if FEvents = nil then
    FEvents := TMcEventThread.Create(Self, Handler, QueueToMainThread);
end;

procedure TMailconnectClient.StopEvents;
begin
  FreeAndNil(FEvents); { TThread.Destroy terminates and waits }
end;

procedure TMailconnectClient.StartRefresher(const OptionsJson: string);
var
  Options: UTF8String;
begin
  Check(mc_refresher_start(FHandle, OptionalUtf8(OptionsJson, Options)));
end;

procedure TMailconnectClient.StopRefresher;
begin
  Check(mc_refresher_stop(FHandle));
end;

function TMailconnectClient.RunRefresher(const OptionsJson: string; Cancel: TMailconnectCancel): TMcRefreshReport;
var
  Options: UTF8String;
  P: PAnsiChar;
begin
  Check(mc_refresher_run(FHandle, OptionalUtf8(OptionsJson, Options), CancelOf(Cancel), P));
  Result := ToRefreshReport(TakeString(P));
end;

{ Carries one event to the main thread: TThread.Queue takes a method without arguments. }
type
  TMcEventDelivery = class
  private
    FHandler: TMcEventHandler;
    FEvent: TMcEvent;
  public
    procedure Deliver;
  end;

procedure TMcEventDelivery.Deliver;
begin
  try
    FHandler(FEvent);
  except
    { a handler's exception must not end the application's message loop }
  end;
  Free;
end;

constructor TMcEventThread.Create(Client: TMailconnectClient; Handler: TMcEventHandler; QueueToMainThread: Boolean);
begin
  FClient := Client;
  FHandler := Handler;
  FQueue := QueueToMainThread;
  FreeOnTerminate := False;
  inherited Create(False);
end;

procedure TMcEventThread.Execute;
var
  Ev: TMcEvent;
  D: TMcEventDelivery;
begin
  while not Terminated do
  begin
    try
      { Slices of 250 ms: Terminate is noticed promptly and the client is never freed under a wait. }
      if not FClient.NextEvent(250, Ev) then
        Continue;
    except
      Sleep(250);
      Continue;
    end;
    if not Assigned(FHandler) then
      Continue;
    if FQueue then
    begin
      D := TMcEventDelivery.Create;
      D.FHandler := FHandler;
      D.FEvent := Ev;
      TThread.Queue(nil, D.Deliver);
    end
    else
      try
        FHandler(Ev);
      except
      end;
  end;
end;

initialization
  LogLock := TCriticalSection.Create;

finalization
  { No call into this unit's code once it is gone. }
  if LogSink <> nil then
  begin
    mc_log_callback_set(nil, nil, MC_LOG_OFF);
    FreeAndNil(LogSink);
  end;
  FreeAndNil(LogLock);

end.
