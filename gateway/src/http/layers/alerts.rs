//! Layer 2: the abnormal-access rules (LOG-4, `ops::alerts`) look at each
//! answered login after its audit entry is durable (the rules count
//! entries), and raise what they find: an alert, and where configured a
//! suspension or a deactivation. Every break-glass access started raises
//! one too (FLOW-7), rules or none.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::gateway::{ConnInfo, Gateway};
use crate::http::endpoints::Endpoint;
use crate::http::layers::audit::Answered;
use crate::routes::{Actor, Object, Refusal};

#[derive(Clone)]
pub struct Alerts {
    /// `None`: the endpoint is watched by no rule (logins are, when rules
    /// are configured; break-glass starts always).
    gw: Option<Arc<Gateway>>,
    endpoint: Endpoint,
}

impl Alerts {
    pub fn of(gw: &Arc<Gateway>, endpoint: Endpoint) -> Alerts {
        let watched =
            (endpoint == Endpoint::Login && gw.config.alerts.is_some()) || endpoint == Endpoint::BreakGlassStart;
        Alerts { gw: watched.then(|| gw.clone()), endpoint }
    }
}

pub async fn layer(State(alerts): State<Arc<Alerts>>, req: Request, next: Next) -> Response {
    let Some(gw) = alerts.gw.clone() else {
        return next.run(req).await;
    };
    if alerts.endpoint == Endpoint::BreakGlassStart {
        let conn = req.extensions().get::<Arc<ConnInfo>>().cloned();
        let resp = next.run(req).await;
        if let (Some(conn), None) = (conn, resp.extensions().get::<Refusal>()) {
            let person = resp.extensions().get::<Actor>().map_or("-", |a| a.0.as_str());
            let object = resp.extensions().get::<Object>().map_or("-", |o| o.0.as_str());
            crate::ops::alerts::break_glass_started(&gw, &conn, person, object).await;
        }
        return resp;
    }
    let conn = req.extensions().get::<Arc<ConnInfo>>().cloned();
    let resp = next.run(req).await;
    let refused = match resp.extensions().get::<Answered>() {
        Some(a) => a.refused,
        None => resp.extensions().get::<Refusal>().is_some(),
    };
    let actor = resp.extensions().get::<Actor>().map_or("-", |a| a.0.as_str());
    if let Some(conn) = conn {
        crate::ops::alerts::observe(&gw, &conn, refused, actor).await;
    }
    resp
}
