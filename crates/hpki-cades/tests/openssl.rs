//! The containers and time-stamp requests this crate writes, checked by
//! OpenSSL (`cms -verify`, `ts -reply`, `ts -verify`); OpenSSL's tokens
//! read back by this crate, and each forgery refused.

use std::path::Path;
use std::process::Command;

use hpki_cades::tsp::{self, TsaResponseError};
use hpki_cades::{CadesError, Container, SignedAttributes, TimeStampToken};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn must(dir: &Path, args: &[&str]) {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?}: {text}");
}

/// A root, a signer (nonRepudiation) and a TSA (critical timeStamping
/// EKU), made by OpenSSL.
fn pki(dir: &Path) {
    std::fs::write(
        dir.join("ext.cnf"),
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\n\
         [signer]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,nonRepudiation\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
         [tsa]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("test set-up");
    std::fs::write(
        dir.join("tsa.cnf"),
        "[tsa]\ndefault_tsa=t\n[t]\nserial=./tsaserial\nsigner_digest=sha256\n\
         default_policy=1.3.6.1.4.1.99999.3161.1\ndigests=sha256\ness_cert_id_alg=sha256\n",
    )
    .expect("test set-up");
    std::fs::write(dir.join("tsaserial"), "01\n").expect("test set-up");
    for k in ["ca", "signer", "tsa"] {
        must(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &format!("{k}.key")]);
    }
    must(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Test Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ],
    );
    for (k, cn) in [("signer", "/CN=Doctor One"), ("tsa", "/CN=Test TSA")] {
        must(dir, &["req", "-new", "-key", &format!("{k}.key"), "-subj", cn, "-out", &format!("{k}.csr")]);
        must(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{k}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                if k == "tsa" { "7" } else { "5" },
                "-days",
                "10",
                "-extfile",
                "ext.cnf",
                "-extensions",
                k,
                "-out",
                &format!("{k}.pem"),
            ],
        );
        must(dir, &["x509", "-in", &format!("{k}.pem"), "-outform", "DER", "-out", &format!("{k}.der")]);
    }
    must(dir, &["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"]);
    must(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", "signer.key", "-outform", "DER", "-out", "signer.p8"]);
}

/// What the card does: PKCS#1 v1.5 over SHA-256 of the attributes' DER.
fn card_sign(dir: &Path, attrs: &SignedAttributes) -> Vec<u8> {
    let key = RsaKeyPair::from_pkcs8(&std::fs::read(dir.join("signer.p8")).expect("test set-up")).expect("test set-up");
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), &attrs.der, &mut sig).expect("test set-up");
    sig
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("test set-up").as_secs() as i64
}

fn stamp(dir: &Path, data: &[u8], nonce: &mut [u8; 16]) -> Vec<u8> {
    let imprint: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().expect("test set-up");
    std::fs::write(dir.join("q.tsq"), tsp::request(&imprint, nonce, None).expect("test set-up")).expect("test set-up");
    reply(dir, "q.tsq", "r.tsr")
}

/// OpenSSL's TSA answer to the query file `query`, written to `out` too.
fn reply(dir: &Path, query: &str, out: &str) -> Vec<u8> {
    let signer = ["-signer", "tsa.pem", "-inkey", "tsa.key"];
    must(dir, &[&["ts", "-reply", "-config", "tsa.cnf", "-queryfile", query], &signer[..], &["-out", out]].concat());
    std::fs::read(dir.join(out)).expect("test set-up")
}

#[test]
fn openssl_verifies_the_detached_cades_signature_and_its_time_stamp() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pki(dir);
    let document = br#"{"content":{"bp":"120/80"},"domain":"HPKI-GATEWAY-CONFIRM-V2"}"#;
    std::fs::write(dir.join("doc.json"), document).unwrap();
    let signer = std::fs::read(dir.join("signer.der")).unwrap();
    let attrs = SignedAttributes::build(document, &signer, now()).unwrap();
    // The agent's check: the attributes read back say what was built.
    let back = SignedAttributes::parse(&attrs.der).unwrap();
    assert_eq!(back, attrs);
    back.check(document, &signer).unwrap();
    assert_eq!(back.check(b"other bytes", &signer), Err(CadesError::DigestMismatch));
    assert_eq!(
        back.check(document, &std::fs::read(dir.join("tsa.der")).unwrap()),
        Err(CadesError::SigningCertificateMismatch)
    );

    let sig = card_sign(dir, &attrs);
    let ca = std::fs::read(dir.join("ca.der")).unwrap();
    let mut container = Container::assemble(&attrs, &sig, &signer, std::slice::from_ref(&ca), &[]).unwrap();
    std::fs::write(dir.join("sig.p7s"), container.to_der().unwrap()).unwrap();
    let verify = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "sig.p7s",
        "-content",
        "doc.json",
        "-CAfile",
        "ca.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ];
    let (ok, text) = openssl(dir, &verify);
    assert!(ok && text.contains("Verification successful"), "{text}");
    let (ok, text) = openssl(dir, &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig.p7s"]);
    assert!(ok, "{text}");
    for attr in ["contentType", "messageDigest", "signingTime", "id-smime-aa-signingCertificateV2"] {
        assert!(text.contains(attr), "{attr} in {text}");
    }
    // Other bytes: OpenSSL refuses too.
    std::fs::write(dir.join("doc.json"), b"{}").unwrap();
    let (ok, text) = openssl(dir, &verify);
    assert!(!ok, "{text}");
    std::fs::write(dir.join("doc.json"), document).unwrap();

    // B-T: a token from OpenSSL's TSA over the signature value.
    let mut nonce = [0x99u8; 16];
    let response = stamp(dir, &container.signature_value().unwrap(), &mut nonce);
    let imprint: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &sig).as_ref().try_into().unwrap();
    let token = tsp::read_response(&response, &imprint, &nonce, Some("1.3.6.1.4.1.99999.3161.1")).unwrap();
    assert!((token.gen_time - now()).abs() < 60, "genTime {}", token.gen_time);
    assert_eq!(token.tsa_cert, std::fs::read(dir.join("tsa.der")).unwrap());
    container.add_signature_timestamp(&token.der).unwrap();
    container.add_validation_data(&token.certs, &[]).unwrap();
    let p7s = container.to_der().unwrap();
    std::fs::write(dir.join("sig.p7s"), &p7s).unwrap();
    let (ok, text) = openssl(dir, &verify);
    assert!(ok && text.contains("Verification successful"), "unsigned attributes do not break it: {text}");
    let opened = hpki_cades::open(&p7s, document).unwrap();
    assert_eq!(opened.level(), "B-T");
    assert_eq!(opened.timestamps.len(), 1);
    assert_eq!(opened.signer_cert, signer);
    // And OpenSSL agrees the token stamps this signature value.
    std::fs::write(dir.join("token.der"), &opened.timestamps[0].der).unwrap();
    std::fs::write(dir.join("sigvalue.bin"), &opened.signature).unwrap();
    let (ok, text) =
        openssl(dir, &["ts", "-verify", "-token_in", "-in", "token.der", "-data", "sigvalue.bin", "-CAfile", "ca.pem"]);
    assert!(ok && text.contains("Verification: OK"), "{text}");

    // Another document under the same container fails at the digest.
    assert_eq!(hpki_cades::open(&p7s, b"{}").unwrap_err(), CadesError::DigestMismatch);
}

#[test]
fn a_tsa_answer_for_another_request_or_other_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pki(dir);
    let data = b"a signature value";
    let imprint: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().unwrap();
    let mut nonce = [7u8; 16];
    let response = stamp(dir, data, &mut nonce);
    tsp::read_response(&response, &imprint, &nonce, None).unwrap();
    let mut other = nonce;
    other[15] ^= 1;
    assert_eq!(tsp::read_response(&response, &imprint, &other, None), Err(TsaResponseError::WrongNonce));
    let mut wrong = imprint;
    wrong[0] ^= 1;
    assert_eq!(tsp::read_response(&response, &wrong, &nonce, None), Err(TsaResponseError::WrongImprint));
    assert!(matches!(
        tsp::read_response(&response, &imprint, &nonce, Some("1.2.3.4")),
        Err(TsaResponseError::WrongPolicy { .. })
    ));
    assert!(matches!(tsp::read_response(b"\x30\x00", &imprint, &nonce, None), Err(TsaResponseError::Malformed(_))));

    // A rejection (OpenSSL refuses a digest its config does not list).
    must(dir, &["ts", "-query", "-data", "tsa.cnf", "-sha512", "-out", "q5.tsq"]);
    let r = tsp::read_response(&reply(dir, "q5.tsq", "r5.tsr"), &imprint, &nonce, None);
    assert!(matches!(r, Err(TsaResponseError::Rejected { status: 2, .. })), "{r:?}");

    // A token whose TSTInfo was altered after signing: its signature fails.
    let token = tsp::read_response(&response, &imprint, &nonce, None).unwrap();
    let mut forged = token.der.clone();
    let at = forged.windows(32).position(|w| w == imprint).unwrap();
    forged[at] ^= 1;
    let e = TimeStampToken::from_der(&forged).unwrap_err();
    assert!(e.to_string().contains("messageDigest"), "{e}");

    // A signer certificate is not a TSA certificate (RFC 3161 §2.3).
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(&std::fs::read(dir.join("signer.der")).unwrap()).unwrap();
    assert!(tsp::check_time_stamping_eku(&cert).is_err());
    let cert = x509_cert::Certificate::from_der(&std::fs::read(dir.join("tsa.der")).unwrap()).unwrap();
    tsp::check_time_stamping_eku(&cert).unwrap();
}

/// A token from OpenSSL's TSA over `data`, checked as the gateway does.
fn checked_stamp(dir: &Path, data: &[u8], seed: u8) -> hpki_cades::TimeStampToken {
    let mut nonce = [seed; 16];
    let response = stamp(dir, data, &mut nonce);
    let imprint: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, data).as_ref().try_into().expect("test set-up");
    tsp::read_response(&response, &imprint, &nonce, None).expect("test set-up")
}

#[test]
fn archive_time_stamps_cover_the_signature_its_time_stamps_and_the_validation_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pki(dir);
    let document = br#"{"content":{"note":"archive"},"domain":"HPKI-GATEWAY-CONFIRM-V2"}"#;
    let signer = std::fs::read(dir.join("signer.der")).unwrap();
    let attrs = SignedAttributes::build(document, &signer, now()).unwrap();
    let sig = card_sign(dir, &attrs);
    let ca = std::fs::read(dir.join("ca.der")).unwrap();
    let tsa = std::fs::read(dir.join("tsa.der")).unwrap();
    let mut container = Container::assemble(&attrs, &sig, &signer, std::slice::from_ref(&ca), &[]).unwrap();
    let token = checked_stamp(dir, &sig, 0x41);
    container.add_signature_timestamp(&token.der).unwrap();
    container.add_validation_data(std::slice::from_ref(&tsa), &[]).unwrap();

    // The first archive time-stamp, as at confirm.
    let input = container.archive_input(&attrs.message_digest).unwrap();
    let ats = checked_stamp(dir, &input.input, 0x42);
    container.add_archive_timestamp(&ats.der, &input).unwrap();
    let p7s = container.to_der().unwrap();
    let opened = hpki_cades::open(&p7s, document).unwrap();
    assert_eq!(opened.archive_timestamps.len(), 1);
    assert_eq!(opened.time_stamp_chain().count(), 2);
    // The index inside the token does not break the TSA's signature:
    // OpenSSL checks the stored token against the input it was made over.
    std::fs::write(dir.join("ats.der"), &container.archive_timestamps().unwrap()[0]).unwrap();
    std::fs::write(dir.join("ats-input.bin"), &input.input).unwrap();
    let (ok, text) =
        openssl(dir, &["ts", "-verify", "-token_in", "-in", "ats.der", "-data", "ats-input.bin", "-CAfile", "ca.pem"]);
    assert!(ok && text.contains("Verification: OK"), "{text}");

    // Validation data added after an archive time-stamp leaves it intact
    // (the renewal adds the previous TSA's fresh CRLs this way).
    let mut grown = Container::from_der(&p7s).unwrap();
    let before = grown.certificates().unwrap().len();
    let key = ["-key", "ca.key", "-subj", "/CN=Later CA", "-days", "30", "-outform", "DER", "-out", "later.der"];
    must(dir, &[&["req", "-new", "-x509"], &key[..]].concat());
    grown.add_validation_data(&[std::fs::read(dir.join("later.der")).unwrap()], &[]).unwrap();
    assert_eq!(grown.certificates().unwrap().len(), before + 1);
    hpki_cades::open(&grown.to_der().unwrap(), document).unwrap();

    // A renewal: a second archive time-stamp covers the first.
    let input2 = grown.archive_input(&attrs.message_digest).unwrap();
    let ats2 = checked_stamp(dir, &input2.input, 0x43);
    grown.add_archive_timestamp(&ats2.der, &input2).unwrap();
    let renewed = grown.to_der().unwrap();
    let opened = hpki_cades::open(&renewed, document).unwrap();
    assert_eq!(opened.archive_timestamps.len(), 2);
    assert!(opened.archive_timestamps[0].gen_time <= opened.archive_timestamps[1].gen_time);

    // Each link fails on its own: another document,
    let e = hpki_cades::open(&renewed, b"{}").unwrap_err();
    assert_eq!(e, CadesError::DigestMismatch);
    // a certificate the first archive time-stamp covered taken away,
    let e = hpki_cades::open(&without_certificate(&p7s, &tsa), document).unwrap_err();
    assert!(matches!(&e, CadesError::Archive(m) if m.contains("certificate")), "{e}");
    // an archive time-stamp over another container,
    let mut other = Container::assemble(&attrs, &sig, &signer, std::slice::from_ref(&ca), &[]).unwrap();
    other.add_signature_timestamp(&token.der).unwrap();
    other.add_validation_data(std::slice::from_ref(&tsa), &[]).unwrap();
    let other_input = other.archive_input(&[7u8; 32]).unwrap();
    let wrong = checked_stamp(dir, &other_input.input, 0x44);
    other.add_archive_timestamp(&wrong.der, &other_input).unwrap();
    let e = hpki_cades::open(&other.to_der().unwrap(), document).unwrap_err();
    assert!(matches!(&e, CadesError::Archive(m) if m.contains("imprint")), "{e}");
    // and the same token twice is refused when it is added.
    let mut twice = Container::from_der(&p7s).unwrap();
    assert!(twice.add_archive_timestamp(&ats.der, &input).is_err());
}

/// `p7s` with certificate `cert` taken out of SignedData.certificates.
fn without_certificate(p7s: &[u8], cert: &[u8]) -> Vec<u8> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{CertificateSet, SignedData};
    use der::{Any, Decode, Encode};
    let mut info = ContentInfo::from_der(p7s).expect("test set-up");
    let mut sd: SignedData = info.content.decode_as().expect("test set-up");
    let kept: Vec<CertificateChoices> = sd
        .certificates
        .take()
        .expect("test set-up")
        .0
        .into_vec()
        .into_iter()
        .filter(|c| c.to_der().expect("test set-up") != cert)
        .collect();
    sd.certificates = Some(CertificateSet(kept.try_into().expect("test set-up")));
    info.content = Any::encode_from(&sd).expect("test set-up");
    info.to_der().expect("test set-up")
}

#[test]
fn a_rejection_with_details_the_parser_does_not_take_is_still_a_rejection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    pki(dir);
    // A serial file OpenSSL cannot read ("short line"): it answers with a
    // rejection carrying a failInfo the x509-tsp types refuse.
    std::fs::write(dir.join("tsaserial"), "1\n").unwrap();
    let mut nonce = [0x51u8; 16];
    let response = stamp(dir, b"data", &mut nonce);
    use der::Decode;
    assert!(
        x509_tsp::TimeStampResp::from_der(&response).is_err(),
        "x509-tsp reads this rejection now: tsp::status_only is no longer needed"
    );
    let imprint: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, b"data").as_ref().try_into().unwrap();
    let err = tsp::read_response(&response, &imprint, &nonce, None).unwrap_err();
    assert!(matches!(err, TsaResponseError::Rejected { status: 2, .. }), "{err}");
    // And bytes that are no answer at all stay malformed.
    let err = tsp::read_response(b"\x30\x03\x02\x01", &imprint, &nonce, None).unwrap_err();
    assert!(matches!(err, TsaResponseError::Malformed(_)), "{err}");
}
