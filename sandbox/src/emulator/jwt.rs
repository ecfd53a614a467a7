//! The token signing key (RS256), its JWKS entry, and JWT encoding and verification.
//!
//! Keys are generated with `rsa` (2048 bit, once per process unless a PEM file is configured);
//! signing and verification use `ring`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;

use crate::Error;

/// An RSA signing key with its public parts.
pub struct SigningKey {
    pair: RsaKeyPair,
    /// Key id (`kid`), equal to `x5t` as in Microsoft's keys.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
    n_raw: Vec<u8>,
    e_raw: Vec<u8>,
    /// The JWT header every token carries, already base64url-encoded (it only depends on the key).
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

static PROCESS_KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();

impl SigningKey {
    /// The process-wide generated key (generated on first use).
    pub fn process_default() -> Result<Arc<SigningKey>, Error> {
        if let Some(k) = PROCESS_KEY.get() {
            return Ok(k.clone());
        }
        let mut rng = rsa::rand_core::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
            .map_err(|e| Error::Config(format!("generating the RSA key: {e}")))?;
        let key = Arc::new(SigningKey::from_rsa(&private)?);
        Ok(PROCESS_KEY.get_or_init(|| key).clone())
    }

    /// Load a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM file.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, Error> {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| {
                Error::Config(format!("{}: not an RSA private key: {e}", path.display()))
            })?;
        SigningKey::from_rsa(&private)
    }

    fn from_rsa(private: &rsa::RsaPrivateKey) -> Result<SigningKey, Error> {
        let der = private
            .to_pkcs8_der()
            .map_err(|e| Error::Config(format!("encoding the RSA key: {e}")))?;
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| Error::Config(format!("RSA key rejected: {e}")))?;
        let public = private.to_public_key();
        let spki = public
            .to_public_key_der()
            .map_err(|e| Error::Config(format!("encoding the RSA public key: {e}")))?;
        let thumb = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_bytes());
        let n_raw = public.n().to_bytes_be();
        let e_raw = public.e().to_bytes_be();
        let kid = URL_SAFE_NO_PAD.encode(thumb.as_ref());
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid});
        Ok(SigningKey {
            pair,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            kid,
            n: URL_SAFE_NO_PAD.encode(&n_raw),
            e: URL_SAFE_NO_PAD.encode(&e_raw),
            n_raw,
            e_raw,
        })
    }

    /// The JWKS entry.
    pub fn jwk(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "issuer": issuer,
        })
    }

    /// Sign `claims` as an RS256 JWT with Microsoft's header (`typ`, `alg`, `x5t`, `kid`).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_payload(&claims.to_string())
    }

    /// Sign `payload` (the claims, serialized as JSON) as an RS256 JWT with Microsoft's header.
    pub fn sign_payload(&self, payload: &str) -> String {
        let sig_len = self.pair.public().modulus_len();
        let mut input = String::with_capacity(self.signed_len(payload.len()));
        input.push_str(&self.header_b64);
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut input);
        let mut sig = vec![0u8; sig_len];
        let rng = ring::rand::SystemRandom::new();
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key does not fail");
        input.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut input);
        input
    }

    /// The length of the JWT [`SigningKey::sign_payload`] makes of a `payload_len`-byte payload,
    /// without signing: the header and the signature have fixed lengths for a key.
    pub fn signed_len(&self, payload_len: usize) -> usize {
        let b64 = |n: usize| (n * 4).div_ceil(3);
        self.header_b64.len() + 1 + b64(payload_len) + 1 + b64(self.pair.public().modulus_len())
    }

    /// Verify a JWT signed by this key; returns its claims.
    pub fn verify(&self, token: &str) -> Option<serde_json::Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
        let public = RsaPublicKeyComponents {
            n: &self.n_raw,
            e: &self.e_raw,
        };
        let signed = &token[..h.len() + 1 + c.len()];
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_len_is_the_length_of_the_signed_token() {
        let key = SigningKey::process_default().expect("key");
        for n in 0..40 {
            let claims = serde_json::json!({"aio": "x".repeat(n), "n": n});
            let payload = claims.to_string();
            let token = key.sign_payload(&payload);
            assert_eq!(token.len(), key.signed_len(payload.len()), "{n}");
            assert_eq!(
                token,
                key.sign(&claims),
                "PKCS#1 v1.5 signatures are deterministic"
            );
            assert_eq!(key.verify(&token), Some(claims));
        }
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(key.sign_payload("{}").split('.').next().expect("header"))
                .expect("base64"),
        )
        .expect("JSON");
        assert_eq!(
            header,
            serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": key.kid, "kid": key.kid})
        );
    }
}
