//! The operating system's proxy settings, for identity-provider requests when neither the host
//! (`proxy` option) nor the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) names one.
//!
//! On Windows this is what Windows' own HTTP stacks use, in their order:
//! 1. the current user's Internet Options (`WinHttpGetIEProxyConfigForCurrentUser`):
//!    "Automatically detect settings" (WPAD) and "Use automatic configuration script" (a PAC URL),
//!    both resolved per host by `WinHttpGetProxyForUrl`, then "Use a proxy server" with its
//!    exceptions (`*.corp.example;<local>`; loopback addresses always go direct unless the list
//!    holds `<-loopback>`, as in WinINet);
//! 2. when the user has none of these (a Windows service running as LocalSystem usually has
//!    none), the machine's WinHTTP proxy (`netsh winhttp set proxy`).
//!
//! PAC and WPAD answers are looked up off the async threads before a request (they may download a
//! script) and kept for five minutes per scheme, host and port; a failed WPAD discovery is not
//! retried for five minutes. Elsewhere than on Windows there is no system proxy here: the
//! environment variables are the system's settings.
//!
//! The parsing of Windows' proxy and exception lists is plain Rust and tested on every platform.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

/// How long a PAC/WPAD answer (or a failed WPAD discovery) is kept.
pub const AUTO_PROXY_TTL: Duration = Duration::from_secs(300);

/// Whether the environment names a proxy (then the environment wins over the system settings).
pub fn environment_has_proxy() -> bool {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The proxy for `scheme` (`http`, `https`) in a Windows proxy list: `host:port` for every
/// scheme, or `http=host:port;https=host:port` per scheme (an entry without `scheme=` applies to
/// all). Returned as a URL (`http://host:port`). SOCKS entries (`socks=`) are not used here.
pub fn proxy_from_list(list: &str, scheme: &str) -> Option<String> {
    let mut generic = None;
    for entry in list
        .split([';', ' ', '\t', '\r', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match entry.split_once('=') {
            Some((s, target)) if s.eq_ignore_ascii_case(scheme) => return normalize(target),
            Some(_) => {}
            None => {
                if generic.is_none() {
                    generic = normalize(entry);
                }
            }
        }
    }
    generic
}

fn normalize(target: &str) -> Option<String> {
    let target = target.trim();
    if target.is_empty() {
        return None;
    }
    let url = if target.contains("://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    Url::parse(&url)
        .ok()
        .filter(|u| u.host_str().is_some() && matches!(u.scheme(), "http" | "https"))
        .map(|u| u.as_str().trim_end_matches('/').to_string())
}

/// A Windows proxy exception list ("Do not use proxy server for addresses beginning with").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bypass {
    patterns: Vec<String>,
    local: bool,
    keep_loopback_on_proxy: bool,
}

impl Bypass {
    /// Parse `*.corp.example;10.*;<local>;<-loopback>` (separators `;`, `,` or white space).
    pub fn parse(list: &str) -> Bypass {
        let mut b = Bypass::default();
        for e in list
            .split([';', ',', ' ', '\t', '\r', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match e.to_ascii_lowercase().as_str() {
                "<local>" => b.local = true,
                "<-loopback>" => b.keep_loopback_on_proxy = true,
                other => {
                    // Entries may carry a scheme and a port; the host part is what is matched.
                    let other = other.split_once("://").map_or(other, |(_, h)| h);
                    let host = match other.strip_prefix('[') {
                        Some(v6) => v6.split(']').next().unwrap_or(v6),
                        None if other.matches(':').count() == 1 => {
                            other.split(':').next().unwrap_or(other)
                        }
                        None => other,
                    };
                    b.patterns.push(host.to_string());
                }
            }
        }
        b
    }

    /// Whether `host` goes direct.
    pub fn matches(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !self.keep_loopback_on_proxy && is_loopback(&host) {
            return true;
        }
        if self.local && !host.contains('.') && !host.contains(':') {
            return true;
        }
        self.patterns.iter().any(|p| glob(p, &host))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// `*` matches any run of characters (case already folded).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The first proxy of a PAC answer list (`host:port;host2:port`).
pub fn first_of(list: &str) -> Option<String> {
    list.split([';', ' '])
        .map(str::trim)
        .find(|e| !e.is_empty())
        .and_then(normalize)
}

/// The settings found, in the order Windows applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Where they came from, for messages ("Internet Options", "WinHTTP (netsh)").
    pub source: &'static str,
    /// WPAD discovery.
    pub auto_detect: bool,
    /// A PAC script URL.
    pub auto_config_url: Option<String>,
    /// A fixed proxy list and its exceptions.
    pub fixed: Option<(String, Bypass)>,
}

impl Settings {
    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        !self.auto_detect && self.auto_config_url.is_none() && self.fixed.is_none()
    }

    /// The fixed proxy for `url`, after its exceptions.
    pub fn fixed_for(&self, url: &Url) -> Option<String> {
        let (list, bypass) = self.fixed.as_ref()?;
        if bypass.matches(url.host_str().unwrap_or_default()) {
            return None;
        }
        proxy_from_list(list, url.scheme())
    }
}

/// What the auto-configuration said for a URL: `Some(Some(proxy))`, `Some(None)` = direct,
/// `None` = no answer (fall through to the fixed proxy).
type AutoAnswer = Option<Option<String>>;

/// The system proxy resolver of one HTTP client.
pub struct SystemProxy {
    settings: Settings,
    cache: Mutex<HashMap<String, (Instant, AutoAnswer)>>,
    #[cfg(windows)]
    wpad_failed_at: Mutex<Option<Instant>>,
    #[cfg(windows)]
    session: Mutex<Option<Arc<crate::platform::windows::AutoProxy>>>,
}

impl std::fmt::Debug for SystemProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemProxy")
            .field("settings", &self.settings)
            .finish()
    }
}

fn cache_key(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl SystemProxy {
    /// A resolver over `settings` (`None` when nothing is configured).
    pub fn new(settings: Settings) -> Option<Arc<SystemProxy>> {
        if settings.is_empty() {
            return None;
        }
        Some(Arc::new(SystemProxy {
            settings,
            cache: Mutex::new(HashMap::new()),
            #[cfg(windows)]
            wpad_failed_at: Mutex::new(None),
            #[cfg(windows)]
            session: Mutex::new(None),
        }))
    }

    /// The operating system's settings (Windows), or `None`.
    pub fn detect() -> Option<Arc<SystemProxy>> {
        SystemProxy::new(read_settings())
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn needs_lookup(&self) -> bool {
        self.settings.auto_detect || self.settings.auto_config_url.is_some()
    }

    /// Resolve PAC/WPAD for `url` (blocking work on the blocking pool) so [`Self::proxy_for`] finds
    /// the answer. Nothing to do for fixed settings or a fresh cached answer.
    pub async fn prepare(self: &Arc<Self>, url: &Url) {
        if !self.needs_lookup() {
            return;
        }
        let key = cache_key(url);
        if let Ok(c) = self.cache.lock() {
            if c.get(&key)
                .is_some_and(|(at, _)| at.elapsed() < AUTO_PROXY_TTL)
            {
                return;
            }
        }
        let me = self.clone();
        let u = url.clone();
        let answer = tokio::task::spawn_blocking(move || me.auto_lookup(&u))
            .await
            .unwrap_or(None);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 256 {
                c.clear();
            }
            c.insert(key, (Instant::now(), answer));
        }
    }

    /// The proxy URL for `url`, or `None` for direct. Never blocks.
    pub fn proxy_for(&self, url: &Url) -> Option<String> {
        if self.needs_lookup() {
            let cached = self
                .cache
                .lock()
                .ok()
                .and_then(|c| c.get(&cache_key(url)).map(|(_, a)| a.clone()));
            if let Some(Some(answer)) = cached {
                return answer;
            }
        }
        self.settings.fixed_for(url)
    }

    #[cfg(windows)]
    fn auto_lookup(&self, url: &Url) -> AutoAnswer {
        use crate::platform::windows::{AutoProxy, AutoProxyAnswer};
        let session = {
            let mut s = self.session.lock().ok()?;
            if s.is_none() {
                *s = AutoProxy::new().ok().map(Arc::new);
            }
            s.clone()?
        };
        let to_answer = |a: AutoProxyAnswer| match a {
            AutoProxyAnswer::Direct => Some(None),
            AutoProxyAnswer::Proxies(list) => Some(first_of(&list)),
        };
        if self.settings.auto_detect {
            let recently_failed = self
                .wpad_failed_at
                .lock()
                .ok()
                .and_then(|f| *f)
                .is_some_and(|at| at.elapsed() < AUTO_PROXY_TTL);
            if !recently_failed {
                match session.lookup(url.as_str(), None) {
                    Ok(a) => return to_answer(a),
                    Err(e) => {
                        tracing::debug!("proxy auto-detection (WPAD) found nothing: {e}");
                        if let Ok(mut f) = self.wpad_failed_at.lock() {
                            *f = Some(Instant::now());
                        }
                    }
                }
            }
        }
        if let Some(pac) = &self.settings.auto_config_url {
            match session.lookup(url.as_str(), Some(pac)) {
                Ok(a) => return to_answer(a),
                Err(e) => tracing::warn!(
                    "the proxy configuration script {pac} could not be used ({e}); using the fixed proxy settings, if any"
                ),
            }
        }
        None
    }

    #[cfg(not(windows))]
    fn auto_lookup(&self, _url: &Url) -> AutoAnswer {
        None
    }
}

#[cfg(windows)]
fn read_settings() -> Settings {
    use crate::platform::windows;
    if let Some(ie) = windows::ie_proxy_config() {
        let s = Settings {
            source: "Internet Options",
            auto_detect: ie.auto_detect,
            auto_config_url: ie.auto_config_url,
            fixed: ie
                .proxy
                .map(|p| (p, Bypass::parse(ie.bypass.as_deref().unwrap_or_default()))),
        };
        if !s.is_empty() {
            return s;
        }
    }
    match windows::winhttp_default_proxy() {
        Some((p, b)) => Settings {
            source: "WinHTTP (netsh winhttp)",
            fixed: Some((p, Bypass::parse(b.as_deref().unwrap_or_default()))),
            ..Settings::default()
        },
        None => Settings::default(),
    }
}

#[cfg(not(windows))]
fn read_settings() -> Settings {
    Settings::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_lists_as_internet_options_write_them() {
        assert_eq!(
            proxy_from_list("proxy.corp:3128", "https").as_deref(),
            Some("http://proxy.corp:3128")
        );
        let per_scheme = "http=web.corp:80;https=secure.corp:8443;ftp=ftp.corp:21";
        assert_eq!(
            proxy_from_list(per_scheme, "https").as_deref(),
            Some("http://secure.corp:8443")
        );
        assert_eq!(
            proxy_from_list(per_scheme, "http").as_deref(),
            Some("http://web.corp"),
            "port 80 is http's default"
        );
        // Only an http proxy: https goes direct, as in WinINet.
        assert_eq!(proxy_from_list("http=web.corp:80", "https"), None);
        assert_eq!(proxy_from_list("socks=s.corp:1080", "https"), None);
        assert_eq!(
            proxy_from_list("socks=s.corp:1080 all.corp:8080", "https").as_deref(),
            Some("http://all.corp:8080")
        );
        assert_eq!(
            proxy_from_list("https=https://tls.corp:443", "https").as_deref(),
            Some("https://tls.corp")
        );
        assert_eq!(proxy_from_list("", "https"), None);
        assert_eq!(proxy_from_list("https=", "https"), None);
        assert_eq!(proxy_from_list("https=::::", "https"), None);
    }

    #[test]
    fn exceptions_with_wildcards_local_and_loopback() {
        let b = Bypass::parse("*.corp.example; 10.*;<local>, login.partner.test:443");
        assert!(b.matches("mail.corp.example"));
        assert!(b.matches("MAIL.CORP.EXAMPLE"));
        assert!(!b.matches("corp.example.evil"));
        assert!(b.matches("10.1.2.3"));
        assert!(b.matches("intranet"), "<local>: names without a dot");
        assert!(b.matches("login.partner.test"));
        assert!(!b.matches("login.microsoftonline.com"));
        assert!(b.matches("127.0.0.1"), "loopback goes direct by default");
        assert!(b.matches("localhost"));
        assert!(b.matches("[::1]"));
        let keep = Bypass::parse("<-loopback>");
        assert!(!keep.matches("127.0.0.1"));
        assert!(!keep.matches("localhost"));
        assert!(!Bypass::parse("").matches("intranet"));
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("a*c", "abbbc"));
        assert!(!glob("a*c", "ab"));
        assert!(glob("*.x.*", "a.x.b"));
        assert!(!glob("*.x.*", "a.y.b"));
        assert!(glob("ab", "ab"));
    }

    #[test]
    fn fixed_settings_apply_exceptions_per_url() {
        let s = Settings {
            source: "test",
            fixed: Some((
                "http=p:80;https=q:8080".into(),
                Bypass::parse("*.local.test"),
            )),
            ..Settings::default()
        };
        let p = SystemProxy::new(s).unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            p.proxy_for(&u("https://login.microsoftonline.com/x"))
                .as_deref(),
            Some("http://q:8080")
        );
        assert_eq!(
            p.proxy_for(&u("http://login.example/x")).as_deref(),
            Some("http://p")
        );
        assert_eq!(p.proxy_for(&u("https://idp.local.test/")), None);
        assert_eq!(p.proxy_for(&u("http://127.0.0.1:5000/")), None);
        assert!(SystemProxy::new(Settings::default()).is_none());
    }

    #[test]
    fn pac_answers() {
        assert_eq!(
            first_of("127.0.0.1:3128; backup:8080").as_deref(),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(first_of(""), None);
    }
}
