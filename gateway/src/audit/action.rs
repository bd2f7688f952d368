//! The audit log's vocabulary: every action the gateway records and how it
//! ended. The log stores their names (`docs/operations.md` lists them; the
//! chain hashes the names), so a name, once written, never changes.

macro_rules! actions {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// An audited action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name in the log (`auth.login`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Action::$variant => $name, )*
                }
            }
        }
    };
}

actions! {
    // The institution listener's endpoints (`routes::endpoint`).
    AuthChallenge => "auth.challenge",
    AuthLogin => "auth.login",
    AuthLogout => "auth.logout",
    AuthWhoAmI => "auth.whoami",
    /// A session ended by the gateway: its card certificate was revoked.
    SessionRevoked => "auth.session.revoked",
    PatientRegister => "patient.register",
    RecordsRead => "records.read",
    EncounterOpen => "encounter.open",
    EncounterClose => "encounter.close",
    DraftCreate => "draft.create",
    DispensingCreate => "dispensing.create",
    DraftRead => "draft.read",
    DraftEdit => "draft.edit",
    DraftReview => "draft.review",
    DraftSignedAttributes => "draft.signed_attributes",
    DraftConfirm => "draft.confirm",
    DraftConfirmBatch => "draft.confirm_batch",
    QueueRead => "queue.read",
    NoteAdd => "note.add",
    /// A document signed elsewhere received as a record (DATA-5).
    SignedDocumentReceive => "signed_document.receive",
    /// The queue of patients' correction requests against this
    /// institution's records (FLOW-9).
    CorrectionsRead => "corrections.read",
    /// A correction request answered: accepted with a correcting record,
    /// or rejected with the reason.
    CorrectionResolve => "correction.resolve",
    DraftsReadOwn => "drafts.read_own",
    /// The terminal's status line: operating mode, own break-glass accesses.
    StatusRead => "status.read",
    // Break-glass (FLOW-7): every entry of an access is a `break_glass.*`
    // action, which is the flag reviews and reports select by.
    BreakGlassStart => "break_glass.start",
    BreakGlassRead => "break_glass.read",
    BreakGlassEnd => "break_glass.end",
    /// An access past its expiry, ended by the gateway's sweep.
    BreakGlassExpire => "break_glass.expire",
    DoctorsReadLinked => "doctors.read_linked",
    /// A request for no endpoint of the institution listener.
    HttpUnknown => "http.unknown",
    // Connections refused before any request.
    NetConnect => "net.connect",
    TlsHandshake => "tls.handshake",
    // The patient listener.
    PatientLogin => "patient.login",
    PatientPassword => "patient.password",
    PatientRecords => "patient.records",
    PatientLogout => "patient.logout",
    // Patients' rights (FLOW-9).
    PatientDisclosure => "patient.disclosure",
    PatientDisclosureFhir => "patient.disclosure.fhir",
    PatientCorrectionRequest => "patient.correction.request",
    PatientCorrectionsRead => "patient.corrections.read",
    PatientConsentsRead => "patient.consents.read",
    /// A patient withdrew (suspension of use) or restored a sharing consent.
    PatientConsentChange => "patient.consent.change",
    PatientUnknown => "patient.unknown",
    // The gateway on its own.
    AlertRaised => "alert.raised",
    TerminalSuspend => "terminal.suspend",
    PersonDeactivate => "person.deactivate",
    /// A record committed before a crash, audited at the next start by
    /// gateways before the audit outbox; kept: older logs hold the name.
    RecordRecovered => "record.recovered",
    // The data-centre CLI.
    AdminInstitutionAdd => "admin.institution.add",
    AdminPersonAdd => "admin.person.add",
    AdminPersonDeactivate => "admin.person.deactivate",
    AdminPersonActivate => "admin.person.activate",
    AdminLink => "admin.link",
    AdminUnlink => "admin.unlink",
    AdminTerminalSuspend => "admin.terminal.suspend",
    AdminTerminalUnsuspend => "admin.terminal.unsuspend",
    AdminKeyRotate => "admin.key.rotate",
    AdminPatientAdd => "admin.patient.add",
    AdminPatientEnroll => "admin.patient.enroll",
    AdminPatientConsent => "admin.patient.consent",
    AdminPatientConsentWithdraw => "admin.patient.consent.withdraw",
    /// The patient objected to secondary use (FLOW-8), or lifted it.
    AdminPatientOptOut => "admin.patient.opt_out",
    AdminPatientOptIn => "admin.patient.opt_in",
    /// A de-identified export for research (FLOW-8), with its report's hash.
    ExportResearch => "export.research",
    /// A signed record's document and container written out (DATA-4).
    AdminRecordExport => "admin.record.export",
    /// A record's signature extended by an archive time-stamp (DATA-5).
    AdminRecordRenewTimestamp => "admin.record.renew_timestamp",
    /// A record's health content erased at the end of its retention
    /// (DATA-8); its tombstone keeps this entry's seq.
    AdminRecordErase => "admin.record.erase",
    /// A dry run of the erasure: what is due, nothing changed.
    AdminRecordErasePlan => "admin.record.erase.plan",
    /// A patient's identity data wiped once no record of theirs was left.
    AdminPatientErase => "admin.patient.erase",
    AdminBreakGlassGrant => "admin.break_glass.grant",
    AdminBreakGlassRevoke => "admin.break_glass.revoke",
    /// An auditor's review of a break-glass access (FLOW-7, LOG-3).
    AdminBreakGlassReview => "admin.break_glass.review",
    /// The operating mode set: normal, read-only or blocked (FLOW-7).
    AdminMode => "admin.mode",
    BackupFull => "backup.full",
    BackupDiff => "backup.diff",
    BackupRestore => "backup.restore",
    BackupPgBasebackup => "backup.pg_basebackup",
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Refused,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
        }
    }

    /// `Ok` for success, `Refused` for any refusal.
    pub fn of<T, E>(result: &Result<T, E>) -> Outcome {
        if result.is_ok() { Outcome::Ok } else { Outcome::Refused }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_unique_and_dotted() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert!(names.iter().all(|n| n.split('.').count() >= 2), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len(), "a name is used twice");
    }
}
