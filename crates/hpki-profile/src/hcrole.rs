//! hcRole (ISO/TS 17090) in subjectDirectoryAttributes, exactly as real
//! HPKI certificates encode it:
//!
//! ```text
//! SubjectDirectoryAttributes ::= SEQUENCE OF Attribute
//! Attribute { type 1.0.17090.0.1, values SET {
//!   HCActorData ::= SET OF HCActor
//!   HCActor ::= SEQUENCE {
//!     codedData [0] EXPLICIT CodedData ::= SET {
//!       codingSchemeReference [0] EXPLICIT OBJECT IDENTIFIER 1.2.392.100495.1.6.1.1
//!       codeDataValue         [1] EXPLICIT … OPTIONAL
//!       codeDataFreeText      [2] EXPLICIT DirectoryString "Medical Doctor" }
//!     regionalHCActorData [1] … OPTIONAL   -- not used in Japan
//! } } }
//! ```
//!
//! Encoding goes through yasna (DER: SET elements sorted), decoding through
//! asn1-rs, strictly: one hcRole per certificate, the Japanese coding scheme,
//! a known qualification — anything else is a specific error, never a guess.

use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use yasna::models::ObjectIdentifier;

use crate::oid;
use crate::profession::Profession;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HcRoleError {
    #[error("subjectDirectoryAttributes is not valid DER: {0}")]
    NotDer(String),
    #[error("the certificate has no hcRole attribute")]
    Missing,
    #[error("the certificate has {0} hcRole values; HPKI allows one per certificate")]
    Multiple(usize),
    #[error("hcRole is malformed: {0}")]
    Malformed(&'static str),
    #[error("hcRole uses coding scheme {0}, not the Japanese national qualifications (1.2.392.100495.1.6.1.1)")]
    UnknownCodingScheme(String),
    #[error("hcRole names an unknown qualification {0:?}")]
    UnknownRole(String),
}

/// The DER value of a subjectDirectoryAttributes extension carrying the
/// hcRole of `profession`.
pub fn encode(profession: Profession) -> Vec<u8> {
    let attribute = ObjectIdentifier::from_slice(oid::HC_ROLE);
    let scheme = ObjectIdentifier::from_slice(oid::JP_QUALIFICATION_SCHEME);
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&attribute);
                w.next().write_set(|w| {
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_tagged(yasna::Tag::context(0), |w| {
                                w.write_set(|w| {
                                    w.next().write_tagged(yasna::Tag::context(0), |w| w.write_oid(&scheme));
                                    w.next().write_tagged(yasna::Tag::context(2), |w| {
                                        w.write_utf8_string(profession.hc_role())
                                    });
                                })
                            })
                        })
                    })
                })
            })
        })
    })
}

/// The profession in a subjectDirectoryAttributes extension value.
pub fn decode(ext_value: &[u8]) -> Result<Profession, HcRoleError> {
    let attributes = single(ext_value)?;
    let attributes = expect(&attributes, Class::Universal, Tag::Sequence)?;
    let mut roles = Vec::new();
    for attribute in elements(attributes)? {
        let body = elements(expect(&attribute, Class::Universal, Tag::Sequence)?)?;
        let [kind, values] = body.as_slice() else {
            return Err(HcRoleError::Malformed("an attribute is not a type and a set of values"));
        };
        let kind = expect(kind, Class::Universal, Tag::Oid)?;
        if kind != oid_content(oid::HC_ROLE) {
            continue; // other directory attributes are allowed
        }
        for actor_data in elements(expect(values, Class::Universal, Tag::Set)?)? {
            for actor in elements(expect(&actor_data, Class::Universal, Tag::Set)?)? {
                roles.push(decode_actor(&actor)?);
            }
        }
    }
    match roles.len() {
        0 => Err(HcRoleError::Missing),
        1 => Ok(roles[0]),
        n => Err(HcRoleError::Multiple(n)),
    }
}

fn decode_actor(actor: &Any<'_>) -> Result<Profession, HcRoleError> {
    let fields = elements(expect(actor, Class::Universal, Tag::Sequence)?)?;
    let coded = fields
        .iter()
        .find(|f| f.class() == Class::ContextSpecific && f.tag() == Tag(0))
        .ok_or(HcRoleError::Malformed("HCActor has no codedData [0]"))?;
    let coded_set = single(coded.data)?;
    let mut scheme = None;
    let mut free_text = None;
    for field in elements(expect(&coded_set, Class::Universal, Tag::Set)?)? {
        if field.class() != Class::ContextSpecific {
            return Err(HcRoleError::Malformed("CodedData holds an untagged field"));
        }
        let inner = single(field.data)?;
        match field.tag() {
            Tag(0) => scheme = Some(expect(&inner, Class::Universal, Tag::Oid)?.to_vec()),
            Tag(1) => {}
            Tag(2) => free_text = Some(directory_string(&inner)?),
            _ => return Err(HcRoleError::Malformed("CodedData holds an unknown field")),
        }
    }
    let scheme = scheme.ok_or(HcRoleError::Malformed("CodedData has no codingSchemeReference"))?;
    if scheme != oid_content(oid::JP_QUALIFICATION_SCHEME) {
        let shown = oid::Oid::from_content(&scheme).map(|o| o.to_string()).unwrap_or_else(|_| "(malformed)".into());
        return Err(HcRoleError::UnknownCodingScheme(shown));
    }
    let text = free_text.ok_or(HcRoleError::Malformed("CodedData has no codeDataFreeText"))?;
    Profession::from_hc_role(&text).ok_or(HcRoleError::UnknownRole(text))
}

/// Content octets of one of this crate's OID constants (an empty, never
/// matching value if a constant were ever malformed).
fn oid_content(arcs: &[u64]) -> Vec<u8> {
    oid::Oid::from_u64_arcs(arcs).map(|o| o.content().to_vec()).unwrap_or_default()
}

/// DirectoryString: UTF8String, PrintableString (or BMPString).
fn directory_string(any: &Any<'_>) -> Result<String, HcRoleError> {
    if any.class() != Class::Universal {
        return Err(HcRoleError::Malformed("codeDataFreeText is not a DirectoryString"));
    }
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString => std::str::from_utf8(any.data)
            .map(str::to_owned)
            .map_err(|_| HcRoleError::Malformed("codeDataFreeText is not valid UTF-8")),
        Tag::BmpString => {
            if !any.data.len().is_multiple_of(2) {
                return Err(HcRoleError::Malformed("odd-length BMPString"));
            }
            let units: Vec<u16> = any.data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).map_err(|_| HcRoleError::Malformed("codeDataFreeText is not valid UTF-16"))
        }
        _ => Err(HcRoleError::Malformed("codeDataFreeText is not a DirectoryString")),
    }
}

/// Exactly one DER element filling `input`.
fn single(input: &[u8]) -> Result<Any<'_>, HcRoleError> {
    let (rest, any) = Any::from_der(input).map_err(|e| HcRoleError::NotDer(e.to_string()))?;
    if !rest.is_empty() {
        return Err(HcRoleError::NotDer(format!("{} bytes after the value", rest.len())));
    }
    Ok(any)
}

/// Every DER element of a constructed value's content.
fn elements(mut input: &[u8]) -> Result<Vec<Any<'_>>, HcRoleError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (rest, any) = Any::from_der(input).map_err(|e| HcRoleError::NotDer(e.to_string()))?;
        out.push(any);
        input = rest;
    }
    Ok(out)
}

fn expect<'a>(any: &Any<'a>, class: Class, tag: Tag) -> Result<&'a [u8], HcRoleError> {
    if any.class() != class || any.tag() != tag {
        return Err(HcRoleError::Malformed(match tag {
            Tag::Sequence => "expected a SEQUENCE",
            Tag::Set => "expected a SET",
            Tag::Oid => "expected an OBJECT IDENTIFIER",
            _ => "unexpected element",
        }));
    }
    Ok(any.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profession::TABLE;

    /// The subjectDirectoryAttributes value for `Medical Doctor`, derived by
    /// hand from the structure in `shared/reference/hpki-profile.md`:
    /// 1.0.17090.0.1 = `28 81 85 42 00 01` (17090 = 1·128² + 5·128 + 66),
    /// 1.2.392.100495.1.6.1.1 = `2A 83 08 86 91 0F 01 06 01 01`.
    const EXPECTED_DOCTOR: &[u8] = &[
        0x30, 0x34, // SubjectDirectoryAttributes
        0x30, 0x32, // Attribute
        0x06, 0x06, 0x28, 0x81, 0x85, 0x42, 0x00, 0x01, // type: hcRole
        0x31, 0x28, // values
        0x31, 0x26, // HCActorData
        0x30, 0x24, // HCActor
        0xA0, 0x22, // codedData [0]
        0x31, 0x20, // CodedData SET
        0xA0, 0x0C, 0x06, 0x0A, 0x2A, 0x83, 0x08, 0x86, 0x91, 0x0F, 0x01, 0x06, 0x01, 0x01, // [0] scheme
        0xA2, 0x10, 0x0C, 0x0E, b'M', b'e', b'd', b'i', b'c', b'a', b'l', b' ', b'D', b'o', b'c', b't', b'o', b'r',
    ];

    #[test]
    fn encodes_exactly_as_the_profile_describes() {
        assert_eq!(encode(Profession::Doctor), EXPECTED_DOCTOR);
        assert_eq!(decode(EXPECTED_DOCTOR), Ok(Profession::Doctor));
    }

    #[test]
    fn every_profession_round_trips() {
        for q in TABLE {
            assert_eq!(decode(&encode(q.profession)), Ok(q.profession), "{}", q.hc_role);
        }
    }

    #[test]
    fn refusals_are_specific() {
        assert!(matches!(decode(b"\x30"), Err(HcRoleError::NotDer(_))));
        assert_eq!(decode(&[0x30, 0x00]), Err(HcRoleError::Missing));
        let mut unknown = encode(Profession::Nurse);
        let at = unknown.windows(5).position(|w| w == b"Nurse").expect("text");
        unknown[at] = b'V';
        assert_eq!(decode(&unknown), Err(HcRoleError::UnknownRole("Vurse".into())));
        let mut scheme = encode(Profession::Nurse);
        let oid = oid::Oid::from_u64_arcs(oid::JP_QUALIFICATION_SCHEME).expect("valid");
        let at = scheme.windows(oid.content().len()).position(|w| w == oid.content()).expect("scheme");
        scheme[at + oid.content().len() - 1] = 0x02;
        assert_eq!(decode(&scheme), Err(HcRoleError::UnknownCodingScheme("1.2.392.100495.1.6.1.2".into())));
    }
}
