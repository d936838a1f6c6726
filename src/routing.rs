//! Telling an unknown route (404) from a known route called with the wrong method (405),
//! from the paths and methods of the OpenAPI document; and answering `HEAD` wherever `GET`
//! answers (RFC 9110 §9.3.2), which actix's method guards do not do by themselves.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

/// The mark of a `HEAD` request routed as `GET`, for the access log.
#[derive(Clone, Copy, Debug)]
pub struct HeadRequest;

/// Middleware: routes a `HEAD` request as the `GET` it asks about. The HTTP layer knows the
/// request was `HEAD` (it decoded it) and sends the `GET` answer's status and headers without
/// its body. It must run first: actix lets the method change only while no other part holds
/// the request.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(HeadRequest);
    }
    next.call(req).await
}

/// The method the client sent: `HEAD` for a `HEAD` routed as `GET`.
pub fn original_method(req: &ServiceRequest) -> Method {
    match req.extensions().get::<HeadRequest>() {
        Some(_) => Method::HEAD,
        None => req.method().clone(),
    }
}

struct Route {
    segments: Vec<Option<String>>,
    methods: Vec<String>,
}

pub struct KnownRoutes {
    routes: Vec<Route>,
}

impl KnownRoutes {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes: Vec<Route> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .trim_matches('/')
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
                    .collect();
                let mut methods: Vec<String> = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(m, _)| m.to_string())
                .collect();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                Route { segments, methods }
            })
            .collect();
        // The document itself and the Swagger UI are served outside the spec.
        routes.push(Route {
            segments: vec![Some("openapi.json".into())],
            methods: vec!["GET".into(), "HEAD".into()],
        });
        Self { routes }
    }

    /// Adds a path served outside the document (`/metrics`, when it is on), so that another
    /// method there answers 405 rather than 404.
    pub fn with(mut self, path: &str, methods: &[&str]) -> Self {
        self.routes.push(Route {
            segments: path.trim_matches('/').split('/').map(|s| Some(s.to_string())).collect(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
        });
        self
    }

    /// The methods the path answers, if the path is known at all. A literal segment wins over
    /// a parameter where both fit (`/v1/contacts/reassign` is not the contact `reassign`), as
    /// OpenAPI matches concrete paths before templated ones.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let matching: Vec<&Route> = self
            .routes
            .iter()
            .filter(|route| {
                route.segments.len() == parts.len()
                    && route.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                        Some(lit) => lit == part,
                        None => !part.is_empty(),
                    })
            })
            .collect();
        let literals = |route: &Route| route.segments.iter().map(Option::is_some).collect::<Vec<bool>>();
        let best = matching.iter().map(|route| literals(route)).max()?;
        let mut allowed: Vec<&str> = matching
            .iter()
            .filter(|route| literals(route) == best)
            .flat_map(|route| route.methods.iter().map(String::as_str))
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        Some(allowed.join(", "))
    }
}
