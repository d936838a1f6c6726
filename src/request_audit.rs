//! Every request made under an impersonation token is audited, reads included (R9): the
//! principal extractor marks such a request, and this middleware writes one audit event
//! for it once the response is known, with the route, the method and the status.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use crate::db::repo::audit::AuditContext;
use crate::ids::ImpersonationId;
use crate::service::{self, impersonations};
use crate::state::AppState;

/// The mark the principal extractor leaves on a request made under an impersonation.
#[derive(Clone, Debug)]
pub struct Impersonated {
    pub audit: AuditContext,
    pub impersonation: ImpersonationId,
}

/// Middleware: after the response, records the marked request. The event is written
/// before the response leaves, so a client that sees the response finds the event.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let res = next.call(req).await?;
    let request = res.request();
    let Some(mark) = request.extensions().get::<Impersonated>().cloned() else {
        return Ok(res);
    };
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res);
    };
    let record = impersonations::ImpersonatedRequest {
        audit: mark.audit,
        impersonation: mark.impersonation,
        method: request.method().to_string(),
        route: request.match_pattern().unwrap_or_else(|| request.path().to_string()),
        status: res.status().as_u16(),
    };
    if let Err(e) = service::write(&state, move |tx| impersonations::record_request(tx, record)).await {
        log::error!("could not audit a request made under an impersonation: {e}");
    }
    Ok(res)
}
