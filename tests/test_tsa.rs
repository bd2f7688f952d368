//! A test time-stamping authority: OpenSSL's `openssl ts -reply` (an RFC
//! 3161 implementation this project did not write) behind a small HTTP
//! endpoint, signing with the certificate `hpki-certs tsa issue` writes
//! (`tests/openssl/test-tsa.cnf`). It can be told to misbehave the ways a
//! real TSA or a man in the middle could: answer for another nonce or
//! another imprint, reject the request, or not answer at all. Its clock
//! can be moved ahead (`faketime`, libfaketime from Debian) for tests that
//! travel years into a record's retention.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use der::{Decode, Encode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode, header};
use hyper_util::rt::TokioIo;

/// How the TSA answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Time-stamps exactly what was asked.
    Honest,
    /// Time-stamps the request with its nonce changed (a replayed or
    /// substituted answer).
    WrongNonce,
    /// Time-stamps another hash than the one asked for.
    WrongImprint,
    /// Answers with an RFC 3161 rejection (an unaccepted policy).
    Rejecting,
    /// Accepts connections and closes them unanswered.
    Down,
}

pub struct TestTsa {
    pub url: String,
    /// `tsa.pem`, `tsa.key`, `ca-chain.pem` and OpenSSL's serial file.
    pub dir: PathBuf,
    behaviour: Arc<Mutex<Behaviour>>,
    /// Requests answered with a token.
    stamped: Arc<AtomicU64>,
    /// Days OpenSSL's clock runs ahead of the machine's.
    ahead_days: Arc<AtomicI64>,
    /// Time spent making answers (µs, summed over concurrent requests).
    busy_micros: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestTsa {
    /// Issues the TSA's certificate from `ca` into `dir` (which must not
    /// exist yet) and serves on a free loopback port.
    pub async fn start(ca: &mut hpki_ca::CaDir, dir: &Path) -> Result<TestTsa> {
        TestTsa::start_named(ca, dir, "Test TSA", 30).await
    }

    /// [`TestTsa::start`] with a certificate of this name and validity.
    pub async fn start_named(ca: &mut hpki_ca::CaDir, dir: &Path, name: &str, valid_days: i64) -> Result<TestTsa> {
        ca.issue_tsa(&hpki_ca::TsaRequest { name: name.into(), valid_days }, dir)
            .context("issuing the test TSA's certificate")?;
        TestTsa::serve(dir).await
    }

    /// Serves with the certificate `hpki-certs tsa issue` already wrote
    /// into `dir` (say, one issued with the clock moved back).
    pub async fn serve(dir: &Path) -> Result<TestTsa> {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("openssl/test-tsa.cnf");
        std::fs::copy(&config, dir.join("tsa.cnf")).context("copying test-tsa.cnf")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let behaviour = Arc::new(Mutex::new(Behaviour::Honest));
        let stamped = Arc::new(AtomicU64::new(0));
        let ahead_days = Arc::new(AtomicI64::new(0));
        let busy_micros = Arc::new(AtomicU64::new(0));
        let (b, s, d, a) = (behaviour.clone(), stamped.clone(), dir.to_owned(), ahead_days.clone());
        let busy = busy_micros.clone();
        let task = tokio::spawn(async move {
            let requests = Arc::new(AtomicU64::new(0));
            while let Ok((tcp, _)) = listener.accept().await {
                let now = *b.lock().unwrap_or_else(PoisonError::into_inner);
                if now == Behaviour::Down {
                    drop(tcp);
                    continue;
                }
                let (b, s, d, a, requests, busy) =
                    (b.clone(), s.clone(), d.clone(), a.clone(), requests.clone(), busy.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (b, s, d, a, requests, busy) =
                            (b.clone(), s.clone(), d.clone(), a.clone(), requests.clone(), busy.clone());
                        async move {
                            let query = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                            let behaviour = *b.lock().unwrap_or_else(PoisonError::into_inner);
                            let n = requests.fetch_add(1, Ordering::SeqCst);
                            let ahead = a.load(Ordering::SeqCst);
                            let started = std::time::Instant::now();
                            let answer =
                                tokio::task::spawn_blocking(move || reply(&d, n, &query, behaviour, ahead)).await;
                            busy.fetch_add(started.elapsed().as_micros() as u64, Ordering::SeqCst);
                            match answer {
                                Ok(Ok(tsr)) => {
                                    s.fetch_add(1, Ordering::SeqCst);
                                    Response::builder()
                                        .header(header::CONTENT_TYPE, "application/timestamp-reply")
                                        .body(Full::new(Bytes::from(tsr)))
                                }
                                Ok(Err(e)) => Response::builder()
                                    .status(StatusCode::BAD_REQUEST)
                                    .body(Full::new(Bytes::from(format!("{e:#}")))),
                                Err(e) => Response::builder()
                                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                                    .body(Full::new(Bytes::from(e.to_string()))),
                            }
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
                });
            }
        });
        Ok(TestTsa {
            url: format!("http://{addr}/tsa"),
            dir: dir.to_owned(),
            behaviour,
            stamped,
            ahead_days,
            busy_micros,
            task,
        })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// Runs OpenSSL's clock `days` ahead from now on: its genTime is then.
    pub fn set_days_ahead(&self, days: i64) {
        self.ahead_days.store(days, Ordering::SeqCst);
    }

    /// Seconds spent answering so far, summed over concurrent requests
    /// (what a benchmark attributes to the TSA).
    pub fn busy_seconds(&self) -> f64 {
        self.busy_micros.load(Ordering::SeqCst) as f64 / 1e6
    }

    /// Tokens issued so far (misbehaving answers included).
    pub fn stamped(&self) -> u64 {
        self.stamped.load(Ordering::SeqCst)
    }
}

/// OpenSSL's answer to `query`, after changing it as `behaviour` says.
fn reply(dir: &Path, n: u64, query: &[u8], behaviour: Behaviour, ahead_days: i64) -> Result<Vec<u8>> {
    let mut req = x509_tsp::TimeStampReq::from_der(query).context("not a TimeStampReq")?;
    match behaviour {
        Behaviour::Honest | Behaviour::Down => {}
        Behaviour::WrongNonce => {
            let mut nonce = req.nonce.as_ref().context("the request has no nonce")?.as_bytes().to_vec();
            let last = nonce.len() - 1;
            nonce[last] ^= 1;
            req.nonce = Some(der::asn1::Int::new(&nonce)?);
        }
        Behaviour::WrongImprint => {
            let mut hash = req.message_imprint.hashed_message.as_bytes().to_vec();
            hash[0] ^= 0xff;
            req.message_imprint.hashed_message = der::asn1::OctetString::new(hash)?;
        }
        Behaviour::Rejecting => req.req_policy = Some(der::oid::ObjectIdentifier::new_unwrap("1.2.3.4.5")),
    }
    let (q, r, serial) = (format!("q{n}.tsq"), format!("r{n}.tsr"), format!("serial{n}"));
    std::fs::write(dir.join(&q), req.to_der()?)?;
    // Each request's own serial file, holding the request's number: unique
    // per TSA, as RFC 3161 §2.4.2 asks, without processes sharing a file.
    // Hex with an even number of digits: OpenSSL refuses a "short line".
    std::fs::write(dir.join(&serial), format!("{:016x}\n", n + 1))?;
    let out = crate::clock_ahead("openssl", ahead_days)
        .args(["ts", "-reply", "-config", "tsa.cnf", "-queryfile", &q, "-signer", "tsa.pem", "-inkey", "tsa.key"])
        .args(["-chain", "ca-chain.pem", "-out", &r])
        .env("TSA_SERIAL_FILE", format!("./{serial}"))
        .current_dir(dir)
        .output()
        .context("running openssl ts -reply")?;
    anyhow::ensure!(out.status.success(), "openssl ts -reply: {}", String::from_utf8_lossy(&out.stderr));
    Ok(std::fs::read(dir.join(&r))?)
}
