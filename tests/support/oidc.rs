//! An OpenID Connect server this project does not write, for the interoperability tests
//! (tests/oidc_interop.rs): panva's oidc-provider from npm (OpenID Certified), configured by
//! tests/oidc/server.mjs and installed by tests/oidc/install.sh. And a person at its pages: the
//! development sign-in and consent forms, and the device-code pages, walked with a real cookie jar.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{ConnectObserver, ConnectStage};
use mailconnect_sandbox::{html, ScriptedBrowser};

/// The client id tests/oidc/server.mjs registers (public, native, loopback redirect).
pub const CLIENT_ID: &str = "mailconnect-native";

/// A running oidc-provider, stopped on drop.
pub struct OidcServer {
    child: Child,
    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
}

impl OidcServer {
    /// Start it with access tokens living `access_ttl_secs`.
    pub fn start(access_ttl_secs: u64) -> OidcServer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run bash tests/oidc/install.sh (tests/run-all.sh does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("ACCESS_TTL", access_ttl_secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts (tests/oidc/install.sh installs it)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(i) = l.strip_prefix("LISTENING ") {
                        break i.to_string();
                    }
                }
                _ => panic!("oidc-provider did not start"),
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        OidcServer { child, issuer }
    }

    /// The registration for mailconnect's generic provider (discovery from the issuer).
    pub fn registration(&self, id: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "provider": "generic", "issuer": self.issuer,
            "client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1/"
        })
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person with a browser at the server's pages.
pub struct OidcUser {
    browser: ScriptedBrowser,
    login: String,
}

/// Where a walk through the pages ended.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The last URL requested.
    pub last_url: String,
    /// The redirect to the application (`redirect_uri?code=...`), when there was one.
    pub redirect: Option<String>,
    /// The status the application's listener answered the redirect with.
    pub delivered: Option<u16>,
    /// Visible text of the last page.
    pub text: String,
}

impl OidcUser {
    /// `login` is who signs in (the development pages take any login, e.g. `alice`, `bob`).
    pub fn new(login: &str) -> OidcUser {
        OidcUser {
            browser: ScriptedBrowser::new(),
            login: login.to_string(),
        }
    }

    /// Follow redirects and submit every form on the way (login, consent, device confirmation)
    /// until the server redirects to a URL outside itself (the application) or shows a page
    /// without a form. The redirect to the application is requested, as a browser would.
    pub async fn walk(&self, start: &str, first_form: Option<Vec<(String, String)>>) -> Walk {
        let origin = url::Url::parse(start).expect("url").origin();
        let mut url = start.to_string();
        let mut form = first_form;
        for _ in 0..30 {
            let page = self
                .browser
                .fetch(&url, form.take().as_deref())
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            if let Some(loc) = page.location {
                let next = page.url.join(&loc).expect("Location").to_string();
                if url::Url::parse(&next).expect("url").origin() != origin {
                    let delivered = self.browser.fetch(&next, None).await.ok().map(|p| p.status);
                    return Walk {
                        last_url: next.clone(),
                        redirect: Some(next),
                        delivered,
                        text: String::new(),
                    };
                }
                url = next;
                continue;
            }
            let forms = html::forms(&page.body);
            let Some(f) = forms.into_iter().find(|f| f.method == "POST") else {
                return Walk {
                    last_url: url,
                    redirect: None,
                    delivered: None,
                    text: html::text(&page.body),
                };
            };
            let mut fields: Vec<(String, String)> = Vec::new();
            for field in &f.fields {
                let value = match field.name.as_str() {
                    "login" => self.login.clone(),
                    "password" => format!("{}-password", self.login),
                    _ => field.value.clone(),
                };
                fields.push((field.name.clone(), value));
            }
            // The page's own submit button, when it has a name (never "abort").
            if let Some(b) = f.buttons.iter().find(|b| b.name != "abort") {
                fields.push((b.name.clone(), b.value.clone()));
            }
            url = page.url.join(&f.action).expect("form action").to_string();
            form = Some(fields);
        }
        panic!("the sign-in did not end within 30 pages");
    }

    /// Sign in on the authorization page `url`.
    pub async fn sign_in(&self, url: &str) -> Walk {
        self.walk(url, None).await
    }

    /// Enter `user_code` at the verification page and sign in.
    pub async fn complete_device_code(&self, verification_uri: &str, user_code: &str) -> Walk {
        let page = self
            .browser
            .fetch(verification_uri, None)
            .await
            .expect("verification page");
        let form = html::forms(&page.body)
            .into_iter()
            .find(|f| f.method == "POST")
            .expect("the user code form");
        let fields: Vec<(String, String)> = form
            .fields
            .iter()
            .map(|f| {
                let v = if f.name == "user_code" {
                    user_code.to_string()
                } else {
                    f.value.clone()
                };
                (f.name.clone(), v)
            })
            .collect();
        let action = page.url.join(&form.action).expect("action").to_string();
        self.walk(&action, Some(fields)).await
    }
}

/// A connect observer that plays an [`OidcUser`] on the page or code the library shows.
pub struct OidcObserver {
    /// The person.
    pub user: Arc<OidcUser>,
    /// How the last sign-in ended.
    pub walk: Arc<Mutex<Option<Walk>>>,
    /// Stages seen.
    pub stages: Mutex<Vec<ConnectStage>>,
}

impl OidcObserver {
    /// A person signing in as `login`.
    pub fn new(login: &str) -> OidcObserver {
        OidcObserver {
            user: Arc::new(OidcUser::new(login)),
            walk: Arc::new(Mutex::new(None)),
            stages: Mutex::new(vec![]),
        }
    }

    /// The last walk (waits up to a minute for it to finish).
    pub async fn last_walk(&self) -> Option<Walk> {
        for _ in 0..600 {
            if let Some(w) = self.walk.lock().unwrap().clone() {
                return Some(w);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl ConnectObserver for OidcObserver {
    fn open_url(&self, url: &str) -> bool {
        let (user, out, url) = (self.user.clone(), self.walk.clone(), url.to_string());
        tokio::spawn(async move {
            let w = user.sign_in(&url).await;
            *out.lock().unwrap() = Some(w);
        });
        true
    }

    fn device_code(&self, info: &DeviceCodeInfo) {
        let (user, out, info) = (self.user.clone(), self.walk.clone(), info.clone());
        tokio::spawn(async move {
            let w = user
                .complete_device_code(&info.verification_uri, &info.user_code)
                .await;
            *out.lock().unwrap() = Some(w);
        });
    }

    fn progress(&self, stage: ConnectStage) {
        self.stages.lock().unwrap().push(stage);
    }
}
