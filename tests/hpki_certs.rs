//! `hpki-certs` as IT staff use it: the command-line contract, bad input
//! that changes nothing, and every profession's card through the real
//! pcscd, read back and validated.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Result;
use hpki_card::{Application, PcscContext};
use serde_json::Value;
use testbed::{CardProcess, PrivatePcscd, bin_path};

struct Ca {
    tmp: tempfile::TempDir,
}

impl Ca {
    fn new() -> Result<Ca> {
        let ca = Ca { tmp: tempfile::tempdir()? };
        let out = ca.run(&["ca", "init", "--dir", &ca.dir_str()])?;
        assert!(out.status.success(), "{}", stderr(&out));
        Ok(ca)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn dir(&self) -> PathBuf {
        self.path("ca")
    }

    fn dir_str(&self) -> String {
        self.dir().display().to_string()
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin_path("hpki-certs")?).args(args).env("HPKI_OPERATOR", "test-operator").output()?)
    }

    fn issue(&self, profession: &str, out: &Path, extra: &[&str]) -> Result<Output> {
        self.issue_with_pin(profession, out, "4826", extra)
    }

    fn issue_with_pin(&self, profession: &str, out: &Path, pin: &str, extra: &[&str]) -> Result<Output> {
        let dir = self.dir_str();
        let out = out.display().to_string();
        let mut args = vec![
            "card",
            "issue",
            "--dir",
            &dir,
            "--profession",
            profession,
            "--name",
            "Yamada Taro",
            "--name-kanji",
            "山田太郎",
            "--institution",
            "Kanazawa Clinic",
            "--license-no",
            "123456",
            "--verified-by",
            "Sato (IT desk)",
            "--pin",
            pin,
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `terminal issue --json` for a terminal of Kanazawa Clinic into `out`.
    fn issue_terminal(&self, name: &str, out: &Path) -> Result<Output> {
        let (dir, out) = (self.dir_str(), out.display().to_string());
        self.run(&[
            "terminal",
            "issue",
            "--dir",
            &dir,
            "--institution",
            "Kanazawa Clinic",
            "--name",
            name,
            "--out",
            &out,
            "--json",
        ])
    }

    fn publish(&self) -> Result<PathBuf> {
        let out = self.path("crl");
        let o = self.run(&["crl", "publish", "--dir", &self.dir_str(), "--out", &out.display().to_string()])?;
        assert!(o.status.success(), "{}", stderr(&o));
        Ok(out)
    }

    /// `verify --json` with the directory's root and every CRL.
    fn verify(&self, cert: &Path, purpose: &str) -> Result<(Output, Value)> {
        let crls = self.publish()?;
        let mut args: Vec<String> = ["verify", "--json", "--purpose", purpose, "--dir", &self.dir_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for name in ["root", "hpki-auth", "hpki-sign", "institution", "terminal", "service"] {
            args.push("--crl".into());
            args.push(crls.join(format!("{name}.crl")).display().to_string());
        }
        args.push(cert.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&refs)?;
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok((out, json))
    }

    /// State and ledger, to show that a refused command changed nothing.
    fn snapshot(&self) -> Result<(String, String)> {
        Ok((
            std::fs::read_to_string(self.dir().join("state.json"))?,
            std::fs::read_to_string(self.dir().join("ledger.jsonl"))?,
        ))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes the DER certificate of `app` from a card image to a file.
fn extract(image: &Path, app: &str, out: &Path) -> Result<()> {
    let img = virtual_card::CardImage::load(image)?;
    let der = match app {
        "auth" => img.authentication.certificate,
        _ => img.signature.certificate,
    };
    std::fs::write(out, der)?;
    Ok(())
}

/// Inserts the card image into a private pcscd's reader and reads both
/// certificates back through PC/SC.
fn read_through_pcscd(image: &Path) -> Result<[Vec<u8>; 2]> {
    let pcscd = PrivatePcscd::start()?;
    pcscd.use_in_this_process()?;
    let card = CardProcess::start(&pcscd, 0, image)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(card.reader(), Duration::from_secs(5))?;
    let mut c = ctx.connect(card.reader())?;
    Ok([c.read_certificate(Application::Authentication)?, c.read_certificate(Application::Signature)?])
}

/// Issue → card image → read through the virtual card and the real pcscd →
/// verify → the right profession.
fn round_trip(profession: &str, slug: &str) -> Result<()> {
    let ca = Ca::new()?;
    let image = ca.path("card.json");
    let o = ca.issue(profession, &image, &[])?;
    assert!(o.status.success(), "{}", stderr(&o));

    let [auth, sign] = read_through_pcscd(&image)?;
    for (der, purpose) in [(auth, "auth"), (sign, "sign")] {
        let path = ca.path(&format!("{purpose}.der"));
        std::fs::write(&path, &der)?;
        let (out, json) = ca.verify(&path, purpose)?;
        assert!(out.status.success(), "{purpose}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(json["valid"], true);
        assert_eq!(json["profession"], slug, "{json}");
        assert_eq!(json["institution"], "Kanazawa Clinic");
        assert_eq!(json["reason"], Value::Null);
    }
    Ok(())
}

#[test]
fn doctor_card_round_trips_through_pcscd_and_validates() -> Result<()> {
    round_trip("doctor", "doctor")
}

#[test]
fn dentist_card_round_trips_through_pcscd_and_validates() -> Result<()> {
    round_trip("dentist", "dentist")
}

#[test]
fn pharmacist_card_round_trips_through_pcscd_and_validates() -> Result<()> {
    round_trip("Pharmacist", "pharmacist")
}

#[test]
fn nurse_card_round_trips_through_pcscd_and_validates() -> Result<()> {
    round_trip("看護師", "nurse")
}

#[test]
fn dietitian_card_round_trips_through_pcscd_and_validates() -> Result<()> {
    round_trip("dietitian", "dietitian")
}

#[test]
fn assistant_card_round_trips_through_pcscd_and_names_the_institution() -> Result<()> {
    let ca = Ca::new()?;
    let image = ca.path("assistant.json");
    let o = ca.run(&[
        "card",
        "issue-assistant",
        "--dir",
        &ca.dir_str(),
        "--institution",
        "Kanazawa Clinic",
        "--name",
        "Suzuki Hanako",
        "--staff-id",
        "S-0042",
        "--pin",
        "7391",
        "--variant",
        "jahis",
        "--out",
        &image.display().to_string(),
    ])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let [der, _] = read_through_pcscd(&image)?;
    let path = ca.path("assistant.der");
    std::fs::write(&path, der)?;
    let (out, json) = ca.verify(&path, "auth")?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["profession"], Value::Null);
    assert_eq!(json["institution"], "Kanazawa Clinic");
    let inspect = ca.run(&["inspect", "--json", &path.display().to_string()])?;
    let info: Value = serde_json::from_slice(&inspect.stdout)?;
    assert_eq!(info["kind"], "assistant");
    assert_eq!(info["serial_number"], "S-0042");
    Ok(())
}

#[test]
fn issuance_is_recorded_in_the_ledger_with_who_checked_the_licence() -> Result<()> {
    let ca = Ca::new()?;
    let o = ca.issue("nurse", &ca.path("nurse.json"), &[])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let ledger = ca.run(&["ledger", "--json", "--dir", &ca.dir_str()])?;
    let entries: Value = serde_json::from_slice(&ledger.stdout)?;
    let issue = &entries[0];
    assert_eq!(issue["action"], "card-issue");
    assert_eq!(issue["verified_by"], "Sato (IT desk)");
    assert_eq!(issue["license_no"], "123456");
    assert_eq!(issue["profession"], "nurse");
    assert_eq!(issue["operator"], "test-operator");
    assert_eq!(issue["serials"].as_array().map(Vec::len), Some(2));
    assert_eq!(issue["person_id"], "RN-123456");
    Ok(())
}

#[test]
fn ca_keys_are_private_and_init_refuses_to_overwrite() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let ca = Ca::new()?;
    for role in ["root", "hpki-auth", "hpki-sign", "institution", "terminal", "service"] {
        let mode = std::fs::metadata(ca.dir().join(role).join("key.pem"))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{role} key mode {mode:o}");
    }
    let before = ca.snapshot()?;
    let o = ca.run(&["ca", "init", "--dir", &ca.dir_str()])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds a CA"), "{}", stderr(&o));
    assert_eq!(ca.snapshot()?, before);
    Ok(())
}

#[test]
fn bad_card_requests_are_refused_specifically_and_change_nothing() -> Result<()> {
    let ca = Ca::new()?;
    let before = ca.snapshot()?;
    let out = ca.path("card.json");
    let cases: [(&str, &str, &[&str], &str); 6] = [
        ("surgeon", "4826", &[], "unknown profession \"surgeon\""),
        ("doctor", "1234", &[], "weak PIN: the digits are a sequence"),
        ("doctor", "12", &[], "too short"),
        ("doctor", "x123456", &[], "licence number"),
        ("doctor", "4826", &["--retry-limit", "0"], "--retry-limit"),
        ("doctor", "4826", &["--variant", "acme"], "unknown card variant"),
    ];
    for (profession, pin, extra, expected) in cases {
        let o = ca.issue_with_pin(profession, &out, pin, extra)?;
        assert!(!o.status.success(), "{profession} {pin} {extra:?} was accepted");
        assert!(stderr(&o).contains(expected), "{profession} {pin} {extra:?}: {}", stderr(&o));
        assert!(!out.exists(), "no card image was written");
        assert_eq!(ca.snapshot()?, before, "state and ledger unchanged");
    }
    // An image that exists is never overwritten.
    std::fs::write(&out, "keep me")?;
    let o = ca.issue("doctor", &out, &[])?;
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out)?, "keep me");
    assert_eq!(ca.snapshot()?, before);
    Ok(())
}

#[test]
fn missing_or_corrupt_ca_directory_is_a_clear_error() -> Result<()> {
    let ca = Ca::new()?;
    let missing = ca.path("nope");
    let o = ca.run(&["ledger", "--dir", &missing.display().to_string()])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not a CA directory"), "{}", stderr(&o));

    std::fs::write(ca.dir().join("state.json"), "{ broken")?;
    let o = ca.issue("doctor", &ca.path("x.json"), &[])?;
    assert!(stderr(&o).contains("state.json is corrupt"), "{}", stderr(&o));
    assert!(!ca.path("x.json").exists());
    Ok(())
}

#[test]
fn revoked_card_fails_verify_with_the_reason_and_revoking_twice_is_refused() -> Result<()> {
    let ca = Ca::new()?;
    let image = ca.path("doc.json");
    assert!(ca.issue("doctor", &image, &[])?.status.success());
    let cert = ca.path("auth.der");
    extract(&image, "auth", &cert)?;
    let (ok, json) = ca.verify(&cert, "auth")?;
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(json["valid"], true);

    let inspect: Value = serde_json::from_slice(&ca.run(&["inspect", "--json", &cert.display().to_string()])?.stdout)?;
    let serial = inspect["certificate_serial"].as_str().unwrap_or_default().to_lowercase();
    let o = ca.run(&["revoke", "--dir", &ca.dir_str(), "--serial", &serial, "--reason", "key-compromise"])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let (refused, json) = ca.verify(&cert, "auth")?;
    assert_eq!(refused.status.code(), Some(1), "refused is exit 1");
    assert_eq!(json["valid"], false);
    assert_eq!(json["code"], "revoked");
    assert!(json["reason"].as_str().is_some_and(|r| r.contains("keyCompromise")), "{json}");
    assert_eq!(json["profession"], "doctor", "the holder is still reported");

    let o = ca.run(&["revoke", "--dir", &ca.dir_str(), "--serial", &serial, "--reason", "superseded"])?;
    assert!(stderr(&o).contains("already revoked"), "{}", stderr(&o));
    let o = ca.run(&["revoke", "--dir", &ca.dir_str(), "--serial", "DEADBEEF", "--reason", "superseded"])?;
    assert!(stderr(&o).contains("no certificate with serial DEADBEEF"), "{}", stderr(&o));
    let o = ca.run(&["revoke", "--dir", &ca.dir_str(), "--serial", &serial, "--reason", "bored"])?;
    assert!(stderr(&o).contains("unknown revocation reason"), "{}", stderr(&o));
    Ok(())
}

#[test]
fn verify_without_crls_fails_closed_and_no_revocation_is_explicit() -> Result<()> {
    let ca = Ca::new()?;
    let image = ca.path("doc.json");
    assert!(ca.issue("pharmacist", &image, &[])?.status.success());
    let cert = ca.path("sign.der");
    extract(&image, "sign", &cert)?;
    let c = cert.display().to_string();
    let o = ca.run(&["verify", "--json", "--purpose", "sign", "--dir", &ca.dir_str(), &c])?;
    let json: Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json["code"], "no_revocation_info");
    let o = ca.run(&["verify", "--purpose", "sign", "--no-revocation", "--dir", &ca.dir_str(), &c])?;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("revocation NOT checked"));
    // Wrong purpose, a time in the future, and a file that is no certificate.
    let o = ca.run(&["verify", "--json", "--purpose", "auth", "--no-revocation", "--dir", &ca.dir_str(), &c])?;
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout)?["code"], "wrong_key_usage");
    let o = ca.run(&[
        "verify",
        "--json",
        "--no-revocation",
        "--purpose",
        "sign",
        "--at",
        "2040-01-01T00:00:00Z",
        "--dir",
        &ca.dir_str(),
        &c,
    ])?;
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout)?["code"], "expired");
    let o = ca.run(&["verify", "--dir", &ca.dir_str(), &ca.dir().join("state.json").display().to_string()])?;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
    Ok(())
}

#[test]
fn terminal_credentials_are_issued_renewed_and_private() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let ca = Ca::new()?;
    let t1 = ca.path("t1");
    let o = ca.issue_terminal("reception-1", &t1)?;
    assert!(o.status.success(), "{}", stderr(&o));
    let first: Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(std::fs::metadata(t1.join("terminal.key"))?.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(t1.join("ca-chain.pem"))?.matches("BEGIN CERTIFICATE").count() == 2);
    let not_after = time::OffsetDateTime::parse(
        first["not_after"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )?;
    let days = (not_after - time::OffsetDateTime::now_utc()).whole_days();
    assert!((364..=365).contains(&days), "default validity one year, got {days} days");

    let t2 = ca.path("t2");
    let o = ca.run(&[
        "terminal",
        "renew",
        "--dir",
        &ca.dir_str(),
        "--cert",
        &t1.join("terminal.pem").display().to_string(),
        "--out",
        &t2.display().to_string(),
        "--json",
    ])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let second: Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(second["subject"], first["subject"]);
    assert_ne!(second["serial"], first["serial"]);
    assert_ne!(std::fs::read(t1.join("terminal.key"))?, std::fs::read(t2.join("terminal.key"))?, "a new key");
    // Refuses to write into a directory that holds files.
    let o = ca.run(&[
        "terminal",
        "issue",
        "--dir",
        &ca.dir_str(),
        "--institution",
        "X",
        "--name",
        "y",
        "--out",
        &t1.display().to_string(),
    ])?;
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    Ok(())
}

#[test]
fn batch_reports_a_bad_row_by_line_number_and_issues_the_rest() -> Result<()> {
    let ca = Ca::new()?;
    let csv = ca.path("cards.csv");
    std::fs::write(
        &csv,
        "kind,profession,name,institution,license_no,staff_id,verified_by,pin\n\
         licensed,doctor,Ito Ken,Kanazawa Clinic,1001,,Sato,5820\n\
         licensed,surgeon,Bad Profession,Kanazawa Clinic,1002,,Sato,5821\n\
         assistant,,Kato Yui,Kanazawa Clinic,,S-7,,6937\n\
         licensed,nurse,\"Broken,line\n",
    )?;
    let out_dir = ca.path("cards");
    let o = ca.run(&[
        "card",
        "batch",
        "--dir",
        &ca.dir_str(),
        "--csv",
        &csv.display().to_string(),
        "--out-dir",
        &out_dir.display().to_string(),
    ])?;
    assert_eq!(o.status.code(), Some(1), "some rows failed");
    let err = stderr(&o);
    assert!(err.contains("line 3: unknown profession \"surgeon\""), "{err}");
    assert!(err.contains("line 5"), "the broken last line is reported: {err}");
    assert!(stdout(&o).contains("2 cards issued, 2 rows failed"), "{}", stdout(&o));
    assert!(out_dir.join("0002-ito-ken.json").is_file());
    assert!(out_dir.join("0004-kato-yui.json").is_file());
    Ok(())
}

#[test]
fn vpn_issue_writes_both_sides_and_refuses_bad_addresses_without_a_trace() -> Result<()> {
    let ca = Ca::new()?;
    let dir = ca.dir_str();
    let vpn = |out: &str, extra: &[&str]| {
        let out = ca.path(out).display().to_string();
        let mut args = vec!["vpn", "issue", "--dir", &dir, "--out", &out, "--dc-addr", "192.0.2.1", "--json"];
        args.extend_from_slice(extra);
        ca.run(&args)
    };
    let refusals: [(&[&str], &str); 4] = [
        (&["--site", "Kanazawa", "--clinic-subnet", "10.1.0.0/24", "--dc-subnet", "10.2.0.0/24"], "--site"),
        (&["--site", "k", "--clinic-subnet", "10.1.0.0/16", "--dc-subnet", "10.1.2.0/24"], "overlap"),
        (&["--site", "k", "--clinic-subnet", "10.1.0.0/24", "--dc-subnet", "2001:db8::/64"], "IPv6"),
        (
            &["--site", "k", "--clinic-subnet", "10.1.0.0/24", "--dc-subnet", "10.2.0.0/24", "--dc-id", "a..b"],
            "--dc-id",
        ),
    ];
    for (args, says) in refusals {
        let o = vpn("refused", args)?;
        assert_eq!(o.status.code(), Some(2), "{args:?} accepted");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!ca.path("refused").exists(), "{args:?} left output behind");
    }
    let ledger_before = std::fs::read_to_string(ca.dir().join("ledger.jsonl"))?.lines().count();

    let o = vpn("vpn", &["--site", "kanazawa", "--clinic-subnet", "10.1.0.0/24", "--dc-subnet", "10.2.0.0/24"])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o))?;
    assert_eq!(v["clinic"]["id"], "kanazawa.clinic.hpki-vpn");
    assert_eq!(v["dc"]["id"], "dc.hpki-vpn");
    let clinic = std::fs::read_to_string(ca.path("vpn/clinic/swanctl/swanctl.conf"))?;
    let dc = std::fs::read_to_string(ca.path("vpn/dc/swanctl/conf.d/site-kanazawa.conf"))?;
    for (conf, local, remote) in [(&clinic, "10.1.0.0/24", "10.2.0.0/24"), (&dc, "10.2.0.0/24", "10.1.0.0/24")] {
        assert!(conf.contains(&format!("local_ts = {local}")) && conf.contains(&format!("remote_ts = {remote}")));
        assert!(conf.contains("cacerts = hpki-vpn-ca.pem") && conf.contains("revocation = ifuri"), "{conf}");
    }
    assert!(clinic.contains("remote_addrs = 192.0.2.1") && clinic.contains("local_addrs = %any"), "{clinic}");
    // Private keys are 0600; the certificates come from the VPN CA and name
    // the IKE identity.
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(ca.path("vpn/clinic/swanctl/private/kanazawa-clinic.key"))?;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let o =
        ca.run(&["inspect", "--json", &ca.path("vpn/dc/swanctl/x509/dc-for-kanazawa.pem").display().to_string()])?;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("VPN-Test-CA-forIKE"), "{}", stdout(&o));
    // Recorded: both serials in the state and one ledger line.
    let state = std::fs::read_to_string(ca.dir().join("state.json"))?;
    for side in ["clinic", "dc"] {
        assert!(state.contains(v[side]["serial"].as_str().unwrap_or("?")), "{side} serial not recorded");
    }
    let ledger = std::fs::read_to_string(ca.dir().join("ledger.jsonl"))?;
    assert_eq!(ledger.lines().count(), ledger_before + 1);
    assert!(ledger.lines().last().is_some_and(|l| l.contains("vpn-issue")));
    // The same output directory again is refused.
    let o = vpn("vpn", &["--site", "kanazawa", "--clinic-subnet", "10.1.0.0/24", "--dc-subnet", "10.2.0.0/24"])?;
    assert_eq!(o.status.code(), Some(2));
    Ok(())
}

/// Trust is scoped per CA: a certificate that claims exactly what a real
/// doctor's card claims (hcRole, policies, subject copied) but is signed by
/// a CA of the directory that certifies no licensed professional — the
/// root itself, the institution, terminal, service or VPN CA — is refused
/// by `verify --dir` with `outside_trust_scope`, for login and for
/// signature, while the real card validates.
#[test]
fn a_doctor_forged_by_a_ca_outside_the_hpki_scope_fails_verify() -> Result<()> {
    let ca = Ca::new()?;
    let image = ca.path("doc.json");
    assert!(ca.issue("doctor", &image, &[])?.status.success());
    for (app, purpose) in [("auth", "auth"), ("sign", "sign")] {
        let real = ca.path(&format!("real-{app}.der"));
        extract(&image, app, &real)?;
        let (o, json) = ca.verify(&real, purpose)?;
        assert_eq!((o.status.code(), &json["valid"]), (Some(0), &Value::Bool(true)), "{json}");
    }
    for signer in hpki_e2e::NON_HPKI_CAS {
        let forged_image = ca.path(&format!("forged-{}.json", signer.name()));
        hpki_e2e::forge_card(&ca.dir(), &image, signer, &forged_image)?;
        for (app, purpose) in [("auth", "auth"), ("sign", "sign")] {
            let forged = ca.path(&format!("forged-{}-{app}.der", signer.name()));
            extract(&forged_image, app, &forged)?;
            let (o, json) = ca.verify(&forged, purpose)?;
            assert_eq!(o.status.code(), Some(1), "{signer} {app}: {json}");
            assert_eq!(json["code"], "outside_trust_scope", "{signer} {app}: {json}");
            assert_eq!(json["profession"], "doctor", "the claim is reported: {json}");
        }
    }
    Ok(())
}

/// `--purpose any` is RFC 5280 alone: a terminal certificate (no HPKI role)
/// validates through the directory's terminal CA, which `auth` refuses.
#[test]
fn purpose_any_is_pure_path_validation() -> Result<()> {
    let ca = Ca::new()?;
    let out = ca.path("term");
    let o = ca.issue_terminal("desk-1", &out)?;
    assert!(o.status.success(), "{}", stderr(&o));
    let cert = out.join("terminal.pem");
    let (o, json) = ca.verify(&cert, "any")?;
    assert_eq!((o.status.code(), &json["valid"]), (Some(0), &Value::Bool(true)), "{json}");
    assert_eq!(json["purpose"], "any");
    let (o, json) = ca.verify(&cert, "auth")?;
    assert_eq!(o.status.code(), Some(1), "{json}");
    assert_eq!(json["code"], "outside_trust_scope", "{json}");
    Ok(())
}

/// Runs openssl in `dir`; its status and what it printed (both streams).
fn openssl_in(dir: &Path, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("openssl").args(args).current_dir(dir).output()?;
    Ok((out.status.success(), format!("{}{}", stdout(&out), stderr(&out))))
}

#[test]
fn a_tsa_certificate_signs_rfc3161_tokens_that_openssl_verifies_and_nothing_else_can() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let ca = Ca::new()?;
    let tsa = ca.path("tsa");
    let o = ca.run(&[
        "tsa",
        "issue",
        "--dir",
        &ca.dir_str(),
        "--name",
        "Test TSA",
        "--out",
        &tsa.display().to_string(),
        "--json",
    ])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let issued: Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(std::fs::metadata(tsa.join("tsa.key"))?.permissions().mode() & 0o777, 0o600);
    let chain = std::fs::read_to_string(tsa.join("ca-chain.pem"))?;
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "service CA and root");

    // RFC 3161 §2.3: id-kp-timeStamping, critical, the only purpose.
    let (ok, text) = openssl_in(ca.tmp.path(), &["x509", "-in", "tsa/tsa.pem", "-noout", "-text"])?;
    assert!(ok, "{text}");
    let eku = text.split("X509v3 Extended Key Usage: critical").nth(1).unwrap_or_default();
    assert_eq!(eku.lines().nth(1).map(str::trim), Some("Time Stamping"), "{text}");

    // OpenSSL as the TSA: a query, a token signed with this key, verified
    // against the root with the service CA as intermediate.
    let dir = ca.tmp.path();
    let split = chain.split_inclusive("-----END CERTIFICATE-----\n").collect::<Vec<_>>();
    std::fs::write(dir.join("service-ca.pem"), split[0])?;
    std::fs::write(dir.join("root.pem"), split[1])?;
    std::fs::write(dir.join("tsaserial"), "01\n")?;
    std::fs::write(dir.join("record.bin"), "the bytes a doctor confirmed")?;
    let config = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl/test-tsa.cnf"))?;
    std::fs::write(dir.join("tsa.cnf"), config.replace("$ENV::TSA_SERIAL_FILE", "./tsaserial"))?;
    let config = dir.join("tsa.cnf").display().to_string();
    let query = ["ts", "-query", "-data", "record.bin", "-sha256", "-cert", "-out", "q.tsq"];
    let (ok, text) = openssl_in(dir, &query)?;
    assert!(ok, "{text}");
    let reply = |signer: &str, key: &str, out: &str| {
        let args = ["ts", "-reply", "-config", &config, "-queryfile", "q.tsq", "-signer", signer, "-inkey", key];
        let chain = ["-chain", "tsa/ca-chain.pem", "-out", out];
        openssl_in(dir, &[&args[..], &chain[..]].concat())
    };
    let (ok, text) = reply("tsa/tsa.pem", "tsa/tsa.key", "r.tsr")?;
    assert!(ok, "{text}");
    let verify =
        ["ts", "-verify", "-in", "r.tsr", "-queryfile", "q.tsq", "-CAfile", "root.pem", "-untrusted", "service-ca.pem"];
    let (ok, text) = openssl_in(dir, &verify)?;
    assert!(ok && text.contains("Verification: OK"), "{text}");
    let (ok, text) = openssl_in(dir, &["ts", "-reply", "-in", "r.tsr", "-text"])?;
    assert!(ok && text.contains("Status: Granted."), "{text}");
    assert!(text.contains("CN=Test TSA"), "the token names its TSA: {text}");

    // The same key pair type with a server certificate (serverAuth) is not a
    // TSA: OpenSSL refuses to sign tokens with it.
    let srv = ca.path("srv");
    let o = ca.run(&[
        "server",
        "issue",
        "--dir",
        &ca.dir_str(),
        "--name",
        "srv",
        "--dns",
        "localhost",
        "--out",
        &srv.display().to_string(),
    ])?;
    assert!(o.status.success(), "{}", stderr(&o));
    let (ok, text) = reply("srv/server.pem", "srv/server.key", "r2.tsr")?;
    assert!(!ok && text.contains("invalid signer certificate purpose"), "{text}");
    assert!(!dir.join("r2.tsr").exists());

    // In the ledger; bad input refused with nothing written.
    let o = ca.run(&["ledger", "--dir", &ca.dir_str()])?;
    let ledger = stdout(&o);
    assert!(
        ledger.lines().any(|l| l.contains("tsa-issue") && l.contains(issued["serial"].as_str().unwrap_or("?"))),
        "{ledger}"
    );
    let bad = ca.path("bad");
    let o =
        ca.run(&["tsa", "issue", "--dir", &ca.dir_str(), "--name", "テストTSA", "--out", &bad.display().to_string()])?;
    assert!(!o.status.success() && stderr(&o).contains("--name"), "{}", stderr(&o));
    assert!(!bad.exists(), "a refused request wrote {}", bad.display());
    let o =
        ca.run(&["tsa", "issue", "--dir", &ca.dir_str(), "--name", "Again", "--out", &tsa.display().to_string()])?;
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    Ok(())
}
