//! The audit log (LOG-1, LOG-2): append-only and hash-chained.
//!
//! Entry n stores `hash_n = SHA-256(prev_hash ‖ fields_n)` with
//! `prev_hash = hash_{n-1}` (32 zero bytes for the first) and every field
//! length-prefixed, so a changed, removed or reordered entry breaks the chain
//! at a place `verify` names. The database refuses UPDATE and DELETE on the
//! table (triggers); the chain catches what bypasses them.

pub mod action;
pub mod budget;
pub mod checkpoint;
pub mod outbox;
pub mod writer;

pub use action::{Action, Outcome};

use ring::digest::{Context, SHA256};

/// One audited event, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct AuditEvent {
    /// Person id, `admin:<name>`, `terminal:<institution>/<name>`, or `-`.
    pub actor: String,
    /// `institution/name` of the terminal, or `-`.
    pub terminal: String,
    pub institution: String,
    /// e.g. `auth.challenge`, `auth.login`, `admin.person.add`.
    pub action: String,
    /// What the action was about (a person, a session, …), or `-`.
    pub object: String,
    /// `ok` or `refused`.
    pub outcome: String,
    /// The refusal code, or `-`.
    pub reason: String,
    pub request_id: String,
}

impl AuditEvent {
    /// An entry of `action` that ended `outcome`; every other field `-`
    /// until set (`AuditEvent { actor, ..AuditEvent::new(…) }`).
    pub fn new(action: Action, outcome: Outcome) -> AuditEvent {
        let dash = || "-".to_owned();
        AuditEvent {
            actor: dash(),
            terminal: dash(),
            institution: dash(),
            action: action.as_str().into(),
            object: dash(),
            outcome: outcome.as_str().into(),
            reason: dash(),
            request_id: dash(),
        }
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    #[serde(serialize_with = "hex")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "hex")]
    pub hash: Vec<u8>,
}

fn hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub const GENESIS: [u8; 32] = [0; 32];

/// The chain hash of an entry.
pub fn entry_hash(prev_hash: &[u8], seq: i64, at: i64, e: &AuditEvent) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(b"hpki-gateway-audit-v1");
    ctx.update(&(prev_hash.len() as u32).to_be_bytes());
    ctx.update(prev_hash);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [&e.actor, &e.terminal, &e.institution, &e.action, &e.object, &e.outcome, &e.reason, &e.request_id] {
        ctx.update(&(field.len() as u32).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq}: its content does not match its hash (changed)")]
    Changed { seq: i64 },
    #[error("entry {seq}: does not follow entry {previous} (an entry was removed or the order changed)")]
    Broken { seq: i64, previous: i64 },
    #[error("entries {from} to {to} are missing")]
    Missing { from: i64, to: i64 },
    #[error("the log starts at entry {seq}, not 1 (its beginning was removed)")]
    HeadMissing { seq: i64 },
}

/// Checks entries in order (each batch continues the previous one).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    last: Option<(i64, Vec<u8>)>,
    pub checked: u64,
}

impl ChainVerifier {
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), ChainBreak> {
        match &self.last {
            None if r.seq != 1 => return Err(ChainBreak::HeadMissing { seq: r.seq }),
            None if r.prev_hash != GENESIS => return Err(ChainBreak::Broken { seq: r.seq, previous: 0 }),
            Some((seq, _)) if r.seq > seq + 1 => return Err(ChainBreak::Missing { from: seq + 1, to: r.seq - 1 }),
            Some((seq, _)) if r.seq <= *seq => return Err(ChainBreak::Broken { seq: r.seq, previous: *seq }),
            Some((seq, hash)) if r.prev_hash != *hash => return Err(ChainBreak::Broken { seq: r.seq, previous: *seq }),
            _ => {}
        }
        if entry_hash(&r.prev_hash, r.seq, r.at, &r.event)[..] != r.hash[..] {
            return Err(ChainBreak::Changed { seq: r.seq });
        }
        self.last = Some((r.seq, r.hash.clone()));
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent { actor: format!("p{seq}"), action: "auth.login".into(), ..Default::default() };
                let hash = entry_hash(&prev, seq, seq * 10, &event).to_vec();
                let r = AuditRecord { seq, at: seq * 10, event, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in records {
            v.check(r)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
    }

    #[test]
    fn changes_removals_and_reorderings_are_located() {
        let mut c = chain(5);
        c[2].event.outcome = "ok".into();
        assert_eq!(verify(&c), Err(ChainBreak::Changed { seq: 3 }));
        let mut c = chain(5);
        c.remove(2);
        assert_eq!(verify(&c), Err(ChainBreak::Missing { from: 3, to: 3 }));
        let mut c = chain(5);
        c.swap(1, 2);
        assert!(matches!(verify(&c), Err(ChainBreak::Missing { .. } | ChainBreak::Broken { .. })));
        let c = chain(5);
        assert_eq!(verify(&c[1..]), Err(ChainBreak::HeadMissing { seq: 2 }));
        // Renumbering after a removal does not help: the links break.
        let mut c = chain(5);
        c.remove(2);
        for (i, r) in c.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert!(verify(&c).is_err());
    }
}
