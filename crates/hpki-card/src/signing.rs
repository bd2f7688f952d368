//! PKCS#1 v1.5 signature blocks, built off-card.
//!
//! HPKI cards sign a block that is already padded: `00 01 FF…FF 00` followed
//! by the DER DigestInfo of a SHA-256 digest (RFC 8017 §9.2).

use ring::digest;

/// DER prefix of a DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// Smallest modulus that holds the DigestInfo with the 8 padding bytes RFC
/// 8017 requires (and larger than anything in use is refused for sanity).
pub const MIN_KEY_BYTES: usize = SHA256_DIGEST_INFO_PREFIX.len() + 32 + 11;
pub const MAX_KEY_BYTES: usize = 512;

/// The padded block for `digest` under a modulus of `key_bytes` bytes.
/// The caller checks `MIN_KEY_BYTES <= key_bytes`.
pub fn pkcs1_v15_sha256_block(digest: &[u8; 32], key_bytes: usize) -> Vec<u8> {
    let t_len = SHA256_DIGEST_INFO_PREFIX.len() + digest.len();
    let mut block = Vec::with_capacity(key_bytes);
    block.extend_from_slice(&[0x00, 0x01]);
    block.resize(key_bytes.saturating_sub(t_len + 1), 0xFF);
    block.push(0x00);
    block.extend_from_slice(&SHA256_DIGEST_INFO_PREFIX);
    block.extend_from_slice(digest);
    block
}

/// SHA-256 of a message, as the card signs it.
pub fn sha256(message: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, message);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layout_for_rsa_2048() {
        let digest = [0x11u8; 32];
        let b = pkcs1_v15_sha256_block(&digest, 256);
        assert_eq!(b.len(), 256);
        assert_eq!(&b[..2], &[0x00, 0x01]);
        let sep = 256 - 32 - 19 - 1;
        assert!(b[2..sep].iter().all(|&x| x == 0xFF));
        assert_eq!(b[sep], 0x00);
        assert_eq!(&b[sep + 1..sep + 20], &SHA256_DIGEST_INFO_PREFIX);
        assert_eq!(&b[256 - 32..], &digest);
    }

    #[test]
    fn smallest_block_still_has_eight_padding_bytes() {
        let b = pkcs1_v15_sha256_block(&[0; 32], MIN_KEY_BYTES);
        assert_eq!(b.len(), MIN_KEY_BYTES);
        assert_eq!(b.iter().skip(2).take_while(|&&x| x == 0xFF).count(), 8);
    }
}
