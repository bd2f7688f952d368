//! DATA-4/DATA-5: each confirmed record keeps a CAdES signature with an
//! RFC 3161 signature time-stamp from the configured TSA (here OpenSSL's
//! `openssl ts -reply`, see `test_tsa.rs`), with the validation data of
//! both signer and TSA (B-LT), checked by OpenSSL; and every way the TSA
//! can fail refuses the confirm with its own code, stores nothing, and
//! leaves the draft to be confirmed again.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_e2e::clinic_story::{ClinicStory, ok};
use hpki_e2e::test_tsa::Behaviour;
use hpki_e2e::{TsaOptions, WorldOptions, gateway_cli, gateway_cli_raw};
use serde_json::Value;

fn with_tsa(tsa: TsaOptions) -> WorldOptions {
    WorldOptions { tsa: Some(tsa), ..WorldOptions::default() }
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn pem_of(dir: &Path, der: &str, pem: &str) {
    let (ok, text) = openssl(dir, &["x509", "-inform", "DER", "-in", der, "-out", pem]);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_record_keeps_a_time_stamped_cades_signature_that_openssl_verifies() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions::default())).await?;
    let (draft, signing, body) = story.signed_draft(1).await?;
    let record = ok(story.send_confirm(&draft, &body).await?)?;
    assert_eq!(record["signature_format"], "CAdES B-LT", "{record}");
    let stamped_at = record["time_stamped_at"].as_str().context("time_stamped_at")?;
    assert!(!stamped_at.is_empty());
    let id = record["id"].as_str().context("record id")?;
    let tsa = story.world.tsa.as_ref().context("tsa")?;
    assert_eq!(tsa.stamped(), 1, "one token per confirm");

    let kept = story.world.gw.store.record_signatures(id).await?;
    assert_eq!(kept.len(), 1, "one container at confirm");
    assert_eq!(kept[0].level, "CAdES B-LT");
    let document = B64.decode(signing["document"].as_str().context("document")?)?;
    let opened = hpki_cades::open(&kept[0].container, &document)?;
    assert_eq!(opened.level(), "B-LT");
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

    // The same container does not verify another document.
    std::fs::write(dir.join("document.json"), b"{}")?;
    let (good, text) = openssl(&dir, &verify);
    assert!(!good, "{text}");

    // `records export`: the same two files, which OpenSSL verifies in
    // place; audited, as patient data leaving the gateway.
    let config = story.world.config_path();
    let out = story.world.path("export");
    let text = gateway_cli(&config, &["records", "export", "--record", id, "--out", &out.display().to_string()])?;
    assert!(text.contains("CAdES B-LT"), "{text}");
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
        assert_eq!(verdict["level"], "B-LT", "{verdict}");
        assert_eq!(verdict["time_stamped_at"], verdict["signer_checked_at"], "{verdict}");
        assert_eq!(verdict["time_stamped_at"].as_i64(), kept[0].time_stamped_at, "{verdict}");
        assert_eq!(verdict["tsas"].as_array().map(Vec::len), Some(1), "{verdict}");
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
    let mut story = ClinicStory::start(with_tsa(TsaOptions { trusted: true, max_skew_seconds: 30 })).await?;
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
    assert_eq!(record["signature_format"], "CAdES B-LT", "{record}");
    assert!(story.world.chain_verifies().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsa_the_gateway_does_not_trust_refuses_the_confirm() -> Result<()> {
    let mut story = ClinicStory::start(with_tsa(TsaOptions { trusted: false, max_skew_seconds: 300 })).await?;
    let (draft, _, body) = story.signed_draft(1).await?;
    let answer = story.send_confirm(&draft, &body).await?;
    refused_and_nothing_kept(&mut story, &draft, answer, "timestamp_untrusted").await?;
    assert_eq!(story.world.tsa.as_ref().context("tsa")?.stamped(), 1, "the TSA did answer, with a token");
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
