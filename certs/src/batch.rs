//! `card batch`: many cards from a CSV file.
//!
//! Columns (header row required, order free): `kind` (`licensed` or
//! `assistant`), `profession`, `name`, `name_kanji`, `institution`,
//! `institution_kanji`, `license_no`, `staff_id`, `verified_by`, `pin`,
//! optional `variant`. A bad row is reported with its line number; the other
//! rows go on.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hpki_ca::{AssistantRequest, CaDir, CardRequest, IssuedCard};
use hpki_card::CardVariant;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    kind: String,
    #[serde(default)]
    profession: String,
    name: String,
    #[serde(default)]
    name_kanji: String,
    #[serde(default)]
    institution: String,
    #[serde(default)]
    institution_kanji: String,
    #[serde(default)]
    license_no: String,
    #[serde(default)]
    staff_id: String,
    #[serde(default)]
    verified_by: String,
    pin: String,
    #[serde(default)]
    variant: String,
}

#[derive(Serialize)]
struct Outcome {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<IssuedCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn slug(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

fn issue(ca: &mut CaDir, row: &Row, line: u64, out_dir: &Path) -> Result<IssuedCard> {
    let variant: CardVariant = opt(&row.variant).unwrap_or_else(|| "jma".into()).parse().map_err(anyhow::Error::msg)?;
    let out = out_dir.join(format!("{line:04}-{}.json", slug(&row.name)));
    Ok(match row.kind.trim() {
        "licensed" => ca.issue_card(
            &CardRequest {
                profession: row.profession.parse()?,
                name: row.name.clone(),
                name_kanji: opt(&row.name_kanji),
                institution: opt(&row.institution),
                institution_kanji: opt(&row.institution_kanji),
                license_no: row.license_no.trim().to_owned(),
                verified_by: row.verified_by.trim().to_owned(),
                pin: row.pin.clone(),
                variant,
                retry_limit: 5,
                valid_days: hpki_ca::DEFAULT_CARD_DAYS,
            },
            &out,
        )?,
        "assistant" => ca.issue_assistant_card(
            &AssistantRequest {
                institution: row.institution.clone(),
                institution_kanji: opt(&row.institution_kanji),
                name: row.name.clone(),
                name_kanji: opt(&row.name_kanji),
                staff_id: row.staff_id.trim().to_owned(),
                pin: row.pin.clone(),
                variant,
                retry_limit: 5,
                valid_days: hpki_ca::DEFAULT_CARD_DAYS,
            },
            &out,
        )?,
        other => anyhow::bail!("kind {other:?} is neither \"licensed\" nor \"assistant\""),
    })
}

pub fn run(dir: &Path, csv_path: &Path, out_dir: &Path, json: bool) -> Result<ExitCode> {
    let mut ca = CaDir::open(dir)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_path(csv_path)
        .with_context(|| format!("cannot read {}", csv_path.display()))?;
    let records: Vec<_> = reader.records().collect();
    let bar = ProgressBar::new(records.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cards {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let headers = reader.headers().cloned().context("the CSV has no header row")?;
    let mut outcomes = Vec::new();
    for record in records {
        let (line, result) = match record {
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(anyhow::anyhow!("{e}"))),
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                let row: Result<Row> = r.deserialize(Some(&headers)).map_err(|e| anyhow::anyhow!("{e}"));
                (line, row.and_then(|row| issue(&mut ca, &row, line, out_dir)))
            }
        };
        match result {
            Ok(card) => {
                bar.set_message(card.holder.clone());
                outcomes.push(Outcome { line, card: Some(card), error: None });
            }
            Err(e) => {
                bar.suspend(|| eprintln!("line {line}: {e:#}"));
                outcomes.push(Outcome { line, card: None, error: Some(format!("{e:#}")) });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let issued = outcomes.len() - failed;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        for o in outcomes.iter().filter_map(|o| o.card.as_ref().map(|c| (o.line, c))) {
            println!("line {}: {} -> {}", o.0, o.1.holder, o.1.image.display());
        }
        println!("{issued} cards issued, {failed} rows failed");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
