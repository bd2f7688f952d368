//! The object identifiers of CMS, CAdES and RFC 3161 this crate writes or
//! reads. Those in `const_oid`'s database are taken from there.

use der::oid::ObjectIdentifier as Oid;

pub use der::oid::db::rfc5280::{ID_CE_EXT_KEY_USAGE, ID_KP_TIME_STAMPING};
pub use der::oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME};
pub use der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512, RSA_ENCRYPTION,
    SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};

/// id-ct-TSTInfo (RFC 3161): the content type of a time-stamp token.
pub const ID_CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-aa-signingCertificate (RFC 2634): ESSCertID with SHA-1, what many
/// TSAs (OpenSSL's included) put in their tokens.
pub const ID_AA_SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// id-aa-signingCertificateV2 (RFC 5035).
pub const ID_AA_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-signatureTimeStampToken (RFC 3161 appendix A; CAdES-T).
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-aa-ets-archiveTimestampV3 (ETSI EN 319 122-1 §5.5.3): CAdES B-LTA.
pub const ID_AA_ETS_ARCHIVE_TIMESTAMP_V3: Oid = Oid::new_unwrap("0.4.0.1733.2.4");
/// id-aa-ATSHashIndex-v3 (EN 319 122-1 §5.5.2), in the archive token's
/// own unsigned attributes.
pub const ID_AA_ATS_HASH_INDEX_V3: Oid = Oid::new_unwrap("0.4.0.19122.1.5");
