//! Encryption at rest: AES-256-GCM (ring) with a random 96-bit nonce per value and the row's
//! identity as associated data, so a ciphertext copied to another row does not decrypt.
//!
//! Blob layout: `0x01 || nonce (12) || ciphertext || tag (16)`.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::key::KeySource;
use super::TRUNCATED;
use crate::error::{Error, Result};

const FORMAT: u8 = 1;

/// `value` as JSON in a zeroizing buffer allocated once at its exact size: serde_json's own
/// `to_vec` grows its buffer as it writes, and every reallocation leaves a partial clear copy of the
/// secrets in freed memory. Use it for whatever is sealed (token secrets, client secrets).
pub fn json_zeroizing<T: serde::Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)
        .map_err(|e| Error::internal(format!("serializing secrets: {e}")))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *buf, value)
        .map_err(|e| Error::internal(format!("serializing secrets: {e}")))?;
    Ok(buf)
}

/// The store cipher.
pub struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Cipher {
    /// Load the key from `source`.
    pub fn new(source: &KeySource) -> Result<Cipher> {
        let bytes = source.load()?;
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_ref())
            .map_err(|_| Error::internal("AES key"))?;
        Ok(Cipher {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypt `plaintext` bound to `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::internal("no system randomness"))?;
        // The plaintext is copied once, into the blob itself, and encrypted there in place: no
        // other copy is made, and the buffer never grows (a reallocation would leave a clear copy
        // in freed memory). On failure the buffer is wiped.
        let mut buf = Zeroizing::new(Vec::with_capacity(
            1 + NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len(),
        ));
        buf.push(FORMAT);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf[1 + NONCE_LEN..],
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(std::mem::take(&mut *buf))
    }

    /// Decrypt a blob sealed for `aad`. A truncated or altered blob, or the wrong key, is an error.
    pub fn open(&self, aad: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if blob.len() < 1 + NONCE_LEN + 16 || blob[0] != FORMAT {
            return Err(Error::store(format!("the stored secret for {aad} is incomplete or damaged ({} bytes); it was not stored completely", blob.len())).with_code(TRUNCATED));
        }
        let nonce: [u8; NONCE_LEN] = blob[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| Error::internal("nonce"))?;
        let mut body = Zeroizing::new(blob[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), body.as_mut_slice())
            .map_err(|_| Error::store(format!("the stored secret for {aad} cannot be decrypted: the store key does not match or the value was altered or truncated")).with_code(TRUNCATED))?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_the_row_and_tamper_evident() {
        let c = Cipher::new(&KeySource::Bytes(Zeroizing::new([7u8; 32]))).unwrap();
        let blob = c.seal("tokens:a", b"secret").unwrap();
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open("tokens:a", &blob).unwrap().as_slice(), b"secret");
        assert!(c.open("tokens:b", &blob).is_err());
        assert!(c.open("tokens:a", &blob[..blob.len() - 1]).is_err());
        let other = Cipher::new(&KeySource::Bytes(Zeroizing::new([8u8; 32]))).unwrap();
        assert!(other.open("tokens:a", &blob).is_err());
    }

    #[test]
    fn sealing_never_reallocates_the_buffer_holding_the_plaintext() {
        let c = Cipher::new(&KeySource::Bytes(Zeroizing::new([7u8; 32]))).unwrap();
        for len in [0usize, 1, 15, 16, 17, 1000, 4096] {
            let plain = vec![b'p'; len];
            let blob = c.seal("tokens:a", &plain).unwrap();
            assert_eq!(blob.len(), 1 + NONCE_LEN + len + 16);
            assert_eq!(blob.capacity(), blob.len(), "sized once, never grown");
            assert_eq!(c.open("tokens:a", &blob).unwrap().as_slice(), &plain[..]);
        }
    }

    #[test]
    fn secrets_json_is_written_into_one_exactly_sized_buffer() {
        let v = serde_json::json!({"refresh_token": "r".repeat(5000), "access_token": "a\"b"});
        let buf = json_zeroizing(&v).unwrap();
        assert_eq!(buf.capacity(), buf.len());
        assert_eq!(buf.as_slice(), serde_json::to_vec(&v).unwrap().as_slice());
    }
}
