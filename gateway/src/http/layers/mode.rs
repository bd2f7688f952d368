//! Layer 5: the operating mode (FLOW-7). IT staff set it in the store
//! (`hpki-gateway admin mode`); the terminal layer's snapshot carries it, read
//! after the request arrived, so a change committed before a request — by
//! any gateway process or the CLI — decides it. Read-only refuses writes;
//! blocked refuses all but signing in and out and the break-glass path.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hpki_protocol::ErrorCode;
use hpki_protocol::emergency::OperatingMode;

use crate::http::endpoints::Kind;
use crate::routes::ApiError;
use crate::store::ModeRow;
use crate::store::snapshot::Snapshot;

/// Whether an endpoint of `kind` is served under `mode`.
pub fn admit(mode: &ModeRow, kind: Kind) -> Result<(), ApiError> {
    match (mode.mode, kind) {
        (OperatingMode::Normal, _) | (_, Kind::SignInOut | Kind::BreakGlass) => Ok(()),
        (OperatingMode::ReadOnly, Kind::Read) => Ok(()),
        (OperatingMode::ReadOnly, Kind::Write) => Err(ApiError::new(
            ErrorCode::ReadOnlyMode,
            format!("the gateway is read-only ({}): records can be read, nothing can be written", mode.reason),
        )),
        (OperatingMode::Blocked, Kind::Read | Kind::Write) => Err(ApiError::new(
            ErrorCode::BlockedMode,
            format!(
                "the gateway is blocked ({}): only signing in and out and break-glass access are served",
                mode.reason
            ),
        )),
    }
}

pub async fn layer(State(kind): State<Kind>, req: Request, next: Next) -> Response {
    let Some(snapshot) = req.extensions().get::<Snapshot>() else {
        tracing::error!("the mode layer ran without the terminal layer's snapshot");
        return ApiError::new(ErrorCode::Internal, "the gateway is misconfigured").into_response();
    };
    if let Err(refusal) = admit(&snapshot.mode, kind) {
        return refusal.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(m: OperatingMode) -> ModeRow {
        ModeRow { mode: m, reason: "drill".into(), changed_by: "admin:test".into(), changed_at: 1 }
    }

    /// Every mode × kind, written out: what each mode serves.
    #[test]
    fn each_mode_serves_what_flow_7_says() {
        use Kind::*;
        use OperatingMode::*;
        let expected: [(OperatingMode, Kind, Option<ErrorCode>); 12] = [
            (Normal, SignInOut, None),
            (Normal, Read, None),
            (Normal, Write, None),
            (Normal, BreakGlass, None),
            (ReadOnly, SignInOut, None),
            (ReadOnly, Read, None),
            (ReadOnly, Write, Some(ErrorCode::ReadOnlyMode)),
            (ReadOnly, BreakGlass, None),
            (Blocked, SignInOut, None),
            (Blocked, Read, Some(ErrorCode::BlockedMode)),
            (Blocked, Write, Some(ErrorCode::BlockedMode)),
            (Blocked, BreakGlass, None),
        ];
        for (m, k, code) in expected {
            assert_eq!(admit(&mode(m), k).err().map(|e| e.code), code, "{m} × {k:?}");
        }
        let refusal = admit(&mode(ReadOnly), Write).expect_err("refused");
        assert!(refusal.message.contains("drill"), "the reason is shown: {}", refusal.message);
    }
}
