//! The test hierarchy, mirroring the real one: a root, HPKI authentication
//! and signature CAs, an institution CA for assistant cards and a terminal CA
//! for the mTLS "connection information".

use std::fmt;

use hpki_profile::Grant;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose};
use serde::{Deserialize, Serialize};

use crate::keys::KeyKind;

/// The organisation of every test CA: never to be mistaken for a real one.
pub const TEST_ORGANISATION: &str = "HPKI Test Authority (not for production)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaRole {
    Root,
    HpkiAuth,
    HpkiSign,
    Institution,
    Terminal,
    /// TLS server certificates of the gateway's listeners.
    Service,
    /// IKE certificates of the IPsec endpoints (clinic routers and the data
    /// centre's), kept apart so that no terminal or card certificate can
    /// authenticate a VPN peer.
    Vpn,
}

impl CaRole {
    pub const ALL: [CaRole; 7] = [
        CaRole::Root,
        CaRole::HpkiAuth,
        CaRole::HpkiSign,
        CaRole::Institution,
        CaRole::Terminal,
        CaRole::Service,
        CaRole::Vpn,
    ];

    /// Directory and file name.
    pub fn name(self) -> &'static str {
        match self {
            CaRole::Root => "root",
            CaRole::HpkiAuth => "hpki-auth",
            CaRole::HpkiSign => "hpki-sign",
            CaRole::Institution => "institution",
            CaRole::Terminal => "terminal",
            CaRole::Service => "service",
            CaRole::Vpn => "vpn",
        }
    }

    fn common_name(self) -> Option<&'static str> {
        match self {
            // The real MHLW root has no CN either.
            CaRole::Root => None,
            CaRole::HpkiAuth => Some("HPKI-Test-AuthCA-forAuthentication-forIndividual"),
            CaRole::HpkiSign => Some("HPKI-Test-SignCA-forNonRepudiation"),
            CaRole::Institution => Some("Institution-Test-CA-forAssistants"),
            CaRole::Terminal => Some("Terminal-Test-CA-forConnectionInformation"),
            CaRole::Service => Some("Service-Test-CA-forServers"),
            CaRole::Vpn => Some("VPN-Test-CA-forIKE"),
        }
    }

    /// What this CA certifies, as a validator's trust scope: the HPKI CAs
    /// licensed professionals, the institution CA assistants (of any
    /// institution: IT staff run it themselves), every other CA no card
    /// holder at all.
    pub fn grant(self) -> Grant {
        match self {
            CaRole::HpkiAuth | CaRole::HpkiSign => Grant::Licensed { professions: None },
            CaRole::Institution => Grant::Assistants { institutions: None },
            CaRole::Root | CaRole::Terminal | CaRole::Service | CaRole::Vpn => Grant::Nothing,
        }
    }

    pub fn key_kind(self) -> KeyKind {
        match self {
            // Terminal certificates carry TLS 1.3: ECDSA is cheaper there.
            CaRole::Terminal | CaRole::Service | CaRole::Vpn => KeyKind::EcdsaP256,
            _ => KeyKind::Rsa2048,
        }
    }

    pub fn parent(self) -> Option<CaRole> {
        match self {
            CaRole::Root => None,
            _ => Some(CaRole::Root),
        }
    }

    pub fn validity_days(self) -> i64 {
        match self {
            CaRole::Root => 20 * 365,
            _ => 10 * 365,
        }
    }

    pub fn distinguished_name(self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        dn.push(DnType::OrganizationName, TEST_ORGANISATION);
        match self.common_name() {
            Some(cn) => dn.push(DnType::CommonName, cn),
            None => dn.push(DnType::OrganizationalUnitName, "HPKI Test Root CA"),
        }
        dn
    }

    /// The parameters that define this CA; the same every time, so an issuer
    /// rebuilt from them names the CA exactly as its certificate does.
    pub fn params(self) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = self.distinguished_name();
        p.is_ca = IsCa::Ca(match self {
            CaRole::Root => BasicConstraints::Constrained(1),
            _ => BasicConstraints::Constrained(0),
        });
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = self != CaRole::Root;
        p
    }
}

impl fmt::Display for CaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
