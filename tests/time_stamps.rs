//! DATA-4/DATA-5: each confirmed record keeps a CAdES signature with an
//! RFC 3161 signature time-stamp from the configured TSA (here OpenSSL's
//! `openssl ts -reply`, see `test_tsa.rs`), with the validation data of
//! both signer and TSA and an archive time-stamp over it all (B-LTA),
//! checked by OpenSSL; renewed over six years; and every way the TSA
//! can fail refuses the confirm with its own code, stores nothing, and
//! leaves the draft to be confirmed again.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_e2e::clinic_story::{ClinicStory, ok};
use hpki_e2e::independent::{cades_check, openssl, pem_of};
use hpki_e2e::test_tsa::{Behaviour, TestTsa};
use hpki_e2e::{TsaOptions, WorldOptions, gateway_cli, gateway_cli_ahead, gateway_cli_raw};
use serde_json::Value;

fn with_tsa(tsa: TsaOptions) -> WorldOptions {
    WorldOptions { tsa: Some(tsa), ..WorldOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_record_keeps_a_time_stamped_cades_signature_that_openssl_verifies() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions::default())).await?;
    let (draft, signing, body) = story.signed_draft(1).await?;
    let record = ok(story.send_confirm(&draft, &body).await?)?;
    assert_eq!(record["signature_format"], "CAdES B-LTA", "{record}");
    let stamped_at = record["time_stamped_at"].as_str().context("time_stamped_at")?;
    assert!(!stamped_at.is_empty());
    let id = record["id"].as_str().context("record id")?;
    let tsa = story.world.tsa.as_ref().context("tsa")?;
    assert_eq!(tsa.stamped(), 2, "two tokens per confirm: the signature time-stamp, then the archive time-stamp");

    let kept = story.world.gw.store.record_signatures(id).await?;
    assert_eq!(kept.len(), 1, "one container at confirm");
    assert_eq!(kept[0].level, "CAdES B-LTA");
    let document = B64.decode(signing["document"].as_str().context("document")?)?;
    let opened = hpki_cades::open(&kept[0].container, &document)?;
    assert_eq!(opened.level(), "B-LTA");
    assert_eq!(opened.timestamps.len(), 1);
    assert_eq!(Some(opened.timestamps[0].gen_time), kept[0].time_stamped_at);
    // The signer's chain and the TSA's, with a CRL for each CA on them.
    assert!(opened.crls.len() >= 3, "{} CRLs", opened.crls.len());

    // OpenSSL: the CMS signature over exactly the document, its chain to
    // the root with every certificate checked against the CRLs the
    // container carries (no other CRL is given), and the time-stamp token
    // over the signature value, to the same root.
    let dir = story.world.path("verify");
    std::fs::create_dir(&dir)?;
    std::fs::write(dir.join("record.p7s"), &kept[0].container)?;
    std::fs::write(dir.join("document.json"), &document)?;
    std::fs::copy(story.world.path("root.der"), dir.join("root.der"))?;
    pem_of(&dir, "root.der", "root.pem");
    let verify = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "record.p7s",
        "-content",
        "document.json",
        "-CAfile",
        "root.pem",
        "-purpose",
        "any",
        "-crl_check_all",
        "-out",
        "/dev/null",
    ];
    let (good, text) = openssl(&dir, &verify);
    assert!(good && text.contains("Verification successful"), "{text}");
    let (good, text) = openssl(&dir, &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "record.p7s"]);
    assert!(good, "{text}");
    for attr in ["signingTime", "id-smime-aa-signingCertificateV2", "id-smime-aa-timeStampToken"] {
        assert!(text.contains(attr), "{attr} in {text}");
    }
    std::fs::write(dir.join("token.der"), &opened.timestamps[0].der)?;
    std::fs::write(dir.join("signature.bin"), &opened.signature)?;
    let service: Vec<&[u8]> = opened.certificates.iter().map(Vec::as_slice).collect();
    let mut untrusted = String::new();
    for (n, cert) in service.iter().enumerate() {
        std::fs::write(dir.join(format!("c{n}.der")), cert)?;
        pem_of(&dir, &format!("c{n}.der"), &format!("c{n}.pem"));
        untrusted.push_str(&std::fs::read_to_string(dir.join(format!("c{n}.pem")))?);
    }
    std::fs::write(dir.join("untrusted.pem"), untrusted)?;
    let ts_verify = [
        "ts",
        "-verify",
        "-token_in",
        "-in",
        "token.der",
        "-data",
        "signature.bin",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "untrusted.pem",
    ];
    let (good, text) = openssl(&dir, &ts_verify);
    assert!(good && text.contains("Verification: OK"), "{text}");

    // pyHanko, the second independent validator: the CAdES signature, its
    // signing-certificate-v2, the signer's chain with only the embedded
    // CRLs, the signature time-stamp; and each archive time-stamp over the
    // input EN 319 122-1 §5.5.3 defines, rebuilt from the container by
    // asn1crypto — which OpenSSL's ts -verify then checks too.
    let report = cades_check(&dir, "document.json", "record.p7s")?;
    for part in ["signature", "signature_timestamp"] {
        for flag in ["intact", "valid", "trusted"] {
            assert_eq!(report[part][flag], true, "{part} {flag}: {report}");
        }
    }
    assert_eq!(report["signature"]["revoked"], false, "{report}");
    let archives = report["archive_timestamps"].as_array().context("archive_timestamps")?;
    assert_eq!(archives.len(), 1, "{report}");
    for (n, a) in archives.iter().enumerate() {
        for flag in ["intact", "valid", "trusted"] {
            assert_eq!(a[flag], true, "archive time-stamp {} {flag}: {report}", n + 1);
        }
        assert_eq!(a["missing"], serde_json::json!([]), "{report}");
        let (token, data) = (format!("ats-{}.tst", n + 1), format!("ats-{}.bin", n + 1));
        let ats_verify = ts_verify.map(|a| match a {
            "token.der" => token.as_str(),
            "signature.bin" => data.as_str(),
            other => other,
        });
        let (good, text) = openssl(&dir, &ats_verify);
        assert!(good && text.contains("Verification: OK"), "archive time-stamp {}: {text}", n + 1);
    }

    // The same container does not verify another document.
    std::fs::write(dir.join("document.json"), b"{}")?;
    let report = cades_check(&dir, "document.json", "record.p7s")?;
    assert_eq!(report["signature"]["intact"], false, "pyHanko too: {report}");
    assert_eq!(report["archive_timestamps"][0]["intact"], false, "{report}");
    let (good, text) = openssl(&dir, &verify);
    assert!(!good, "{text}");

    // `records export`: the same two files, which OpenSSL verifies in
    // place; audited, as patient data leaving the gateway.
    let config = story.world.config_path();
    let out = story.world.path("export");
    let text = gateway_cli(&config, &["records", "export", "--record", id, "--out", &out.display().to_string()])?;
    assert!(text.contains("CAdES B-LTA"), "{text}");
    assert_eq!(std::fs::read(out.join("document.json"))?, document);
    assert_eq!(std::fs::read(out.join("signature.p7s"))?, kept[0].container);
    assert!(std::fs::read_to_string(out.join("README.txt"))?.contains("openssl cms -verify"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out)?.permissions().mode() & 0o777, 0o700, "patient data: the operator's alone");
    std::fs::copy(dir.join("root.pem"), out.join("root.pem"))?;
    let in_export = verify.map(|a| if a == "record.p7s" { "signature.p7s" } else { a });
    let (good, text) = openssl(&out, &in_export);
    assert!(good && text.contains("Verification successful"), "{text}");
    let audited = story.world.last_audit("admin.record.export").await;
    assert_eq!(
        (audited.event.outcome.as_str(), audited.event.object.as_str()),
        ("ok", format!("record:{id}").as_str())
    );
    let (code, _, err) =
        gateway_cli_raw(&config, &["records", "export", "--record", id, "--out", &out.display().to_string()])?;
    assert!(code != 0 && err.contains("exists"), "{err}");

    // `records verify`, from the store and from the exported files: the
    // signer checked at the time-stamp's genTime with the container's CRLs.
    for args in [["records", "verify", "--record", id], ["records", "verify", "--dir", &out.display().to_string()]] {
        let verdict: Value = serde_json::from_str(&gateway_cli(&config, &args)?)?;
        assert_eq!(verdict["level"], "B-LTA", "{verdict}");
        assert_eq!(verdict["time_stamped_at"], verdict["signer_checked_at"], "{verdict}");
        assert_eq!(verdict["time_stamped_at"].as_i64(), kept[0].time_stamped_at, "{verdict}");
        assert_eq!(verdict["tsas"].as_array().map(Vec::len), Some(2), "{verdict}");
        assert_eq!(verdict["archive_time_stamps"].as_array().map(Vec::len), Some(1), "{verdict}");
    }
    // A changed document, or a container with a byte changed, is refused.
    std::fs::write(out.join("document.json"), b"{}")?;
    let (code, _, err) = gateway_cli_raw(&config, &["records", "verify", "--dir", &out.display().to_string()])?;
    assert!(code != 0 && err.contains("does not verify"), "{err}");
    std::fs::write(out.join("document.json"), &document)?;
    let mut forged = kept[0].container.clone();
    let at = forged.len() / 2;
    forged[at] ^= 0x01;
    std::fs::write(out.join("signature.p7s"), &forged)?;
    let (code, _, err) = gateway_cli_raw(&config, &["records", "verify", "--dir", &out.display().to_string()])?;
    assert!(code != 0, "a changed container verified: {err}");
    let (code, _, err) = gateway_cli_raw(&config, &["records", "verify", "--record", "rec_nope"])?;
    assert!(code != 0 && err.contains("no record"), "{err}");
    Ok(())
}

/// The confirm is refused with `code`, audited so, and nothing is stored:
/// the draft is still pending and no record or container exists.
async fn refused_and_nothing_kept(
    story: &mut ClinicStory,
    draft: &str,
    answer: (u16, Value),
    code: &str,
) -> Result<()> {
    let (status, body) = answer;
    assert!(status >= 500, "{code}: {status} {body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("nothing was confirmed"), "{body}");
    let audited = story.world.last_audit("draft.confirm").await;
    assert_eq!((audited.event.outcome.as_str(), audited.event.reason.as_str()), ("refused", code));
    let d = story.world.gw.store.draft(draft).await?.context("the draft")?;
    assert!(!d.confirmed, "{code}: the draft is still pending");
    assert!(story.world.gw.store.records_of(&d.patient).await?.is_empty(), "{code}: no record");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tsa_failure_refuses_the_confirm_with_its_code_and_stores_nothing() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions { max_skew_seconds: 30, ..TsaOptions::default() })).await?;
    let (draft, _, body) = story.signed_draft(1).await?;
    let cases = [
        (Behaviour::Down, "timestamp_unavailable"),
        (Behaviour::Rejecting, "timestamp_unavailable"),
        (Behaviour::WrongNonce, "timestamp_wrong_nonce"),
        (Behaviour::WrongImprint, "timestamp_wrong_imprint"),
    ];
    for (behaviour, code) in cases {
        story.world.tsa.as_ref().context("tsa")?.set(behaviour);
        let answer = story.send_confirm(&draft, &body).await?;
        refused_and_nothing_kept(&mut story, &draft, answer, code).await?;
    }
    // A token whose genTime is far from the gateway's clock: the gateway's
    // clock is 90 s ahead of the TSA's (max_skew_seconds = 30).
    story.world.tsa.as_ref().context("tsa")?.set(Behaviour::Honest);
    story.world.clock.advance_secs(90);
    let answer = story.send_confirm(&draft, &body).await?;
    refused_and_nothing_kept(&mut story, &draft, answer, "timestamp_time_skew").await?;
    story.world.clock.advance_secs(-90);

    // The TSA back to health: the same signed confirm goes through.
    let record = ok(story.send_confirm(&draft, &body).await?)?;
    assert_eq!(record["signature_format"], "CAdES B-LTA", "{record}");
    assert!(story.world.chain_verifies().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsa_the_gateway_does_not_trust_refuses_the_confirm() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions { trusted: false, ..TsaOptions::default() })).await?;
    let (draft, _, body) = story.signed_draft(1).await?;
    let answer = story.send_confirm(&draft, &body).await?;
    refused_and_nothing_kept(&mut story, &draft, answer, "timestamp_untrusted").await?;
    assert_eq!(story.world.tsa.as_ref().context("tsa")?.stamped(), 1, "the TSA did answer, with a token");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsa_whose_certificate_has_expired_refuses_the_confirm() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions { expired: true, ..TsaOptions::default() })).await?;
    let (draft, _, body) = story.signed_draft(1).await?;
    let answer = story.send_confirm(&draft, &body).await?;
    assert!(answer.1["message"].as_str().unwrap_or_default().contains("expired"), "{}", answer.1);
    refused_and_nothing_kept(&mut story, &draft, answer, "timestamp_untrusted").await?;
    assert_eq!(story.world.tsa.as_ref().context("tsa")?.stamped(), 1, "the TSA answered, with its expired certificate");
    Ok(())
}

/// The doctor's signature certificate revoked (CRL published, gateway
/// reloaded) before the confirm: refused before any TSA is asked, so no
/// time-stamp ever vouches for a signature by a revoked key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_by_a_revoked_certificate_is_refused_before_any_time_stamp() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions::default())).await?;
    let (draft, signing, body) = story.signed_draft(1).await?;
    let cert = B64.decode(body["certificate"].as_str().context("certificate")?)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)?;
    let serial = parsed.tbs_certificate.serial.to_str_radix(16);
    story.world.ca.revoke(&serial, hpki_ca::Reason::KeyCompromise)?;
    story.world.publish_crls()?;
    let (status, answer) = story.send_confirm(&draft, &body).await?;
    assert_eq!((status, answer["error"].as_str()), (401, Some("revoked")), "{answer}");
    let audited = story.world.last_audit("draft.confirm").await;
    assert_eq!((audited.event.outcome.as_str(), audited.event.reason.as_str()), ("refused", "revoked"));
    assert_eq!(story.world.tsa.as_ref().context("tsa")?.stamped(), 0, "no TSA was asked");
    let d = story.world.gw.store.draft(&draft).await?.context("the draft")?;
    assert!(!d.confirmed && story.world.gw.store.records_of(&d.patient).await?.is_empty());
    assert!(signing["document"].is_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_tsa_a_record_is_cades_b_b() -> Result<()> {
    let mut story = ClinicStory::start(WorldOptions::default()).await?;
    let (draft, signing, body) = story.signed_draft(1).await?;
    let record = ok(story.send_confirm(&draft, &body).await?)?;
    assert_eq!(record["signature_format"], "CAdES B-B", "{record}");
    assert_eq!(record["time_stamped_at"], Value::Null, "{record}");
    let id = record["id"].as_str().context("record id")?;
    let kept = story.world.gw.store.record_signatures(id).await?;
    let document = B64.decode(signing["document"].as_str().context("document")?)?;
    let opened = hpki_cades::open(&kept[0].container, &document)?;
    assert_eq!(opened.level(), "B-B");
    assert!(opened.timestamps.is_empty());
    // Without a time-stamp the signer is checked at the card's signingTime.
    let verdict: Value =
        serde_json::from_str(&gateway_cli(&story.world.config_path(), &["records", "verify", "--record", id])?)?;
    assert_eq!(verdict["level"], "B-B", "{verdict}");
    assert_eq!(verdict["time_stamped_at"], Value::Null, "{verdict}");
    assert_eq!(verdict["signer_checked_at"], verdict["signing_time"], "{verdict}");
    Ok(())
}

/// Every CA's CRL as `hpki-certs crl publish` writes it `days` from now,
/// into `out` under the world's directory. From a copy of the CA
/// directory: the world holds the original's lock for its lifetime.
fn publish_crls_ahead(story: &ClinicStory, out: &str, days: i64) -> Result<()> {
    let copy = story.world.path("ca-later");
    if !copy.exists() {
        let done = Command::new("cp").arg("-a").arg(story.world.path("ca")).arg(&copy).status()?;
        anyhow::ensure!(done.success(), "copying the CA directory");
    }
    let ca = copy.display().to_string();
    let to = story.world.path(out).display().to_string();
    let done = hpki_e2e::clock_ahead(&testbed::bin_path("hpki-certs")?.display().to_string(), days)
        .args(["crl", "publish", "--dir", &ca, "--out", &to])
        .output()?;
    anyhow::ensure!(done.status.success(), "hpki-certs crl publish: {}", String::from_utf8_lossy(&done.stderr));
    Ok(())
}

/// `[timestamps]` pointed at another TSA and CRL directory.
fn point_timestamps_at(config: &Path, url: &str, crl_dir: &str) -> Result<()> {
    let mut c = hpki_gateway::config::Config::load(config)?;
    let t = c.timestamps.as_mut().context("[timestamps]")?;
    t.url = url.to_owned();
    t.crls = vec![format!("{crl_dir}/root.crl").into(), format!("{crl_dir}/service.crl").into()];
    c.save(config)?;
    Ok(())
}

fn rfc3339_days_ahead(days: i64) -> Result<String> {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(1);
    Ok(t.format(&time::format_description::well_known::Rfc3339)?)
}

/// DATA-5 over a record's retention: six years on, after the doctor's
/// certificate and the first TSA's have expired, a record still verifies
/// from its own container — because `records renew-timestamps` added an
/// archive time-stamp from a second TSA while the first TSA's certificate
/// was valid — and the same record exported before the renewal does not.
/// The clocks of the TSA, of `hpki-certs` (its CRLs) and of the renewal
/// run are moved with libfaketime; the verification date with `--at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_years_on_a_record_verifies_after_renew_timestamps_and_not_without() -> Result<()> {
    // Day 20: the first TSA's certificate (30 days) is still valid.
    const RENEWAL_DAY: i64 = 20;
    // Six years: the doctor's card (30 days) and the first TSA long gone.
    const CHECK_DAY: i64 = 6 * 365;
    let mut story = ClinicStory::start(with_tsa(TsaOptions::default())).await?;
    let (draft, signing, body) = story.signed_draft(1).await?;
    let record = ok(story.send_confirm(&draft, &body).await?)?;
    assert_eq!(record["signature_format"], "CAdES B-LTA", "{record}");
    let id = record["id"].as_str().context("record id")?.to_owned();
    let document = B64.decode(signing["document"].as_str().context("document")?)?;
    let config = story.world.config_path();
    let unrenewed = story.world.path("export-day0").display().to_string();
    gateway_cli(&config, &["records", "export", "--record", &id, "--out", &unrenewed])?;
    let first = story.world.gw.store.record_signatures(&id).await?;

    // A second TSA, its certificate valid nine years, its clock 20 days
    // ahead; the CRLs as published on day 20; the gateway pointed at both.
    let tsa2_dir = story.world.path("tsa2");
    let tsa2 = TestTsa::start_named(&mut story.world.ca, &tsa2_dir, "Test TSA Two", 9 * 365).await?;
    tsa2.set_days_ahead(RENEWAL_DAY);
    publish_crls_ahead(&story, "crl-day20", RENEWAL_DAY)?;
    point_timestamps_at(&config, &tsa2.url, "crl-day20")?;
    let before = rfc3339_days_ahead(RENEWAL_DAY + 365)?;
    let renew = ["records", "renew-timestamps", "--before", before.as_str()];

    // The TSA down: the record is not renewed, the run says so and fails,
    // the failure is audited, and no version is added.
    tsa2.set(Behaviour::Down);
    let (code, out, err) = gateway_cli_ahead(&config, RENEWAL_DAY, &renew)?;
    assert!(code != 0 && err.contains(&format!("record {id}: not renewed")), "{out}{err}");
    assert!(out.contains("renewed 0") && out.contains("failed: 1"), "{out}");
    let audited = story.world.last_audit("admin.record.renew_timestamp").await;
    assert_eq!(
        (audited.event.outcome.as_str(), audited.event.object.as_str()),
        ("refused", format!("record:{id}").as_str())
    );
    assert_eq!(story.world.gw.store.record_signatures(&id).await?.len(), 1);

    // The TSA back: renewed, audited, a second version appended and the
    // first kept byte for byte; a second run finds nothing due (resumable).
    tsa2.set(Behaviour::Honest);
    let (code, out, err) = gateway_cli_ahead(&config, RENEWAL_DAY, &renew)?;
    assert!(code == 0 && out.contains(&format!("record {id}: renewed")) && out.contains("renewed 1"), "{out}{err}");
    let audited = story.world.last_audit("admin.record.renew_timestamp").await;
    assert_eq!(audited.event.outcome.as_str(), "ok");
    let versions = story.world.gw.store.record_signatures(&id).await?;
    assert_eq!(versions.len(), 2, "each version is kept");
    assert_eq!((versions[0].seq, versions[1].seq), (0, 1));
    assert_eq!(versions[0].container, first[0].container, "the confirm's container is untouched");
    assert_eq!(versions[1].level, "CAdES B-LTA");
    let renewed = hpki_cades::open(&versions[1].container, &document)?;
    assert_eq!(renewed.archive_timestamps.len(), 2);
    let day = 86_400;
    let gap = renewed.archive_timestamps[1].gen_time - renewed.archive_timestamps[0].gen_time;
    assert!((RENEWAL_DAY * day - 600..RENEWAL_DAY * day + 600).contains(&gap), "the second is from day 20: {gap} s");
    let (code, out, err) = gateway_cli_ahead(&config, RENEWAL_DAY, &renew)?;
    assert!(code == 0 && out.contains("renewed 0") && out.contains(": 1,"), "nothing due twice: {out}{err}");
    // Both archive time-stamps of the renewed container, checked outside
    // the product: pyHanko (token signature, imprint over the EN 319 122-1
    // input asn1crypto rebuilds, every hash in its index still present —
    // the second index covers the first token) and OpenSSL's ts -verify.
    let dir = story.world.path("renewed");
    std::fs::create_dir(&dir)?;
    std::fs::write(dir.join("record.p7s"), &versions[1].container)?;
    std::fs::write(dir.join("document.json"), &document)?;
    std::fs::copy(story.world.path("root.der"), dir.join("root.der"))?;
    pem_of(&dir, "root.der", "root.pem");
    let report = cades_check(&dir, "document.json", "record.p7s")?;
    let archives = report["archive_timestamps"].as_array().context("archive_timestamps")?;
    assert_eq!(archives.len(), 2, "{report}");
    for a in archives {
        assert_eq!(
            (&a["intact"], &a["valid"], &a["missing"]),
            (&Value::Bool(true), &Value::Bool(true), &serde_json::json!([])),
            "{report}"
        );
    }
    assert!(archives[1]["covers"].as_u64() > archives[0]["covers"].as_u64(), "{report}");
    for n in 1..=2 {
        let (token, data) = (format!("ats-{n}.tst"), format!("ats-{n}.bin"));
        let args = ["ts", "-verify", "-token_in", "-in", &token, "-data", &data, "-CAfile", "root.pem"];
        let untrusted: Vec<String> = renewed
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = format!("u{i}");
                std::fs::write(dir.join(format!("{name}.der")), c).ok();
                pem_of(&dir, &format!("{name}.der"), &format!("{name}.pem"));
                std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap_or_default()
            })
            .collect();
        std::fs::write(dir.join("untrusted.pem"), untrusted.concat())?;
        let (good, text) = openssl(&dir, &[&args[..], &["-untrusted", "untrusted.pem"]].concat());
        assert!(good && text.contains("Verification: OK"), "archive time-stamp {n}: {text}");
    }

    // On day 20 the export made before the renewal was still good.
    let day20 = rfc3339_days_ahead(RENEWAL_DAY)?;
    let verdict: Value =
        serde_json::from_str(&gateway_cli(&config, &["records", "verify", "--dir", &unrenewed, "--at", &day20])?)?;
    assert_eq!(verdict["archive_time_stamps"].as_array().map(Vec::len), Some(1), "{verdict}");

    // Six years on, with that day's CRLs for the newest TSA.
    publish_crls_ahead(&story, "crl-year6", CHECK_DAY)?;
    point_timestamps_at(&config, &tsa2.url, "crl-year6")?;
    let at = rfc3339_days_ahead(CHECK_DAY)?;
    let signer_expires = hpki_gateway::signatures::check::not_after(&renewed.signer_cert).context("signer")?;
    let tsa1_expires = hpki_gateway::signatures::check::not_after(&renewed.timestamps[0].tsa_cert).context("tsa")?;
    let at_secs = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)?.unix_timestamp();
    assert!(signer_expires < at_secs && tsa1_expires < at_secs, "both certificates have expired by then");
    let verdict: Value =
        serde_json::from_str(&gateway_cli(&config, &["records", "verify", "--record", &id, "--at", &at])?)?;
    assert_eq!(verdict["level"], "B-LTA", "{verdict}");
    assert_eq!(verdict["checked_at"].as_i64(), Some(at_secs), "{verdict}");
    assert_eq!(verdict["archive_time_stamps"].as_array().map(Vec::len), Some(2), "{verdict}");
    assert_eq!(verdict["tsas"].as_array().map(Vec::len), Some(3), "{verdict}");
    assert_eq!(verdict["signer_checked_at"], verdict["time_stamped_at"], "{verdict}");
    assert!(verdict["renew_before"].as_i64() > Some(at_secs), "{verdict}");

    // The export made before the renewal: its newest time-stamp's TSA
    // certificate has expired, and nothing vouches for it.
    let (code, _, err) = gateway_cli_raw(&config, &["records", "verify", "--dir", &unrenewed, "--at", &at])?;
    assert!(code != 0 && err.contains("archive time-stamp 1: its TSA's certificate was refused"), "{err}");
    assert!(err.contains("expired"), "{err}");
    Ok(())
}
