{ mailconnect for Delphi (2009+, Unicode strings) and Free Pascal ($mode delphi).
  A thin unit over the C ABI in include/mailconnect.h: cdecl externals, UTF8String conversions,
  EMailconnect with Code, Status and Diagnostic, and TMailconnectClient with a destructor.
  Callbacks run on mailconnect threads: never touch the VCL/LCL from them; post to the UI thread
  with TThread.Queue (see README.md). FPC programs must list cthreads first in their uses clause.
  Host integration: the host's own sign-in window (BeginAuthorization, then CompleteAuthorization,
  PollAuthorization or WaitAuthorization, or AbortAuthorization; results as records), and events
  (NextEvent to pull, or TMcEventThread / StartEvents handing each event to the main thread with
  TThread.Queue). }
unit Mailconnect;

{$IFDEF FPC}{$MODE DELPHI}{$H+}{$ENDIF}

interface

uses
  SysUtils, Classes;

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
  MAILCONNECT_ABI = 1; { MC_ABI_VERSION in the C header; renamed: Pascal is case-insensitive }
  MC_PROTO_IMAP = 1;
  MC_PROTO_POP3 = 2;
  MC_PROTO_SMTP = 4;
  MC_TEST_SEND_PROBE = $100;

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

  { A failed call: Code (negative MC_E_*), Status (its name), Diagnostic (JSON: catalog code,
    en/de title, explanation and fix, evidence). }
  EMailconnect = class(Exception)
  public
    Code: Int32;
    Status: string;
    Diagnostic: string;
  end;

  TDeviceCodeEvent = procedure(const UserCode, VerificationUri, Message: string) of object;
  TProgressEvent = procedure(const Stage: string) of object;

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

  { An event of the client's queue. EventType: 'token_refreshed', 'needs_reauthorization',
    'connect_progress', 'state_changed', 'log' or 'events_dropped'; fields of other types are empty. }
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
    Level: string;       { log }
    Target: string;      { log }
    Message: string;     { log }
    Count: Int64;        { events_dropped }
    Json: string;
  end;

  TMcEventHandler = procedure(const Event: TMcEvent) of object;

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

  { A mailconnect client over one token store. Thread-safe; calls block. }
  TMailconnectClient = class
  private
    FHandle: Pointer;
    FOnDeviceCode: TDeviceCodeEvent;
    FOnProgress: TProgressEvent;
    FEvents: TMcEventThread;
    function TakeString(P: PAnsiChar): string;
  public
    constructor Create(const OptionsJson: string);
    destructor Destroy; override;
    procedure PutRegistration(const Json: string);
    procedure PutAccount(const Json: string);
    function Status(const AccountId: string): string;
    { Authorize; OnDeviceCode/OnProgress are called on a mailconnect thread. Cancel may be nil. }
    procedure Connect(const AccountId: string; Cancel: Pointer = nil);
    procedure Disconnect(const AccountId: string);
    function Test(const AccountId: string; Protocols: UInt32 = 0): string;
    function AccessToken(const AccountId: string): string;
    function SaslXoauth2(const AccountId: string): string;
    procedure Send(const AccountId: string; const Rfc5322: RawByteString);
    function Fetch(const AccountId, QueryJson: string): string;
    function Folders(const AccountId: string): string;
    { The host's own sign-in window. Flow: 'browser', 'device' or '' (the account's). RedirectUri
      (browser): a loopback URI (mailconnect listens; '' = the registration's) or a registered URI
      the host's web view intercepts, such as https://login.microsoftonline.com/common/oauth2/nativeclient. }
    function BeginAuthorization(const AccountId: string; const Flow: string = ''; const RedirectUri: string = ''): TMcAuthorization;
    { Finish a browser sign-in with the redirect URL the web view captured; returns the status JSON. }
    function CompleteAuthorization(const Auth: TMcAuthorization; const Redirect: string; Cancel: Pointer = nil): string;
    { Check a device-code sign-in once. }
    function PollAuthorization(const Auth: TMcAuthorization; Cancel: Pointer = nil): TMcPollResult;
    { Block until the sign-in finishes; returns the status JSON. }
    function WaitAuthorization(const Auth: TMcAuthorization; Cancel: Pointer = nil): string;
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
    property OnDeviceCode: TDeviceCodeEvent read FOnDeviceCode write FOnDeviceCode;
    property OnProgress: TProgressEvent read FOnProgress write FOnProgress;
  end;

function mc_abi_version_get: UInt32; cdecl; external MailconnectLib;
function mc_version_get: PAnsiChar; cdecl; external MailconnectLib;
function mc_result_name_get(Code: Int32): PAnsiChar; cdecl; external MailconnectLib;
function mc_error_code_get: Int32; cdecl; external MailconnectLib;
function mc_error_message_get: PAnsiChar; cdecl; external MailconnectLib;
function mc_error_diagnostic_get: PAnsiChar; cdecl; external MailconnectLib;
procedure mc_string_free(S: PAnsiChar); cdecl; external MailconnectLib;
function mc_client_open(OptionsJson: PAnsiChar; out Client: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_client_free(Client: Pointer); cdecl; external MailconnectLib;
function mc_registration_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_status_get(Client: Pointer; AccountId: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_connect(Client: Pointer; AccountId: PAnsiChar; Callbacks: PMcConnectCallbacks; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_account_disconnect(Client: Pointer; AccountId: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_test(Client: Pointer; AccountId: PAnsiChar; Protocols: UInt32; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_token_get(Client: Pointer; AccountId: PAnsiChar; Protocol: UInt32; out Token: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_sasl_xoauth2_get(Client: Pointer; AccountId: PAnsiChar; Protocol: UInt32; out Sasl: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_mail_send(Client: Pointer; AccountId: PAnsiChar; Msg: PByte; Len: NativeUInt; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_folder_list(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_mail_fetch(Client: Pointer; AccountId, QueryJson: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_cancel_new(out Cancel: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_cancel_trigger(Cancel: Pointer); cdecl; external MailconnectLib;
procedure mc_cancel_free(Cancel: Pointer); cdecl; external MailconnectLib;
function mc_authorization_begin(Client: Pointer; AccountId, OptionsJson: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_complete(Client: Pointer; Handle, Redirect: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_poll(Client: Pointer; Handle: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_wait(Client: Pointer; Handle: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_authorization_abort(Client: Pointer; Handle: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_events_configure(Client: Pointer; OptionsJson: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_events_next(Client: Pointer; TimeoutMs: Int32; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;

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

procedure Check(Rc: Int32);
var
  E: EMailconnect;
begin
  if Rc = 0 then
    Exit;
  E := EMailconnect.Create(FromUtf8(mc_result_name_get(Rc)) + ': ' + FromUtf8(mc_error_message_get));
  E.Code := Rc;
  E.Status := FromUtf8(mc_result_name_get(Rc));
  E.Diagnostic := FromUtf8(mc_error_diagnostic_get);
  raise E;
end;

{ Trampolines: the C callbacks carry the client object in UserData. Exceptions never cross into C. }
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

constructor TMailconnectClient.Create(const OptionsJson: string);
begin
  inherited Create;
  if mc_abi_version_get <> MAILCONNECT_ABI then
    raise Exception.CreateFmt('libmailconnect has ABI version %d, this unit needs %d', [mc_abi_version_get, MAILCONNECT_ABI]);
  Check(mc_client_open(PAnsiChar(ToUtf8(OptionsJson)), FHandle));
end;

destructor TMailconnectClient.Destroy;
begin
  StopEvents;
  if FHandle <> nil then
    mc_client_free(FHandle);
  FHandle := nil;
  inherited Destroy;
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

procedure TMailconnectClient.PutAccount(const Json: string);
begin
  Check(mc_account_put(FHandle, PAnsiChar(ToUtf8(Json))));
end;

function TMailconnectClient.Status(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_account_status_get(FHandle, PAnsiChar(ToUtf8(AccountId)), P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.Connect(const AccountId: string; Cancel: Pointer);
var
  Cb: TMcConnectCallbacks;
begin
  Cb.Version := 1;
  Cb.UserData := Self;
  Cb.OnOpenUrl := nil;
  Cb.OnDeviceCode := DeviceCodeTrampoline;
  Cb.OnProgress := ProgressTrampoline;
  Check(mc_account_connect(FHandle, PAnsiChar(ToUtf8(AccountId)), @Cb, Cancel));
end;

procedure TMailconnectClient.Disconnect(const AccountId: string);
begin
  Check(mc_account_disconnect(FHandle, PAnsiChar(ToUtf8(AccountId))));
end;

function TMailconnectClient.Test(const AccountId: string; Protocols: UInt32): string;
var
  P: PAnsiChar;
begin
  Check(mc_account_test(FHandle, PAnsiChar(ToUtf8(AccountId)), Protocols, nil, P));
  Result := TakeString(P);
end;

function TMailconnectClient.AccessToken(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_token_get(FHandle, PAnsiChar(ToUtf8(AccountId)), 0, P));
  Result := TakeString(P);
end;

function TMailconnectClient.SaslXoauth2(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_sasl_xoauth2_get(FHandle, PAnsiChar(ToUtf8(AccountId)), 0, P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.Send(const AccountId: string; const Rfc5322: RawByteString);
begin
  Check(mc_mail_send(FHandle, PAnsiChar(ToUtf8(AccountId)), PByte(PAnsiChar(Rfc5322)), Length(Rfc5322), nil));
end;

function TMailconnectClient.Fetch(const AccountId, QueryJson: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_mail_fetch(FHandle, PAnsiChar(ToUtf8(AccountId)), PAnsiChar(ToUtf8(QueryJson)), nil, P));
  Result := TakeString(P);
end;

function TMailconnectClient.Folders(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_folder_list(FHandle, PAnsiChar(ToUtf8(AccountId)), nil, P));
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

function ToEvent(const Json: string): TMcEvent;
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
  Result.Level := McJsonStr(Json, 'level');
  Result.Target := McJsonStr(Json, 'target');
  Result.Message := McJsonStr(Json, 'message');
  Result.Count := McJsonInt(Json, 'count');
end;

function TMailconnectClient.BeginAuthorization(const AccountId, Flow, RedirectUri: string): TMcAuthorization;
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
  Check(mc_authorization_begin(FHandle, PAnsiChar(ToUtf8(AccountId)), PAnsiChar(ToUtf8('{' + Options + '}')), P));
  Result := ToAuthorization(TakeString(P));
end;

function TMailconnectClient.CompleteAuthorization(const Auth: TMcAuthorization; const Redirect: string; Cancel: Pointer): string;
var
  P: PAnsiChar;
begin
  Check(mc_authorization_complete(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), PAnsiChar(ToUtf8(Redirect)), Cancel, P));
  Result := TakeString(P);
end;

function TMailconnectClient.PollAuthorization(const Auth: TMcAuthorization; Cancel: Pointer): TMcPollResult;
var
  P: PAnsiChar;
  Json: string;
begin
  Check(mc_authorization_poll(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), Cancel, P));
  Json := TakeString(P);
  Result.Connected := McJsonStr(Json, 'state') = 'connected';
  Result.RetryAfterMs := McJsonInt(Json, 'retry_after_ms', 1000);
  Result.Status := McJsonStr(Json, 'status');
end;

function TMailconnectClient.WaitAuthorization(const Auth: TMcAuthorization; Cancel: Pointer): string;
var
  P: PAnsiChar;
begin
  Check(mc_authorization_wait(FHandle, PAnsiChar(ToUtf8(Auth.Handle)), Cancel, P));
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
    Event := ToEvent(TakeString(P));
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

end.
