//! The clinic day the backup tests put at risk: an assistant card and a
//! doctor's card in a private pcscd, both logged in from one terminal, a
//! patient with an open encounter, drafts written by the assistant and
//! confirmed with the doctor's signature card; afterwards, what the doctor
//! can read through a (restarted) gateway.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::{HpkiCard, PcscContext};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::{CardProcess, PrivatePcscd};

use hpki_gateway::audit::AuditRecord;
use hpki_gateway::store::Store;

use crate::{
    GatewayProcess, TerminalClient, TerminalCreds, World, WorldOptions, session, signed_attributes, signed_confirm,
};

pub const CLINIC: &str = "Kanazawa Clinic";

/// A 2xx answer's body, or an error naming what came instead.
pub fn ok(answer: (u16, Value)) -> Result<Value> {
    let (status, body) = answer;
    anyhow::ensure!((200..300).contains(&status), "expected success, got {status}: {body}");
    Ok(body)
}

pub struct ClinicStory {
    pub world: World,
    pub creds: TerminalCreds,
    pub doctor: String,
    pub patient: String,
    pub client: TerminalClient,
    encounter: Value,
    assistant_session: String,
    doctor_session: String,
    doctor_card: HpkiCard,
    _assistant_card: HpkiCard,
    _cards: [CardProcess; 2],
    _pcscd: PrivatePcscd,
}

impl ClinicStory {
    pub async fn start(opts: WorldOptions) -> Result<ClinicStory> {
        let mut world = World::start(opts).await?;
        let creds = world.terminal(CLINIC, "desk-1")?;
        let assistant_image = world.assistant_card(CLINIC, "A-001").await?;
        let assistant = format!("{CLINIC}/A-001");
        let (doctor_image, doctor) = world.person_card(Profession::Doctor, "300001", CLINIC).await?;
        world.link(&assistant, &doctor).await?;

        let pcscd = crate::private_pcscd()?;
        let cards = [CardProcess::start(&pcscd, 0, &assistant_image)?, CardProcess::start(&pcscd, 1, &doctor_image)?];
        let ctx = PcscContext::establish()?;
        ctx.wait_for_card(&pcscd.reader(0), Duration::from_secs(5))?;
        ctx.wait_for_card(&pcscd.reader(1), Duration::from_secs(5))?;
        let mut a_card = ctx.connect(&pcscd.reader(0))?;
        let mut d_card = ctx.connect(&pcscd.reader(1))?;

        let mut client = world.connect(&creds).await?;
        let a = session(&mut client, &mut a_card).await?;
        let body = json!({"name": "Kato Ichiro", "birth_date": "1948-11-03"});
        let patient = ok(client.post("/v1/patients", &body, Some(&a)).await?)?;
        let patient = patient["id"].as_str().context("patient id")?.to_owned();
        let encounter = ok(client.post("/v1/encounters", &json!({"patient": patient}), Some(&a)).await?)?;
        let d = session(&mut client, &mut d_card).await?;
        Ok(ClinicStory {
            world,
            creds,
            doctor,
            patient,
            client,
            encounter,
            assistant_session: a,
            doctor_session: d,
            doctor_card: d_card,
            _assistant_card: a_card,
            _cards: cards,
            _pcscd: pcscd,
        })
    }

    /// The open encounter's id.
    pub fn encounter_id(&self) -> &str {
        self.encounter["id"].as_str().unwrap_or_default()
    }

    /// The doctor's and the assistant's sessions.
    pub fn doctor_session(&self) -> &str {
        &self.doctor_session
    }

    pub fn assistant_session(&self) -> &str {
        &self.assistant_session
    }

    /// Progress notes numbered `notes`, each drafted by the assistant and
    /// confirmed with the doctor's signature card; the new record ids.
    pub async fn confirm(&mut self, notes: Range<usize>) -> Result<Vec<String>> {
        let mut records = Vec::new();
        for n in notes {
            let (draft, _, body) = self.signed_draft(n).await?;
            let record = ok(self.send_confirm(&draft, &body).await?)?;
            records.push(record["id"].as_str().context("record id")?.to_owned());
        }
        Ok(records)
    }

    /// Progress note `n` drafted by the assistant, and the confirm body the
    /// doctor's card signed for it (signed attributes and signature): the
    /// draft id, the `signed-attributes` answer (with the document) and
    /// the body.
    pub async fn signed_draft(&mut self, n: usize) -> Result<(String, Value, Value)> {
        let (a, d) = (&self.assistant_session, &self.doctor_session);
        let content = json!({"type": "progress_note", "note": note(n)});
        let body = json!({"encounter": self.encounter["id"], "doctor": self.doctor, "content": content});
        let draft = ok(self.client.post("/v1/drafts", &body, Some(a)).await?)?;
        let id = draft["id"].as_str().context("draft id")?.to_owned();
        let signing = ok(signed_attributes(&mut self.client, &mut self.doctor_card, &id, None, d).await?)?;
        let body = signed_confirm(&mut self.doctor_card, &signing)?;
        Ok((id, signing, body))
    }

    /// The doctor's confirm of `draft` with `body`, as answered.
    pub async fn send_confirm(&mut self, draft: &str, body: &Value) -> Result<(u16, Value)> {
        self.client.post(&format!("/v1/drafts/{draft}/confirm"), body, Some(&self.doctor_session)).await
    }

    /// The doctor logs in again at the gateway on `listen` (typically a
    /// restarted process) and reads the patient's records: their ids,
    /// sorted, and the whole answer.
    pub async fn records_at(&mut self, listen: SocketAddr) -> Result<(Vec<String>, Value)> {
        let server_ca = self.world.path("server/ca-chain.pem");
        let mut client = TerminalClient::connect(listen, &server_ca, &self.creds).await?;
        let d = session(&mut client, &mut self.doctor_card).await?;
        let read = ok(client.get(&format!("/v1/patients/{}/records", self.patient), Some(&d)).await?)?;
        let mut ids: Vec<String> = read["records"]
            .as_array()
            .context("records")?
            .iter()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect();
        ids.sort();
        Ok((ids, read))
    }
}

impl ClinicStory {
    /// After a restore: the audit chain verifies (`hpki-gateway audit
    /// verify`), a gateway process started on the restored store shows the
    /// doctor exactly `records` (the last with its content), and the
    /// restored log names every one's confirmation. The restored log, for
    /// the caller's own checks.
    pub async fn check_restored(&mut self, records: &[String]) -> Result<Vec<AuditRecord>> {
        let config = self.world.config_path();
        let out = crate::gateway_cli(&config, &["audit", "verify"])?;
        anyhow::ensure!(out.starts_with("audit chain intact"), "{out}");
        let (process_config, listen, ops) = self.world.process_config()?;
        let _gateway = GatewayProcess::start(&process_config, ops)?;
        let (got, read) = self.records_at(listen).await?;
        let mut want = records.to_vec();
        want.sort();
        anyhow::ensure!(got == want, "records after the restore: {got:?}, expected {want:?}: {read}");
        let last = note(records.len() - 1);
        anyhow::ensure!(read.to_string().contains(&last), "{last:?} is not readable: {read}");
        let store = Store::open(&self.world.gw.config.store_config()).await?;
        let audit = store.audit_page(0, 1_000_000).await?;
        store.close().await;
        for r in records {
            let confirmed =
                |e: &AuditRecord| e.event.action == "draft.confirm" && e.event.object.ends_with(&format!("record:{r}"));
            anyhow::ensure!(audit.iter().any(confirmed), "no confirmation of {r} in the restored log");
        }
        Ok(audit)
    }
}

/// The text of progress note `n`.
pub fn note(n: usize) -> String {
    format!("経過記録 {n}")
}
