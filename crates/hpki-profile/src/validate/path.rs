//! Path building (RFC 5280 §6.1 needs a path; RFC 4158 says how to find
//! one): depth first over every candidate issuer — trust anchors first,
//! then configured and presented intermediates — matched by name, those
//! whose key identifier matches tried first. A candidate path is handed to `accept`
//! only once it reaches an anchor, and is taken only when every check
//! passes for it; otherwise the search backtracks and tries the next
//! candidate. Loops (the same subject and key twice) are cut, and the work
//! is bounded by a budget of signature checks.

use crate::signature::verify_with;
use crate::validate::cert::Cert;
use crate::validate::memo::SignatureMemo;
use crate::validate::refusal::Refusal;

/// Certificates in a path, end entity and anchor included.
pub(crate) const MAX_PATH: usize = 10;
/// Signature checks one validation may spend on finding a path (webpki
/// uses 100 as well): enough for any real hierarchy with cross
/// certificates, too few for a hostile bundle to be slow.
pub(crate) const SIGNATURE_BUDGET: usize = 100;

pub(crate) struct Search<'a> {
    pub anchors: &'a [Cert],
    pub pool: Vec<&'a Cert>,
    pub memo: &'a SignatureMemo,
    budget: usize,
    /// The most specific refusal met, reported when no path works.
    best: Option<Refusal>,
}

impl<'a> Search<'a> {
    pub fn new(anchors: &'a [Cert], pool: Vec<&'a Cert>, memo: &'a SignatureMemo) -> Search<'a> {
        Search { anchors, pool, memo, budget: SIGNATURE_BUDGET, best: None }
    }

    /// The first path from `leaf` that `accept` takes, with what it
    /// returned; or the most specific refusal met on the way.
    pub fn run<T>(
        mut self,
        leaf: &'a Cert,
        accept: &mut dyn FnMut(&[&Cert]) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        let mut path = vec![leaf];
        match self.extend(&mut path, accept)? {
            Some(v) => Ok(v),
            None => Err(self.best.unwrap_or_else(|| Refusal::UnknownIssuer {
                subject: leaf.subject_text.clone(),
                issuer: leaf.issuer_text.clone(),
            })),
        }
    }

    fn note(&mut self, r: Refusal) {
        if self.best.as_ref().is_none_or(|b| r.specificity() > b.specificity()) {
            self.best = Some(r);
        }
    }

    /// Err only when the budget is spent: the search stops there.
    fn extend<T>(
        &mut self,
        path: &mut Vec<&'a Cert>,
        accept: &mut dyn FnMut(&[&Cert]) -> Result<T, Refusal>,
    ) -> Result<Option<T>, Refusal> {
        let current = path[path.len() - 1];
        if path.len() >= MAX_PATH {
            self.note(Refusal::ChainTooLong { limit: MAX_PATH });
            return Ok(None);
        }
        let mut found_any = false;
        let anchors = self.anchors;
        let mut anchor_candidates: Vec<&'a Cert> = anchors.iter().filter(|a| current.may_be_issued_by(a)).collect();
        anchor_candidates.sort_by_key(|a| !current.key_id_matches(a));
        for anchor in anchor_candidates {
            if path.iter().any(|p| p.same_entity(anchor)) {
                continue;
            }
            found_any = true;
            if !self.issued_by(current, anchor)? {
                continue;
            }
            path.push(anchor);
            match accept(path) {
                Ok(v) => return Ok(Some(v)),
                Err(r) => self.note(r),
            }
            path.pop();
        }
        let mut candidates: Vec<&'a Cert> = self
            .pool
            .iter()
            .copied()
            .filter(|c| current.may_be_issued_by(c))
            .filter(|c| !path.iter().any(|p| p.same_entity(c)))
            // An anchor's own certificate in the pool adds nothing.
            .filter(|c| !anchors.iter().any(|a| a.same_entity(c)))
            .collect();
        candidates.sort_by_key(|c| !current.key_id_matches(c));
        for cand in candidates {
            found_any = true;
            if !self.issued_by(current, cand)? {
                continue;
            }
            path.push(cand);
            if let Some(v) = self.extend(path, accept)? {
                return Ok(Some(v));
            }
            path.pop();
        }
        if !found_any {
            self.note(Refusal::UnknownIssuer {
                subject: current.subject_text.clone(),
                issuer: current.issuer_text.clone(),
            });
        }
        Ok(None)
    }

    /// Whether `issuer`'s key signed `cert`, spending one check.
    fn issued_by(&mut self, cert: &Cert, issuer: &Cert) -> Result<bool, Refusal> {
        if self.budget == 0 {
            return Err(Refusal::PathBudgetExhausted { checks: SIGNATURE_BUDGET });
        }
        self.budget -= 1;
        let fitting = match (&cert.signature_algorithm, &issuer.key) {
            (Ok(alg), Ok(key)) if alg.fits(key.kind) => Some((alg, key)),
            (Err(e), _) => {
                self.note(Refusal::UnsupportedAlgorithm { subject: cert.subject_text.clone(), detail: e.clone() });
                None
            }
            (_, Err(e)) => {
                self.note(Refusal::UnsupportedKey { subject: issuer.subject_text.clone(), detail: e.clone() });
                None
            }
            (Ok(alg), Ok(key)) => {
                self.note(Refusal::UnsupportedAlgorithm {
                    subject: cert.subject_text.clone(),
                    detail: format!("{} with a key of kind {:?}", alg.name(), key.kind),
                });
                None
            }
        };
        let Some((alg, key)) = fitting else { return Ok(false) };
        // CA certificates recur in every validation through them: their
        // checks are remembered. An end entity's is made every time (its
        // repeat is the result cache's business), so a new card always
        // costs its own signature check.
        let ok = if cert.is_ca() {
            self.memo.verify(cert.digest, issuer.spki_digest, key, *alg, &cert.signature, &cert.tbs)
        } else {
            verify_with(key, *alg, &cert.signature, &cert.tbs).is_ok()
        };
        if !ok {
            self.note(Refusal::BadSignature {
                subject: cert.subject_text.clone(),
                issuer: issuer.subject_text.clone(),
            });
        }
        Ok(ok)
    }
}
