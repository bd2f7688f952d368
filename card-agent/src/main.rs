//! `card-agent`: runs the agent (`card-agent --config FILE`), or, for IT
//! staff and scripts, lists the cards (`cards`), logs a card in through the
//! running agent (`login --reader NAME --pin-stdin`) and out (`logout`).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use card_agent::agent::Agent;
use card_agent::cards::{self, CardReport, PinState};
use card_agent::config::Config;
use card_agent::i18n::{self, Lang};
use card_agent::server::Server;
use card_agent::{local_client, token};
use clap::{Parser, Subcommand};
use hpki_card::{CertificateCache, PcscContext};
use serde_json::json;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "card-agent", version, about = "HPKI card agent for clinic terminals")]
struct Cli {
    /// Agent configuration (TOML; see docs/card-agent.md).
    #[arg(long, global = true, env = "CARD_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Language of messages: ja or en.
    #[arg(long, global = true, default_value = "en")]
    lang: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The readers, the card in each, its holder and the PIN tries left.
    Cards {
        #[arg(long)]
        json: bool,
    },
    /// Log the card in READER in through the running agent.
    Login {
        #[arg(long)]
        reader: Option<String>,
        /// Read the PIN from the first line of standard input.
        #[arg(long, required = true)]
        pin_stdin: bool,
    },
    /// End the session of a card (the acting card if no reader is named).
    Logout {
        #[arg(long)]
        reader: Option<String>,
    },
    /// What the running agent shows: readers, cards, who is logged in.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The drafts awaiting the logged-in doctor's (or pharmacist's) signature.
    Queue {
        #[arg(long)]
        json: bool,
    },
    /// Confirm drafts with the card's signature key (FLOW-2): prints exactly
    /// the bytes to be signed for each, then reads the signature PIN once.
    Confirm {
        /// Draft id (repeat for a batch: one PIN entry, a signature each).
        #[arg(long = "draft", required = true)]
        drafts: Vec<String>,
        /// Read the signature PIN from the first line of standard input.
        #[arg(long, required = true)]
        pin_stdin: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let lang = Lang::from_tag(&cli.lang).unwrap_or(Lang::En);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("card-agent: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => run(&config(cli.config.as_deref())?).await.map(|()| ExitCode::SUCCESS),
            Some(Command::Cards { json }) => {
                let config = cli.config.as_deref().map(Config::load).transpose()?;
                list_cards(config.as_ref(), json, lang).await
            }
            Some(Command::Login { reader, pin_stdin: _ }) => login(&config(cli.config.as_deref())?, reader, lang).await,
            Some(Command::Logout { reader }) => logout(&config(cli.config.as_deref())?, reader, lang).await,
            Some(Command::Status { json }) => status(&config(cli.config.as_deref())?, json, lang).await,
            Some(Command::Queue { json }) => queue(&config(cli.config.as_deref())?, json, lang).await,
            Some(Command::Confirm { drafts, pin_stdin: _ }) => {
                confirm(&config(cli.config.as_deref())?, &drafts, lang).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("card-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn config(path: Option<&Path>) -> Result<Config> {
    let path = path.context("--config FILE is required (or set CARD_AGENT_CONFIG)")?;
    Ok(Config::load(path)?)
}

async fn run(config: &Config) -> Result<()> {
    let api_token = token::load_or_create(&config.api.token_file)?;
    let csrf = token::random_token()?;
    let agent = Agent::new(config.clone()).context("gateway or terminal credentials")?;
    let listener = tokio::net::TcpListener::bind(config.ui.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.ui.address))?;
    let address = listener.local_addr()?;
    agent.spawn_watcher();
    agent.spawn_idle_lock();
    let server = Arc::new(Server { agent, csrf, api_token, address, ui_proof: Default::default() });
    tracing::info!(%address, gateway = %config.gateway.address, "card-agent ready: open http://{address}/");
    // Lets scripts and tests find the address when the port was 0.
    println!("card-agent listening on http://{address}/");
    tokio::select! {
        r = card_agent::server::serve(server, listener) => r.context("local server")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    Ok(())
}

fn pin_text(pin: Option<PinState>, lang: Lang) -> String {
    match (pin, lang) {
        (Some(PinState::TriesLeft { tries_left }), Lang::En) => format!("{tries_left} tries left"),
        (Some(PinState::TriesLeft { tries_left }), Lang::Ja) => format!("残り {tries_left} 回"),
        (Some(PinState::Verified), Lang::En) => "verified".into(),
        (Some(PinState::Verified), Lang::Ja) => "照合済み".into(),
        (Some(PinState::Blocked), Lang::En) => "BLOCKED".into(),
        (Some(PinState::Blocked), Lang::Ja) => "ロック中".into(),
        (None, _) => "-".into(),
    }
}

async fn list_cards(config: Option<&Config>, as_json: bool, lang: Lang) -> Result<ExitCode> {
    let reports: Vec<CardReport> = tokio::task::spawn_blocking({
        let config = config.cloned();
        move || -> Result<Vec<CardReport>> {
            let ctx = PcscContext::establish()?;
            let cache = CertificateCache::with_capacity(8);
            Ok(ctx
                .readers()?
                .into_iter()
                .filter(|r| config.as_ref().is_none_or(|c| c.watches(r)))
                .map(|r| cards::inspect(&ctx, &cache, &r))
                .collect())
        }
    })
    .await??;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    if reports.is_empty() {
        println!(
            "{}",
            if lang == Lang::Ja {
                "カードリーダーがありません。"
            } else {
                "No card reader is connected."
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &reports {
        println!("{}", r.reader);
        if !r.card_present {
            println!("  {}", if lang == Lang::Ja { "カードなし" } else { "no card" });
            continue;
        }
        if let Some(h) = &r.holder {
            let name = match (&h.name, &h.name_kanji) {
                (Some(n), Some(k)) => format!("{n} ({k})"),
                (Some(n), None) => n.clone(),
                (None, Some(k)) => k.clone(),
                (None, None) => "-".into(),
            };
            println!("  holder:      {name}");
            println!("  id:          {}", h.person_id.as_deref().unwrap_or("-"));
            match (&h.profession, h.kind) {
                (Some(p), _) => println!("  profession:  {}", i18n::profession_name(p, lang)),
                (None, "assistant") => println!("  profession:  {}", i18n::profession_name("assistant", lang)),
                _ => {}
            }
            if let Some(i) = &h.institution {
                println!("  institution: {i}");
            }
        }
        println!("  PIN:         {}", pin_text(r.pin, lang));
        if let Some(e) = &r.error {
            println!("  error:       {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn agent_call(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    lang: Lang,
) -> Result<(u16, serde_json::Value)> {
    let token = token::read(&config.api.token_file)?;
    Ok(local_client::call(config.ui.address, &token, method, path, body, lang.tag()).await?)
}

fn report_refusal(body: &serde_json::Value) -> ExitCode {
    eprintln!(
        "card-agent: {} ({})",
        body["message"].as_str().unwrap_or("refused"),
        body["error"].as_str().unwrap_or("error")
    );
    ExitCode::from(1)
}

async fn login(config: &Config, reader: Option<String>, lang: Lang) -> Result<ExitCode> {
    if std::io::stdin().is_terminal() {
        eprintln!("PIN (then Enter):");
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("reading the PIN from standard input")?;
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    let body = Zeroizing::new(serde_json::to_vec(&json!({ "reader": reader, "pin": pin.as_str() }))?);
    let (status, answer) = agent_call(config, "POST", "/api/v1/login", Some(body.to_vec()), lang).await?;
    if status != 200 {
        return Ok(report_refusal(&answer));
    }
    let p = &answer["person"];
    println!(
        "logged in: {} ({}, {}) with the card in {}",
        p["name"].as_str().unwrap_or("-"),
        p["role"].as_str().unwrap_or("-"),
        p["institution"].as_str().unwrap_or("-"),
        answer["reader"].as_str().unwrap_or("-")
    );
    Ok(ExitCode::SUCCESS)
}

async fn logout(config: &Config, reader: Option<String>, lang: Lang) -> Result<ExitCode> {
    let body = serde_json::to_vec(&json!({ "reader": reader }))?;
    let (status, answer) = agent_call(config, "POST", "/api/v1/logout", Some(body), lang).await?;
    if status != 200 {
        return Ok(report_refusal(&answer));
    }
    println!("logged out");
    Ok(ExitCode::SUCCESS)
}

async fn status(config: &Config, as_json: bool, lang: Lang) -> Result<ExitCode> {
    let (code, answer) = agent_call(config, "GET", "/api/v1/status", None, lang).await?;
    if code != 200 {
        return Ok(report_refusal(&answer));
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("locked: {}", answer["locked"].as_bool().unwrap_or(false));
    for r in answer["readers"].as_array().into_iter().flatten() {
        let reader = r["reader"].as_str().unwrap_or("-");
        let who = &r["card"]["session"]["person"];
        match (r["card"].is_null(), who.is_null()) {
            (true, _) => println!("{reader}: no card"),
            (false, true) => println!("{reader}: card inserted, not logged in"),
            (false, false) => println!(
                "{reader}: logged in as {} ({})",
                who["name"].as_str().unwrap_or("-"),
                who["role"].as_str().unwrap_or("-")
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn queue(config: &Config, as_json: bool, lang: Lang) -> Result<ExitCode> {
    let (code, answer) = agent_call(config, "GET", "/api/v1/gateway/v1/queue", None, lang).await?;
    if code != 200 {
        return Ok(report_refusal(&answer));
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let drafts = answer["drafts"].as_array().cloned().unwrap_or_default();
    if drafts.is_empty() {
        println!(
            "{}",
            if lang == Lang::Ja {
                "確認待ちの下書きはありません。"
            } else {
                "Nothing awaits your signature."
            }
        );
    }
    for d in drafts {
        println!(
            "{}  v{}  patient {}  from {}  {}",
            d["id"].as_str().unwrap_or("-"),
            d["version"],
            d["patient"].as_str().unwrap_or("-"),
            d["assistant"].as_str().unwrap_or("-"),
            d["content"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows each draft's signed bytes, reads the signature PIN, confirms.
async fn confirm(config: &Config, drafts: &[String], lang: Lang) -> Result<ExitCode> {
    use base64::Engine;
    let mut items = Vec::new();
    for draft in drafts {
        let path = format!("/api/v1/gateway/v1/drafts/{draft}/signing-bytes");
        let (code, answer) = agent_call(config, "GET", &path, None, lang).await?;
        if code != 200 {
            return Ok(report_refusal(&answer));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer["document"].as_str().unwrap_or_default())
            .context("the gateway's document is not base64")?;
        // Exactly the bytes the card will sign (RFC 8785 JSON), then their hash.
        println!("--- {draft} v{} ---", answer["version"]);
        println!("{}", String::from_utf8_lossy(&bytes));
        println!("SHA-256 {}", answer["sha256"].as_str().unwrap_or("-"));
        items.push(json!({ "draft": draft, "version": answer["version"], "sha256": answer["sha256"] }));
    }
    if std::io::stdin().is_terminal() {
        eprintln!(
            "{}",
            if lang == Lang::Ja {
                "署名用の暗証番号（Enter で確定）:"
            } else {
                "Signature PIN (then Enter):"
            }
        );
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("reading the PIN from standard input")?;
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    let body = Zeroizing::new(serde_json::to_vec(&json!({ "items": items, "pin": pin.as_str() }))?);
    let (status, answer) = agent_call(config, "POST", "/api/v1/confirm", Some(body.to_vec()), lang).await?;
    if status != 200 {
        return Ok(report_refusal(&answer));
    }
    let records: Vec<serde_json::Value> = match answer["results"].as_array() {
        Some(results) => results.clone(),
        None => vec![json!({ "draft": drafts[0], "record": answer })],
    };
    let mut failed = false;
    for r in records {
        match r["record"]["id"].as_str() {
            Some(id) => println!("confirmed {} → record {id}", r["draft"].as_str().unwrap_or("-")),
            None => {
                failed = true;
                eprintln!(
                    "refused {}: {}",
                    r["draft"].as_str().unwrap_or("-"),
                    r["error"]["message"].as_str().unwrap_or("-")
                );
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
