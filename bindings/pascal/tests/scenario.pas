{ The Pascal unit's scenario against the sandbox and the real mail stack (Free Pascal, mode delphi).
  usage: scenario STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE }
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
