//! The shapes of the real MHLW / MEDIS HPKI hierarchy, made by OpenSSL
//! (`openssl req` and `openssl ca` with `tests/openssl/hpki-shapes.cnf`),
//! validated by the library and by `hpki-certs verify`: a root whose
//! authority revocation list carries a critical Issuing Distribution Point
//! (onlyContainsCACerts), issuing-CA CRLs scoped to a distribution point, a
//! root key rollover with NewWithOld / OldWithNew link certificates, two
//! intermediates of one name of which one expired, and an intermediate
//! renewed with the same key.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use hpki_profile::{
    AcceptedPolicies, DEFAULT_MAX_INTERMEDIATES, Grant, Profession, Purpose, Refusal, Revocation, TrustScope,
    Validated, Validator, ValidatorConfig,
};
use serde_json::Value;

const EE_DP: &str = "http://shapes.invalid/sign-ca.crl";
const ROOT_SUBJECT: &str = "/C=JP/O=Shapes Ministry of Health/OU=Shapes HPKI Root CA";
const CA_SUBJECT: &str = "/C=JP/O=Shapes Medis/CN=HPKI-01-ShapesSignCA-forNonRepudiation";
/// Validity of everything that is meant to be valid now.
const FROM: &str = "20250101000000Z";
const UNTIL: &str = "20350101000000Z";

/// A scratch directory where OpenSSL acts as each CA.
struct Shapes {
    tmp: tempfile::TempDir,
    config: PathBuf,
}

impl Shapes {
    fn new() -> Result<Shapes> {
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl/hpki-shapes.cnf");
        ensure!(config.exists(), "{} is missing", config.display());
        Ok(Shapes { tmp: tempfile::tempdir()?, config })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs openssl as CA `ca` (its directory, or none), with `idp` as the
    /// distribution point a CRL covers.
    fn openssl(&self, ca: &str, idp: &str, args: &[&str]) -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.tmp.path())
            .env("CA_DIR", self.path(ca))
            .env("EE_CRL_DP", EE_DP)
            .env("IDP_DP", idp)
            .output()
            .context("openssl runs")?;
        ensure!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    fn key(&self, name: &str) -> Result<String> {
        let file = format!("{name}.key");
        self.openssl("", "", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &file])?;
        Ok(file)
    }

    /// A CA directory for `openssl ca` with its certificate and key.
    fn ca_dir(&self, name: &str, cert: &str, key: &str) -> Result<()> {
        let dir = self.path(name);
        std::fs::create_dir_all(dir.join("issued"))?;
        std::fs::write(dir.join("index.txt"), "")?;
        std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n")?;
        std::fs::write(dir.join("serial"), "1000\n")?;
        std::fs::write(dir.join("crlnumber"), "01\n")?;
        std::fs::copy(self.path(cert), dir.join("cert.pem"))?;
        std::fs::copy(self.path(key), dir.join("key.pem"))?;
        Ok(())
    }

    /// A self-signed root: `openssl req -x509`.
    fn root(&self, name: &str, key: &str) -> Result<()> {
        let cert = format!("{name}.pem");
        let cfg = self.config.display().to_string();
        self.openssl(
            "",
            "",
            &["req", "-x509", "-new", "-key", key, "-subj", ROOT_SUBJECT, "-days", "7300", "-config", &cfg]
                .into_iter()
                .chain(["-extensions", "root_ext", "-sha256", "-out", &cert])
                .collect::<Vec<_>>(),
        )?;
        self.ca_dir(name, &cert, key)
    }

    /// `openssl ca` as `ca` certifies `subject` with `key` under the
    /// extensions `ext`, valid `from`..`until`; the certificate is `out.pem`.
    #[allow(clippy::too_many_arguments)]
    fn issue(&self, ca: &str, subject: &str, key: &str, ext: &str, from: &str, until: &str, out: &str) -> Result<()> {
        let cfg = self.config.display().to_string();
        let csr = format!("{out}.csr");
        self.openssl("", "", &["req", "-new", "-key", key, "-subj", subject, "-config", &cfg, "-out", &csr])?;
        let pem = format!("{out}.pem");
        self.openssl(
            ca,
            "",
            &["ca", "-batch", "-config", &cfg, "-in", &csr, "-out", &pem, "-extensions", ext, "-notext"]
                .into_iter()
                .chain(["-startdate", from, "-enddate", until, "-preserveDN"])
                .collect::<Vec<_>>(),
        )
    }

    /// `openssl ca -gencrl` for `ca` with the CRL extensions `ext`, covering
    /// `idp`; the CRL is `out.crl` (PEM).
    fn crl(&self, ca: &str, ext: &str, idp: &str, out: &str) -> Result<()> {
        let cfg = self.config.display().to_string();
        let file = format!("{out}.crl");
        self.openssl(ca, idp, &["ca", "-gencrl", "-config", &cfg, "-crlexts", ext, "-out", &file])
    }

    fn revoke(&self, ca: &str, cert: &str) -> Result<()> {
        let cfg = self.config.display().to_string();
        let file = format!("{cert}.pem");
        self.openssl(ca, "", &["ca", "-config", &cfg, "-revoke", &file, "-crl_reason", "keyCompromise"])
    }

    /// DER of a PEM file of this directory.
    fn der(&self, file: &str) -> Result<Vec<u8>> {
        let pem = std::fs::read(self.path(file))?;
        let (_, p) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        Ok(p.contents)
    }

    /// The library, trusting `anchors` for licensed professionals, with
    /// revocation required, for a doctor's signature certificate now.
    fn validate(
        &self,
        anchors: &[&str],
        intermediates: &[&str],
        crls: &[&str],
        leaf: &str,
    ) -> Result<Result<Validated, Refusal>> {
        let anchors = anchors.iter().map(|a| self.der(a)).collect::<Result<Vec<_>>>()?;
        let v = Validator::new(ValidatorConfig {
            scopes: anchors
                .iter()
                .map(|a| TrustScope { ca: a.clone(), grant: Grant::Licensed { professions: None } })
                .collect(),
            anchors,
            intermediates: intermediates.iter().map(|c| self.der(c)).collect::<Result<_>>()?,
            crls: crls.iter().map(|c| self.der(c)).collect::<Result<_>>()?,
            policies: AcceptedPolicies::hpki(),
            revocation: Revocation::Required,
            max_intermediates: DEFAULT_MAX_INTERMEDIATES,
        })?;
        Ok(v.validate(&self.der(leaf)?, &[], Purpose::Signature, time::OffsetDateTime::now_utc().unix_timestamp()))
    }
}

/// The root, its ARL (critical IDP, onlyContainsCACerts), the signature CA,
/// its CRL scoped to `EE_DP`, and a doctor's signature certificate.
fn medis_like() -> Result<Shapes> {
    let s = Shapes::new()?;
    let root_key = s.key("root")?;
    s.root("root", &root_key)?;
    let ca_key = s.key("ca")?;
    s.issue("root", CA_SUBJECT, &ca_key, "ca_ext", FROM, UNTIL, "ca")?;
    s.ca_dir("ca", "ca.pem", &ca_key)?;
    let ee_key = s.key("doctor")?;
    let subject = "/C=JP/O=Shapes Clinic/CN=Shapes Taro/serialNumber=MD-SHAPES-1";
    s.issue("ca", subject, &ee_key, "ee_sign_ext", FROM, UNTIL, "doctor")?;
    s.crl("root", "arl_crl_ext", EE_DP, "arl")?;
    s.crl("ca", "ca_crl_ext", EE_DP, "ca")?;
    Ok(s)
}

#[test]
fn a_root_arl_with_a_critical_idp_and_a_scoped_ca_crl_validate_a_doctor() -> Result<()> {
    let s = medis_like()?;
    let v =
        s.validate(&["root.pem"], &["ca.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?.map_err(anyhow::Error::msg)?;
    assert_eq!(v.holder.profession(), Some(Profession::Doctor));
    assert_eq!(v.holder.serial_number.as_deref(), Some("MD-SHAPES-1"));
    assert_eq!(v.chain.len(), 3);
    // The evidence names each CRL used and its scope.
    assert_eq!(v.revocation.len(), 2, "{:?}", v.revocation);
    assert!(v.revocation[0].scope.contains(EE_DP), "{:?}", v.revocation[0]);
    assert!(v.revocation[1].scope.contains("authority revocation list"), "{:?}", v.revocation[1]);
    assert!(v.revocation.iter().all(|e| e.crl_number.is_some()));

    // The same through the command line, as IT staff run it.
    let out = Command::new(testbed::bin_path("hpki-certs")?)
        .args(["verify", "--json", "--purpose", "sign", "--anchor"])
        .arg(s.path("root.pem"))
        .arg("--intermediate")
        .arg(s.path("ca.pem"))
        .arg("--crl")
        .arg(s.path("arl.crl"))
        .arg("--crl")
        .arg(s.path("ca.crl"))
        .arg(s.path("doctor.pem"))
        .output()?;
    let json: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!((out.status.code(), &json["valid"]), (Some(0), &Value::Bool(true)), "{json}");
    assert_eq!(json["profession"], "doctor");
    Ok(())
}

/// extendedKeyUsage restricts what a key may do (RFC 5280 §4.2.1.12):
/// HPKI cards carry none, but a card certificate whose EKU does not name a
/// purpose of the use is refused for it, and one that does is accepted.
#[test]
fn a_signature_certificate_whose_extended_key_usage_excludes_signing_is_refused() -> Result<()> {
    let s = medis_like()?;
    let key = s.key("eku")?;
    let subject = "/C=JP/O=Shapes Clinic/CN=Shapes Jiro/serialNumber=MD-SHAPES-2";
    s.issue("ca", subject, &key, "ee_sign_server_eku_ext", FROM, UNTIL, "server-eku")?;
    s.issue("ca", subject, &key, "ee_sign_docsign_eku_ext", FROM, UNTIL, "docsign-eku")?;
    s.crl("ca", "ca_crl_ext", EE_DP, "ca")?;
    let r = s.validate(&["root.pem"], &["ca.pem"], &["arl.crl", "ca.crl"], "server-eku.pem")?;
    let err = r.err().context("serverAuth only must not sign a confirmation")?;
    assert_eq!(err.code(), "wrong_key_usage", "{err}");
    assert!(err.to_string().contains("extendedKeyUsage"), "{err}");
    let ok = s.validate(&["root.pem"], &["ca.pem"], &["arl.crl", "ca.crl"], "docsign-eku.pem")?;
    assert!(ok.is_ok(), "{:?}", ok.err());
    Ok(())
}

#[test]
fn a_revoked_doctor_is_refused_under_the_same_shapes() -> Result<()> {
    let s = medis_like()?;
    s.revoke("ca", "doctor")?;
    s.crl("ca", "ca_crl_ext", EE_DP, "ca")?;
    let r = s.validate(&["root.pem"], &["ca.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?;
    let err = r.err().context("a revoked certificate must not validate")?;
    assert_eq!(err.code(), "revoked", "{err}");
    assert!(err.to_string().contains("keyCompromise"), "{err}");
    Ok(())
}

#[test]
fn a_crl_whose_idp_does_not_cover_the_certificate_is_no_revocation_information() -> Result<()> {
    let s = medis_like()?;
    // The CA's CRL for another distribution point: it says nothing of the doctor.
    s.crl("ca", "ca_crl_ext", "http://shapes.invalid/other-partition.crl", "ca")?;
    let err = s.validate(&["root.pem"], &["ca.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?.err().context("refused")?;
    assert_eq!(err.code(), "no_revocation_info", "{err}");
    assert!(err.to_string().contains("scope"), "{err}");
    // Nor does the root's ARL speak for the CA's end entities.
    let err = s.validate(&["root.pem"], &["ca.pem"], &["arl.crl"], "doctor.pem")?.err().context("refused")?;
    assert_eq!(err.code(), "no_revocation_info", "{err}");
    Ok(())
}

/// A root renews its key: the old and the new root (same name), the link
/// certificates NewWithOld (new key, signed by the old) and OldWithNew (old
/// key, signed by the new), an issuing CA under each key, a doctor under
/// each CA. Each doctor validates with either root as the only anchor.
#[test]
fn after_a_root_key_rollover_old_and_new_doctors_validate_against_either_root() -> Result<()> {
    let s = Shapes::new()?;
    let old_key = s.key("old-root")?;
    s.root("old-root", &old_key)?;
    let new_key = s.key("new-root")?;
    s.root("new-root", &new_key)?;
    s.issue("old-root", ROOT_SUBJECT, &new_key, "link_ext", FROM, UNTIL, "new-with-old")?;
    s.issue("new-root", ROOT_SUBJECT, &old_key, "link_ext", FROM, UNTIL, "old-with-new")?;
    for (ca, root) in [("old-ca", "old-root"), ("new-ca", "new-root")] {
        let key = s.key(ca)?;
        s.issue(root, CA_SUBJECT, &key, "ca_ext", FROM, UNTIL, ca)?;
        s.ca_dir(ca, &format!("{ca}.pem"), &key)?;
        let ee_key = s.key(&format!("{ca}-doctor"))?;
        let subject = format!("/C=JP/O=Shapes Clinic/CN=Doctor of {ca}/serialNumber=MD-{ca}");
        s.issue(ca, &subject, &ee_key, "ee_sign_ext", FROM, UNTIL, &format!("{ca}-doctor"))?;
        s.crl(ca, "ca_crl_ext", EE_DP, ca)?;
    }
    // Each root key signs an ARL; the link certificates are CA certificates
    // issued by them, so the ARLs speak for them.
    s.crl("old-root", "arl_crl_ext", EE_DP, "old-arl")?;
    s.crl("new-root", "arl_crl_ext", EE_DP, "new-arl")?;
    let intermediates = ["old-ca.pem", "new-ca.pem", "new-with-old.pem", "old-with-new.pem"];
    let crls = ["old-arl.crl", "new-arl.crl", "old-ca.crl", "new-ca.crl"];
    for anchor in ["old-root.pem", "new-root.pem"] {
        for doctor in ["old-ca-doctor.pem", "new-ca-doctor.pem"] {
            let v = s
                .validate(&[anchor], &intermediates, &crls, doctor)?
                .map_err(|e| anyhow::anyhow!("{doctor} against {anchor}: {e}"))?;
            assert_eq!(v.holder.profession(), Some(Profession::Doctor));
            let crossing = (anchor == "old-root.pem") == (doctor == "new-ca-doctor.pem");
            assert_eq!(v.chain.len(), if crossing { 4 } else { 3 }, "{doctor} against {anchor}: {:?}", v.chain);
        }
    }
    // Without the link certificates, only the matching root works.
    let err = s
        .validate(&["old-root.pem"], &["old-ca.pem", "new-ca.pem"], &crls, "new-ca-doctor.pem")?
        .err()
        .context("no path without the link")?;
    assert_eq!(err.code(), "bad_signature", "{err}");
    Ok(())
}

/// Two certificates of the signature CA, same name and key: one expired in
/// 2021, one current. The expired one is offered first; the path goes
/// through the other.
#[test]
fn of_two_intermediates_with_one_name_the_expired_one_is_passed_over() -> Result<()> {
    let s = medis_like()?;
    s.issue("root", CA_SUBJECT, "ca.key", "ca_ext", "20190101000000Z", "20210101000000Z", "ca-expired")?;
    let v = s
        .validate(&["root.pem"], &["ca-expired.pem", "ca.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(v.chain.len(), 3);
    // Offered alone, the expired one says so.
    let err = s
        .validate(&["root.pem"], &["ca-expired.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?
        .err()
        .context("refused")?;
    assert_eq!(err.code(), "expired", "{err}");
    Ok(())
}

/// The signature CA's certificate renewed with the same key: a doctor
/// certified under the first certificate validates with only the renewal.
#[test]
fn an_intermediate_renewed_with_the_same_key_still_validates_its_end_entities() -> Result<()> {
    let s = medis_like()?;
    s.issue("root", CA_SUBJECT, "ca.key", "ca_ext", "20260101000000Z", "20360101000000Z", "ca-renewed")?;
    let v = s
        .validate(&["root.pem"], &["ca-renewed.pem"], &["arl.crl", "ca.crl"], "doctor.pem")?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(v.holder.profession(), Some(Profession::Doctor));
    Ok(())
}
