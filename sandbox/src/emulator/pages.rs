//! The HTML pages of the sign-in experience. Every step is a real `<form method="post">`; the
//! transaction id travels in the hidden `ctx` field, like Microsoft's pages carry theirs.
//!
//! Element ids a script (or the [`crate::ScriptedBrowser`]) can rely on: `pickerForm`,
//! `loginForm` (`loginfmt`), `passwordForm` (`passwd`), `mfaForm` (`otc`), `consentForm`
//! (buttons `consent=accept|cancel`), `adminApprovalForm`, `deviceCodeForm` (`otc`),
//! `deviceConfirmForm` (buttons `continue=yes|no`), `hiddenform` (form_post to the app),
//! `fieldError` (inline error), `errorPage`, `deviceDone`, `deviceDeclined`, `signedOut`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:'Segoe UI',Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}\
.box{background:#fff;max-width:440px;margin:60px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
.logo{font-weight:600;color:#737373;margin-bottom:16px}h1{font-size:24px;font-weight:600;margin:0 0 12px}\
input[type=text],input[type=password],input[type=email]{width:100%;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:15px;margin:8px 0 16px}\
button{background:#0067b8;color:#fff;border:0;padding:6px 24px;font-size:15px;cursor:pointer;margin:4px 4px 4px 0}\
button.secondary{background:#ccc;color:#000}.tile{display:block;width:100%;text-align:left;background:#fff;color:#1b1b1b;border:0;border-bottom:1px solid #eee;padding:12px 0}\
.error{color:#e81123;margin:8px 0}.small{font-size:13px;color:#555}ul{padding-left:20px}code{word-break:break-all}";

/// Wrap a page body.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><div class=\"box\"><div class=\"logo\">Microsoft (sandbox)</div>\n{body}\n</div></body></html>\n",
        esc(title)
    )
}

/// An HTML response with no-store.
pub fn html(status: StatusCode, page: String) -> Response {
    let mut r = (status, page).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    r
}

fn inline_error(err: Option<&str>) -> String {
    err.map(|e| {
        format!(
            "<div id=\"fieldError\" class=\"error\" role=\"alert\">{}</div>",
            esc(e)
        )
    })
    .unwrap_or_default()
}

fn ctx(flow: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"ctx\" value=\"{}\">",
        esc(flow)
    )
}

/// "Pick an account".
pub fn picker(segment: &str, flow: &str, app: &str, accounts: &[(String, String)]) -> String {
    let mut tiles = String::new();
    for (upn, name) in accounts {
        tiles.push_str(&format!(
            "<button class=\"tile\" type=\"submit\" name=\"account\" value=\"{}\"><b>{}</b><br><span class=\"small\">{} &middot; Signed in</span></button>\n",
            esc(upn),
            esc(name),
            esc(upn)
        ));
    }
    layout(
        "Sign in to your account",
        &format!(
            "<h1>Pick an account</h1><p class=\"small\">to continue to {}</p>\n\
             <form id=\"pickerForm\" method=\"post\" action=\"/{}/login\">{}\n{tiles}\
             <button class=\"tile\" type=\"submit\" name=\"account\" value=\"other\">Use another account</button></form>",
            esc(app),
            esc(segment),
            ctx(flow)
        ),
    )
}

/// "Sign in" (username).
pub fn username(
    segment: &str,
    flow: &str,
    app: &str,
    prefill: Option<&str>,
    err: Option<&str>,
) -> String {
    layout(
        "Sign in to your account",
        &format!(
            "<h1>Sign in</h1><p class=\"small\">to continue to {}</p>{}\n\
             <form id=\"loginForm\" method=\"post\" action=\"/{}/login\">{}\
             <label for=\"i0116\">Email, phone, or Skype</label>\
             <input type=\"email\" id=\"i0116\" name=\"loginfmt\" value=\"{}\" autocomplete=\"username\">\
             <button type=\"submit\" id=\"idSIButton9\">Next</button></form>",
            esc(app),
            inline_error(err),
            esc(segment),
            ctx(flow),
            esc(prefill.unwrap_or(""))
        ),
    )
}

/// "Enter password".
pub fn password(segment: &str, flow: &str, upn: &str, err: Option<&str>) -> String {
    layout(
        "Sign in to your account",
        &format!(
            "<p>{}</p><h1>Enter password</h1>{}\n\
             <form id=\"passwordForm\" method=\"post\" action=\"/{}/login\">{}\
             <input type=\"hidden\" name=\"loginfmt\" value=\"{}\">\
             <label for=\"i0118\">Password</label>\
             <input type=\"password\" id=\"i0118\" name=\"passwd\" autocomplete=\"current-password\">\
             <button type=\"submit\" id=\"idSIButton9\">Sign in</button></form>",
            esc(upn),
            inline_error(err),
            esc(segment),
            ctx(flow),
            esc(upn)
        ),
    )
}

/// "Enter code" (MFA).
pub fn mfa(segment: &str, flow: &str, upn: &str, err: Option<&str>) -> String {
    layout(
        "Sign in to your account",
        &format!(
            "<p>{}</p><h1>Enter code</h1><p>Enter the code displayed in the authenticator app on your mobile device.</p>{}\n\
             <form id=\"mfaForm\" method=\"post\" action=\"/{}/SAS/ProcessAuth\">{}\
             <input type=\"text\" id=\"idTxtBx_SAOTCC_OTC\" name=\"otc\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\
             <button type=\"submit\" id=\"idSubmit_SAOTCC_Continue\">Verify</button></form>",
            esc(upn),
            inline_error(err),
            esc(segment),
            ctx(flow)
        ),
    )
}

/// "Permissions requested".
pub fn consent(
    segment: &str,
    flow: &str,
    app: &str,
    upn: &str,
    scopes: &[String],
    admin: bool,
) -> String {
    let items: String = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", esc(s)))
        .collect();
    let org = if admin {
        "<p><label><input type=\"checkbox\" name=\"consent_for_org\" value=\"true\"> Consent on behalf of your organization</label></p>"
    } else {
        ""
    };
    layout(
        "Permissions requested",
        &format!(
            "<p>{}</p><h1>Permissions requested</h1><p><b>{}</b><br><span class=\"small\">unverified</span></p>\
             <p>This app would like to:</p><ul id=\"scopes\">{items}</ul>\n\
             <form id=\"consentForm\" method=\"post\" action=\"/{}/Consent/Set\">{}{org}\
             <p class=\"small\">Accepting these permissions means that you allow this app to use your data as specified in their terms of service and privacy statement.</p>\
             <button type=\"submit\" class=\"secondary\" name=\"consent\" value=\"cancel\" id=\"idBtn_Back\">Cancel</button>\
             <button type=\"submit\" name=\"consent\" value=\"accept\" id=\"idSIButton9\">Accept</button></form>",
            esc(upn),
            esc(app),
            esc(segment),
            ctx(flow)
        ),
    )
}

/// "Need admin approval" (AADSTS90094).
pub fn admin_approval(segment: &str, flow: &str, app: &str, upn: &str) -> String {
    layout(
        "Need admin approval",
        &format!(
            "<p>{}</p><h1>Need admin approval</h1>\
             <p><b>{}</b> needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.</p>\
             <p class=\"small\">AADSTS90094: An administrator of your organization has to grant permission to this application before it can be used.</p>\n\
             <form id=\"adminApprovalForm\" method=\"post\" action=\"/{}/Consent/Set\">{}\
             <button type=\"submit\" class=\"secondary\" name=\"consent\" value=\"cancel\">Return to the application without granting consent</button></form>",
            esc(upn),
            esc(app),
            esc(segment),
            ctx(flow)
        ),
    )
}

/// "Enter code" of the device flow.
pub fn device_code_entry(err: Option<&str>) -> String {
    layout(
        "Enter code",
        &format!(
            "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{}\n\
             <form id=\"deviceCodeForm\" method=\"post\" action=\"/devicelogin\">\
             <input type=\"text\" id=\"otc\" name=\"otc\" maxlength=\"30\" autocomplete=\"off\">\
             <button type=\"submit\" id=\"idSIButton9\">Next</button></form>",
            inline_error(err)
        ),
    )
}

/// "Are you trying to sign in to ...?".
pub fn device_confirm(segment: &str, flow: &str, app: &str, upn: &str) -> String {
    layout(
        "Continue to sign in",
        &format!(
            "<p>{}</p><h1>Are you trying to sign in to {}?</h1>\
             <p>Only continue if you downloaded the app from a store or website that you trust.</p>\n\
             <form id=\"deviceConfirmForm\" method=\"post\" action=\"/{}/oauth2/deviceauth\">{}\
             <button type=\"submit\" class=\"secondary\" name=\"continue\" value=\"no\">Cancel</button>\
             <button type=\"submit\" name=\"continue\" value=\"yes\" id=\"idSIButton9\">Continue</button></form>",
            esc(upn),
            esc(app),
            esc(segment),
            ctx(flow)
        ),
    )
}

/// The end of a successful device sign-in.
pub fn device_done(app: &str) -> String {
    layout(
        "Signed in",
        &format!(
            "<div id=\"deviceDone\"><h1>{}</h1><p>You have signed in to the {} application on your device. You may now close this window.</p></div>",
            esc(app),
            esc(app)
        ),
    )
}

/// The end of a declined device sign-in.
pub fn device_declined(app: &str) -> String {
    layout(
        "Sign-in cancelled",
        &format!(
            "<div id=\"deviceDeclined\"><h1>{}</h1><p>You have declined to sign in to the {} application on your device. You may now close this window.</p></div>",
            esc(app),
            esc(app)
        ),
    )
}

/// An error page with the AADSTS text and the support details Microsoft shows.
pub fn error_page(aadsts_text: &str, details: &[(&str, String)]) -> String {
    let mut rows = String::new();
    for (k, v) in details {
        rows.push_str(&format!(
            "<div><b>{}</b>: <code>{}</code></div>",
            esc(k),
            esc(v)
        ));
    }
    layout(
        "Sign in to your account",
        &format!(
            "<div id=\"errorPage\"><h1>Sorry, but we're having trouble signing you in.</h1>\
             <p id=\"errorText\">{}</p><div class=\"small\" id=\"errorDetails\">{rows}</div></div>",
            esc(aadsts_text)
        ),
    )
}

/// The form_post response page (auto-submits to the app like Microsoft's).
pub fn form_post(action: &str, params: &[(String, String)]) -> String {
    let inputs: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\" />",
                esc(k),
                esc(v)
            )
        })
        .collect();
    format!(
        "<html><head><title>Working...</title></head><body><form method=\"POST\" name=\"hiddenform\" id=\"hiddenform\" action=\"{}\">{inputs}\
         <noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\" /></noscript></form>\
         <script language=\"javascript\">document.forms[0].submit();</script></body></html>",
        esc(action)
    )
}

/// After logout.
pub fn signed_out() -> String {
    layout(
        "Signed out",
        "<div id=\"signedOut\"><h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p></div>",
    )
}
