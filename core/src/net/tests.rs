use super::*;

fn via(r: &Route) -> String {
    r.to_string()
}

#[test]
fn proxy_urls_parse_with_defaults_and_credentials() {
    let p = Proxy::parse("proxy", "http://svc%40corp:p%3Ass@proxy.corp:3128").unwrap();
    assert_eq!(p.kind, ProxyKind::Http);
    assert_eq!(p.endpoint(), "proxy.corp:3128");
    assert_eq!(p.username.as_deref(), Some("svc@corp"));
    assert_eq!(p.password.as_ref().unwrap().expose_secret(), "p:ss");
    assert_eq!(Proxy::parse("proxy", "proxy.corp").unwrap().port, 80);
    let s = Proxy::parse("proxy", "socks5h://[::1]").unwrap();
    assert_eq!(s.kind, ProxyKind::Socks5 { remote_dns: true });
    assert_eq!(s.endpoint(), "[::1]:1080");
    assert_eq!(
        Proxy::parse("proxy", "socks5://10.0.0.5:1081")
            .unwrap()
            .kind,
        ProxyKind::Socks5 { remote_dns: false }
    );
    for bad in [
        "ftp://p:21",
        "http://p:3128/path",
        "http://",
        "https://p:443",
    ] {
        let e = Proxy::parse("proxy", bad).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{bad}");
    }
}

#[test]
fn a_password_appears_in_no_description_debug_or_error() {
    let p = Proxy::parse("proxy", "http://svc:Sup3rSecret@proxy.corp:3128").unwrap();
    assert!(!format!("{p:?}").contains("Sup3rSecret"));
    assert!(!p.describe().contains("Sup3rSecret"));
    let r = Route::Via(Arc::new(p.clone()));
    assert_eq!(r.to_string(), "http proxy proxy.corp:3128");
    assert!(!format!("{r:?}").contains("Sup3rSecret"));
    let e = Proxy::parse("proxy", "ftp://svc:Sup3rSecret@proxy.corp").unwrap_err();
    assert!(!e.message().contains("Sup3rSecret"), "{}", e.message());
    let c = ProxyConfig::parse(
        r#"{"url": "http://proxy.corp:3128", "password": "Sup3rSecret", "bogus": 1}"#,
    )
    .unwrap_err();
    assert!(!c.message().contains("Sup3rSecret"), "{}", c.message());
    // The HTTP client's URL carries the credentials (percent-encoded), for the proxy only.
    let u = p.url_with_credentials().unwrap();
    assert_eq!(u.username(), "svc");
    assert_eq!(u.password(), Some("Sup3rSecret"));
}

#[test]
fn per_protocol_values_the_default_and_the_no_proxy_list() {
    let c = ProxyConfig::parse(
        r#"{"url": "http://proxy.corp:3128", "username": "svc", "password": "pw",
            "imap": "socks5h://socks.corp:1080", "smtp": "direct",
            "no_proxy": ["*.intern.corp", "10.0.0.0/8, mail.local"]}"#,
    )
    .unwrap();
    assert_eq!(
        via(&c.route(Channel::Https, "login.microsoftonline.com")),
        "http proxy proxy.corp:3128"
    );
    assert_eq!(
        via(&c.route(Channel::Pop3, "outlook.office365.com")),
        "http proxy proxy.corp:3128"
    );
    let imap = c.route(Channel::Imap, "outlook.office365.com");
    assert_eq!(via(&imap), "socks5 proxy socks.corp:1080");
    // The object's credentials apply to a per-protocol URL without its own.
    assert_eq!(imap.proxy().unwrap().username.as_deref(), Some("svc"));
    assert_eq!(via(&c.route(Channel::Smtp, "smtp.office365.com")), "direct");
    for direct in ["mx.intern.corp", "intern.corp", "10.1.2.3", "MAIL.LOCAL"] {
        assert_eq!(via(&c.route(Channel::Imap, direct)), "direct", "{direct}");
    }
    assert_eq!(
        via(&c.route(Channel::Imap, "notintern.corp")),
        "socks5 proxy socks.corp:1080"
    );
    // A plain URL is every protocol's proxy.
    let all = ProxyConfig::parse("socks5://127.0.0.1:1080").unwrap();
    for ch in [Channel::Https, Channel::Imap, Channel::Pop3, Channel::Smtp] {
        assert_eq!(
            via(&all.route(ch, "x.example")),
            "socks5 proxy 127.0.0.1:1080"
        );
    }
    // An object without a url proxies only what it names.
    let only = ProxyConfig::parse(r#"{"imap": "http://p:8080"}"#).unwrap();
    assert_eq!(via(&only.route(Channel::Https, "x")), "direct");
    assert_eq!(via(&only.route(Channel::Imap, "x")), "http proxy p:8080");
    assert!(ProxyConfig::parse("[1]").is_err());
    // A URL naming only the user takes the object's password (the CLI's --proxy-password-env).
    let c = ProxyConfig::parse(r#"{"url": "http://svc@p:3128", "password": "pw"}"#).unwrap();
    let p = c.route(Channel::Imap, "x").proxy().unwrap().clone();
    assert_eq!(p.username.as_deref(), Some("svc"));
    assert_eq!(p.password.unwrap().expose_secret(), "pw");
}

#[test]
fn no_proxy_entries() {
    let n = NoProxy::parse(["example.com,.corp.test , *.x.test", "192.168.0.0/16", "::1"]);
    assert!(n.matches("example.com"));
    assert!(n.matches("a.example.com"));
    assert!(!n.matches("badexample.com"));
    assert!(n.matches("a.corp.test"));
    assert!(n.matches("x.test"));
    assert!(n.matches("192.168.4.5"));
    assert!(n.matches("[::1]"));
    assert!(!n.matches("10.0.0.1"));
    assert!(NoProxy::parse(["*"]).matches("anything"));
    assert!(!NoProxy::parse([""]).matches("anything"));
}

#[test]
fn the_policy_turns_everything_off_or_follows_the_option() {
    let off = NetPolicy::new(true, Some(ProxyConfig::parse("http://p:1").unwrap())).unwrap();
    assert_eq!(via(&off.route(Channel::Imap, "x")), "direct");
    assert!(!off.configured());
    let on = NetPolicy::new(false, Some(ProxyConfig::parse("http://p:1").unwrap())).unwrap();
    assert!(on.configured());
    assert_eq!(via(&on.route(Channel::Smtp, "x")), "http proxy p:1");
}

#[test]
fn a_stored_setting_is_shown_without_its_passwords() {
    let v = redacted("http://svc:s3cret@proxy.corp:3128");
    assert_eq!(v["url"], "http://svc@proxy.corp:3128");
    assert_eq!(v["has_password"], true);
    let v = redacted(
        r#"{"url":"http://proxy.corp:3128","username":"svc","password":"s3cret",
            "imap":"socks5h://u:pw2@socks.corp:1080","smtp":"direct","no_proxy":[".corp"]}"#,
    );
    let text = v.to_string();
    assert!(!text.contains("s3cret") && !text.contains("pw2"), "{text}");
    assert_eq!(v["imap"], "socks5h://u@socks.corp:1080");
    assert_eq!(v["smtp"], "direct");
    assert_eq!(v["username"], "svc");
    assert_eq!(v["no_proxy"][0], ".corp");
    assert_eq!(v["has_password"], true);
    let v = redacted("proxy.corp:3128");
    assert_eq!(v["url"], "proxy.corp:3128");
    assert_eq!(v["has_password"], false);
    assert_eq!(redacted("direct")["url"], "direct");
}
