//! What a card signs to log in: a domain-separated value binding the
//! gateway, the challenge and the TLS connection.
//!
//! ```text
//! tbs = "HPKI-GATEWAY-LOGIN-V1" 0x00
//!       u16be(len(gateway_id)) gateway_id          -- UTF-8
//!       u16be(len(challenge_id)) challenge_id      -- ASCII
//!       nonce                                      -- 32 bytes
//!       channel_binding                            -- 32 bytes, RFC 9266 tls-exporter
//! ```
//!
//! The card signs SHA-256(tbs) with PKCS#1 v1.5 (RSA, SHA-256 DigestInfo).
//! `channel_binding` is the TLS exporter value of the connection
//! (label `EXPORTER-Channel-Binding`, no context, 32 bytes): a signature made
//! for one TLS connection is worthless on another, and the gateway identity
//! stops relaying to a different gateway.

/// Domain separation: nothing else the card signs starts like this.
pub const LOGIN_DOMAIN: &[u8] = b"HPKI-GATEWAY-LOGIN-V1";
/// RFC 9266 tls-exporter channel binding.
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
pub const CHANNEL_BINDING_LEN: usize = 32;
pub const NONCE_LEN: usize = 32;

/// The to-be-signed value of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginTbs<'a> {
    pub gateway_id: &'a str,
    pub challenge_id: &'a str,
    pub nonce: &'a [u8; NONCE_LEN],
    pub channel_binding: &'a [u8; CHANNEL_BINDING_LEN],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TbsError {
    #[error("gateway id or challenge id longer than 65535 bytes")]
    TooLong,
}

impl LoginTbs<'_> {
    pub fn to_bytes(&self) -> Result<Vec<u8>, TbsError> {
        let gw = self.gateway_id.as_bytes();
        let id = self.challenge_id.as_bytes();
        let gw_len = u16::try_from(gw.len()).map_err(|_| TbsError::TooLong)?;
        let id_len = u16::try_from(id.len()).map_err(|_| TbsError::TooLong)?;
        let mut out =
            Vec::with_capacity(LOGIN_DOMAIN.len() + 1 + 4 + gw.len() + id.len() + NONCE_LEN + CHANNEL_BINDING_LEN);
        out.extend_from_slice(LOGIN_DOMAIN);
        out.push(0x00);
        out.extend_from_slice(&gw_len.to_be_bytes());
        out.extend_from_slice(gw);
        out.extend_from_slice(&id_len.to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(self.nonce);
        out.extend_from_slice(self.channel_binding);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_exactly_as_documented() {
        let nonce = [0xAA; 32];
        let cb = [0xBB; 32];
        let tbs = LoginTbs { gateway_id: "gw", challenge_id: "c1", nonce: &nonce, channel_binding: &cb }
            .to_bytes()
            .expect("fits");
        let mut expected = b"HPKI-GATEWAY-LOGIN-V1\x00\x00\x02gw\x00\x02c1".to_vec();
        expected.extend_from_slice(&nonce);
        expected.extend_from_slice(&cb);
        assert_eq!(tbs, expected);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let n = [0; 32];
        let a = LoginTbs { gateway_id: "ab", challenge_id: "c", nonce: &n, channel_binding: &n }.to_bytes();
        let b = LoginTbs { gateway_id: "a", challenge_id: "bc", nonce: &n, channel_binding: &n }.to_bytes();
        assert_ne!(a, b);
    }
}
