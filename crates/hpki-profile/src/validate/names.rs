//! Names as RFC 5280 compares them, and name constraints (§4.2.1.10,
//! §6.1.3 (b)–(c), §6.1.4 (g)).
//!
//! Processed: directoryName (subject and subjectAltName) and rfc822Name
//! (subjectAltName and the legacy emailAddress attribute). Every other name
//! form (dNSName, iPAddress, URI, otherName, …) is not: a constraint on such
//! a form refuses a path only when a name of that form appears below it, as
//! §4.2.1.10 allows ("either process the constraint or reject").

use x509_parser::extensions::{GeneralName, NameConstraints as ParsedConstraints};
use x509_parser::x509::{RelativeDistinguishedName, X509Name};

use crate::validate::refusal::Refusal;

/// Comparisons of a constraint with a name allowed in one validation, so
/// that a hostile certificate with thousands of names and constraints
/// costs bounded work.
pub(crate) const MAX_NAME_COMPARISONS: usize = 1 << 16;

const EMAIL_ADDRESS: &str = "1.2.840.113549.1.9.1";

/// One attribute value: text compared as RFC 4518 does in its essentials
/// (case folded, outer spaces dropped, inner runs of spaces as one), any
/// other value by its encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Text(String),
    Raw(Vec<u8>),
}

/// A distinguished name as a sequence of RDNs, each a sorted set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Dn(Vec<Vec<(String, Value)>>);

impl Dn {
    /// `subtree` names this name or one of its ancestors.
    fn within(&self, subtree: &Dn) -> bool {
        subtree.0.len() <= self.0.len() && self.0.iter().zip(&subtree.0).all(|(a, b)| a == b)
    }
}

pub(crate) fn dn_of(name: &X509Name<'_>) -> Dn {
    Dn(name.iter_rdn().map(rdn).collect())
}

pub(crate) fn dn_of_rdn(r: &RelativeDistinguishedName<'_>) -> Dn {
    Dn(vec![rdn(r)])
}

fn rdn(r: &RelativeDistinguishedName<'_>) -> Vec<(String, Value)> {
    let mut set: Vec<(String, Value)> = r
        .iter()
        .map(|atv| {
            let value = match atv.as_str() {
                Ok(s) => Value::Text(s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()),
                Err(_) => Value::Raw(atv.attr_value().data.to_vec()),
            };
            (atv.attr_type().to_id_string(), value)
        })
        .collect();
    set.sort();
    set
}

/// An email address split as RFC 5280 §4.2.1.10 matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mailbox {
    local: String,
    host: String,
}

fn mailbox(text: &str) -> Option<Mailbox> {
    let (local, host) = text.split_once('@')?;
    if local.is_empty() || host.is_empty() || host.contains('@') || !text.is_ascii() {
        return None;
    }
    Some(Mailbox { local: local.to_owned(), host: host.to_ascii_lowercase() })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EmailConstraint {
    /// One mailbox: `user@host`.
    Mailbox(Mailbox),
    /// All mailboxes on one host: `host`.
    Host(String),
    /// All mailboxes in a domain's subdomains: `.domain`.
    Domain(String),
}

impl EmailConstraint {
    fn read(text: &str) -> Result<EmailConstraint, String> {
        let bad = || format!("rfc822Name constraint {text:?} is neither a mailbox, a host nor a .domain");
        if text.contains('@') {
            return mailbox(text).map(EmailConstraint::Mailbox).ok_or_else(bad);
        }
        if text.is_empty() || !text.is_ascii() || text.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(match text.strip_prefix('.') {
            Some(d) if !d.is_empty() => EmailConstraint::Domain(d.to_ascii_lowercase()),
            Some(_) => return Err(bad()),
            None => EmailConstraint::Host(text.to_ascii_lowercase()),
        })
    }

    fn matches(&self, m: &Mailbox) -> bool {
        match self {
            // Local parts are case-sensitive; hosts are not.
            EmailConstraint::Mailbox(c) => c.local == m.local && c.host == m.host,
            EmailConstraint::Host(h) => &m.host == h,
            EmailConstraint::Domain(d) => m.host.len() > d.len() + 1 && m.host.ends_with(&format!(".{d}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subtree {
    Directory(Dn),
    Email(EmailConstraint),
    /// A form this validator does not process, by its RFC 5280 name.
    Unprocessed(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameConstraints {
    permitted: Option<Vec<Subtree>>,
    excluded: Vec<Subtree>,
}

impl NameConstraints {
    pub fn read(nc: &ParsedConstraints<'_>) -> Result<NameConstraints, String> {
        let read = |trees: &[x509_parser::extensions::GeneralSubtree<'_>]| {
            trees.iter().map(|t| subtree(&t.base)).collect::<Result<Vec<_>, String>>()
        };
        let permitted = nc.permitted_subtrees.as_deref().map(read).transpose()?;
        let excluded = nc.excluded_subtrees.as_deref().map(read).transpose()?;
        // GeneralSubtrees is SIZE (1..MAX), and one of the two is present.
        if permitted.as_ref().is_some_and(Vec::is_empty) || excluded.as_ref().is_some_and(Vec::is_empty) {
            return Err("an empty list of subtrees".into());
        }
        if permitted.is_none() && excluded.is_none() {
            return Err("neither permitted nor excluded subtrees".into());
        }
        Ok(NameConstraints { permitted, excluded: excluded.unwrap_or_default() })
    }
}

fn subtree(base: &GeneralName<'_>) -> Result<Subtree, String> {
    Ok(match base {
        GeneralName::DirectoryName(dn) => Subtree::Directory(dn_of(dn)),
        GeneralName::RFC822Name(e) => Subtree::Email(EmailConstraint::read(e)?),
        other => Subtree::Unprocessed(form(other)),
    })
}

fn form(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "invalid",
    }
}

/// The names a certificate carries, in the forms constraints apply to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    /// The subject (absent when empty) and every subjectAltName
    /// directoryName.
    directories: Vec<Dn>,
    /// subjectAltName rfc822Names and subject emailAddress attributes, as
    /// written (syntax checked only where a constraint applies).
    emails: Vec<String>,
    /// Other forms present in subjectAltName.
    other_forms: Vec<&'static str>,
}

impl Names {
    pub fn read(subject: &X509Name<'_>, san: &[GeneralName<'_>], subject_empty: bool) -> Names {
        let mut n = Names::default();
        if !subject_empty {
            n.directories.push(dn_of(subject));
        }
        for atv in subject.iter_attributes() {
            if atv.attr_type().to_id_string() == EMAIL_ADDRESS {
                n.emails.push(atv.as_str().map(str::to_owned).unwrap_or_default());
            }
        }
        for g in san {
            match g {
                GeneralName::DirectoryName(dn) => n.directories.push(dn_of(dn)),
                GeneralName::RFC822Name(e) => n.emails.push((*e).to_owned()),
                other => {
                    let f = form(other);
                    if !n.other_forms.contains(&f) {
                        n.other_forms.push(f);
                    }
                }
            }
        }
        n
    }

    fn count(&self) -> usize {
        self.directories.len() + self.emails.len() + self.other_forms.len()
    }
}

/// Checks `names` of the certificate `subject` against one CA's
/// constraints, counting comparisons into `budget`.
pub(crate) fn check(
    constraints: &NameConstraints,
    names: &Names,
    subject: &str,
    budget: &mut usize,
) -> Result<(), Refusal> {
    let trees = constraints.permitted.iter().flatten().chain(&constraints.excluded);
    for t in trees.clone() {
        if let Subtree::Unprocessed(f) = t
            && names.other_forms.contains(f)
        {
            return Err(Refusal::UnsupportedNameConstraint { subject: subject.to_owned(), form: f });
        }
    }
    let cost = trees.count().saturating_mul(names.count());
    *budget = budget.checked_sub(cost).ok_or_else(|| Refusal::NameConstraintViolation {
        subject: subject.to_owned(),
        detail: format!(
            "checking its names against the name constraints above it takes more than {MAX_NAME_COMPARISONS} comparisons"
        ),
    })?;
    let violation = |detail: String| Refusal::NameConstraintViolation { subject: subject.to_owned(), detail };

    let mailboxes = if has_form(constraints, |t| matches!(t, Subtree::Email(_))) {
        names
            .emails
            .iter()
            .map(|e| mailbox(e).ok_or_else(|| violation(format!("{e:?} is not a valid email address"))))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };

    for dn in &names.directories {
        let of_form: Vec<&Dn> = trees_of(constraints.permitted.as_deref(), |t| match t {
            Subtree::Directory(d) => Some(d),
            _ => None,
        });
        if constraints.permitted.is_some() && !of_form.is_empty() && !of_form.iter().any(|p| dn.within(p)) {
            return Err(violation("a directory name outside the permitted subtrees".into()));
        }
        if constraints.excluded.iter().any(|t| matches!(t, Subtree::Directory(d) if dn.within(d))) {
            return Err(violation("a directory name inside an excluded subtree".into()));
        }
    }
    for m in &mailboxes {
        let of_form: Vec<&EmailConstraint> = trees_of(constraints.permitted.as_deref(), |t| match t {
            Subtree::Email(e) => Some(e),
            _ => None,
        });
        if !of_form.is_empty() && !of_form.iter().any(|c| c.matches(m)) {
            return Err(violation(format!("email {}@{} outside the permitted subtrees", m.local, m.host)));
        }
        if constraints.excluded.iter().any(|t| matches!(t, Subtree::Email(c) if c.matches(m))) {
            return Err(violation(format!("email {}@{} inside an excluded subtree", m.local, m.host)));
        }
    }
    Ok(())
}

fn has_form(c: &NameConstraints, f: impl Fn(&Subtree) -> bool) -> bool {
    c.permitted.iter().flatten().chain(&c.excluded).any(f)
}

fn trees_of<'a, T>(trees: Option<&'a [Subtree]>, pick: impl Fn(&'a Subtree) -> Option<&'a T>) -> Vec<&'a T> {
    trees.into_iter().flatten().filter_map(pick).collect()
}
