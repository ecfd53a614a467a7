{ The Pascal unit's scenario against the sandbox and the real mail stack (Free Pascal, mode delphi).
  usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE [host]
  The main part: registrations and accounts (put, get, list, remove), the log callback, a
  triggered TMailconnectCancel (connect, disconnect), Connect by device code and by the browser
  (the host's OnOpenUrl), the refresher (start, stop, one round), Test, tokens, mail, a
  TMcMessage (umlaut subject, named recipient, attachments from bytes and from a file) sent over
  SMTP and read back, refused without recipients, GraphToken refused when not connected.
  With "host" it runs the host integration part instead (the emulator then issues 4-second
  tokens), on a host-owned store kept in a TDictionary (TMailconnectHostStore): the device code
  driven by the host, a due refresh cancelled, events from a TMcEventThread delivered to the main
  thread with TThread.Queue (pumped here with CheckSynchronize), NextEvent, nativeclient refusals
  and abort, and a second client on the same store. }
program scenario;

{$MODE DELPHI}{$H+}
{ FPC 3.2's Generics.Collections, specialized for TDictionary<string, TRow>, warns about its own
  enumerator classes ("constructing a class with abstract method"), which -Sew makes an error; the
  warning cannot be scoped to the specialization, so it is off for this program. }
{$WARN 4046 OFF}

uses
  cthreads, Classes, SysUtils, SyncObjs, Process, base64, Generics.Collections, Mailconnect;

type
  TUser = class
    Cli: string;
    Shown: Integer;
    Opened: Integer;
    LastStage: string;
    function OpenUrl(const Url: string): Boolean;
    procedure DeviceCode(const UserCode, VerificationUri, Message: string);
    procedure Progress(const Stage: string);
  end;

  { Collects the log records mailconnect hands to SetLogCallback (on its threads, several at once). }
  TLogger = class
    Lock: TCriticalSection;
    Lines: TStringList;
    constructor Create;
    destructor Destroy; override;
    procedure OnLog(Level: Integer; const Target, Message: string);
    function Count: Integer;
    function Any(const Needle: string): Boolean;
  end;

  { A host's own table, here a TDictionary under a lock: (kind, id) -> (blob, version). }
  TRow = record
    Blob: TBytes;
    Version: Int64;
  end;

  TDictionaryStore = class(TMailconnectHostStore)
  private
    FLock: TCriticalSection;
    FRows: TDictionary<string, TRow>;
  public
    Loads, Swaps, Conflicts, Removes, Lists: Integer;
    constructor Create;
    destructor Destroy; override;
    function Load(const Kind, Id: string; out Blob: TBytes; out Version: Int64): Boolean; override;
    function CompareAndSwap(const Kind, Id: string; const Blob: TBytes; ExpectedVersion, NewVersion: Int64): Boolean; override;
    function Remove(const Kind, Id: string): Boolean; override;
    function List(const Kind: string): TMcStoreRecords; override;
    { For the checks: the row's version (0 = none), the kinds present, whether a blob holds Needle. }
    function VersionOf(const Kind, Id: string): Int64;
    function HasKind(const Kind: string): Boolean;
    function AnyBlobContains(const Needle: string): Boolean;
  end;

  { Records the events the event thread hands to the main thread. }
  TRecorder = class
    Seen: TStringList;
    OffMainThread: Integer;
    Reauth: TMcEvent;
    constructor Create;
    destructor Destroy; override;
    procedure OnEvent(const Event: TMcEvent);
  end;

var
  Passed, Failed: Integer;

procedure Check(Ok: Boolean; const What: string);
begin
  if Ok then begin Inc(Passed); WriteLn('ok ', What); end
  else begin Inc(Failed); WriteLn('FAIL ', What); end;
  { Whole lines: the sandbox's sign-in processes write to the same stdout. }
  Flush(Output);
end;

function TUser.OpenUrl(const Url: string): Boolean;
var
  P: TProcess;
begin
  { The host's own web view would show Url; here the sandbox's user signs in on it. }
  Inc(Opened);
  P := TProcess.Create(nil);
  P.Executable := Cli;
  P.Parameters.Add('sandbox'); P.Parameters.Add('sign-in');
  P.Parameters.Add('--user'); P.Parameters.Add('alice@example.test');
  P.Parameters.Add('--password'); P.Parameters.Add('alice-password');
  P.Parameters.Add('--url'); P.Parameters.Add(Url);
  P.Execute;
  Result := True;
end;

constructor TLogger.Create;
begin
  inherited Create;
  Lock := TCriticalSection.Create;
  Lines := TStringList.Create;
end;

destructor TLogger.Destroy;
begin
  Lines.Free;
  Lock.Free;
  inherited Destroy;
end;

procedure TLogger.OnLog(Level: Integer; const Target, Message: string);
begin
  Lock.Acquire;
  try
    Lines.Add(IntToStr(Level) + ' ' + Target + ': ' + Message);
  finally
    Lock.Release;
  end;
end;

function TLogger.Count: Integer;
begin
  Lock.Acquire;
  try
    Result := Lines.Count;
  finally
    Lock.Release;
  end;
end;

function TLogger.Any(const Needle: string): Boolean;
var
  I: Integer;
begin
  Result := False;
  Lock.Acquire;
  try
    for I := 0 to Lines.Count - 1 do
      if Pos(Needle, Lines[I]) > 0 then
        Exit(True);
  finally
    Lock.Release;
  end;
end;

function Key(const Kind, Id: string): string;
begin
  Result := Kind + #1 + Id;
end;

constructor TDictionaryStore.Create;
begin
  inherited Create;
  FLock := TCriticalSection.Create;
  FRows := TDictionary<string, TRow>.Create;
end;

destructor TDictionaryStore.Destroy;
begin
  FRows.Free;
  FLock.Free;
  inherited Destroy;
end;

function TDictionaryStore.Load(const Kind, Id: string; out Blob: TBytes; out Version: Int64): Boolean;
var
  Row: TRow;
begin
  FLock.Acquire;
  try
    Inc(Loads);
    Result := FRows.TryGetValue(Key(Kind, Id), Row);
    Blob := Row.Blob;
    Version := Row.Version;
    if not Result then
    begin
      Blob := nil;
      Version := 0;
    end;
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.CompareAndSwap(const Kind, Id: string; const Blob: TBytes; ExpectedVersion, NewVersion: Int64): Boolean;
var
  Row: TRow;
  Found: Boolean;
begin
  FLock.Acquire;
  try
    Inc(Swaps);
    Found := FRows.TryGetValue(Key(Kind, Id), Row);
    if Found then
      Result := Row.Version = ExpectedVersion
    else
      Result := ExpectedVersion = 0;
    if Result then
    begin
      Row.Blob := Copy(Blob);
      Row.Version := NewVersion;
      FRows.AddOrSetValue(Key(Kind, Id), Row);
    end
    else
      Inc(Conflicts);
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.Remove(const Kind, Id: string): Boolean;
begin
  FLock.Acquire;
  try
    Inc(Removes);
    Result := FRows.ContainsKey(Key(Kind, Id));
    if Result then
      FRows.Remove(Key(Kind, Id));
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.List(const Kind: string): TMcStoreRecords;
var
  Pair: TPair<string, TRow>;
  Prefix: string;
  N: Integer;
begin
  Result := nil;
  Prefix := Kind + #1;
  FLock.Acquire;
  try
    Inc(Lists);
    for Pair in FRows do
      if Copy(Pair.Key, 1, Length(Prefix)) = Prefix then
      begin
        N := Length(Result);
        SetLength(Result, N + 1);
        Result[N].Id := Copy(Pair.Key, Length(Prefix) + 1, MaxInt);
        Result[N].Blob := Pair.Value.Blob;
        Result[N].Version := Pair.Value.Version;
      end;
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.VersionOf(const Kind, Id: string): Int64;
var
  Row: TRow;
begin
  FLock.Acquire;
  try
    if FRows.TryGetValue(Key(Kind, Id), Row) then
      Result := Row.Version
    else
      Result := 0;
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.HasKind(const Kind: string): Boolean;
var
  Pair: TPair<string, TRow>;
begin
  Result := False;
  FLock.Acquire;
  try
    for Pair in FRows do
      if Copy(Pair.Key, 1, Length(Kind) + 1) = Kind + #1 then
        Exit(True);
  finally
    FLock.Release;
  end;
end;

function TDictionaryStore.AnyBlobContains(const Needle: string): Boolean;
var
  Pair: TPair<string, TRow>;
  Text: RawByteString;
begin
  Result := False;
  FLock.Acquire;
  try
    for Pair in FRows do
    begin
      if Length(Pair.Value.Blob) = 0 then
        Continue;
      SetString(Text, PAnsiChar(@Pair.Value.Blob[0]), Length(Pair.Value.Blob));
      if Pos(RawByteString(Needle), Text) > 0 then
        Exit(True);
    end;
  finally
    FLock.Release;
  end;
end;

procedure TUser.DeviceCode(const UserCode, VerificationUri, Message: string);
var
  P: TProcess;
begin
  { Runs on a mailconnect thread: no UI here; a GUI host would TThread.Queue to show Message. }
  Inc(Shown);
  P := TProcess.Create(nil);
  P.Executable := Cli;
  P.Parameters.Add('sandbox'); P.Parameters.Add('sign-in');
  P.Parameters.Add('--user'); P.Parameters.Add('alice@example.test');
  P.Parameters.Add('--password'); P.Parameters.Add('alice-password');
  P.Parameters.Add('--device-code'); P.Parameters.Add(UserCode);
  P.Parameters.Add('--verification-uri'); P.Parameters.Add(VerificationUri);
  P.Execute;
end;

procedure TUser.Progress(const Stage: string);
begin
  LastStage := Stage;
end;

constructor TRecorder.Create;
begin
  inherited Create;
  Seen := TStringList.Create;
end;

destructor TRecorder.Destroy;
begin
  Seen.Free;
  inherited Destroy;
end;

function Describe(const E: TMcEvent): string;
begin
  if E.EventType = 'connect_progress' then
    Result := 'progress:' + E.Stage
  else if E.EventType = 'state_changed' then
    Result := 'state:' + E.FromState + '->' + E.ToState
  else
    Result := E.EventType;
end;

procedure TRecorder.OnEvent(const Event: TMcEvent);
begin
  { TThread.Queue brought us here: the main thread, where a GUI would update its controls. }
  if GetCurrentThreadId <> MainThreadID then
    Inc(OffMainThread);
  if Event.EventType <> 'log' then
    Seen.Add(Describe(Event));
  if Event.EventType = 'needs_reauthorization' then
    Reauth := Event;
end;

{ What a GUI's message loop does: run the methods other threads queued, for Ms milliseconds. }
procedure Pump(Ms: Integer);
var
  Until_: QWord;
begin
  Until_ := GetTickCount64 + QWord(Ms);
  while GetTickCount64 < Until_ do
    CheckSynchronize(20);
end;

procedure StartSignIn(const Cli, User, Code, Uri: string);
var
  P: TProcess;
begin
  P := TProcess.Create(nil);
  P.Executable := Cli;
  P.Parameters.Add('sandbox'); P.Parameters.Add('sign-in');
  P.Parameters.Add('--user'); P.Parameters.Add(User);
  P.Parameters.Add('--password'); P.Parameters.Add(Copy(User, 1, Pos('@', User) - 1) + '-password');
  P.Parameters.Add('--device-code'); P.Parameters.Add(Code);
  P.Parameters.Add('--verification-uri'); P.Parameters.Add(Uri);
  P.Options := [poWaitOnExit];
  P.Execute;
  P.Free;
end;

{ The emulator's control API: the user's refresh tokens stop working (an admin revoked the sessions). }
procedure Revoke(const Emulator, User: string);
var
  P: TProcess;
begin
  P := TProcess.Create(nil);
  P.Executable := 'curl';
  P.Parameters.Add('-sf'); P.Parameters.Add('-o'); P.Parameters.Add('/dev/null');
  P.Parameters.Add('-X'); P.Parameters.Add('POST');
  P.Parameters.Add(Emulator + '/_sandbox/users/' + User + '/revoke');
  P.Options := [poWaitOnExit];
  P.Execute;
  Check(P.ExitStatus = 0, 'the emulator revoked the refresh tokens of ' + User);
  P.Free;
end;

procedure HostPart;
const
  NativeClient = 'https://login.microsoftonline.com/common/oauth2/nativeclient';
  { The key comes from the host's own secret store; here a fixed test key. }
  StoreOptions = '{"key":{"base64":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},"no_proxy":true}';
var
  C, Other: TMailconnectClient;
  Store: TDictionaryStore;
  Fired: TMailconnectCancel;
  R: TRecorder;
  A, Nc: TMcAuthorization;
  P: TMcPollResult;
  E: TMcEvent;
  Deadline, T0: QWord;
  Got: Boolean;
  Before: Int64;
begin
  { The unit's JSON reader: escapes, nested values skipped and returned raw, numbers. }
  Check((McJsonStr('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok\n","n":-12}', 'd') = 'ok'#10)
    and (McJsonStr('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok","n":-12}', 'b') = '{"c":[1,"]}"],"e":{}}')
    and (McJsonInt('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok","n":-12}', 'n') = -12)
    and (McJsonStr('{"a":1}', 'b') = ''), 'McJsonField reads strings, nested values and numbers');
  R := TRecorder.Create;
  Store := TDictionaryStore.Create;
  Fired := TMailconnectCancel.Create;
  Fired.Trigger;
  C := TMailconnectClient.Create(StoreOptions, Store);
  try
    C.PutRegistration('{"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host":"' + ParamStr(2) +
      '","client_id":"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"}');
    C.PutAccount('{"id":"carol","mailbox":"carol@example.test","registration":"desktop","flow":"device_code"}');
    C.ConfigureEvents(256, 'info');
    C.StartEvents(R.OnEvent);
    A := C.BeginAuthorization('carol');
    Check((A.Flow = 'device_code') and (A.UserCode <> '') and (Pos(A.UserCode, A.Message) > 0) and (A.ExpiresInSecs > 60)
      and (A.IntervalSecs >= 1) and (A.Url = ''), 'BeginAuthorization gives the device code');
    P := C.PollAuthorization(A);
    Check((not P.Connected) and (P.RetryAfterMs > 0), 'PollAuthorization is pending before the user acts');
    StartSignIn(ParamStr(3), 'carol@example.test', A.UserCode, A.VerificationUri);
    Deadline := GetTickCount64 + 30000;
    while (not P.Connected) and (GetTickCount64 < Deadline) do
    begin
      Pump(P.RetryAfterMs);
      P := C.PollAuthorization(A);
    end;
    Check(P.Connected and (Pos('"state":"connected"', P.Status) > 0) and (Pos('carol@example.test', P.Status) > 0),
      'polling until connected (host-driven device code)');
    Check(Store.HasKind('registration') and Store.HasKind('account') and Store.HasKind('tokens')
      and (Store.VersionOf('tokens', 'carol') <> 0) and (Store.Loads > 0) and (Store.Swaps > 0),
      'the client keeps registrations, accounts and tokens in the host''s TDictionary');
    Check((not Store.AnyBlobContains('carol@example.test')) and (not Store.AnyBlobContains('eyJ'))
      and (not Store.AnyBlobContains('d3b07384')), 'the host''s TDictionary holds opaque blobs only');
    Other := TMailconnectClient.Create(StoreOptions, Store);
    try
      Check((Pos('"id":"carol"', Other.Accounts) > 0) and (Pos('"state":"connected"', Other.Status('carol')) > 0)
        and (Pos('"id":"desktop"', Other.Registrations) > 0) and (Store.Lists > 0),
        'a second client on the same host store finds carol connected');
    finally
      Other.Free;
    end;
    try
      C.PollAuthorization(A);
      Check(False, 'a used handle is refused');
    except
      on X: EMailconnect do
        Check((X.Status = 'MC_E_STATE') and (Pos('MC-SIGN-IN-NOT-PENDING', X.Diagnostic) > 0), 'a used handle is refused with MC-SIGN-IN-NOT-PENDING');
    end;
    Pump(2600);
    { The refresh is due: with the triggered cancel it ends with MC_E_CANCELLED, and the host's row
      is not written. }
    Before := Store.VersionOf('tokens', 'carol');
    try
      C.AccessToken('carol', Fired);
      Check(False, 'AccessToken with a triggered cancel raises');
    except
      on X: EMailconnect do
        Check((X.Code = MC_E_CANCELLED) and (X.Status = 'MC_E_CANCELLED') and (McLastErrorCode = MC_E_CANCELLED),
          'AccessToken with a triggered cancel raises MC_E_CANCELLED');
    end;
    Check((Before <> 0) and (Store.VersionOf('tokens', 'carol') = Before), 'the cancelled refresh left the host''s token row as it was');
    Check(Length(C.AccessToken('carol')) > 1000, 'access token after half the lifetime (refresh)');
    Check(McLastErrorCode = MC_OK, 'McLastErrorCode is MC_OK after a success');
    Check(Store.VersionOf('tokens', 'carol') <> Before, 'the refresh wrote a new version of the host''s token row');
    Deadline := GetTickCount64 + 5000;
    while (R.Seen.IndexOf('token_refreshed') < 0) and (GetTickCount64 < Deadline) do
      Pump(50);
    Revoke(ParamStr(2), 'carol@example.test');
    Pump(2600);
    try
      C.AccessToken('carol');
      Check(False, 'a revoked refresh token raises');
    except
      on X: EMailconnect do
        Check(X.Status = 'MC_E_REAUTHORIZATION_REQUIRED', 'a revoked refresh token raises MC_E_REAUTHORIZATION_REQUIRED');
    end;
    Deadline := GetTickCount64 + 5000;
    while (R.Seen.IndexOf('state:connected->needs_reauthorization') < 0) and (GetTickCount64 < Deadline) do
      Pump(50);
    C.StopEvents;
    Pump(100);
    WriteLn('events: ', StringReplace(Trim(R.Seen.Text), LineEnding, ' ', [rfReplaceAll]));
    Check((R.Seen.IndexOf('progress:starting') >= 0)
      and (R.Seen.IndexOf('progress:starting') < R.Seen.IndexOf('progress:connected'))
      and (R.Seen.IndexOf('progress:connected') < R.Seen.IndexOf('state:not_connected->connected'))
      and (R.Seen.IndexOf('state:not_connected->connected') < R.Seen.IndexOf('token_refreshed')),
      'events in order: connect_progress, state_changed, token_refreshed');
    Check((R.Seen.IndexOf('token_refreshed') < R.Seen.IndexOf('needs_reauthorization'))
      and (R.Seen.IndexOf('needs_reauthorization') < R.Seen.IndexOf('state:connected->needs_reauthorization')),
      'then needs_reauthorization and its state change, in order');
    Check((R.Reauth.Reason = 'refresh_token_revoked') and (R.Reauth.AccountId = 'carol')
      and (Pos('"code":"MC-REFRESH-TOKEN-REVOKED"', R.Reauth.Diagnostic) > 0),
      'needs_reauthorization carries the reason and the diagnostic');
    Check(R.OffMainThread = 0, 'TThread.Queue delivers the events on the main thread');

    { Pull. }
    C.ConfigureEvents(0, 'off');
    C.Disconnect('carol');
    Check((Store.Removes > 0) and (Store.VersionOf('tokens', 'carol') = 0), 'Disconnect removed the token row from the host''s TDictionary');
    repeat
      Got := C.NextEvent(5000, E);
    until (not Got) or (E.EventType <> 'log');
    Check(Got and (E.EventType = 'state_changed') and (E.FromState = 'needs_reauthorization') and (E.ToState = 'not_connected')
      and (E.AccountId = 'carol'), 'NextEvent pulls the disconnect''s state change');
    T0 := GetTickCount64;
    Check((not C.NextEvent(300, E)) and (GetTickCount64 - T0 >= 250), 'NextEvent gives nothing after its timeout');

    { An embedded web view's redirect URI: refusals with diagnostics, then abort. }
    Nc := C.BeginAuthorization('carol', 'browser', NativeClient);
    Check((not Nc.Loopback) and (Nc.RedirectUri = NativeClient) and (Pos('code_challenge_method=S256', Nc.Url) > 0),
      'BeginAuthorization for an embedded view');
    try
      C.CompleteAuthorization(Nc, NativeClient + '?code=abc&state=older');
      Check(False, 'a redirect of another sign-in is refused');
    except
      on X: EMailconnect do
        Check((X.Status = 'MC_E_STATE') and (Pos('MC-SIGN-IN-STATE-MISMATCH', X.Diagnostic) > 0), 'a redirect of another sign-in is refused (state mismatch)');
    end;
    C.AbortAuthorization(Nc);
    try
      C.WaitAuthorization(Nc);
      Check(False, 'an aborted sign-in is refused');
    except
      on X: EMailconnect do
        Check((X.Status = 'MC_E_STATE') and (Pos('aborted', X.Message) > 0), 'an aborted sign-in is refused');
    end;
    C.StartEvents(R.OnEvent);
  finally
    T0 := GetTickCount64;
    C.Free;
    { It waits in slices of 250 ms; a thread that ignored Terminate would block here for good. }
    Check(GetTickCount64 - T0 < 30000, 'freeing the client stops its event thread');
    Pump(50);
    R.Free;
    Fired.Free;
    Store.Free;
  end;
end;

function RawContains(const Json, Needle: string): Boolean;
var
  At, EndAt: Integer;
  Rest: string;
begin
  Result := False;
  Rest := Json;
  At := Pos('"raw":"', Rest);
  while At > 0 do
  begin
    Rest := Copy(Rest, At + 7, MaxInt);
    EndAt := Pos('"', Rest);
    if Pos(Needle, DecodeStringBase64(Copy(Rest, 1, EndAt - 1))) > 0 then
      Exit(True);
    Rest := Copy(Rest, EndAt + 1, MaxInt);
    At := Pos('"raw":"', Rest);
  end;
end;

{ The decoded text of the first message whose base64 "raw" field contains Needle, or ''. }
function FindRaw(const Json, Needle: string): string;
var
  At, EndAt: Integer;
  Rest: string;
begin
  Result := '';
  Rest := Json;
  At := Pos('"raw":"', Rest);
  while At > 0 do
  begin
    Rest := Copy(Rest, At + 7, MaxInt);
    EndAt := Pos('"', Rest);
    Result := DecodeStringBase64(Copy(Rest, 1, EndAt - 1));
    if Pos(Needle, Result) > 0 then
      Exit;
    Result := '';
    Rest := Copy(Rest, EndAt + 1, MaxInt);
    At := Pos('"raw":"', Rest);
  end;
end;

{ A header of a raw message, unfolded, with its RFC 2047 "B" encoded words decoded (UTF-8 bytes). }
function Header(const Raw, Name: string): string;
var
  Head, Line, Word: string;
  EndAt, I, Q: Integer;
begin
  Result := '';
  EndAt := Pos(#13#10#13#10, Raw);
  if EndAt = 0 then
    EndAt := Length(Raw);
  Head := StringReplace(StringReplace(Copy(Raw, 1, EndAt - 1), #13#10' ', ' ', [rfReplaceAll]), #13#10#9, ' ', [rfReplaceAll]);
  Head := #13#10 + Head + #13#10;
  I := Pos(#13#10 + LowerCase(Name) + ':', LowerCase(Head));
  if I = 0 then
    Exit;
  Line := Copy(Head, I + Length(Name) + 3, MaxInt);
  Line := Trim(Copy(Line, 1, Pos(#13#10, Line) - 1));
  while Line <> '' do
  begin
    I := Pos('=?', Line);
    if I = 0 then
    begin
      Result := Result + Line;
      Break;
    end;
    Result := Result + Copy(Line, 1, I - 1);
    Line := Copy(Line, I + 2, MaxInt);
    { charset?B?text?= }
    Q := Pos('?', Line);
    Word := Copy(Line, Q + 3, MaxInt);
    Line := Copy(Word, Pos('?=', Word) + 2, MaxInt);
    Word := Copy(Word, 1, Pos('?=', Word) - 1);
    Result := Result + DecodeStringBase64(Word);
    if Copy(TrimLeft(Line), 1, 2) = '=?' then
      Line := TrimLeft(Line);
  end;
end;

{ The base64 body of the MIME part whose headers contain Marker (e.g. its encoded file name), decoded. }
function PartBytes(const Raw, Marker: string): string;
var
  Rest: string;
  At: Integer;
begin
  Result := '';
  At := Pos(Marker, Raw);
  if At = 0 then
    Exit;
  Rest := Copy(Raw, At, MaxInt);
  At := Pos(#13#10#13#10, Rest);
  if At = 0 then
    Exit;
  Rest := Copy(Rest, At + 4, MaxInt);
  Rest := Copy(Rest, 1, Pos(#13#10'--', Rest) - 1);
  Result := DecodeStringBase64(StringReplace(Rest, #13#10, '', [rfReplaceAll]));
end;

function BytesToString(const B: TBytes): string;
begin
  SetLength(Result, Length(B));
  if Length(B) > 0 then
    Move(B[0], Result[1], Length(B));
end;

{ A TMcMessage built by mailconnect (umlaut subject, a named recipient, an attachment from bytes and
  one from a file) goes over the real Postfix and comes back over IMAP as written; bad input names
  the field. }
procedure SendBuiltMessage(C: TMailconnectClient);
var
  M: TMcMessage;
  Sent: TMcSendResult;
  Pdf, Scan: TBytes;
  ScanPath, Raw: string;
  F: TFileStream;
  I: Integer;
begin
  SetLength(Pdf, 1000);
  for I := 0 to High(Pdf) do
    Pdf[I] := Byte(I * 7);
  SetLength(Scan, 777);
  for I := 0 to High(Scan) do
    Scan[I] := Byte(255 - I mod 256);
  ScanPath := ExtractFilePath(ExpandFileName(ParamStr(1))) + 'scan.bin';
  F := TFileStream.Create(ScanPath, fmCreate);
  try
    F.WriteBuffer(Scan[0], Length(Scan));
  finally
    F.Free;
  end;
  M := McNewMessage('Rechnung für März');
  McAdd(M.Recipients, McAddress('alice@example.test', 'Alice Müller'));
  M.Text := 'Guten Tag,'#10'anbei die Rechnung für März.'#10;
  McAdd(M.Attachments, McBytesAttachment(Pdf, 'Rechnung März.pdf', 'application/pdf'));
  McAdd(M.Attachments, McFileAttachment(ScanPath));
  McAddHeader(M.Headers, 'X-Invoice-Number', '2026-03-17');
  M.Importance := mcImportanceHigh;
  Sent := C.SendMessage('alice', M);
  Check((Sent.Transport = 'smtp') and (Pos('<', Sent.MessageId) = 1) and (Pos('@example.test>', Sent.MessageId) > 0)
    and (Sent.Size > Length(Pdf)) and (Pos('2', Sent.Reply) = 1), 'SendMessage over SMTP: transport smtp and a Message-ID (' + Sent.Json + ')');
  Raw := '';
  for I := 1 to 40 do
  begin
    Raw := FindRaw(C.Fetch('alice', '{"protocol":"imap","unread_only":true,"transport":"smtp_imap"}'), Sent.MessageId);
    if Raw <> '' then Break;
    Sleep(250);
  end;
  Check(Raw <> '', 'the built message arrives over IMAP (unread_only)');
  Check(Header(Raw, 'Subject') = 'Rechnung für März', 'the umlaut subject decodes as written: ' + Header(Raw, 'Subject'));
  Check(Pos('Subject: Rechnung für März', Raw) = 0, 'the subject travels encoded');
  Check(Header(Raw, 'To') = 'Alice Müller <alice@example.test>', 'the named recipient: ' + Header(Raw, 'To'));
  Check((Header(Raw, 'X-Invoice-Number') = '2026-03-17') and (Header(Raw, 'Importance') = 'high'), 'extra header and importance');
  Check(PartBytes(Raw, 'Rechnung%20M%C3%A4rz.pdf') = BytesToString(Pdf), 'the attachment from bytes arrives byte for byte under its umlaut name');
  Check(PartBytes(Raw, 'scan.bin') = BytesToString(Scan), 'the attachment from a file arrives byte for byte');
  Check((Header(Raw, 'Subject') = 'Rechnung für März') and (PartBytes(Raw, 'Rechnung%20M%C3%A4rz.pdf') = BytesToString(Pdf))
    and (PartBytes(Raw, 'scan.bin') = BytesToString(Scan)), 'the built message came back: umlaut subject, named recipient, both attachments'' bytes');
  try
    C.SendMessage('alice', McNewMessage('nobody'));
    Check(False, 'a message without recipients raises');
  except
    on X: EMailconnect do
      Check((X.Code = MC_E_INVALID_ARGUMENT) and (Pos('"field":"to"', X.Diagnostic) > 0), 'a message without recipients raises MC_E_INVALID_ARGUMENT naming "to"');
  end;
  M := McNewMessage('missing file');
  McAdd(M.Recipients, McAddress('alice@example.test'));
  McAdd(M.Attachments, McFileAttachment(ScanPath + '.missing'));
  try
    C.SendMessage('alice', M);
    Check(False, 'a missing attachment file raises');
  except
    on X: EMailconnect do
      Check((X.Code = MC_E_INVALID_ARGUMENT) and (Pos('"field":"attachments[0].path"', X.Diagnostic) > 0), 'a missing attachment file names attachments[0].path');
  end;
end;

{ The JSON a TMcMessage becomes, base64, and a reauthorization_due event read back. }
{ The password of an http://user:password@host:port URL as written ('' when none), and its
  host:port. }
procedure SplitProxyUrl(const Url: string; out Password, HostPort: string);
var
  Scheme, At, Colon: Integer;
  UserInfo: string;
begin
  Password := '';
  HostPort := '';
  Scheme := Pos('://', Url);
  At := LastDelimiter('@', Url);
  if (Scheme = 0) or (At < Scheme) then
    Exit;
  UserInfo := Copy(Url, Scheme + 3, At - Scheme - 3);
  Colon := Pos(':', UserInfo);
  if Colon > 0 then
    Password := Copy(UserInfo, Colon + 1, MaxInt);
  HostPort := Copy(Url, At + 1, MaxInt);
  if Pos('/', HostPort) > 0 then
    HostPort := Copy(HostPort, 1, Pos('/', HostPort) - 1);
end;

{ With MC_TEST_PROXY (an http URL with Basic credentials of a real proxy): store it as the proxy
  of every connection and read it back (stored, with a password that is never shown). Returns the
  proxy's host:port, or '' without one. Never prints the password. }
function UseTestProxy(C: TMailconnectClient): string;
var
  Proxy, Password: string;
  Info: TMcProxyInfo;
begin
  Result := '';
  Proxy := GetEnvironmentVariable('MC_TEST_PROXY');
  if Proxy = '' then
    Exit;
  SplitProxyUrl(Proxy, Password, Result);
  C.SetProxy(Proxy);
  Info := C.GetProxy;
  Check((Info.Source = 'stored') and (Info.Stored <> '') and Info.HasPassword and (Password <> '')
    and (Pos(Password, Info.Json) = 0), 'proxy stored: source stored, no password shown');
end;

procedure Offline;
var
  M: TMcMessage;
  B: TBytes;
  Ev: TMcEvent;
begin
  M := McNewMessage('Grüße');
  M.From := McAddress('me@example.test', 'Me "Boss"');
  McAdd(M.Recipients, McAddress('a@example.test'));
  McAdd(M.Cc, McAddress('b@example.test', 'Bernd Groß'));
  M.Html := '<p>Hallo</p>';
  SetLength(B, 2);
  B[0] := 0; B[1] := 255;
  McAdd(M.Attachments, McBytesAttachment(B, '', 'image/png', 'img1'));
  McAddHeader(M.Headers, 'X-A', '1');
  M.Importance := mcImportanceLow;
  M.ReadReceipt := True;
  Check(McMessageJson(M) = '{"subject":"Grüße","from":{"name":"Me \"Boss\"","address":"me@example.test"},"to":["a@example.test"],' +
    '"cc":[{"name":"Bernd Groß","address":"b@example.test"}],"html":"<p>Hallo</p>",' +
    '"attachments":[{"content_base64":"AP8=","content_type":"image/png","content_id":"img1"}],' +
    '"headers":[{"name":"X-A","value":"1"}],"importance":"low","read_receipt":true}', 'McMessageJson: ' + McMessageJson(M));
  Check((McBase64(nil) = '') and (McBase64(TBytes(BytesOf('f'))) = 'Zg==') and (McBase64(TBytes(BytesOf('fo'))) = 'Zm8=')
    and (McBase64(TBytes(BytesOf('foobar'))) = 'Zm9vYmFy'), 'McBase64');
  Ev := McEventFromJson('{"seq":4,"time":"2030-01-01T00:00:00.000Z","type":"reauthorization_due","account_id":"a",' +
    '"at":"2030-01-01T01:00:00Z","code":"MC-NO-REFRESH-TOKEN"}');
  Check((Ev.EventType = 'reauthorization_due') and (Ev.AccountId = 'a') and (Ev.At = '2030-01-01T01:00:00Z')
    and (Ev.Code = 'MC-NO-REFRESH-TOKEN'), 'a reauthorization_due event has At and Code');
end;

var
  C: TMailconnectClient;
  U: TUser;
  Log: TLogger;
  Fired: TMailconnectCancel;
  Report: TMcRefreshReport;
  I, Seen: Integer;
  Found: Boolean;
  Servers, Token, Proxy, TestReport: string;
begin
  Passed := 0; Failed := 0;
  if ParamStr(9) = 'host' then
  begin
    try
      HostPart;
    except
      on X: Exception do
        Check(False, 'unexpected exception: ' + X.Message);
    end;
    WriteLn(Passed, ' passed, ', Failed, ' failed');
    if Failed > 0 then Halt(1);
    Exit;
  end;
  U := TUser.Create;
  U.Cli := ParamStr(3);
  Log := TLogger.Create;
  Fired := TMailconnectCancel.Create;
  Fired.Trigger;
  C := nil;
  try
    Check(Pos('.', TMailconnectClient.Version) > 0, 'Version ' + TMailconnectClient.Version);
    Offline;
    try
      TMailconnectClient.SetLogCallback(Log.OnLog, 9);
      Check(False, 'SetLogCallback with level 9 raises');
    except
      on X: EMailconnect do
        Check(X.Code = MC_E_INVALID_ARGUMENT, 'SetLogCallback with level 9 raises MC_E_INVALID_ARGUMENT');
    end;
    TMailconnectClient.SetLogCallback(Log.OnLog, MC_LOG_INFO);
    C := TMailconnectClient.Create('{"store":"' + ParamStr(1) + '","extra_ca_file":"' + ParamStr(8) + '","language":"de"}');
    { Every connection from here on (sign-ins, Test, send, fetch) through MC_TEST_PROXY when set. }
    Proxy := UseTestProxy(C);

    { Registrations and accounts. }
    C.PutRegistration('{"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host":"' + ParamStr(2) +
      '","client_id":"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"}');
    Check((Pos('d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90', C.Registration('desktop')) > 0)
      and (Pos('"has_client_secret":false', C.Registration('desktop')) > 0), 'Registration reads the registration back');
    C.PutRegistration('{"id":"spare","provider":"microsoft","client_id":"c2","client_secret":"s3cret-Wert-42"}');
    Check((Pos('"id":"spare"', C.Registrations) > 0) and (Pos('"id":"desktop"', C.Registrations) > 0)
      and (Pos('s3cret-Wert-42', C.Registrations) = 0) and (Pos('"has_client_secret":true', C.Registration('spare')) > 0),
      'Registrations lists both, the secret shown as has_client_secret only');
    C.RemoveRegistration('spare');
    try
      C.Registration('spare');
      Check(False, 'a removed registration is gone');
    except
      on X: EMailconnect do
        Check((X.Code = MC_E_NOT_FOUND) and (McLastErrorCode = MC_E_NOT_FOUND), 'RemoveRegistration: Registration raises MC_E_NOT_FOUND afterwards');
    end;
    Servers := '{"imap":{"host":"' + ParamStr(4) + '","port":' + ParamStr(5) + ',"security":"tls"},' +
      '"pop3":{"host":"' + ParamStr(4) + '","port":' + ParamStr(6) + ',"security":"tls"},' +
      '"smtp":{"host":"' + ParamStr(4) + '","port":' + ParamStr(7) + ',"security":"starttls"}}';
    C.PutAccount('{"id":"alice","mailbox":"alice@example.test","registration":"desktop","flow":"device_code","servers":' + Servers + '}');
    C.PutAccount('{"id":"web","mailbox":"alice@example.test","registration":"desktop","flow":"browser"}');
    Check((Pos('"flow":"device_code"', C.Account('alice')) > 0) and (Pos('"flow":"browser"', C.Account('web')) > 0),
      'Account reads each account back');
    Check((Pos('"id":"alice"', C.Accounts) > 0) and (Pos('"id":"web"', C.Accounts) > 0), 'Accounts lists both');
    try
      C.RemoveRegistration('desktop');
      Check(False, 'a registration in use cannot be removed');
    except
      on X: EMailconnect do
        Check(X.Code = MC_E_STATE, 'RemoveRegistration of a registration in use raises MC_E_STATE');
    end;

    { A triggered cancel: the connect ends before anything is shown. }
    C.OnDeviceCode := U.DeviceCode;
    C.OnProgress := U.Progress;
    try
      C.Connect('alice', Fired);
      Check(False, 'Connect with a triggered cancel raises');
    except
      on X: EMailconnect do
        Check((X.Code = MC_E_CANCELLED) and (U.Shown = 0), 'Connect with a triggered cancel raises MC_E_CANCELLED, no device code shown');
    end;

    C.Connect('alice');
    Check(U.Shown = 1, 'device code event ran once');
    Check(U.LastStage = 'connected', 'progress reached connected');
    Check(Pos('"state":"connected"', C.Status('alice')) > 0, 'status connected');

    { The browser flow with the host's OnOpenUrl (its own web view). }
    C.OnOpenUrl := U.OpenUrl;
    C.Connect('web');
    Check((U.Opened = 1) and (U.Shown = 1), 'OnOpenUrl showed the sign-in page once');
    Check(Pos('"state":"connected"', C.Status('web')) > 0, 'the browser sign-in connected the account');
    C.RemoveAccount('web');
    Check((Pos('"id":"web"', C.Accounts) = 0) and (Pos('"id":"alice"', C.Accounts) > 0), 'RemoveAccount removed only that account');
    try
      C.Status('web');
      Check(False, 'a removed account is gone');
    except
      on X: EMailconnect do
        Check(X.Code = MC_E_NOT_FOUND, 'Status of a removed account raises MC_E_NOT_FOUND');
    end;

    { The refresher: one round on this thread, then the background one started and stopped. }
    Report := C.RunRefresher;
    Check((Report.Accounts = 1) and (Report.Fresh = 1) and (Report.Refreshed = 0) and (Report.Failed = 0)
      and (Report.NotConnected = 0), 'RunRefresher: one account, fresh (' + Report.Json + ')');
    C.StartRefresher('{"interval_secs":3600}');
    try
      C.StartRefresher;
      Check(False, 'a running refresher cannot be started again');
    except
      on X: EMailconnect do
        Check(X.Code = MC_E_STATE, 'StartRefresher while it runs raises MC_E_STATE');
    end;
    C.StopRefresher;
    C.StopRefresher;
    Check(True, 'StopRefresher, twice');

    { A disconnect with the triggered cancel changes nothing. }
    try
      C.Disconnect('alice', Fired);
      Check(False, 'Disconnect with a triggered cancel raises');
    except
      on X: EMailconnect do
        Check(X.Code = MC_E_CANCELLED, 'Disconnect with a triggered cancel raises MC_E_CANCELLED');
    end;
    Check(Pos('"state":"connected"', C.Status('alice')) > 0, 'the cancelled disconnect left the account connected');

    TestReport := C.Test('alice');
    Check(Pos('"ok":true', TestReport) > 0, 'Test ok for IMAP, POP3, SMTP');
    if Proxy <> '' then
    begin
      Seen := 0;
      I := Pos('"path":"http proxy ' + Proxy + '"', TestReport);
      while I > 0 do
      begin
        Inc(Seen);
        TestReport := Copy(TestReport, I + 1, MaxInt);
        I := Pos('"path":"http proxy ' + Proxy + '"', TestReport);
      end;
      Check(Seen = 3, 'Test paths name the stored proxy');
    end;
    Token := C.AccessToken('alice');
    Check(Length(Token) > 1000, 'access token');
    Check(Pos('dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB', C.SaslXoauth2('alice')) = 1, 'SASL XOAUTH2 string');
    C.Send('alice', 'From: alice@example.test'#13#10'To: alice@example.test'#13#10'Subject: from pascal'#13#10#13#10'Hello.'#13#10);
    Found := False;
    for I := 1 to 40 do
    begin
      Found := RawContains(C.Fetch('alice', '{"protocol":"imap","headers_only":true}'), 'Subject: from pascal');
      if Found then Break;
      Sleep(250);
    end;
    Check(Found, 'fetch over IMAP finds the message');
    Check(Pos('"raw"', C.Fetch('alice', '{"protocol":"pop3"}')) > 0, 'fetch over POP3');
    Check(Pos('INBOX', C.Folders('alice')) > 0, 'folders');
    SendBuiltMessage(C);
    C.Disconnect('alice');
    Check(Log.Any('disconnected'), 'the log callback received the disconnect''s record');
    Check(not Log.Any(Copy(Token, 1, 40)), 'no log record holds the access token');
    WriteLn('log records: ', Log.Count);
    TMailconnectClient.SetLogCallback(nil);
    Seen := Log.Count;
    C.Disconnect('alice');
    Check(Log.Count = Seen, 'no records after SetLogCallback(nil)');
    try
      C.AccessToken('alice');
      Check(False, 'a failing call raises');
    except
      on E: EMailconnect do
      begin
        Check((E.Code = MC_E_STATE) and (E.Status = 'MC_E_STATE') and (McLastErrorCode = MC_E_STATE), 'failing call has code ' + E.Status);
        Check((Pos('MC-NOT-CONNECTED', E.Diagnostic) > 0) and (Pos('"de"', E.Diagnostic) > 0), 'failing call has the diagnostic');
      end;
    end;
    try
      C.GraphToken('alice');
      Check(False, 'GraphToken of a disconnected account raises');
    except
      on E: EMailconnect do
        Check((E.Code = MC_E_STATE) and (Pos('MC-NOT-CONNECTED', E.Diagnostic) > 0), 'GraphToken of a disconnected account raises MC_E_STATE');
    end;
  finally
    C.Free;
    TMailconnectClient.SetLogCallback(nil);
    Fired.Free;
    Log.Free;
    U.Free;
  end;
  WriteLn(Passed, ' passed, ', Failed, ' failed');
  if Failed > 0 then Halt(1);
end.
