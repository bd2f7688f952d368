//! The public x509-limbo conformance suite (C2SP/x509-limbo), every case
//! through the library with `Purpose::Any`: pure RFC 5280 path validation
//! at the case's validation time, with its trusted certificates,
//! intermediates and CRLs.
//!
//! The suite lives in `../shared/conformance/x509-limbo/limbo.json` beside
//! the repository (see its README); this test fails when it is missing.
//! Cases outside an HPKI validator's scope are listed in [`EXCLUDED`], each
//! with its reason; every other case must agree with the suite's expected
//! result.

use std::collections::HashMap;
use std::path::PathBuf;

use hpki_profile::{AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Purpose, Revocation, Validator, ValidatorConfig};
use serde::Deserialize;

/// Why a case is excluded; one reason per kind.
const HOST_NAME: &str =
    "host name: the outcome depends on a TLS server's DNS name or IP address (matching, wildcards, syntax)";
const DNS_IP_CONSTRAINT: &str = "name constraints on DNS/IP names: the validator refuses such a constraint when a name of that form is below it (unsupported_name_constraint) instead of processing it";
const TLS_SERVER_EKU: &str = "EKU for TLS servers (serverAuth, or a CA/Browser Forum EKU rule for TLS certificates)";
const CABF_AKI: &str = "CA/Browser Forum BR 7.1.2.1.3 for TLS roots; RFC 5280 4.2.1.1 allows authorityCertIssuer and authorityCertSerialNumber";
const CABF_CA_LEAF: &str = "CA/Browser Forum BR 7.1.2.7.8 for TLS subscriber certificates; RFC 5280 allows a CA certificate as the end entity (rfc5280::ca-as-leaf, which limbo lists as conflicting). The HPKI purposes refuse it (not_end_entity)";
const CABF_SAN_CRITICAL: &str =
    "CA/Browser Forum rule for TLS subscriber certificates; RFC 5280 4.2.1.6 allows a critical subjectAltName";

/// Cases whose outcome depends on what an HPKI validator does not decide:
/// host names (TLS server identity), name constraints on DNS/IP names,
/// EKU for TLS servers — and the CA/Browser Forum's rules for TLS
/// certificates that RFC 5280 does not make.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "rfc5280::aki::cross-signed-root-missing-aki",
        "wants an authorityKeyIdentifier on a trust anchor (limbo feature pedantic-rfc5280), which contradicts \
         cve::cve-2024-0567: there the trusted Root A is cross-signed, has none, and success is expected. \
         Anchors are trusted input (RFC 5280 6.1.1 (d)); issued certificates are held to 4.2.1.1",
    ),
    ("rfc5280::eku::ee-wrong-eku", TLS_SERVER_EKU),
    ("rfc5280::nc::permitted-dns-match", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::permitted-dns-match-more", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::permitted-ipv4-match", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::permitted-ipv6-match", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::permitted-self-issued", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::nc-forbids-alternate-chain-ica", DNS_IP_CONSTRAINT),
    ("rfc5280::nc::nc-forbids-othername-noop", DNS_IP_CONSTRAINT),
    ("rfc5280::san::underscore-dns", HOST_NAME),
    ("rfc5280::san::ip-in-dns", HOST_NAME),
    ("rfc5280::ca-as-leaf-wrong-san", HOST_NAME),
    ("webpki::aki::root-with-aki-authoritycertissuer", CABF_AKI),
    ("webpki::aki::root-with-aki-authoritycertserialnumber", CABF_AKI),
    ("webpki::aki::root-with-aki-all-fields", CABF_AKI),
    ("webpki::cn::ipv4-hex-mismatch", HOST_NAME),
    ("webpki::cn::ipv4-leading-zeros-mismatch", HOST_NAME),
    ("webpki::cn::ipv6-uppercase-mismatch", HOST_NAME),
    ("webpki::cn::ipv6-uncompressed-mismatch", HOST_NAME),
    ("webpki::cn::ipv6-non-rfc5952-mismatch", HOST_NAME),
    ("webpki::cn::punycode-not-in-san", HOST_NAME),
    ("webpki::cn::utf8-vs-punycode-mismatch", HOST_NAME),
    ("webpki::cn::not-in-san", HOST_NAME),
    ("webpki::cn::case-mismatch", HOST_NAME),
    ("webpki::eku::ee-anyeku", TLS_SERVER_EKU),
    ("webpki::eku::ee-critical-eku", TLS_SERVER_EKU),
    ("webpki::eku::ee-without-eku", TLS_SERVER_EKU),
    ("webpki::eku::root-has-eku", TLS_SERVER_EKU),
    ("webpki::nc::permitted-dns-match-noncritical", DNS_IP_CONSTRAINT),
    ("webpki::nc::nc-permits-dns-san-pattern", DNS_IP_CONSTRAINT),
    ("webpki::san::mismatch-domain-san", HOST_NAME),
    ("webpki::san::mismatch-subdomain-san", HOST_NAME),
    ("webpki::san::mismatch-subdomain-apex-san", HOST_NAME),
    ("webpki::san::mismatch-apex-subdomain-san", HOST_NAME),
    ("webpki::san::public-suffix-wildcard-san", HOST_NAME),
    ("webpki::san::public-suffix-multi-label-wildcard-san", HOST_NAME),
    ("webpki::san::public-suffix-private-namespace-wildcard-san", HOST_NAME),
    ("webpki::san::wildcard-embedded-leftmost-san", HOST_NAME),
    ("webpki::san::wildcard-not-in-leftmost-san", HOST_NAME),
    ("webpki::san::wildcard-match-across-labels-san", HOST_NAME),
    ("webpki::san::wildcard-embedded-ulabel-san", HOST_NAME),
    ("webpki::san::unicode-emoji-san", HOST_NAME),
    ("webpki::san::no-san", HOST_NAME),
    ("webpki::san::san-critical-with-nonempty-subject", CABF_SAN_CRITICAL),
    ("webpki::san::san-wildcard-only", HOST_NAME),
    ("webpki::san::san-wildcard-only-tld", HOST_NAME),
    ("webpki::ee-basicconstraints-ca", CABF_CA_LEAF),
    ("webpki::ca-as-leaf", CABF_CA_LEAF),
];

#[derive(Deserialize)]
struct Suite {
    testcases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    validation_time: Option<String>,
    expected_result: String,
    max_chain_depth: Option<usize>,
    #[serde(default)]
    crls: Vec<String>,
}

fn suite_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/x509-limbo/limbo.json")
}

fn der_of(pem: &str, what: &str, id: &str) -> Vec<u8> {
    let (_, p) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{id}: {what} is not PEM: {e}"));
    p.contents
}

enum Outcome {
    Success,
    Failure(String),
    /// The validator would not even take the configuration.
    Config(String),
}

fn run(case: &Case) -> Outcome {
    let id = &case.id;
    let anchors: Vec<Vec<u8>> = case.trusted_certs.iter().map(|p| der_of(p, "trusted certificate", id)).collect();
    let intermediates: Vec<Vec<u8>> =
        case.untrusted_intermediates.iter().map(|p| der_of(p, "intermediate", id)).collect();
    let crls: Vec<Vec<u8>> = case.crls.iter().map(|p| der_of(p, "CRL", id)).collect();
    let leaf = der_of(&case.peer_certificate, "peer certificate", id);
    let at = match &case.validation_time {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{id}: validation time {t:?}: {e}"))
            .unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    // Cases without CRLs test path validation alone; with CRLs, revocation
    // is required for every certificate below the anchor, as in the gateway.
    let revocation = if crls.is_empty() { Revocation::NotChecked } else { Revocation::Required };
    let config = ValidatorConfig {
        anchors,
        intermediates: Vec::new(),
        crls,
        policies: AcceptedPolicies::hpki(),
        revocation,
        scopes: Vec::new(),
        max_intermediates: case.max_chain_depth.unwrap_or(DEFAULT_MAX_INTERMEDIATES),
    };
    // Intermediates as the peer presents them (untrusted, per validation).
    let v = match Validator::new(config) {
        Ok(v) => v,
        Err(e) => return Outcome::Config(e.to_string()),
    };
    match v.validate(&leaf, &intermediates, Purpose::Any, at) {
        Ok(_) => Outcome::Success,
        Err(r) => Outcome::Failure(format!("{}: {r}", r.code())),
    }
}

#[test]
fn limbo_cases_agree_except_the_listed_exclusions() {
    let path = suite_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the conformance suite {} cannot be read ({e}); it comes with shared/ beside the repository",
            path.display()
        )
    });
    let suite: Suite = serde_json::from_str(&text).expect("limbo.json parses");
    let excluded: HashMap<&str, &str> = EXCLUDED.iter().copied().collect();
    let ids: Vec<&str> = suite.testcases.iter().map(|c| c.id.as_str()).collect();
    for id in excluded.keys() {
        assert!(ids.contains(id), "exclusion {id} names no case of the suite");
    }

    // LIMBO_VERBOSE=1 shows why each case was validated or refused.
    let verbose = std::env::var_os("LIMBO_VERBOSE").is_some();
    let (mut agree, mut skipped, mut disagree) = (0usize, 0usize, Vec::new());
    for case in &suite.testcases {
        if excluded.contains_key(case.id.as_str()) {
            skipped += 1;
            continue;
        }
        let outcome = std::panic::catch_unwind(|| run(case));
        let expected_success = case.expected_result == "SUCCESS";
        if verbose {
            match &outcome {
                Ok(Outcome::Success) => println!("  {} ({}): validated", case.id, case.expected_result),
                Ok(Outcome::Failure(w)) | Ok(Outcome::Config(w)) => {
                    println!("  {} ({}): refused, {w}", case.id, case.expected_result)
                }
                Err(_) => println!("  {}: panicked", case.id),
            }
        }
        match outcome {
            Ok(Outcome::Success) if expected_success => agree += 1,
            Ok(Outcome::Failure(_)) | Ok(Outcome::Config(_)) if !expected_success => agree += 1,
            Ok(Outcome::Success) => disagree.push(format!("{}: expected FAILURE, validated", case.id)),
            Ok(Outcome::Failure(why)) | Ok(Outcome::Config(why)) => {
                disagree.push(format!("{}: expected SUCCESS, refused: {why}", case.id))
            }
            Err(_) => disagree.push(format!("{}: panicked", case.id)),
        }
    }
    println!("limbo: {agree} agree, {skipped} excluded, {} disagree", disagree.len());
    for d in &disagree {
        println!("  {d}");
    }
    assert!(disagree.is_empty(), "{} limbo cases disagree:\n{}", disagree.len(), disagree.join("\n"));
}
