//! `hpki-gateway export research` (FLOW-8): a de-identified CSV of a
//! period's records for research (`ops::research_export`), its report
//! printed and written beside it (`FILE.report.json`), audited with the
//! operator and the report's hash before the file appears.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use hpki_gateway::audit::Action;
use hpki_gateway::config::Config;
use hpki_gateway::domain::keyring::Keyring;
use hpki_gateway::ops::research_export;
use hpki_gateway::store::Store;

use crate::cli::{Operator, admin_audit};

#[derive(Subcommand)]
pub(crate) enum ExportCommand {
    /// De-identified records of consented patients who did not opt out of
    /// secondary use: keyed pseudonyms, months, age bands, regions, only
    /// the `[research] keep_fields`, rows suppressed to k-anonymity.
    Research {
        /// First day, YYYY-MM-DD (Japan time).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (included).
        #[arg(long)]
        to: String,
        /// The CSV to write (must not exist); the report goes to
        /// FILE.report.json.
        #[arg(long)]
        out: PathBuf,
        /// Every quasi-identifier combination occurs at least k times.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// The pseudonym key (64 hex digits, mode 0600), to link this
        /// export with others made under it; created if missing. Without
        /// it a fresh key is drawn and forgotten: the export links with no
        /// other.
        #[arg(long)]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        op: Operator,
    },
}

/// Midnight of `day` in Japan, Unix s.
fn day_start(day: &str, flag: &str) -> Result<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(day, &format).with_context(|| format!("{flag} {day:?}: expected YYYY-MM-DD"))?;
    Ok(d.midnight().assume_utc().unix_timestamp() - hpki_gateway::ops::report::REPORT_UTC_OFFSET_SECONDS)
}

fn pseudonym_key(path: &Path) -> Result<[u8; 32]> {
    if !path.exists() {
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        hpki_gateway::file_modes::private_file(path)?;
        std::fs::write(path, format!("{}\n", hex::encode(key)))?;
        eprintln!("new pseudonym key written to {} (keep it to link later exports)", path.display());
        return Ok(key);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
    let bytes = bytes.with_context(|| format!("{}: expected 64 hex digits", path.display()))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

pub(crate) async fn run(config: &Config, cmd: ExportCommand) -> Result<ExitCode> {
    let ExportCommand::Research { from, to, out, k, key_file, op } = cmd;
    let operator = op.name()?;
    let store = Store::open(&config.store_config()).await?;
    let object = format!("file:{}", out.display());
    let made = async {
        let (start, end) = (day_start(&from, "--from")?, day_start(&to, "--to")? + 86_400);
        if out.exists() {
            bail!("{} exists: an export never overwrites a file", out.display());
        }
        let key = key_file.as_deref().map(pseudonym_key).transpose()?;
        let keys = Keyring::load(&config.path(&config.records.key_file))?;
        let req = research_export::ExportRequest { from: start, to: end, k, key };
        Ok(research_export::export(&store, &keys, &config.research, req, &ring::rand::SystemRandom::new()).await?)
    }
    .await;
    let export = match made {
        Ok(e) => e,
        Err(e) => {
            // Every refusal is audited; it is the command's error.
            let audited = admin_audit(&store, &operator, Action::ExportResearch, &object, Err(format!("{e:#}"))).await;
            return Err(audited.err().unwrap_or(e));
        }
    };
    let report = serde_json::to_vec_pretty(&export.report)?;
    let report_sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &report));
    // The file under a temporary name until its entry is in the log: no
    // export leaves without its trace.
    let partial = out.with_extension("partial");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    f.write_all(&export.csv)?;
    f.sync_all()?;
    let object =
        format!("{object} report_sha256:{report_sha} rows:{} k:{}", export.report.rows_exported, export.report.k);
    if let Err(e) = admin_audit(&store, &operator, Action::ExportResearch, &object, Ok(())).await {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context("the export could not be audited; nothing was written"));
    }
    std::fs::rename(&partial, &out)?;
    let mut report_path = out.clone().into_os_string();
    report_path.push(".report.json");
    std::fs::write(&report_path, &report)?;
    println!("{}", String::from_utf8_lossy(&report));
    eprintln!(
        "{} rows to {} ({} suppressed for k = {}); report {}",
        export.report.rows_exported,
        out.display(),
        export.report.rows_suppressed,
        k,
        Path::new(&report_path).display()
    );
    Ok(ExitCode::SUCCESS)
}
