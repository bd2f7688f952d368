//! Who may do what: one role × action table (FLOW-5, AUTH-2). Users get user
//! rights; administration is a separate role reached only through the
//! data-centre CLI. The workflow issue adds its actions here.

use std::fmt;

use hpki_profile::Profession;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Doctor,
    Dentist,
    Pharmacist,
    Nurse,
    Dietitian,
    Assistant,
    Patient,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See one's own session.
    WhoAmI,
    Logout,
    /// Register a patient (reception, or any clinician).
    RegisterPatient,
    /// Read a patient's records within an open encounter.
    ReadPatientRecords,
    /// Open or close an encounter at one's institution.
    OpenEncounter,
    /// Create or edit a draft for a linked doctor.
    WriteDraft,
    /// See the drafts awaiting one's signature and the bytes to sign.
    ReviewDrafts,
    /// Confirm a draft with a card signature.
    ConfirmDraft,
    /// Register a dispensing record of one's own.
    RegisterDispensing,
    /// Add a clinical note of one's own.
    AddNote,
    /// Receive a document signed elsewhere into a patient's records.
    ReceiveSignedDocument,
    /// Break the glass: emergency access to one patient (FLOW-7). The role
    /// may; the person must also be designated by IT staff (off by
    /// default, `hpki-gateway admin break-glass grant`).
    BreakGlass,
    /// Answer patients' correction requests against one's institution's
    /// records (FLOW-9).
    HandleCorrections,
    /// Read one's own consented records (patients).
    ReadOwnRecords,
    /// Register institutions, persons, links; deactivate; suspend terminals.
    Administer,
    /// Read the audit log.
    ReadAudit,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Doctor,
        Role::Dentist,
        Role::Pharmacist,
        Role::Nurse,
        Role::Dietitian,
        Role::Assistant,
        Role::Patient,
        Role::Admin,
    ];

    /// The role of a licensed professional; `None` for qualifications that
    /// have no role at the gateway yet.
    pub fn of_profession(p: Profession) -> Option<Role> {
        match p {
            Profession::Doctor => Some(Role::Doctor),
            Profession::Dentist => Some(Role::Dentist),
            Profession::Pharmacist => Some(Role::Pharmacist),
            Profession::Nurse => Some(Role::Nurse),
            Profession::RegisteredDietitian => Some(Role::Dietitian),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Doctor => "doctor",
            Role::Dentist => "dentist",
            Role::Pharmacist => "pharmacist",
            Role::Nurse => "nurse",
            Role::Dietitian => "dietitian",
            Role::Assistant => "assistant",
            Role::Patient => "patient",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::WhoAmI,
        Action::Logout,
        Action::RegisterPatient,
        Action::ReadPatientRecords,
        Action::OpenEncounter,
        Action::WriteDraft,
        Action::ReviewDrafts,
        Action::ConfirmDraft,
        Action::RegisterDispensing,
        Action::AddNote,
        Action::ReceiveSignedDocument,
        Action::BreakGlass,
        Action::HandleCorrections,
        Action::ReadOwnRecords,
        Action::Administer,
        Action::ReadAudit,
    ];
}

/// The table. Anything not listed is refused.
pub fn allowed(role: Role, action: Action) -> bool {
    use Action::*;
    use Role::*;
    match action {
        WhoAmI | Logout => true,
        RegisterPatient => matches!(role, Doctor | Dentist | Pharmacist | Nurse | Dietitian | Assistant),
        ReviewDrafts => matches!(role, Doctor | Dentist | Pharmacist),
        ReadPatientRecords => matches!(role, Doctor | Dentist | Pharmacist | Nurse | Dietitian),
        OpenEncounter => matches!(role, Doctor | Dentist | Pharmacist | Nurse | Dietitian | Assistant),
        WriteDraft => matches!(role, Assistant),
        ConfirmDraft => matches!(role, Doctor | Dentist),
        RegisterDispensing => matches!(role, Pharmacist),
        AddNote => matches!(role, Doctor | Dentist | Nurse | Dietitian),
        ReceiveSignedDocument => matches!(role, Doctor | Dentist | Pharmacist | Nurse | Dietitian),
        BreakGlass => matches!(role, Doctor | Dentist | Pharmacist | Nurse),
        HandleCorrections => matches!(role, Doctor | Dentist | Pharmacist | Nurse | Dietitian),
        ReadOwnRecords => matches!(role, Patient),
        Administer | ReadAudit => matches!(role, Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role × action pair, written out by hand from the BRIEF (not
    /// derived from `allowed`), so a change to the table must change this.
    /// Columns: WhoAmI, Logout, RegisterPatient, ReadPatientRecords,
    /// OpenEncounter, WriteDraft, ReviewDrafts, ConfirmDraft,
    /// RegisterDispensing, AddNote, ReceiveSignedDocument, BreakGlass,
    /// HandleCorrections, ReadOwnRecords, Administer, ReadAudit.
    const EXPECTED: [(Role, [bool; 16]); 8] = [
        (Role::Doctor, [T, T, T, T, T, F, T, T, F, T, T, T, T, F, F, F]),
        (Role::Dentist, [T, T, T, T, T, F, T, T, F, T, T, T, T, F, F, F]),
        (Role::Pharmacist, [T, T, T, T, T, F, T, F, T, F, T, T, T, F, F, F]),
        (Role::Nurse, [T, T, T, T, T, F, F, F, F, T, T, T, T, F, F, F]),
        (Role::Dietitian, [T, T, T, T, T, F, F, F, F, T, T, F, T, F, F, F]),
        (Role::Assistant, [T, T, T, F, T, T, F, F, F, F, F, F, F, F, F, F]),
        (Role::Patient, [T, T, F, F, F, F, F, F, F, F, F, F, F, T, F, F]),
        (Role::Admin, [T, T, F, F, F, F, F, F, F, F, F, F, F, F, T, T]),
    ];
    const T: bool = true;
    const F: bool = false;

    #[test]
    fn every_role_action_pair_is_as_the_brief_says() {
        assert_eq!(EXPECTED.len(), Role::ALL.len());
        for (role, row) in EXPECTED {
            for (action, expected) in Action::ALL.into_iter().zip(row) {
                assert_eq!(allowed(role, action), expected, "{role} × {action:?}");
            }
        }
    }

    #[test]
    fn assistants_and_pharmacists_never_confirm_drafts_flow_2() {
        assert!(!allowed(Role::Assistant, Action::ConfirmDraft));
        assert!(!allowed(Role::Pharmacist, Action::ConfirmDraft));
        assert!(
            Role::ALL.iter().filter(|r| allowed(**r, Action::Administer)).eq([Role::Admin].iter()),
            "FLOW-5: only admin"
        );
    }

    #[test]
    fn professions_map_to_roles() {
        assert_eq!(Role::of_profession(Profession::Doctor), Some(Role::Doctor));
        assert_eq!(Role::of_profession(Profession::RegisteredDietitian), Some(Role::Dietitian));
        assert_eq!(Role::of_profession(Profession::Midwife), None);
        for r in Role::ALL {
            assert_eq!(Role::from_name(r.name()), Some(r));
        }
    }
}
