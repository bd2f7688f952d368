//! Patients' passwords (AUTH-4, AUTH-5): argon2id hashes only, initial
//! passwords for the support desk, the rule for a new password, and the
//! lockout schedule after wrong guesses.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the system random generator failed")]
    Random,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` (salt, parameters and hash; never the
/// password).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string; a malformed string
/// never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so an unknown ID answers as slowly
/// as a wrong password.
pub fn waste_time(password: &str) {
    let _ = hash(password);
}

/// A new initial password for the support desk to hand over: twelve
/// characters without look-alikes, in groups of four.
pub fn initial_password() -> Result<Zeroizing<String>, PasswordError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    const LIMIT: u8 = (256 - 256 % ALPHABET.len()) as u8;
    let rng = SystemRandom::new();
    let mut out = Zeroizing::new(String::new());
    let mut drawn = 0;
    while drawn < 12 {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill(b.as_mut()).map_err(|_| PasswordError::Random)?;
        for x in b.iter().copied().filter(|x| *x < LIMIT) {
            if drawn == 12 {
                break;
            }
            if drawn > 0 && drawn % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(x) % ALPHABET.len()]));
            drawn += 1;
        }
    }
    Ok(out)
}

/// Why a chosen password is refused, if it is.
pub fn weakness(new: &str, patient_id: &str, current: &str) -> Option<&'static str> {
    let chars = new.chars().count();
    if chars < 10 {
        Some("at least 10 characters")
    } else if chars > 128 {
        Some("at most 128 characters")
    } else if new == current {
        Some("different from the current password")
    } else if new.to_lowercase().contains(&patient_id.to_lowercase()) {
        Some("must not contain the patient ID")
    } else if new.chars().all(|c| c == new.chars().next().unwrap_or(' ')) {
        Some("not one repeated character")
    } else {
        None
    }
}

/// When an account with `failures` consecutive failures unlocks: not
/// locked below `max`; then `base` seconds, doubling with each further
/// failure, at most a day.
pub fn locked_until(failures: i64, max: i64, base: i64, now: i64) -> i64 {
    if failures < max {
        return 0;
    }
    let doublings = (failures - max).min(20) as u32;
    now + base.saturating_mul(1i64 << doublings).min(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let h1 = hash("correct horse battery").unwrap();
        let h2 = hash("correct horse battery").unwrap();
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h1}");
        assert_ne!(h1, h2, "salted");
        assert!(!h1.contains("correct"));
        assert!(verify("correct horse battery", &h1));
        assert!(!verify("correct horse batterY", &h1));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn initial_passwords_are_twelve_unambiguous_characters() {
        let p = initial_password().unwrap();
        assert_eq!(p.len(), 14);
        assert_eq!(p.matches('-').count(), 2);
        assert!(!p.chars().any(|c| "0O1lIoi".contains(c)), "{}", p.as_str());
        assert_ne!(*p, *initial_password().unwrap());
    }

    #[test]
    fn weak_passwords_and_the_lockout_schedule() {
        assert_eq!(weakness("short", "P123", "x"), Some("at least 10 characters"));
        assert_eq!(weakness("aaaaaaaaaaaa", "P123", "x"), Some("not one repeated character"));
        assert_eq!(weakness("myP123password", "P123", "x"), Some("must not contain the patient ID"));
        assert_eq!(weakness("same-as-before", "P1", "same-as-before"), Some("different from the current password"));
        assert_eq!(weakness("a good long one", "P1", "x"), None);
        assert_eq!(locked_until(4, 5, 30, 1000), 0);
        assert_eq!(locked_until(5, 5, 30, 1000), 1030);
        assert_eq!(locked_until(6, 5, 30, 1000), 1060);
        assert_eq!(locked_until(50, 5, 30, 1000), 1000 + 86_400);
    }
}
