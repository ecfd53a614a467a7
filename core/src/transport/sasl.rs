//! SASL XOAUTH2 and OAUTHBEARER (RFC 7628) initial responses (docs/provider-facts.md#xoauth2).

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// The raw XOAUTH2 response `"user=" user "\x01auth=Bearer " token "\x01\x01"` (before base64).
pub fn xoauth2_raw(user: &str, token: &SecretString) -> Zeroizing<Vec<u8>> {
    concat(&[
        "user=",
        user,
        "\x01auth=Bearer ",
        token.expose_secret(),
        "\x01\x01",
    ])
}

/// The raw OAUTHBEARER response `"n,a=" user ",\x01host=" host "\x01port=" port "\x01auth=Bearer "
/// token "\x01\x01"` (before base64), with `=` and `,` in the user escaped.
pub fn oauthbearer_raw(
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> Zeroizing<Vec<u8>> {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    let port = port.to_string();
    concat(&[
        "n,a=",
        &user,
        ",\x01host=",
        host,
        "\x01port=",
        &port,
        "\x01auth=Bearer ",
        token.expose_secret(),
        "\x01\x01",
    ])
}

/// `base64("user=" user "\x01auth=Bearer " token "\x01\x01")`.
pub fn xoauth2(user: &str, token: &SecretString) -> SecretString {
    base64_secret(&xoauth2_raw(user, token))
}

/// `base64("n,a=" user ",\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01")`.
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &SecretString) -> SecretString {
    base64_secret(&oauthbearer_raw(user, host, port, token))
}

/// The parts joined in one buffer allocated at its final size (growing a buffer that holds a
/// token would leave copies of it in freed memory), wiped when dropped.
fn concat(parts: &[&str]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// Base64 of `raw` written into a string of exactly the encoded size (so turning it into the
/// secret's boxed `str` does not reallocate and leave a copy).
pub fn base64_secret(raw: &[u8]) -> SecretString {
    let len = base64::encoded_len(raw.len(), true).unwrap_or(0);
    let mut out = String::with_capacity(len);
    base64::engine::general_purpose::STANDARD.encode_string(raw, &mut out);
    SecretString::from(out)
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
        // docs/provider-facts.md#xoauth2-example: user=test@contoso.onmicrosoft.com, token EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA
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
