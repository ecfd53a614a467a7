//! Authorization code + PKCE in the browser with a loopback redirect (RFC 8252 §7.3).
//!
//! A listener on 127.0.0.1 with a random port receives the redirect. It answers only the expected
//! path with the expected `state`; anything else gets an error page and the wait goes on (a stale
//! browser tab must not end the sign-in). The wait ends with the code, an error redirect, the
//! configured timeout, or cancellation from another thread.
//!
//! The browser's request that carried the code is held open ([`PendingAnswer`]) until the library
//! has redeemed the code and checked whose it is, so the page the user sees says how the sign-in
//! really ended (a wrong account or a refused code is a failure page, not "Sign-in complete").

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use oauth2::CsrfToken;
use ring::rand::SecureRandom;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use url::Url;
use zeroize::Zeroizing;

use super::errors::{self, OAuthErrorResponse};
use super::ConnectObserver;
use crate::error::{Error, ErrorKind, Result};
use crate::i18n::Language;
use crate::provider::Profile;

/// A prepared authorization request: the URL to open and what is needed to finish it.
pub struct AuthorizationRequest {
    /// The URL of the sign-in page.
    pub url: Url,
    /// The redirect URI sent (must be sent again when redeeming the code).
    pub redirect_uri: String,
    /// The `state` value.
    pub state: CsrfToken,
    /// The PKCE verifier (wiped when dropped).
    pub verifier: SecretString,
    /// The OpenID `nonce`.
    pub nonce: CsrfToken,
}

/// Parameters of an authorization request.
pub struct AuthorizeParams<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// The redirect URI.
    pub redirect_uri: &'a str,
    /// `login_hint`.
    pub login_hint: Option<&'a str>,
    /// Ask for the account picker (`prompt=select_account`) where the provider has one.
    pub select_account: bool,
}

/// A PKCE S256 pair (RFC 7636 §4.1-4.2): a verifier of 43 base64url characters from 32 random
/// bytes, and its challenge. Our own rather than `oauth2`'s so the verifier is wiped after use.
pub fn pkce_pair() -> Result<(SecretString, String)> {
    let mut raw = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| Error::internal("no system randomness for PKCE"))?;
    let verifier =
        SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()));
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.expose_secret().as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    Ok((verifier, challenge))
}

/// Build an authorization request for `profile`.
pub fn authorization_request(
    profile: &Profile,
    p: &AuthorizeParams<'_>,
) -> Result<AuthorizationRequest> {
    let (verifier, challenge) = pkce_pair()?;
    let state = CsrfToken::new_random();
    let nonce = CsrfToken::new_random();
    let mut url = profile.endpoints.authorize.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", p.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", &profile.sign_in_scope_string())
            .append_pair("state", state.secret())
            .append_pair("nonce", nonce.secret())
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(h) = p.login_hint {
            q.append_pair("login_hint", h);
        }
        if let Some(prompt) = profile.prompt(p.select_account) {
            q.append_pair("prompt", &prompt);
        }
        for (k, v) in &profile.extra_authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(AuthorizationRequest {
        url,
        redirect_uri: p.redirect_uri.to_string(),
        state,
        verifier,
        nonce,
    })
}

/// Redeem the authorization `code` of `req` at `ep` for `profile`'s delegated scopes, with the
/// PKCE verifier (a code is single-use: no retry after it may have reached the provider).
pub async fn redeem_code(
    ep: super::token::TokenEndpoint<'_>,
    req: &AuthorizationRequest,
    code: &SecretString,
    profile: &Profile,
    what: &str,
    cancel: &CancellationToken,
) -> Result<super::token::TokenGrant> {
    let scope = profile.delegated_scope_string();
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("redirect_uri", req.redirect_uri.as_str()),
        ("code_verifier", req.verifier.expose_secret()),
        ("scope", scope.as_str()),
    ];
    super::token::request(
        ep,
        form,
        &profile.delegated_scopes,
        what,
        super::token::Retry::SINGLE_USE,
        cancel,
    )
    .await
}

/// The loopback listener for one sign-in.
pub struct Loopback {
    listener: TcpListener,
    redirect_uri: String,
    path: String,
}

impl Loopback {
    /// Bind 127.0.0.1 on a random port. `registered` is the registered redirect URI
    /// (`http://localhost` or `http://127.0.0.1[/path]`); the port is filled in.
    pub async fn bind(registered: &str) -> Result<Loopback> {
        let mut u = Url::parse(registered).map_err(|e| {
            Error::invalid("redirect_uri", format!("'redirect_uri' is not a URL: {e}"))
        })?;
        let loopback =
            u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
        if !loopback {
            return Err(Error::invalid(
                "redirect_uri",
                format!("the browser flow needs a loopback redirect URI such as http://localhost; '{}' must be handled by the host's own web view", crate::error::quote(registered)),
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!("cannot listen on 127.0.0.1 for the sign-in redirect: {e}"),
            )
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("listener address: {e}")))?
            .port();
        u.set_port(Some(port))
            .map_err(|_| Error::invalid("redirect_uri", "cannot set a port on the redirect URI"))?;
        let path = u.path().to_string();
        Ok(Loopback {
            listener,
            redirect_uri: u.to_string(),
            path,
        })
    }

    /// The redirect URI with the port.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Wait for the redirect carrying `state`; answer the browser in `lang`. The code comes with
    /// the browser's request still open: answer it with [`PendingAnswer::finish`] once the sign-in
    /// has been completed (or failed). Error redirects are answered here.
    pub async fn wait(
        &self,
        state: &str,
        lang: Language,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(SecretString, PendingAnswer)> {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => { tracing::debug!("loopback accept failed: {e}"); continue; }
                },
                _ = &mut deadline => return Err(Error::timeout("waiting for the sign-in in the browser", timeout)
                    .with_code("MC-BROWSER-TIMEOUT")
                    .with_evidence(|ev| ev.server_reply = Some("browser sign-in not completed".into()))),
                _ = cancel.cancelled() => return Err(Error::cancelled("the sign-in in the browser")),
            };
            if !peer.ip().is_loopback() {
                continue;
            }
            match self.handle(stream, state, lang).await {
                Ok(Some(done)) => return done,
                Ok(None) => continue,
                Err(e) => tracing::debug!("loopback request ignored: {e}"),
            }
        }
    }

    /// Handle one connection. `Ok(None)` = not the redirect we wait for; keep waiting.
    async fn handle(
        &self,
        mut stream: TcpStream,
        state: &str,
        lang: Language,
    ) -> std::io::Result<Option<Result<(SecretString, PendingAnswer)>>> {
        let head = match tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream)).await
        {
            Ok(r) => r?,
            Err(_) => return Ok(None),
        };
        match parse_redirect(&head, &self.path, state) {
            Redirect::BadRequest => {
                respond(&mut stream, 400, &LoopbackPage::BadRequest.render(lang)).await?;
                Ok(None)
            }
            Redirect::NotFound => {
                respond(&mut stream, 404, &LoopbackPage::NotFound.render(lang)).await?;
                Ok(None)
            }
            Redirect::WrongState => {
                respond(&mut stream, 400, &LoopbackPage::WrongState.render(lang)).await?;
                Ok(None)
            }
            Redirect::Error(e) => {
                let err = errors::to_error("signing in in the browser", e, None);
                respond(&mut stream, 200, &LoopbackPage::failed(&err).render(lang)).await?;
                Ok(Some(Err(err)))
            }
            Redirect::Code(code) => Ok(Some(Ok((code, PendingAnswer { stream, lang })))),
        }
    }
}

/// The browser's request that carried the authorization code, not answered yet: the user's
/// browser shows a loading page until [`PendingAnswer::finish`] says how the sign-in ended.
/// Dropping it closes the connection (the browser shows its own error page).
pub struct PendingAnswer {
    stream: TcpStream,
    lang: Language,
}

impl std::fmt::Debug for PendingAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAnswer")
            .field("peer", &self.stream.peer_addr().ok())
            .field("lang", &self.lang)
            .finish()
    }
}

impl PendingAnswer {
    /// Answer the browser: "Sign-in complete" for `Ok`, else the failure page with the catalog's
    /// title and fix for the error (never its message or evidence). A browser that was closed
    /// meanwhile is not an error.
    pub async fn finish(mut self, outcome: std::result::Result<(), &Error>) {
        let page = match outcome {
            Ok(()) => LoopbackPage::Done,
            Err(e) => LoopbackPage::failed(e),
        };
        if let Err(e) = respond(&mut self.stream, 200, &page.render(self.lang)).await {
            tracing::debug!("the browser went away before the sign-in page was answered: {e}");
        }
    }
}

/// What one request to the loopback listener is, as [`parse_redirect`] reads it.
///
/// Its `Debug` output never shows the code (a [`SecretString`]).
#[derive(Debug)]
pub enum Redirect {
    /// Not a readable `GET`, or the right state without a code.
    BadRequest,
    /// Another path.
    NotFound,
    /// The redirect of another (older) sign-in.
    WrongState,
    /// The provider redirected with an error.
    Error(OAuthErrorResponse),
    /// The authorization code.
    Code(SecretString),
}

/// Read a request head sent to the listener waiting on `expected_path` for `state`: what
/// [`Loopback::wait`] makes of each request, on any bytes (tests and fuzzing give it heads
/// directly; hosts use the `Client` API, which waits on a [`Loopback`]). Only a `GET` of
/// `expected_path` carrying `state` yields [`Redirect::Code`] or [`Redirect::Error`].
///
/// It reads nothing but `head`, answers nothing and never logs: the authorization code is never
/// copied anywhere but into [`Redirect::Code`], and the query values it parsed are wiped when
/// dropped.
pub fn parse_redirect(head: &[u8], expected_path: &str, state: &str) -> Redirect {
    let Some(target) = parse_request_line(head) else {
        return Redirect::BadRequest;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != expected_path {
        return Redirect::NotFound;
    }
    // Values are wiped when dropped: the code is among them.
    let params: HashMap<String, Zeroizing<String>> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
        .collect();
    if params.get("state").map(|s| s.as_str()) != Some(state) {
        return Redirect::WrongState;
    }
    if let Some(error) = params.get("error") {
        return Redirect::Error(OAuthErrorResponse {
            error: error.to_string(),
            error_description: params.get("error_description").map(|v| v.to_string()),
            error_uri: params.get("error_uri").map(|v| v.to_string()),
            ..Default::default()
        });
    }
    match params.get("code") {
        Some(code) if !code.is_empty() => Redirect::Code(SecretString::from(code.to_string())),
        _ => Redirect::BadRequest,
    }
}

/// The request head (it carries the code: wiped when dropped; allocated once so growing it leaves
/// no copies behind).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Zeroizing<Vec<u8>>> {
    const MAX: usize = 32 * 1024;
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX + 2048));
    let mut chunk = Zeroizing::new([0u8; 2048]);
    loop {
        let n = stream.read(chunk.as_mut()).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > MAX {
            break;
        }
    }
    Ok(buf)
}

/// The request target of a `GET` request line.
fn parse_request_line(head: &[u8]) -> Option<&str> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let (Some("GET"), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    Some(target)
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

/// The pages the loopback listener shows in the browser.
pub enum LoopbackPage {
    /// Sign-in finished.
    Done,
    /// The sign-in failed: the catalog code of the error.
    Failed(&'static str),
    /// A redirect for another (older) sign-in.
    WrongState,
    /// Not the redirect path.
    NotFound,
    /// Unreadable request.
    BadRequest,
}

impl LoopbackPage {
    /// The failure page for `err`: what the diagnostics catalog says of it.
    pub fn failed(err: &Error) -> LoopbackPage {
        LoopbackPage::Failed(crate::diagnose::diagnose(err, Default::default()).code)
    }

    /// The HTML page in `lang`.
    pub fn render(&self, lang: Language) -> String {
        let en = lang == Language::En;
        let (title, paragraphs): (&str, Vec<String>) = match self {
            LoopbackPage::Done if en => ("Sign-in complete", vec!["You can close this window and return to the application.".into()]),
            LoopbackPage::Done => ("Anmeldung abgeschlossen", vec!["Sie können dieses Fenster schließen und zur Anwendung zurückkehren.".into()]),
            LoopbackPage::Failed(code) => {
                let t = crate::diagnose::entry(code).texts(lang);
                let what = t.title.trim_end_matches('.');
                if en {
                    ("Sign-in failed", vec![format!("The sign-in did not succeed: {what}."), t.fix.clone(), format!("Return to the application for details. ({code})")])
                } else {
                    ("Anmeldung fehlgeschlagen", vec![format!("Die Anmeldung war nicht erfolgreich: {what}."), t.fix.clone(), format!("Details finden Sie in der Anwendung. ({code})")])
                }
            }
            LoopbackPage::WrongState if en => ("Sign-in link out of date", vec!["This sign-in response belongs to an older sign-in attempt. Use the newest browser window the application opened.".into()]),
            LoopbackPage::WrongState => ("Anmeldelink veraltet", vec!["Diese Antwort gehört zu einem älteren Anmeldeversuch. Verwenden Sie das zuletzt von der Anwendung geöffnete Browserfenster.".into()]),
            LoopbackPage::NotFound if en => ("Not found", vec!["Nothing here.".into()]),
            LoopbackPage::NotFound => ("Nicht gefunden", vec!["Hier gibt es nichts.".into()]),
            LoopbackPage::BadRequest if en => ("Bad request", vec!["This request could not be read.".into()]),
            LoopbackPage::BadRequest => ("Ungültige Anfrage", vec!["Diese Anfrage konnte nicht gelesen werden.".into()]),
        };
        page(lang, title, &paragraphs)
    }
}

/// An HTML page: `title` as heading, each of `paragraphs` escaped.
fn page(lang: Language, title: &str, paragraphs: &[String]) -> String {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>", escape(p)))
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body style=\"font-family:sans-serif;margin:3em\"><h1>{}</h1>{body}</body></html>",
        lang.tag(),
        escape(title),
        escape(title),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Show the sign-in page: the host's callback, else the system browser.
pub async fn open(observer: &dyn ConnectObserver, url: &str) -> Result<()> {
    if observer.open_url(url) {
        return Ok(());
    }
    let u = url.to_string();
    let opened = tokio::task::spawn_blocking(move || crate::platform::open_browser(&u))
        .await
        .map_err(|e| Error::internal(format!("browser thread: {e}")))?;
    opened.map_err(|e| {
        Error::new(
            ErrorKind::State,
            format!("no web browser could be opened ({e}); let the application show the sign-in page itself, or use the device-code flow"),
        )
        .with_code("MC-NO-BROWSER")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /?code=1&state=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/?code=1&state=2")
        );
        assert_eq!(parse_request_line(b"POST / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            parse_request_line(b"GET http://evil/ HTTP/1.1\r\n\r\n"),
            None
        );
        assert_eq!(parse_request_line(b"\xff\xfe\r\n"), None);
    }

    #[test]
    fn pages_escape_provider_text() {
        assert_eq!(escape("<script>\"&"), "&lt;script&gt;&quot;&amp;");
        let p = LoopbackPage::Failed("MC-WRONG-ACCOUNT").render(Language::De);
        assert!(
            p.contains("lang=\"de\"") && p.contains("Anmeldung fehlgeschlagen"),
            "{p}"
        );
        assert!(
            p.contains("Es wurde ein anderes Konto angemeldet") && p.contains("(MC-WRONG-ACCOUNT)"),
            "{p}"
        );
    }

    #[tokio::test]
    async fn wrong_state_and_paths_keep_waiting_and_the_right_redirect_ends_it() {
        let lb = Loopback::bind("http://localhost/cb").await.unwrap();
        let port = Url::parse(lb.redirect_uri()).unwrap().port().unwrap();
        let cancel = CancellationToken::new();
        let waiter = tokio::spawn(async move {
            let (code, answer) = lb
                .wait("s1", Language::En, Duration::from_secs(10), &cancel)
                .await?;
            assert_eq!(code.expose_secret(), "c");
            // The browser's request is answered only now, with how the sign-in ended.
            answer
                .finish(Err(
                    &Error::new(ErrorKind::AuthorizationDenied, "x").with_code("MC-WRONG-ACCOUNT")
                ))
                .await;
            Ok::<_, Error>(())
        });
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/favicon.ico").await.starts_with("HTTP/1.1 404"));
        assert!(get("/cb?code=c&state=old")
            .await
            .starts_with("HTTP/1.1 400"));
        let last = get("/cb?code=c&state=s1").await;
        assert!(
            last.starts_with("HTTP/1.1 200") && last.contains("Another account signed in"),
            "{last}"
        );
        waiter.await.unwrap().unwrap();
    }
}

#[cfg(test)]
mod pkce_tests {
    use super::*;

    #[test]
    fn pkce_pairs_follow_rfc_7636() {
        let (a, ca) = pkce_pair().unwrap();
        let (b, _) = pkce_pair().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let d = ring::digest::digest(&ring::digest::SHA256, a.expose_secret().as_bytes());
        assert_eq!(
            ca,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
        );
    }
}
