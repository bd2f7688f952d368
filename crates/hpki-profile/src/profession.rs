//! National medical qualifications, as HPKI certificates name them in hcRole.
//!
//! [`TABLE`] is the one place that maps the hcRole free text to a
//! profession. `Medical Doctor` and `Pharmacist` are confirmed from real
//! certificates; the others follow the same English naming of the MHLW
//! qualification list and are not confirmed from samples.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profession {
    Doctor,
    Dentist,
    Pharmacist,
    Nurse,
    PublicHealthNurse,
    Midwife,
    RegisteredDietitian,
    RadiologicalTechnologist,
    ClinicalLaboratoryTechnologist,
    PhysicalTherapist,
    OccupationalTherapist,
    Orthoptist,
    SpeechLanguageHearingTherapist,
    ClinicalEngineer,
    DentalHygienist,
    DentalTechnician,
    EmergencyLifeSavingTechnician,
    ProsthetistOrthotist,
}

/// One row of the qualification table.
pub struct Qualification {
    pub profession: Profession,
    /// The hcRole `codeDataFreeText`, exactly as encoded.
    pub hc_role: &'static str,
    /// Command-line and configuration name.
    pub slug: &'static str,
    pub japanese: &'static str,
    /// Prefix of the subject serialNumber `hpki-certs` issues (`MD-…`).
    pub code: &'static str,
    /// Confirmed from a real HPKI certificate.
    pub confirmed: bool,
}

const fn q(
    profession: Profession,
    hc_role: &'static str,
    slug: &'static str,
    japanese: &'static str,
    code: &'static str,
    confirmed: bool,
) -> Qualification {
    Qualification { profession, hc_role, slug, japanese, code, confirmed }
}

pub const TABLE: &[Qualification] = &[
    q(Profession::Doctor, "Medical Doctor", "doctor", "医師", "MD", true),
    q(Profession::Dentist, "Dentist", "dentist", "歯科医師", "DDS", false),
    q(Profession::Pharmacist, "Pharmacist", "pharmacist", "薬剤師", "PH", true),
    q(Profession::Nurse, "Nurse", "nurse", "看護師", "RN", false),
    q(Profession::PublicHealthNurse, "Public Health Nurse", "public-health-nurse", "保健師", "PHN", false),
    q(Profession::Midwife, "Midwife", "midwife", "助産師", "MW", false),
    q(Profession::RegisteredDietitian, "Registered Dietitian", "dietitian", "管理栄養士", "RD", false),
    q(
        Profession::RadiologicalTechnologist,
        "Radiological Technologist",
        "radiological-technologist",
        "診療放射線技師",
        "RT",
        false,
    ),
    q(
        Profession::ClinicalLaboratoryTechnologist,
        "Clinical Laboratory Technologist",
        "clinical-laboratory-technologist",
        "臨床検査技師",
        "MT",
        false,
    ),
    q(Profession::PhysicalTherapist, "Physical Therapist", "physical-therapist", "理学療法士", "PT", false),
    q(Profession::OccupationalTherapist, "Occupational Therapist", "occupational-therapist", "作業療法士", "OT", false),
    q(Profession::Orthoptist, "Orthoptist", "orthoptist", "視能訓練士", "CO", false),
    q(
        Profession::SpeechLanguageHearingTherapist,
        "Speech-Language-Hearing Therapist",
        "speech-therapist",
        "言語聴覚士",
        "ST",
        false,
    ),
    q(Profession::ClinicalEngineer, "Clinical Engineer", "clinical-engineer", "臨床工学技士", "CE", false),
    q(Profession::DentalHygienist, "Dental Hygienist", "dental-hygienist", "歯科衛生士", "DH", false),
    q(Profession::DentalTechnician, "Dental Technician", "dental-technician", "歯科技工士", "DT", false),
    q(
        Profession::EmergencyLifeSavingTechnician,
        "Emergency Life-Saving Technician",
        "paramedic",
        "救急救命士",
        "ELST",
        false,
    ),
    q(Profession::ProsthetistOrthotist, "Prosthetist and Orthotist", "prosthetist", "義肢装具士", "PO", false),
];

impl Profession {
    pub const ALL: [Profession; 18] = [
        Profession::Doctor,
        Profession::Dentist,
        Profession::Pharmacist,
        Profession::Nurse,
        Profession::PublicHealthNurse,
        Profession::Midwife,
        Profession::RegisteredDietitian,
        Profession::RadiologicalTechnologist,
        Profession::ClinicalLaboratoryTechnologist,
        Profession::PhysicalTherapist,
        Profession::OccupationalTherapist,
        Profession::Orthoptist,
        Profession::SpeechLanguageHearingTherapist,
        Profession::ClinicalEngineer,
        Profession::DentalHygienist,
        Profession::DentalTechnician,
        Profession::EmergencyLifeSavingTechnician,
        Profession::ProsthetistOrthotist,
    ];

    pub fn qualification(self) -> &'static Qualification {
        // Every variant has exactly one row (checked by a test).
        TABLE.iter().find(|q| q.profession == self).unwrap_or(&TABLE[0])
    }

    /// From the hcRole free text, exactly as encoded (case and spacing
    /// matter: a certificate says what it says).
    pub fn from_hc_role(text: &str) -> Option<Profession> {
        TABLE.iter().find(|q| q.hc_role == text).map(|q| q.profession)
    }

    pub fn hc_role(self) -> &'static str {
        self.qualification().hc_role
    }

    pub fn slug(self) -> &'static str {
        self.qualification().slug
    }

    pub fn japanese(self) -> &'static str {
        self.qualification().japanese
    }
}

impl fmt::Display for Profession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profession {given:?}; known: {known}")]
pub struct UnknownProfession {
    pub given: String,
    pub known: String,
}

impl FromStr for Profession {
    type Err = UnknownProfession;
    /// Accepts the slug (`doctor`), the hcRole text (`Medical Doctor`) or
    /// the Japanese name (`医師`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        TABLE
            .iter()
            .find(|q| q.slug.eq_ignore_ascii_case(t) || q.hc_role.eq_ignore_ascii_case(t) || q.japanese == t)
            .map(|q| q.profession)
            .ok_or_else(|| UnknownProfession {
                given: s.to_owned(),
                known: TABLE.iter().map(|q| q.slug).collect::<Vec<_>>().join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profession_has_exactly_one_row() {
        assert_eq!(Profession::ALL.len(), TABLE.len());
        for p in Profession::ALL {
            assert_eq!(TABLE.iter().filter(|q| q.profession == p).count(), 1, "{p:?}");
        }
    }

    #[test]
    fn table_is_one_to_one() {
        for (i, a) in TABLE.iter().enumerate() {
            assert_eq!(a.profession.qualification().hc_role, a.hc_role);
            for b in &TABLE[i + 1..] {
                assert_ne!(a.profession, b.profession);
                assert_ne!(a.hc_role, b.hc_role);
                assert_ne!(a.slug, b.slug);
                assert_ne!(a.code, b.code);
            }
        }
    }

    #[test]
    fn confirmed_strings_map() {
        assert_eq!(Profession::from_hc_role("Medical Doctor"), Some(Profession::Doctor));
        assert_eq!(Profession::from_hc_role("Pharmacist"), Some(Profession::Pharmacist));
        assert_eq!(Profession::from_hc_role("medical doctor"), None, "exact text only");
        assert_eq!(Profession::from_hc_role("Doctor"), None);
    }

    #[test]
    fn names_people_type() {
        assert_eq!("doctor".parse(), Ok(Profession::Doctor));
        assert_eq!("Registered Dietitian".parse(), Ok(Profession::RegisteredDietitian));
        assert_eq!("歯科医師".parse(), Ok(Profession::Dentist));
        let err = "surgeon".parse::<Profession>().unwrap_err();
        assert!(err.to_string().contains("known: doctor, dentist"));
    }
}
