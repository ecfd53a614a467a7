#!/usr/bin/env python3
"""Writes the seed corpora (seeds/<target>/) from realistic samples: Microsoft identity platform
answers in the documented shape (error, error_description with AADSTS codes and trace lines,
error_codes, timestamp, trace_id, correlation_id, error_uri), Exchange Online, Gmail, Dovecot and
Postfix replies, and the README's JSON. Run it again after editing; the files are committed."""
import base64, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds")

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

TRACE = "\r\nTrace ID: 2f6e9c3a-1b0d-4a6e-9f1e-3c2d1e0f5a00\r\nCorrelation ID: 9b1c7a64-0c38-4f0e-8e0b-5d7b9a1c2e11\r\nTimestamp: 2026-11-23 09:12:44Z"
def ms_error(error, code, text, sub=None):
    e = {"error": error,
         "error_description": f"AADSTS{code}: {text}{TRACE}",
         "error_codes": [code],
         "timestamp": "2026-11-23 09:12:44Z",
         "trace_id": "2f6e9c3a-1b0d-4a6e-9f1e-3c2d1e0f5a00",
         "correlation_id": "9b1c7a64-0c38-4f0e-8e0b-5d7b9a1c2e11",
         "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    if sub:
        e["suberror"] = sub
    return json.dumps(e)

ERRORS = {
    "invalid_grant_70008": ms_error("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."),
    "invalid_grant_700082": ms_error("invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on 2026-05-01T10:00:00Z and was inactive for 90.00:00:00."),
    "invalid_grant_50173": ms_error("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password."),
    "consent_65001": ms_error("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '00000000-0000-0000-0000-000000000000' named 'Acme Mail'. Send an interactive authorization request for this user and resource.", "consent_required"),
    "mfa_50076": ms_error("invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'Office 365 Exchange Online'.", "basic_action"),
    "ca_53003": ms_error("access_denied", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
    "secret_7000215": ms_error("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '00000000-0000-0000-0000-000000000000'."),
    "public_7000218": ms_error("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    "app_700016": ms_error("unauthorized_client", 700016, "Application with identifier '00000000-0000-0000-0000-000000000000' was not found in the directory 'Contoso'."),
    "common_50194": ms_error("invalid_request", 50194, "Application '00000000-0000-0000-0000-000000000000'(Acme Mail) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'."),
    "redeemed_54005": ms_error("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."),
    "pending_70016": ms_error("authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."),
    "throttled_90055": ms_error("temporarily_unavailable", 90055, "The request is throttled temporarily. Please try after some time."),
    "sif_70043": ms_error("invalid_grant", 70043, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access."),
    "google_invalid_grant": json.dumps({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
    "rfc_server_error": json.dumps({"error": "server_error"}),
}

def token_response():
    grant = {"token_type": "Bearer",
             "scope": "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid profile",
             "expires_in": 4319, "ext_expires_in": 4319,
             "access_token": "eyJ0eXAiOiJKV1QiLCJub25jZSI6IkRYZ0ZxIiwiYWxnIjoiUlMyNTYifQ.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSJ9.c2ln",
             "refresh_token": "1.AXoA8Z2v0.AgABAwEAAAApTwJmzXqdR4BN2miheQMYAgDs_wUA9P8ySx3",
             "id_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjbGllbnQtMSJ9.c2ln"}
    put("token_response", "grant_ms", b"\x00\x00\x00" + json.dumps(grant).encode())
    g2 = dict(grant); g2["expires_in"] = "3599"; del g2["refresh_token"]
    put("token_response", "grant_string_expiry", b"\x01\x01\x00" + json.dumps(g2).encode())
    put("token_response", "grant_google", b"\x00\x01\x00" + json.dumps({"access_token": "ya29.a0AfB_byC-fuzzseed", "expires_in": 3599, "refresh_token": "1//0gfuzzseed", "scope": "https://mail.google.com/", "token_type": "Bearer"}).encode())
    put("token_response", "grant_mac", b"\x00\x00\x00" + json.dumps({"access_token": "abcdefghijk", "token_type": "mac"}).encode())
    put("token_response", "truncated", b"\x00\x00\x00" + json.dumps(grant).encode()[:70])
    for i, (name, body) in enumerate(ERRORS.items()):
        status = {"secret_7000215": 3, "public_7000218": 3, "throttled_90055": 5}.get(name, 2)
        put("token_response", "error_" + name, bytes([status, 0, 0]) + body.encode())
    put("token_response", "throttled_429", b"\x05\x00\x1e" + ERRORS["throttled_90055"].encode())
    put("token_response", "html_proxy_502", b"\x07\x02\x00<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
    put("token_response", "html_no_ct_403", b"\x04\x04\x00  <html><head><title>Access Denied - Corporate Web Filter</title></head><body>Blocked</body></html>")
    put("token_response", "plain_503", b"\x08\x03\x05Service Unavailable")

def oauth_error():
    for name, body in ERRORS.items():
        put("oauth_error", name, b"J" + body.encode())
    put("oauth_error", "structured_a", bytes(range(0, 64)))
    put("oauth_error", "structured_b", bytes([1, 0, 5, 3, 1, 1, 2, 200, 7, 9, 9, 1, 0, 4, 2, 0, 1, 1, 0]) * 3)

def id_token():
    claims = {"aud": "client-1", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
              "iat": 1795000000, "nbf": 1795000000, "exp": 4102444800, "name": "Alice Example",
              "nonce": "n0nce-fuzz", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
              "preferred_username": "alice@example.test", "rh": "0.AXoA", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
              "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0"}
    hdr = b64u(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "nOo3ZDrODXEK1jKWhXslHR_KXEg"}).encode())
    jwt = hdr + "." + b64u(json.dumps(claims).encode()) + ".c2lnbmF0dXJl"
    put("id_token", "jwt_ms", b"\x02" + jwt.encode())
    put("id_token", "claims_ms", b"\x03" + json.dumps(claims).encode())
    c2 = dict(claims); c2["aud"] = ["other", "client-1"]; c2["upn"] = "Alice@Example.test"; del c2["preferred_username"]
    put("id_token", "claims_aud_array", b"\x01" + json.dumps(c2).encode())
    c3 = {"aud": "client-1", "email": "bob@example.test", "exp": 1000}
    put("id_token", "claims_expired_google", b"\x01" + json.dumps(c3).encode())
    put("id_token", "not_a_jwt", b"\x00garbage")
    put("id_token", "padded", b"\x00" + (hdr + "." + b64u(json.dumps(claims).encode()) + "==.sig").encode())

def loopback_request():
    ua = "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: text/html\r\n"
    put("loopback_request", "code", b"\x00GET /?code=1.AXoA8Z2v0fuzzcode-AgABAAIAAAD&state=st4te-fuzz&session_state=0c7b1a2e-2b21-4c7a-9d3e-6f0a1b2c3d4e HTTP/1.1\r\nHost: localhost:53127\r\n" + ua.encode() + b"\r\n")
    put("loopback_request", "code_path", b"\x01GET /cb?state=st4te-fuzz&code=4%2F0AeanS0fuzz&scope=https%3A%2F%2Fmail.google.com%2F HTTP/1.1\r\nHost: 127.0.0.1:41234\r\n\r\n")
    put("loopback_request", "error", b"\x00GET /?error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.%0d%0aTrace+ID%3a+x&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d65004&state=st4te-fuzz HTTP/1.1\r\nHost: localhost:53127\r\n\r\n")
    put("loopback_request", "wrong_state", b"\x00GET /?code=abc&state=old-state HTTP/1.1\r\nHost: localhost\r\n\r\n")
    put("loopback_request", "favicon", b"\x00GET /favicon.ico HTTP/1.1\r\nHost: localhost:53127\r\n" + ua.encode() + b"\r\n")
    put("loopback_request", "post", b"\x00POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\ncode")
    put("loopback_request", "absolute", b"\x00GET http://localhost/?code=a&state=st4te-fuzz HTTP/1.1\r\n\r\n")

POP_DOVECOT_CAPA = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n"
MSG1 = "Return-Path: <bob@example.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nFrom: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Rechnung\r\nMessage-ID: <1@example.test>\r\n\r\nHallo,\r\n..dot-stuffed line\r\nEnde\r\n.\r\n"
def pop3_session():
    ok = ("+OK Dovecot (Debian) ready.\r\n" + POP_DOVECOT_CAPA + "+ \r\n+OK Logged in.\r\n+OK 2 1268\r\n"
          "+OK\r\n1 000000015f6a2b3c\r\n2 000000025f6a2b3c\r\n.\r\n+OK 2 messages:\r\n1 634\r\n2 634\r\n.\r\n"
          "+OK\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nSubject: Rechnung\r\n\r\n.\r\n"
          "+OK\r\nDate: Tue, 1 Jan 2019 00:00:00 GMT\r\n\r\n.\r\n"
          "+OK 634 octets\r\n" + MSG1 + "+OK Marked to be deleted.\r\n+OK 634 octets\r\n" + MSG1 + "+OK Marked to be deleted.\r\n+OK\r\n+OK Logging out, messages deleted.\r\n")
    put("pop3_session", "dovecot", b"\x00" + ok.encode())
    put("pop3_session", "dovecot_chunk1", b"\x01" + ok.encode())
    put("pop3_session", "dovecot_oauthbearer", b"\x47" + ok.encode())
    exo = ("+OK The Microsoft Exchange POP3 service is ready. [TQBBADEAUABSADAAMQBDAEEAMAAwADQAMwAuAG4AYQBtAHAAcgBkADAAMQAuAHAAcgBvAGQALgBvAHUAdABsAG8AbwBrAC4AYwBvAG0A]\r\n"
           "+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nUSER\r\n.\r\n+ \r\n-ERR Authentication failure: unknown user name or bad password.\r\n")
    put("pop3_session", "exchange_refused", b"\x00" + exo.encode())
    chal = base64.b64encode(b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').decode()
    put("pop3_session", "gmail_challenge", b"\x00" + ("+OK Gpop ready for requests from 203.0.113.5\r\n+OK Capability list follows\r\nUSER\r\nRESP-CODES\r\nEXPIRE 0\r\nLOGIN-DELAY 300\r\nTOP\r\nUIDL\r\nX-GOOGLE-RICO\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n+ \r\n+ " + chal + "\r\n-ERR [AUTH] Invalid credentials.\r\n").encode())
    put("pop3_session", "greeting_refused", b"\x00-ERR [SYS/TEMP] Server shutting down.\r\n")
    put("pop3_session", "no_capa", b"\x00+OK POP3 ready\r\n-ERR Unknown command.\r\n+ \r\n+OK\r\n+OK 0 0\r\n+OK\r\n.\r\n+OK\r\n.\r\n+OK\r\n+OK bye\r\n")

EXO_EHLO = ("250-SN4PR0201CA0043.outlook.office365.com Hello [203.0.113.5]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n"
            "250-ENHANCEDSTATUSCODES\r\n250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n")
def smtp():
    g = "220 SN4PR0201CA0043.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 23 Nov 2026 09:12:44 +0000 [08DCF6B4E5A1B2C3]\r\n"
    pre = ("250-SN4PR0201CA0043.outlook.office365.com Hello [203.0.113.5]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n"
           "250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n220 2.0.0 SMTP server ready\r\n")
    put("smtp_starttls", "exchange", b"\x00" + (g + pre).encode())
    put("smtp_starttls", "exchange_chunk3", b"\x03" + (g + pre).encode())
    put("smtp_starttls", "postfix", b"\x00220-mx.example.test ESMTP Postfix (Debian/GNU)\r\n220 no UCE\r\n250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n220 2.0.0 Ready to start TLS\r\n")
    put("smtp_starttls", "no_starttls", b"\x00220 mx ESMTP\r\n250-mx\r\n250 AUTH PLAIN\r\n")
    put("smtp_starttls", "refused", b"\x00554 5.7.1 <unknown[203.0.113.5]>: Client host rejected: Access denied\r\n")
    put("smtp_starttls", "injection", b"\x00220 mx ESMTP\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready\r\n250 injected\r\n")

    ok = (g + EXO_EHLO + EXO_EHLO + "334 \r\n235 2.7.0 Authentication successful\r\n250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n"
          "354 Start mail input; end with <CRLF>.<CRLF>\r\n250 2.0.0 OK <ABC@SN4PR02MB1234.namprd02.prod.outlook.com> [Hostname=SN4PR02MB1234.namprd02.prod.outlook.com]\r\n"
          "250 2.0.0 OK\r\n221 2.0.0 Service closing transmission channel\r\n")
    put("smtp_session", "exchange_ok", b"\x00" + ok.encode())
    put("smtp_session", "exchange_ok_chunk5", b"\x05" + ok.encode())
    for name, fail in {
        "tenant_disabled": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0201CA0043.namprd02.prod.outlook.com]\r\n",
        "mailbox_disabled": "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.\r\n",
        "5.7.3": "535 5.7.3 Authentication unsuccessful [SN4PR0201CA0043.namprd02.prod.outlook.com]\r\n",
        "concurrent": "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.\r\n",
    }.items():
        put("smtp_session", name, b"\x00" + (g + EXO_EHLO + EXO_EHLO + "334 \r\n" + fail).encode())
    chal = base64.b64encode(b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').decode()
    gm_ehlo = "250-smtp.gmail.com at your service, [203.0.113.5]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
    put("smtp_session", "gmail_challenge", b"\x40" + ("220 smtp.gmail.com ESMTP a1-20020a170906fuzz.12 - gsmtp\r\n" + gm_ehlo + gm_ehlo + "334 \r\n334 " + chal + "\r\n535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-20020a17 - gsmtp\r\n").encode())
    put("smtp_session", "send_as_denied", b"\x00" + (g + EXO_EHLO + EXO_EHLO + "334 \r\n235 2.7.0 Authentication successful\r\n550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n").encode())
    put("smtp_session", "send_as_denied_data", b"\x00" + (g + EXO_EHLO + EXO_EHLO + "334 \r\n235 2.7.0 Authentication successful\r\n250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input\r\n554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as bob@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied\r\n").encode())
    put("smtp_session", "postfix", b"\x00" + ("220 mx.example.test ESMTP Postfix (Debian/GNU)\r\n" + "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n" * 2 + "334 \r\n235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4XyZ1k2LmNz\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n").encode())

def sasl_challenge():
    gm = base64.b64encode(b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').decode()
    put("sasl_challenge", "gmail", gm + "\n535-5.7.8 Username and Password not accepted. https://support.google.com/mail/?p=BadCredentials")
    put("sasl_challenge", "gmail_401", base64.b64encode(b'{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}').decode() + "\n-ERR [AUTH] Invalid credentials.")
    put("sasl_challenge", "exchange", "\n535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")
    put("sasl_challenge", "imap", "\nNO AUTHENTICATE failed.")
    put("sasl_challenge", "throttled", "\n-ERR [SYS/TEMP] Temporary authentication failure, throttled")
    put("sasl_challenge", "oauthbearer", base64.b64encode(b'{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}').decode() + "\nNO [AUTHENTICATIONFAILED] Authentication failed.")

def account_json():
    reg = {"id": "contoso", "provider": "microsoft", "tenant": "contoso.onmicrosoft.com", "client_id": "00000000-0000-0000-0000-000000000000", "redirect_uri": "http://localhost"}
    put("account_json", "readme_account", json.dumps({"id": "sales", "mailbox": "sales@contoso.com", "login": "alice@contoso.com", "login_aliases": ["alice.smith@contoso.com"], "registration": "contoso", "flow": "browser", "options": {"interactive_timeout_secs": 300, "refresh_margin_secs": 300, "select_account": True}}, indent=2))
    put("account_json", "inline_registration", json.dumps({"id": "alice", "mailbox": "alice@contoso.com", "registration": reg}))
    put("account_json", "app_only_secret", json.dumps({"id": "svc", "mailbox": "info@contoso.com", "flow": "client_credentials", "registration": dict(reg, id="contoso-app", client_secret="Xy8Q~fuzz.client-secret-value_1234567890")}))
    put("account_json", "servers", json.dumps({"id": "g", "mailbox": "a@example.test", "registration": {"id": "gen", "provider": "generic", "client_id": "c", "issuer": "http://127.0.0.1:8080/realms/test", "scopes": ["openid", "email"]}, "servers": {"imap": {"host": "127.0.0.1", "port": 1143, "security": "none"}, "pop3": {"host": "pop.example.test", "port": 995, "security": "tls", "mechanism": "oauthbearer"}, "smtp": {"host": "smtp.example.test", "port": 587, "security": "starttls"}}, "options": {"mail_timeout_secs": 30, "pop3": {"leave_on_server": False, "ignore_older_than_days": 30, "max_message_bytes": 10485760}}}))
    put("account_json", "registration_google", json.dumps({"id": "google", "provider": "google", "client_id": "123-abc.apps.googleusercontent.com", "client_secret": "GOCSPX-fuzzseedsecret"}))
    put("account_json", "registration_usgov", json.dumps({"id": "gov", "provider": "microsoft", "cloud": "usgov", "tenant": "organizations", "authority_host": "http://127.0.0.1:39999", "client_id": "x"}))
    put("account_json", "bad_types", '{"id": 5, "mailbox": ["x"], "registration": {"id": "r", "provider": "nope", "client_secret": 7}}')

def client_options():
    put("client_options", "readme", json.dumps({"store": "/var/lib/acme/mailconnect.db", "key": {"file": "/var/lib/acme/mailconnect.key"}, "language": "de", "log_level": "info", "proxy": "http://proxy.corp:3128", "no_proxy": False, "http_timeout_secs": 30}, indent=2))
    put("client_options", "base64_key", json.dumps({"store": "mc.db", "key": {"base64": base64.b64encode(bytes(range(32))).decode()}, "language": "en"}))
    put("client_options", "short_key", json.dumps({"store": "mc.db", "key": {"base64": "c2hvcnQta2V5LXNlY3JldA=="}}))
    put("client_options", "both_keys", json.dumps({"store": "mc.db", "key": {"file": "k", "base64": "AAAA"}, "danger_accept_invalid_certs": True, "log_level": "trace"}))
    put("client_options", "postgres", json.dumps({"store": "postgres://mc@127.0.0.1:5432/mailconnect?sslmode=disable", "http_timeout_secs": 601}))
    put("client_options", "unknown", '{"store": "", "proxy": "::::", "colour": 1}')

def accounts_csv():
    put("accounts_csv", "excel_de", "\x00\ufeffID;Mailbox;Login;Flow;Name\r\nsales;sales@contoso.com;alice@contoso.com;device;\"Vertrieb; Team\"\r\n\r\n;bob@contoso.com;;;\"Bob \"\"the builder\"\"\r\nline two\"\r\n;;;;\r\ncarol;carol@contoso.com;;Browser;\r\n")
    put("accounts_csv", "sep_line", "\x01sep=;\r\nmailbox;imap_host;imap_port;imap_security;smtp_host;smtp_port;smtp_security\r\na@example.test;imap.example.test;993;tls;smtp.example.test;587;starttls\r\nb@example.test;127.0.0.1;1143;none;;;\r\n")
    put("accounts_csv", "comma_app", "\x03email,account,flow,comment\nsvc@contoso.com,svc,app,service mailbox\nsvc@contoso.com,svc,app,duplicate\nnot-an-address,x,,\n")
    put("accounts_csv", "tabs_pop3", "\x02Mailbox\tpop3-host\tpop3 port\tPOP3_Security\tNote\r\nx@example.test\tpop.example.test\t995\tTLS\tvia tab\r\ny@example.test\tpop.example.test\t99999\tssl\t\r")
    put("accounts_csv", "unknown_column", "\x00mailbox,logn\na@example.test,b@example.test\n")

if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    token_response(); oauth_error(); id_token(); loopback_request(); pop3_session(); smtp()
    sasl_challenge(); account_json(); client_options(); accounts_csv()
    for t in sorted(os.listdir(OUT)):
        print(t, len(os.listdir(os.path.join(OUT, t))))
