//! Every endpoint of the institution listener, one row each: its method and
//! path, the audit action it is logged under, what it needs past the
//! terminal checks (no session, any session, or a session whose role may do
//! one of the role actions), and its handler. The router is built from this
//! table alone, and every route gets the same layers (`layers::stack!`); so
//! do requests for no endpoint (`Unknown`: 404 `not_found`, audited).

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};

use crate::audit::Action as Audit;
use crate::domain::roles::Action as Role;
use crate::gateway::Gateway;
use crate::http::layers::stack;
use crate::routes::{auth, confirm, corrections, drafts, emergency, encounters, notes, patients, received};

/// What an endpoint needs past the terminal checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session (challenge and login).
    Public,
    /// A session; the handler decides from what it finds (a draft's author
    /// or signer, each item of a batch).
    Session,
    /// A session whose role may do one of these.
    Role(&'static [Role]),
}

macro_rules! endpoints {
    ($( $endpoint:ident: $method:ident $path:literal, $audit:ident, $access:expr => $handler:path; )*) => {
        /// An endpoint of the institution listener.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $( $endpoint, )*
            /// No endpoint: any other method or path.
            Unknown,
        }

        impl Endpoint {
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$endpoint,)*];

            /// Method and path (axum syntax: `{name}` is one segment).
            pub fn route(self) -> Option<(MethodFilter, &'static str)> {
                match self {
                    $( Endpoint::$endpoint => Some((MethodFilter::$method, $path)), )*
                    Endpoint::Unknown => None,
                }
            }

            /// The action in the audit log.
            pub fn audit(self) -> Audit {
                match self {
                    $( Endpoint::$endpoint => Audit::$audit, )*
                    Endpoint::Unknown => Audit::HttpUnknown,
                }
            }

            pub fn access(self) -> Access {
                match self {
                    $( Endpoint::$endpoint => $access, )*
                    Endpoint::Unknown => Access::Public,
                }
            }
        }

        /// The institution listener's router: every endpoint under its
        /// layers, and every other request answered `not_found` under them.
        pub fn router(gw: &Arc<Gateway>) -> Router {
            let mut r: Router<Arc<Gateway>> = Router::new();
            $( r = r.route($path, on(MethodFilter::$method, $handler).route_layer(stack!(gw, Endpoint::$endpoint))); )*
            // A known path with another method is no endpoint either.
            r.method_not_allowed_fallback(Handler::layer(not_found, stack!(gw, Endpoint::Unknown)))
                .fallback(Handler::layer(not_found, stack!(gw, Endpoint::Unknown)))
                .with_state(gw.clone())
        }
    };
}

const SESSION: Access = Access::Session;

endpoints! {
    Challenge:        POST "/v1/auth/challenge",              AuthChallenge,     Access::Public => auth::challenge;
    Login:            POST "/v1/auth/login",                  AuthLogin,         Access::Public => auth::login;
    Logout:           POST "/v1/auth/logout",                 AuthLogout,        Access::Role(&[Role::Logout]) => auth::logout;
    WhoAmI:           GET  "/v1/auth/whoami",                 AuthWhoAmI,        Access::Role(&[Role::WhoAmI]) => auth::whoami;
    RegisterPatient:  POST "/v1/patients",                    PatientRegister,   Access::Role(&[Role::RegisterPatient]) => patients::register;
    PatientRecords:   GET  "/v1/patients/{patient}/records",  RecordsRead,       Access::Role(&[Role::ReadPatientRecords]) => patients::records;
    OpenEncounter:    POST "/v1/encounters",                  EncounterOpen,     Access::Role(&[Role::OpenEncounter]) => encounters::open;
    CloseEncounter:   POST "/v1/encounters/{encounter}/close", EncounterClose,   Access::Role(&[Role::OpenEncounter]) => encounters::close;
    CreateDraft:      POST "/v1/drafts",                      DraftCreate,       Access::Role(&[Role::WriteDraft]) => drafts::create;
    MyDrafts:         GET  "/v1/drafts",                      DraftsReadOwn,     Access::Role(&[Role::WriteDraft]) => drafts::mine;
    LinkedDoctors:    GET  "/v1/doctors",                     DoctorsReadLinked, Access::Role(&[Role::WriteDraft]) => drafts::doctors;
    CreateDispensing: POST "/v1/dispensing",                  DispensingCreate,  Access::Role(&[Role::RegisterDispensing]) => drafts::create_dispensing_draft;
    ReadDraft:        GET  "/v1/drafts/{draft}",              DraftRead,         SESSION => drafts::read;
    EditDraft:        PUT  "/v1/drafts/{draft}",              DraftEdit,         Access::Role(&[Role::WriteDraft]) => drafts::edit;
    SigningBytes:     GET  "/v1/drafts/{draft}/signing-bytes", DraftReview,      Access::Role(&[Role::ReviewDrafts]) => confirm::signing_bytes;
    SignedAttributes: POST "/v1/drafts/{draft}/signed-attributes", DraftSignedAttributes, Access::Role(&[Role::ReviewDrafts]) => confirm::signed_attributes;
    Confirm:          POST "/v1/drafts/{draft}/confirm",      DraftConfirm,      Access::Role(&[Role::ConfirmDraft, Role::RegisterDispensing]) => confirm::confirm;
    ConfirmBatch:     POST "/v1/confirm-batch",               DraftConfirmBatch, SESSION => confirm::batch;
    Queue:            GET  "/v1/queue",                       QueueRead,         Access::Role(&[Role::ReviewDrafts]) => drafts::queue_of;
    AddNote:          POST "/v1/notes",                       NoteAdd,           Access::Role(&[Role::AddNote]) => notes::add;
    ReceiveDocument:  POST "/v1/signed-documents",            SignedDocumentReceive, Access::Role(&[Role::ReceiveSignedDocument]) => received::receive;
    CorrectionQueue:  GET  "/v1/corrections",                 CorrectionsRead,   Access::Role(&[Role::HandleCorrections]) => corrections::queue;
    ResolveCorrection: POST "/v1/corrections/{correction}/resolve", CorrectionResolve, Access::Role(&[Role::HandleCorrections]) => corrections::resolve;
    Status:           GET  "/v1/status",                      StatusRead,        Access::Role(&[Role::WhoAmI]) => emergency::status;
    BreakGlassStart:  POST "/v1/break-glass",                 BreakGlassStart,   Access::Role(&[Role::BreakGlass]) => emergency::start;
    BreakGlassRecords: GET "/v1/break-glass/{access}/records", BreakGlassRead,   Access::Role(&[Role::BreakGlass]) => emergency::records;
    BreakGlassEnd:    POST "/v1/break-glass/{access}/end",    BreakGlassEnd,     Access::Role(&[Role::BreakGlass]) => emergency::end;
}

/// What an endpoint does, for the operating mode (FLOW-7, `layers::mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signing in and out, and what the terminal's screen shows of the
    /// session and the mode: served in every mode.
    SignInOut,
    /// Reads: served unless blocked.
    Read,
    /// Changes: served only in normal mode.
    Write,
    /// The break-glass path: served in every mode (it is what blocked
    /// operation leaves open).
    BreakGlass,
}

impl Endpoint {
    /// No wildcard: a new endpoint must be classified here.
    pub fn kind(self) -> Kind {
        use Endpoint::*;
        match self {
            Challenge | Login | Logout | WhoAmI | Status => Kind::SignInOut,
            PatientRecords | MyDrafts | LinkedDoctors | ReadDraft | SigningBytes | Queue | CorrectionQueue
            | Unknown => Kind::Read,
            RegisterPatient | OpenEncounter | CloseEncounter | CreateDraft | CreateDispensing | EditDraft
            | SignedAttributes | Confirm | ConfirmBatch | AddNote | ReceiveDocument | ResolveCorrection => Kind::Write,
            BreakGlassStart | BreakGlassRecords | BreakGlassEnd => Kind::BreakGlass,
        }
    }

    /// What the audit entry names when nothing more specific is known.
    pub fn default_object(self) -> &'static str {
        match self {
            Endpoint::WhoAmI | Endpoint::Logout | Endpoint::Status => "session",
            _ => "-",
        }
    }
}

async fn not_found() -> crate::routes::ApiError {
    crate::routes::ApiError::new(hpki_protocol::ErrorCode::NotFound, "no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_own_route_and_audit_action() {
        let mut routes = std::collections::HashSet::new();
        let mut actions = std::collections::HashSet::new();
        for e in Endpoint::ALL {
            let (method, path) = e.route().expect("a route");
            assert!(routes.insert((format!("{method:?}"), path)), "{e:?}: route twice");
            assert!(actions.insert(e.audit()), "{e:?}: audit action twice");
        }
        assert!(!actions.contains(&Audit::HttpUnknown));
    }

    #[test]
    fn every_write_of_the_workflow_is_a_write_for_the_mode() {
        // A write is an endpoint that stages an audit entry (it changes
        // state), but for login and logout (sessions) and break-glass; and
        // the signed attributes, the first step of a confirm, refused with
        // it so that nobody signs in vain.
        for e in Endpoint::ALL {
            let stages = crate::audit::outbox::STAGING.contains(&e.audit()) || *e == Endpoint::SignedAttributes;
            let expected = match e.kind() {
                Kind::Write => true,
                Kind::Read => false,
                Kind::SignInOut | Kind::BreakGlass => continue,
            };
            assert_eq!(stages, expected, "{e:?} is {:?}", e.kind());
        }
    }

    #[test]
    fn only_challenge_and_login_go_without_a_session() {
        let public: Vec<_> = Endpoint::ALL.iter().filter(|e| e.access() == Access::Public).collect();
        assert_eq!(public, [&Endpoint::Challenge, &Endpoint::Login]);
    }
}
