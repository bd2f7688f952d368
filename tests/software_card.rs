//! A card's keys used in software, for benchmarks only: they measure the
//! gateway, not the card (the card layer has its own benchmark, and every
//! test signs through the real card in pcscd).

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_protocol::LoginTbs;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::TerminalClient;

/// The authentication and signature keys and certificates of a card image.
pub struct SoftwareCard {
    auth_key: RsaKeyPair,
    auth_cert: String,
    sign_key: RsaKeyPair,
    sign_cert: String,
    rng: ring::rand::SystemRandom,
}

impl SoftwareCard {
    pub fn load(image: &Path) -> Result<SoftwareCard> {
        let image = virtual_card::CardImage::load(image)?;
        let key = |der: &[u8]| RsaKeyPair::from_pkcs8(der).map_err(|e| anyhow::anyhow!("card key: {e}"));
        Ok(SoftwareCard {
            auth_key: key(&image.authentication.private_key)?,
            auth_cert: B64.encode(&image.authentication.certificate),
            sign_key: key(&image.signature.private_key)?,
            sign_cert: B64.encode(&image.signature.certificate),
            rng: ring::rand::SystemRandom::new(),
        })
    }

    fn sign(&self, key: &RsaKeyPair, data: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut sig).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(sig)
    }

    /// Challenge and login at the gateway called `gateway_id`: the status
    /// and body of the login.
    pub async fn login(&self, client: &mut TerminalClient, gateway_id: &str) -> Result<(u16, Value)> {
        let c = client.challenge().await?;
        let id = c["id"].as_str().context("challenge id")?.to_owned();
        let nonce: [u8; 32] =
            B64.decode(c["nonce"].as_str().context("nonce")?)?.try_into().map_err(|_| anyhow::anyhow!("nonce"))?;
        let tbs = LoginTbs { gateway_id, challenge_id: &id, nonce: &nonce, channel_binding: &client.channel_binding }
            .to_bytes()?;
        let sig = self.sign(&self.auth_key, &tbs)?;
        client
            .post(
                "/v1/auth/login",
                &json!({"challenge_id": id, "certificate": self.auth_cert, "signature": B64.encode(&sig)}),
                None,
            )
            .await
    }

    /// A session token, or an error when the login is refused.
    pub async fn session(&self, client: &mut TerminalClient, gateway_id: &str) -> Result<String> {
        let (status, body) = self.login(client, gateway_id).await?;
        anyhow::ensure!(status == 200, "login refused: {body}");
        Ok(body["session"].as_str().context("session")?.to_owned())
    }

    /// The DER of the signature certificate, base64.
    pub fn signature_certificate(&self) -> &str {
        &self.sign_cert
    }

    /// The body of `POST /v1/drafts/{id}/confirm` for a
    /// `signed-attributes` answer, signed with the signature key over the
    /// signed attributes (checked first, as the agent does).
    pub fn signed_confirm(&self, signing: &Value) -> Result<Value> {
        let bytes = B64.decode(signing["document"].as_str().context("document")?)?;
        hpki_protocol::ConfirmDocument::from_canonical(&bytes)?;
        let attrs_b64 = signing["signed_attributes"].as_str().context("signed_attributes")?;
        let attrs = hpki_cades::SignedAttributes::parse(&B64.decode(attrs_b64)?)?;
        attrs.check(&bytes, &B64.decode(&self.sign_cert)?)?;
        let sig = self.sign(&self.sign_key, &attrs.der)?;
        Ok(json!({
            "version": signing["version"],
            "certificate": self.sign_cert,
            "signed_attributes": attrs_b64,
            "signature": B64.encode(&sig),
        }))
    }
}
