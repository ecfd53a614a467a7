//! SASL XOAUTH2 and OAUTHBEARER (RFC 7628) initial responses (MICROSOFT.md §3).

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// `base64("user=" user "\x01auth=Bearer " token "\x01\x01")`.
pub fn xoauth2(user: &str, token: &SecretString) -> SecretString {
    let raw = Zeroizing::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose_secret()
    ));
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()))
}

/// `base64("n,a=" user ",\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01")`.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &SecretString) -> SecretString {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    let raw = Zeroizing::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose_secret()
    ));
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()))
}

/// Decode a SASL error challenge (`+ <base64>` in POP3, `334 <base64>` in SMTP): the text the
/// server encoded (Gmail sends JSON such as `{"status":"401","schemes":"bearer"}`), or `None` when
/// the data is not base64. Invalid UTF-8 is replaced, never refused: the text is only evidence.
pub fn decode_error_challenge(data: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_matches_microsofts_documented_example() {
        // MICROSOFT.md §3.1: user=test@contoso.onmicrosoft.com, token EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA
        let t = SecretString::from("EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA".to_string());
        assert_eq!(
            xoauth2("test@contoso.onmicrosoft.com", &t).expose_secret(),
            "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
        );
    }

    #[test]
    fn oauthbearer_escapes_the_authzid() {
        let t = SecretString::from("tok".to_string());
        let s = base64::engine::general_purpose::STANDARD
            .decode(oauthbearer("a,b=c@x.test", "h", 993, &t).expose_secret())
            .unwrap();
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "n,a=a=2Cb=3Dc@x.test,\x01host=h\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }
}
