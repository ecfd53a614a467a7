"""MSAL for Python (Microsoft's own client) against the sandbox emulator: a device-code sign-in,
then the account MSAL keeps. Driven by tests/msal_interop.rs, which plays the user.

Environment: AUTHORITY (https://127.0.0.1:PORT/organizations), CLIENT_ID, CA (the emulator's CA).
Prints `DEVICE <user_code> <verification_uri>`, then `RESULT <json>`.
"""
import json
import os
import sys

import msal
import requests

session = requests.Session()
session.verify = os.environ["CA"]
app = msal.PublicClientApplication(
    os.environ["CLIENT_ID"],
    authority=os.environ["AUTHORITY"],
    instance_discovery=False,
    http_client=session,
)
flow = app.initiate_device_flow(scopes=["https://outlook.office.com/IMAP.AccessAsUser.All"])
if "user_code" not in flow:
    print("RESULT " + json.dumps({"error": flow.get("error"), "error_description": flow.get("error_description")}), flush=True)
    sys.exit(1)
print("DEVICE %s %s" % (flow["user_code"], flow["verification_uri"]), flush=True)
result = app.acquire_token_by_device_flow(flow)
accounts = app.get_accounts()
silent = app.acquire_token_silent(
    ["https://outlook.office.com/IMAP.AccessAsUser.All"], account=accounts[0] if accounts else None
)
print(
    "RESULT "
    + json.dumps(
        {
            "error": result.get("error"),
            "error_description": result.get("error_description"),
            "has_access_token": "access_token" in result,
            "id_token_claims": result.get("id_token_claims", {}),
            "accounts": [
                {"home_account_id": a.get("home_account_id"), "username": a.get("username"), "environment": a.get("environment")}
                for a in accounts
            ],
            "silent_ok": bool(silent and "access_token" in silent),
        }
    ),
    flush=True,
)
