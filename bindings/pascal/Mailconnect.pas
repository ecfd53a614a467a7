{ mailconnect for Delphi (2009+, Unicode strings) and Free Pascal ($mode delphi).
  A thin unit over the C ABI in include/mailconnect.h: cdecl externals, UTF8String conversions,
  EMailconnect with Code, Status and Diagnostic, and TMailconnectClient with a destructor.
  Callbacks run on mailconnect threads: never touch the VCL/LCL from them; post to the UI thread
  with TThread.Queue (see README.md). FPC programs must list cthreads first in their uses clause. }
unit Mailconnect;

{$IFDEF FPC}{$MODE DELPHI}{$H+}{$ENDIF}

interface

uses
  SysUtils;

const
{$IFDEF MSWINDOWS}
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

  { A mailconnect client over one token store. Thread-safe; calls block. }
  TMailconnectClient = class
  private
    FHandle: Pointer;
    FOnDeviceCode: TDeviceCodeEvent;
    FOnProgress: TProgressEvent;
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
    property OnDeviceCode: TDeviceCodeEvent read FOnDeviceCode write FOnDeviceCode;
    property OnProgress: TProgressEvent read FOnProgress write FOnProgress;
  end;

function mc_abi_version: UInt32; cdecl; external MailconnectLib;
function mc_version: PAnsiChar; cdecl; external MailconnectLib;
function mc_status_name(Code: Int32): PAnsiChar; cdecl; external MailconnectLib;
function mc_last_error_code: Int32; cdecl; external MailconnectLib;
function mc_last_error_message: PAnsiChar; cdecl; external MailconnectLib;
function mc_last_error_diagnostic: PAnsiChar; cdecl; external MailconnectLib;
procedure mc_string_free(S: PAnsiChar); cdecl; external MailconnectLib;
function mc_client_open(OptionsJson: PAnsiChar; out Client: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_client_free(Client: Pointer); cdecl; external MailconnectLib;
function mc_registration_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_account_put(Client: Pointer; Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_status(Client: Pointer; AccountId: PAnsiChar; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_connect(Client: Pointer; AccountId: PAnsiChar; Callbacks: PMcConnectCallbacks; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_disconnect(Client: Pointer; AccountId: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_test(Client: Pointer; AccountId: PAnsiChar; Protocols: UInt32; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_access_token(Client: Pointer; AccountId: PAnsiChar; Protocol: UInt32; out Token: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_sasl_xoauth2(Client: Pointer; AccountId: PAnsiChar; Protocol: UInt32; out Sasl: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_send(Client: Pointer; AccountId: PAnsiChar; Msg: PByte; Len: NativeUInt; Cancel: Pointer): Int32; cdecl; external MailconnectLib;
function mc_list_folders(Client: Pointer; AccountId: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_fetch(Client: Pointer; AccountId, QueryJson: PAnsiChar; Cancel: Pointer; out Json: PAnsiChar): Int32; cdecl; external MailconnectLib;
function mc_cancel_new(out Cancel: Pointer): Int32; cdecl; external MailconnectLib;
procedure mc_cancel_trigger(Cancel: Pointer); cdecl; external MailconnectLib;
procedure mc_cancel_free(Cancel: Pointer); cdecl; external MailconnectLib;

{ UTF-8 helpers: the C ABI speaks UTF-8; Delphi strings are UTF-16. }
function ToUtf8(const S: string): UTF8String;
function FromUtf8(P: PAnsiChar): string;

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

procedure Check(Rc: Int32);
var
  E: EMailconnect;
begin
  if Rc = 0 then
    Exit;
  E := EMailconnect.Create(FromUtf8(mc_status_name(Rc)) + ': ' + FromUtf8(mc_last_error_message));
  E.Code := Rc;
  E.Status := FromUtf8(mc_status_name(Rc));
  E.Diagnostic := FromUtf8(mc_last_error_diagnostic);
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
  if mc_abi_version <> MAILCONNECT_ABI then
    raise Exception.CreateFmt('libmailconnect has ABI version %d, this unit needs %d', [mc_abi_version, MAILCONNECT_ABI]);
  Check(mc_client_open(PAnsiChar(ToUtf8(OptionsJson)), FHandle));
end;

destructor TMailconnectClient.Destroy;
begin
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
  Check(mc_status(FHandle, PAnsiChar(ToUtf8(AccountId)), P));
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
  Check(mc_connect(FHandle, PAnsiChar(ToUtf8(AccountId)), @Cb, Cancel));
end;

procedure TMailconnectClient.Disconnect(const AccountId: string);
begin
  Check(mc_disconnect(FHandle, PAnsiChar(ToUtf8(AccountId))));
end;

function TMailconnectClient.Test(const AccountId: string; Protocols: UInt32): string;
var
  P: PAnsiChar;
begin
  Check(mc_test(FHandle, PAnsiChar(ToUtf8(AccountId)), Protocols, nil, P));
  Result := TakeString(P);
end;

function TMailconnectClient.AccessToken(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_access_token(FHandle, PAnsiChar(ToUtf8(AccountId)), 0, P));
  Result := TakeString(P);
end;

function TMailconnectClient.SaslXoauth2(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_sasl_xoauth2(FHandle, PAnsiChar(ToUtf8(AccountId)), 0, P));
  Result := TakeString(P);
end;

procedure TMailconnectClient.Send(const AccountId: string; const Rfc5322: RawByteString);
begin
  Check(mc_send(FHandle, PAnsiChar(ToUtf8(AccountId)), PByte(PAnsiChar(Rfc5322)), Length(Rfc5322), nil));
end;

function TMailconnectClient.Fetch(const AccountId, QueryJson: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_fetch(FHandle, PAnsiChar(ToUtf8(AccountId)), PAnsiChar(ToUtf8(QueryJson)), nil, P));
  Result := TakeString(P);
end;

function TMailconnectClient.Folders(const AccountId: string): string;
var
  P: PAnsiChar;
begin
  Check(mc_list_folders(FHandle, PAnsiChar(ToUtf8(AccountId)), nil, P));
  Result := TakeString(P);
end;

end.
