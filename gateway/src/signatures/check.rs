//! `records verify`: a record's signature checked again, long after the
//! confirm, from the container alone — the CMS signature over the document,
//! each time-stamp over the signature value, the TSA's certificate at its
//! genTime and the signer's certificate at the time-stamp's genTime, both
//! against the configured anchors with only the CRLs the container carries
//! (the ones current when it was made; later CRLs may have dropped expired
//! certificates). Without a time-stamp (B-B) the signer is checked at the
//! signingTime the card signed, which is the signer's own claim.

use hpki_cades::{CadesError, Opened};
use hpki_profile::{Purpose, Refusal};

use crate::config::Config;
use crate::credentials::{LoadError, tsa_validator_with_crls, validator_with_crls};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the signature does not verify: {0}")]
    Signature(#[from] CadesError),
    #[error("the signer's certificate was refused at {at}: {refusal}")]
    Signer { at: i64, refusal: Refusal },
    #[error("time-stamp {n}: the TSA's certificate was refused at its genTime {at}: {refusal}")]
    Tsa { n: usize, at: i64, refusal: Refusal },
    #[error("the record has {0} time-stamp(s) but [timestamps] names no TSA anchors to check them with")]
    NoTsaAnchors(usize),
    #[error("{0}")]
    Config(#[from] LoadError),
}

/// What a successful check found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// "B-B", "B-T", "B-LT".
    pub level: &'static str,
    /// The signer's subject, leaf to anchor.
    pub signer_chain: Vec<String>,
    /// The card's signingTime (Unix seconds): the signer's claim.
    pub signing_time: i64,
    /// The first signature time-stamp's genTime: when the signature
    /// existed at the latest, vouched for by the TSA.
    pub time_stamped_at: Option<i64>,
    /// The time the signer's certificate was checked at.
    pub signer_checked_at: i64,
    /// Each TSA's subject.
    pub tsas: Vec<String>,
}

/// Checks `p7s` over `document` as the module says.
pub fn check(config: &Config, document: &[u8], p7s: &[u8]) -> Result<Verdict, CheckError> {
    let opened: Opened = hpki_cades::open(p7s, document)?;
    let mut tsas = Vec::new();
    if !opened.timestamps.is_empty() {
        let validator = tsa_validator_with_crls(config, opened.crls.clone())?
            .ok_or(CheckError::NoTsaAnchors(opened.timestamps.len()))?;
        for (n, token) in opened.timestamps.iter().enumerate() {
            let others: Vec<Vec<u8>> = opened
                .certificates
                .iter()
                .chain(token.certs.iter())
                .filter(|c| **c != token.tsa_cert)
                .cloned()
                .collect();
            let v = validator
                .validate(&token.tsa_cert, &others, Purpose::Any, token.gen_time)
                .map_err(|refusal| CheckError::Tsa { n: n + 1, at: token.gen_time, refusal })?;
            tsas.push(v.chain.first().cloned().unwrap_or_default());
        }
    }
    let time_stamped_at = opened.timestamps.first().map(|t| t.gen_time);
    let at = time_stamped_at.unwrap_or(opened.attributes.signing_time);
    let others: Vec<Vec<u8>> = opened.certificates.iter().filter(|c| **c != opened.signer_cert).cloned().collect();
    let signer = validator_with_crls(config, opened.crls.clone())?
        .validate(&opened.signer_cert, &others, Purpose::Signature, at)
        .map_err(|refusal| CheckError::Signer { at, refusal })?;
    Ok(Verdict {
        level: opened.level(),
        signer_chain: signer.chain,
        signing_time: opened.attributes.signing_time,
        time_stamped_at,
        signer_checked_at: at,
        tsas,
    })
}
