{ The Pascal unit's scenario against the sandbox and the real mail stack (Free Pascal, mode delphi).
  usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE [host]
  With "host" it runs the host integration part instead (the emulator then issues 4-second
  tokens): the device code driven by the host, events from a TMcEventThread delivered to the main
  thread with TThread.Queue (pumped here with CheckSynchronize), NextEvent, nativeclient refusals
  and abort. }
program scenario;

{$MODE DELPHI}{$H+}

uses
  cthreads, Classes, SysUtils, Process, base64, Mailconnect;

type
  TUser = class
    Cli: string;
    Shown: Integer;
    LastStage: string;
    procedure DeviceCode(const UserCode, VerificationUri, Message: string);
    procedure Progress(const Stage: string);
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
var
  C: TMailconnectClient;
  R: TRecorder;
  A, Nc: TMcAuthorization;
  P: TMcPollResult;
  E: TMcEvent;
  Deadline, T0: QWord;
  Got: Boolean;
begin
  { The unit's JSON reader: escapes, nested values skipped and returned raw, numbers. }
  Check((McJsonStr('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok\n","n":-12}', 'd') = 'ok'#10)
    and (McJsonStr('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok","n":-12}', 'b') = '{"c":[1,"]}"],"e":{}}')
    and (McJsonInt('{"a":"q\"}","b":{"c":[1,"]}"],"e":{}},"d":"ok","n":-12}', 'n') = -12)
    and (McJsonStr('{"a":1}', 'b') = ''), 'McJsonField reads strings, nested values and numbers');
  R := TRecorder.Create;
  C := TMailconnectClient.Create('{"store":"' + ParamStr(1) + '","no_proxy":true}');
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
    try
      C.PollAuthorization(A);
      Check(False, 'a used handle is refused');
    except
      on X: EMailconnect do
        Check((X.Status = 'MC_E_STATE') and (Pos('MC-SIGN-IN-NOT-PENDING', X.Diagnostic) > 0), 'a used handle is refused with MC-SIGN-IN-NOT-PENDING');
    end;
    Pump(2600);
    Check(Length(C.AccessToken('carol')) > 1000, 'access token after half the lifetime (refresh)');
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
    Check(GetTickCount64 - T0 < 2000, 'freeing the client stops its event thread promptly');
    Pump(50);
    R.Free;
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

var
  C: TMailconnectClient;
  U: TUser;
  I: Integer;
  Found: Boolean;
  Servers: string;
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
  C := TMailconnectClient.Create('{"store":"' + ParamStr(1) + '","extra_ca_file":"' + ParamStr(8) + '","language":"de"}');
  try
    C.PutRegistration('{"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host":"' + ParamStr(2) +
      '","client_id":"d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"}');
    Servers := '{"imap":{"host":"' + ParamStr(4) + '","port":' + ParamStr(5) + ',"security":"tls"},' +
      '"pop3":{"host":"' + ParamStr(4) + '","port":' + ParamStr(6) + ',"security":"tls"},' +
      '"smtp":{"host":"' + ParamStr(4) + '","port":' + ParamStr(7) + ',"security":"starttls"}}';
    C.PutAccount('{"id":"alice","mailbox":"alice@example.test","registration":"desktop","flow":"device_code","servers":' + Servers + '}');
    C.OnDeviceCode := U.DeviceCode;
    C.OnProgress := U.Progress;
    C.Connect('alice');
    Check(U.Shown = 1, 'device code event ran once');
    Check(U.LastStage = 'connected', 'progress reached connected');
    Check(Pos('"state":"connected"', C.Status('alice')) > 0, 'status connected');
    Check(Pos('"ok":true', C.Test('alice')) > 0, 'Test ok for IMAP, POP3, SMTP');
    Check(Length(C.AccessToken('alice')) > 1000, 'access token');
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
    C.Disconnect('alice');
    C.Disconnect('alice');
    try
      C.AccessToken('alice');
      Check(False, 'a failing call raises');
    except
      on E: EMailconnect do
      begin
        Check((E.Code = -11) and (E.Status = 'MC_E_STATE'), 'failing call has code ' + E.Status);
        Check((Pos('MC-NOT-CONNECTED', E.Diagnostic) > 0) and (Pos('"de"', E.Diagnostic) > 0), 'failing call has the diagnostic');
      end;
    end;
  finally
    C.Free;
    U.Free;
  end;
  WriteLn(Passed, ' passed, ', Failed, ' failed');
  if Failed > 0 then Halt(1);
end.
