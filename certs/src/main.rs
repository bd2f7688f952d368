//! `hpki-certs`: the IT-staff tool for the product's test PKI.

mod batch;
mod verify;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use hpki_ca::{AssistantRequest, CaDir, CardRequest, Reason, TerminalRequest};
use hpki_card::CardVariant;
use hpki_profile::Profession;
use serde::Serialize;

/// Test CAs, test HPKI and assistant cards (virtual card images), terminal
/// credentials, revocation, CRLs, and certificate verification.
#[derive(Parser)]
#[command(name = "hpki-certs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certification authorities.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Test cards (written as virtual card images).
    #[command(subcommand)]
    Card(CardCommand),
    /// Terminal certificates for mTLS ("connection information").
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// TLS server certificates for the gateway's listeners.
    #[command(subcommand)]
    Server(ServerCommand),
    /// A time-stamping authority's certificate, for a test TSA (RFC 3161).
    #[command(subcommand)]
    Tsa(TsaCommand),
    /// IKE certificates and swanctl configurations for a clinic's IPsec link
    /// to the data centre (NET-1).
    #[command(subcommand)]
    Vpn(VpnCommand),
    /// Revoke a certificate issued from the CA directory.
    Revoke(RevokeArgs),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Validate a certificate (DER or PEM) along the HPKI profile.
    Verify(verify::VerifyArgs),
    /// Show what a certificate says (DER or PEM).
    Inspect(verify::InspectArgs),
    /// The issuance ledger: who issued or revoked what, when, and who checked
    /// the holder's identity and licence.
    Ledger(LedgerArgs),
}

#[derive(Args)]
struct DirArg {
    /// The CA directory.
    #[arg(long, env = "HPKI_CA_DIR")]
    dir: PathBuf,
}

/// Where new TLS-style credentials go, for how long, and how to say so.
#[derive(Args)]
struct CredentialsOut {
    /// A new (or empty) directory.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = hpki_ca::DEFAULT_TERMINAL_DAYS)]
    valid_days: i64,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Args)]
struct JsonArg {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the test hierarchy: root, HPKI authentication and signature
    /// CAs, institution CA (assistant cards), terminal CA. Keys are 0600.
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// Base URL written into cRLDistributionPoints.
        #[arg(long, default_value = hpki_ca::DEFAULT_CRL_BASE_URL)]
        crl_base_url: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List the CAs of a directory and what they issued.
    Show {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Args)]
struct CardCommon {
    /// PIN of both card applications (4–16 printable ASCII, not guessable);
    /// `-` reads it from standard input.
    #[arg(long)]
    pin: String,
    /// Where to write the card image; must not exist.
    #[arg(long)]
    out: PathBuf,
    /// Card command variant: jma (the real JMA card) or jahis.
    #[arg(long, default_value = "jma")]
    variant: CardVariant,
    /// Wrong PINs allowed before the card blocks.
    #[arg(long, default_value_t = 5)]
    retry_limit: u8,
    /// Certificate validity in days.
    #[arg(long, default_value_t = hpki_ca::DEFAULT_CARD_DAYS)]
    valid_days: i64,
}

#[derive(Subcommand)]
enum CardCommand {
    /// Issue a licensed professional's test HPKI card.
    Issue {
        #[command(flatten)]
        dir: DirArg,
        /// doctor, dentist, pharmacist, nurse, dietitian, … (or the hcRole
        /// text, or the Japanese name).
        #[arg(long)]
        profession: Profession,
        /// Name in romaji (Subject CN).
        #[arg(long)]
        name: String,
        /// Name in kanji (subjectAltName directoryName).
        #[arg(long)]
        name_kanji: Option<String>,
        /// Institution in romaji (Subject O).
        #[arg(long)]
        institution: Option<String>,
        /// Institution in kanji.
        #[arg(long)]
        institution_kanji: Option<String>,
        /// Licence number (checked by the person named in --verified-by).
        #[arg(long)]
        license_no: String,
        /// Who checked identity and licence (recorded in the ledger).
        #[arg(long)]
        verified_by: String,
        #[command(flatten)]
        common: CardCommon,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Issue an assistant's institution PKI card.
    IssueAssistant {
        #[command(flatten)]
        dir: DirArg,
        /// Institution in romaji (Subject O): the gateway checks it against
        /// the terminal's institution.
        #[arg(long)]
        institution: String,
        #[arg(long)]
        institution_kanji: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_kanji: Option<String>,
        /// Staff id at the institution (Subject serialNumber).
        #[arg(long)]
        staff_id: String,
        #[command(flatten)]
        common: CardCommon,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Issue many cards from a CSV file (see docs/hpki-certs.md); a bad row
    /// is reported with its line number and the others go on.
    Batch {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Subcommand)]
enum TerminalCommand {
    /// Issue a terminal certificate and key into a new directory.
    Issue {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long)]
        institution: String,
        /// Terminal name (Subject CN).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        to: CredentialsOut,
    },
    /// A new key and certificate for the terminal an existing certificate
    /// names.
    Renew {
        #[command(flatten)]
        dir: DirArg,
        /// The terminal's current certificate.
        #[arg(long)]
        cert: PathBuf,
        #[command(flatten)]
        to: CredentialsOut,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Issue a server certificate and key (ECDSA P-256, serverAuth) from the
    /// service CA into a new directory; clients trust its `ca-chain.pem`.
    Issue {
        #[command(flatten)]
        dir: DirArg,
        /// Server name (Subject CN).
        #[arg(long)]
        name: String,
        /// DNS name the server is reached by; repeatable.
        #[arg(long)]
        dns: Vec<String>,
        /// IP address the server is reached by; repeatable.
        #[arg(long)]
        ip: Vec<std::net::IpAddr>,
        #[command(flatten)]
        to: CredentialsOut,
    },
}

#[derive(Subcommand)]
enum TsaCommand {
    /// Issue a TSA signing certificate and key (ECDSA P-256, critical
    /// extendedKeyUsage timeStamping) from the service CA into a new
    /// directory: `tsa.pem`, `tsa.key`, `ca-chain.pem`.
    Issue {
        #[command(flatten)]
        dir: DirArg,
        /// The TSA's name (Subject CN).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        to: CredentialsOut,
    },
}

#[derive(Subcommand)]
enum VpnCommand {
    /// Issue IKE certificates for a clinic's VPN endpoint and the data
    /// centre's from the VPN CA, and write a ready swanctl configuration for
    /// each side into OUT/clinic and OUT/dc (see docs/deploy.md).
    Issue {
        #[command(flatten)]
        dir: DirArg,
        /// Site name (lower-case letters, digits, '-'): the clinic's IKE
        /// identity is SITE.clinic.hpki-vpn.
        #[arg(long)]
        site: String,
        /// Where to write the two configuration directories; must not exist
        /// or be empty.
        #[arg(long)]
        out: PathBuf,
        /// The data centre endpoint's outside address.
        #[arg(long)]
        dc_addr: std::net::IpAddr,
        /// The clinic endpoint's outside address; default: any (dynamic).
        #[arg(long)]
        clinic_addr: Option<std::net::IpAddr>,
        /// The clinic LAN whose terminals reach the gateway (put it in the
        /// gateway's listener.allow).
        #[arg(long)]
        clinic_subnet: ipnet::IpNet,
        /// The data-centre network the gateway listens in.
        #[arg(long)]
        dc_subnet: ipnet::IpNet,
        /// The data centre's IKE identity.
        #[arg(long, default_value = hpki_ca::vpn::DEFAULT_DC_ID)]
        dc_id: String,
        /// Use strongSwan's userspace ESP (kernel-libipsec) in the written
        /// strongswan.conf, for kernels without ESP support.
        #[arg(long)]
        userspace_esp: bool,
        #[arg(long, default_value_t = hpki_ca::DEFAULT_TERMINAL_DAYS)]
        valid_days: i64,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Args)]
struct RevokeArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Serial number in hex (as `inspect` and `ledger` show it).
    #[arg(long)]
    serial: String,
    /// unspecified, key-compromise, affiliation-changed, superseded,
    /// cessation-of-operation, certificate-hold, privilege-withdrawn.
    #[arg(long)]
    reason: Reason,
    #[command(flatten)]
    json: JsonArg,
}

#[derive(Subcommand)]
enum CrlCommand {
    /// Write a fresh CRL of every CA into a directory (`<ca>.crl`, DER).
    Publish {
        #[command(flatten)]
        dir: DirArg,
        #[arg(long)]
        out: PathBuf,
        /// Time until nextUpdate (30m, 12h, 4d, 2w). Real HPKI CRLs: ~4 days.
        #[arg(long, default_value = "4d")]
        next_update: String,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Args)]
struct LedgerArgs {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    json: JsonArg,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hpki-certs: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Ca(CaCommand::Init { dir, crl_base_url, json }) => {
            let ca = CaDir::init(&dir.dir, &crl_base_url)?;
            let cas = ca_summaries(&ca)?;
            output(json.json, &cas, || {
                println!("Test CA hierarchy created in {}", dir.dir.display());
                for c in &cas {
                    println!("  {:<12} {}  (valid until {})", c.ca, c.subject, c.not_after);
                }
            })
        }
        Command::Ca(CaCommand::Show { dir, json }) => {
            let ca = CaDir::open(&dir.dir)?;
            let cas = ca_summaries(&ca)?;
            #[derive(Serialize)]
            struct Show<'a> {
                cas: &'a [CaSummary],
                issued: &'a [hpki_ca::IssuedCert],
            }
            output(json.json, &Show { cas: &cas, issued: ca.issued() }, || {
                for c in &cas {
                    println!("{:<12} {}  (valid until {})", c.ca, c.subject, c.not_after);
                }
                println!("\n{} certificates issued:", ca.issued().len());
                for i in ca.issued() {
                    let revoked = i
                        .revoked
                        .as_ref()
                        .map(|r| format!("  REVOKED {} ({})", r.date, r.reason.name()))
                        .unwrap_or_default();
                    println!("  {}  {:<12} {:?}  {}{revoked}", i.serial, i.ca.name(), i.kind, i.subject);
                }
            })
        }
        Command::Card(CardCommand::Issue {
            dir,
            profession,
            name,
            name_kanji,
            institution,
            institution_kanji,
            license_no,
            verified_by,
            common,
            json,
        }) => {
            let pin = read_pin(&common.pin)?;
            let mut ca = CaDir::open(&dir.dir)?;
            let req = CardRequest {
                profession,
                name,
                name_kanji,
                institution,
                institution_kanji,
                license_no,
                verified_by,
                pin: pin.to_string(),
                variant: common.variant,
                retry_limit: common.retry_limit,
                valid_days: common.valid_days,
            };
            let card = ca.issue_card(&req, &common.out)?;
            output(json.json, &card, || print_card(&card))
        }
        Command::Card(CardCommand::IssueAssistant {
            dir,
            institution,
            institution_kanji,
            name,
            name_kanji,
            staff_id,
            common,
            json,
        }) => {
            let pin = read_pin(&common.pin)?;
            let mut ca = CaDir::open(&dir.dir)?;
            let req = AssistantRequest {
                institution,
                institution_kanji,
                name,
                name_kanji,
                staff_id,
                pin: pin.to_string(),
                variant: common.variant,
                retry_limit: common.retry_limit,
                valid_days: common.valid_days,
            };
            let card = ca.issue_assistant_card(&req, &common.out)?;
            output(json.json, &card, || print_card(&card))
        }
        Command::Card(CardCommand::Batch { dir, csv, out_dir, json }) => {
            batch::run(&dir.dir, &csv, &out_dir, json.json)
        }
        Command::Terminal(TerminalCommand::Issue { dir, institution, name, to }) => {
            let req = TerminalRequest { institution, name, valid_days: to.valid_days };
            credentials(&dir, to, |ca, out| ca.issue_terminal(&req, out))
        }
        Command::Terminal(TerminalCommand::Renew { dir, cert, to }) => {
            let valid_days = to.valid_days;
            credentials(&dir, to, |ca, out| ca.renew_terminal(&cert, out, valid_days))
        }
        Command::Server(ServerCommand::Issue { dir, name, dns, ip, to }) => {
            let req = hpki_ca::ServerRequest { name, dns, ips: ip, valid_days: to.valid_days };
            credentials(&dir, to, |ca, out| ca.issue_server(&req, out))
        }
        Command::Tsa(TsaCommand::Issue { dir, name, to }) => {
            let req = hpki_ca::TsaRequest { name, valid_days: to.valid_days };
            credentials(&dir, to, |ca, out| ca.issue_tsa(&req, out))
        }
        Command::Vpn(VpnCommand::Issue {
            dir,
            site,
            out,
            dc_addr,
            clinic_addr,
            clinic_subnet,
            dc_subnet,
            dc_id,
            userspace_esp,
            valid_days,
            json,
        }) => {
            let mut ca = CaDir::open(&dir.dir)?;
            let req = hpki_ca::VpnRequest {
                site,
                clinic_addr,
                dc_addr,
                clinic_subnet,
                dc_subnet,
                dc_id,
                userspace_esp,
                valid_days,
            };
            let v = ca.issue_vpn(&req, &out)?;
            output(json.json, &v, || {
                println!("VPN credentials and swanctl configurations written to {}", v.out.display());
                for (side, s) in [("clinic", &v.clinic), ("data centre", &v.dc)] {
                    println!(
                        "  {side:<12} {}  id {}  serial {}  valid until {}",
                        s.dir.display(),
                        s.id,
                        s.serial,
                        s.not_after
                    );
                }
                println!("Put {} in the gateway's listener.allow; see docs/deploy.md.", req.clinic_subnet);
            })
        }
        Command::Revoke(RevokeArgs { dir, serial, reason, json }) => {
            let mut ca = CaDir::open(&dir.dir)?;
            let c = ca.revoke(&serial, reason)?;
            output(json.json, &c, || {
                println!("Revoked {} ({}): {}", c.serial, reason.name(), c.subject);
                println!("Publish the CRLs (hpki-certs crl publish) for the gateway to see it.");
            })
        }
        Command::Crl(CrlCommand::Publish { dir, out, next_update, json }) => {
            let next = hpki_ca::parse_duration(&next_update)?;
            let mut ca = CaDir::open(&dir.dir)?;
            let crls = ca.publish_crls(&out, next)?;
            output(json.json, &crls, || {
                for c in &crls {
                    println!(
                        "{}  #{}  {} revoked  next update {}",
                        c.path.display(),
                        c.crl_number,
                        c.revoked,
                        c.next_update
                    );
                }
            })
        }
        Command::Verify(args) => verify::verify(args),
        Command::Inspect(args) => verify::inspect(args),
        Command::Ledger(LedgerArgs { dir, json }) => {
            let ca = CaDir::open(&dir.dir)?;
            let entries = ca.ledger()?;
            output(json.json, &entries, || {
                for e in &entries {
                    let who = e.holder.as_deref().unwrap_or("-");
                    let checked = e.verified_by.as_ref().map(|v| format!(" checked by {v}")).unwrap_or_default();
                    let what = [
                        e.profession.as_deref(),
                        e.institution.as_deref(),
                        e.license_no.as_deref().map(|_| "licence"),
                        e.detail.as_deref(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                    println!(
                        "{}  {:<20} {:<10} {who} [{what}]{checked} {}",
                        e.time,
                        e.action,
                        e.operator,
                        e.serials.join(" ")
                    );
                }
            })
        }
    }
}

#[derive(Serialize)]
struct CaSummary {
    ca: String,
    subject: String,
    not_after: String,
    certificate: PathBuf,
}

fn ca_summaries(ca: &CaDir) -> Result<Vec<CaSummary>> {
    ca.roles()
        .into_iter()
        .map(|role| {
            let holder = hpki_profile::read_holder(&ca.ca_cert_der(role)?)?;
            Ok(CaSummary {
                ca: role.name().into(),
                subject: holder.subject,
                not_after: hpki_profile::validate::rfc3339(holder.not_after),
                certificate: ca.path().join(role.name()).join("cert.pem"),
            })
        })
        .collect()
}

fn print_card(card: &hpki_ca::IssuedCard) {
    println!("Card image written to {}", card.image.display());
    println!("  holder          {}", card.holder);
    println!("  person id       {}", card.person_id);
    println!("  authentication  serial {}", card.authentication_serial);
    println!("  signature       serial {}", card.signature_serial);
    println!("  valid until     {}", card.not_after);
}

/// Issues credentials into `to.out` from the CA directory and says so.
fn credentials(
    dir: &DirArg,
    to: CredentialsOut,
    issue: impl FnOnce(&mut CaDir, &std::path::Path) -> Result<hpki_ca::IssuedTerminal, hpki_ca::CaError>,
) -> Result<ExitCode> {
    let mut ca = CaDir::open(&dir.dir)?;
    let t = issue(&mut ca, &to.out)?;
    output(to.json.json, &t, || print_terminal(&t))
}

fn print_terminal(t: &hpki_ca::IssuedTerminal) {
    println!("Credentials written to {}", t.dir.display());
    println!("  {}  serial {}  valid until {}", t.subject, t.serial, t.not_after);
    println!(
        "  certificate {}, key {} (0600), CA chain {}",
        t.certificate.display(),
        t.key.display(),
        t.ca_chain.display()
    );
}

/// Prints `value` as JSON, or runs the human-readable printer.
fn output<T: Serialize>(json: bool, value: &T, human: impl FnOnce()) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(ExitCode::SUCCESS)
}

/// The PIN from the command line, or from standard input for `-`.
fn read_pin(arg: &str) -> Result<zeroize::Zeroizing<String>> {
    if arg != "-" {
        return Ok(zeroize::Zeroizing::new(arg.to_owned()));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).context("reading the PIN from standard input")?;
    let pin = zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    Ok(pin)
}
