//! The OpenAPI 3.1 document: collected from the handlers' annotations, then completed with
//! what every operation shares (the problem responses, the bearer scheme, the `X-Request-Id`
//! header, an explicit `security` on every operation).

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema, SchemaType};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Steward",
        description = "Accounts, sub-accounts, users, roles, invitations, caretakers, impersonation and contacts, \
behind a SaaS front end.\n\n\
Errors are RFC 9457 problem documents (`application/problem+json`) whose `type` is one of the stable URIs \
`urn:steward:problem:<kind>`. Ids are opaque prefixed strings (`usr_…`, `acc_…`) that never change. \
Access tokens are EdDSA JWTs verifiable with `/.well-known/jwks.json`; `sub` is the effective user and \
`act.sub` (RFC 8693) the real actor when someone acts as another user.",
        license(name = "MIT"),
    ),
    servers((url = "/", description = "The server this document is served from: every path is relative to it")),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "auth", description = "Sign-up, login, tokens and password reset"),
        (name = "me", description = "The caller"),
        (name = "accounts", description = "The organization tree, profiles and billing"),
        (name = "users", description = "People in the account: roles, place in the tree, ownership"),
        (name = "roles", description = "Permissions and roles"),
        (name = "invites", description = "Invitations: send, resend, copy link, revoke; preview and accept by token"),
        (name = "notifications", description = "Messages for people: posted by the account's services, routed to caretakers, delivered at least once"),
        (name = "caretakers", description = "Someone manages a user's account while they are away (R7): assignments, managed users, acting as them"),
        (name = "impersonation", description = "Support \"log in as\" (R9): bounded, read-only unless full mode is allowed, never an escalation, every request audited"),
        (name = "contacts", description = "People in an account who cannot log in (R12): assigned to users, visible per role, reassigned in bulk, sent notices by subscription"),
        (name = "webhooks", description = "Event webhooks: endpoints, signed deliveries with retries, a delivery log and replay"),
        (name = "api-keys", description = "Machine credentials of an organization: create, list, rotate, revoke; used as a bearer token or exchanged for an access token (OAuth 2.0 client credentials)"),
        (name = "audit", description = "The audit log: who did what, as whom, when; read in pages or exported as JSON Lines; append-only"),
        (name = "operations", description = "Health, readiness and public keys"),
    ),
    modifiers(&Conventions)
)]
struct ApiDoc;

/// The document Steward serves and commits.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::api::routes)
        .split_for_parts();
    Conventions.modify(&mut doc);
    forbid_control_characters(&mut doc);
    doc
}

/// The operations of one path, whatever their method.
fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// What `api::extract::storable` refuses in any request text: the C0 controls but tab, line
/// feed and carriage return, and DEL.
const STORABLE: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$";
/// The same, for text that must also hold something other than white space (`\S`).
const STORABLE_NOT_BLANK: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\s][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$";

/// Says in the document what the server refuses in every request: each free-text string of a
/// request body or a parameter (and of the components they use) gets a `pattern` without the
/// characters `storable` refuses, so that a client or a fuzzer reading the document knows a
/// control character is not valid input. Strings with a format, a list of values or their own
/// pattern (ids, names) are left as they are, but `\S`, which is merged in.
fn forbid_control_characters(doc: &mut utoipa::openapi::OpenApi) {
    let mut pending = Vec::new();
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for parameter in op.parameters.iter_mut().flatten() {
                if let RefOr::T(Parameter {
                    schema: Some(schema), ..
                }) = parameter
                {
                    storable_strings(schema, &mut pending);
                }
            }
            if let Some(RefOr::T(body)) = &mut op.request_body {
                for media in body.content.values_mut() {
                    if let RefOr::T(Content {
                        schema: Some(schema), ..
                    }) = media
                    {
                        storable_strings(schema, &mut pending);
                    }
                }
            }
        }
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            storable_strings(schema, &mut pending);
        }
    }
}

/// Adds the `STORABLE` pattern to every free-text string in `schema`, and collects the names
/// of the components it refers to.
fn storable_strings(schema: &mut RefOr<Schema>, refs: &mut Vec<String>) {
    let object = match schema {
        RefOr::Ref(target) => {
            if let Some(name) = target.ref_location.strip_prefix("#/components/schemas/") {
                refs.push(name.to_string());
            }
            return;
        }
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                storable_strings(items, refs);
            }
            return;
        }
        RefOr::T(Schema::OneOf(one)) => return one.items.iter_mut().for_each(|s| storable_strings(s, refs)),
        RefOr::T(Schema::AllOf(all)) => return all.items.iter_mut().for_each(|s| storable_strings(s, refs)),
        RefOr::T(Schema::AnyOf(any)) => return any.items.iter_mut().for_each(|s| storable_strings(s, refs)),
        RefOr::T(Schema::Object(object)) => object,
        RefOr::T(_) => return,
    };
    let is_string = match &object.schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    if is_string && object.format.is_none() && object.enum_values.is_none() {
        match object.pattern.as_deref() {
            None => object.pattern = Some(STORABLE.to_string()),
            Some(r"\S") => object.pattern = Some(STORABLE_NOT_BLANK.to_string()),
            Some(_) => {}
        }
    }
    for property in object.properties.values_mut() {
        storable_strings(property, refs);
    }
    if let Some(AdditionalProperties::RefOr(values)) = object.additional_properties.as_deref_mut() {
        storable_strings(values, refs);
    }
}

/// The document as served at `/openapi.json` and committed as `openapi/openapi.json`.
pub fn document_json() -> String {
    let doc = document();
    let mut json = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

struct Conventions;

fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A person's access token (a JWT from login, refresh or an exchange), an access token \
exchanged for an API key at `POST /v1/oauth/token`, or an API key's secret itself (`stk_…`).",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let keeps_answers = !crate::idempotency::NOT_KEPT.contains(&path.as_str());
            for op in operations_mut(item) {
                if keeps_answers {
                    add_idempotency_key(op);
                }
                add_versions(op);
                add_throttling(op);
                add_shared_problems(op);
                // Public operations say so, rather than leaving it to a default.
                op.security.get_or_insert_with(Vec::new);
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert(
                            REQUEST_ID.to_string(),
                            RefOr::Ref(Ref::new(format!("#/components/headers/{REQUEST_ID}"))),
                        );
                        if status == "429" || status == "503" {
                            response.headers.insert(
                                RETRY_AFTER.to_string(),
                                RefOr::Ref(Ref::new(format!("#/components/headers/{RETRY_AFTER}"))),
                            );
                        }
                    }
                }
            }
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.headers.insert(REQUEST_ID.to_string(), request_id_header());
        components.headers.insert(RETRY_AFTER.to_string(), retry_after_header());
    }
}

/// Set on every 429 and 503 (`ApiError::retry_after`).
const RETRY_AFTER: &str = "Retry-After";

fn retry_after_header() -> RefOr<utoipa::openapi::header::Header> {
    let mut header = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-9][0-9]*$")),
        ))
        .description(Some(
            "Whole seconds to wait before trying again (RFC 9110): until the rate-limit window ends (429), \
or a moment while the database is unreachable (503).",
        ))
        .build();
    let mut required = Extensions::default();
    required.insert("required".to_string(), serde_json::Value::Bool(true));
    header.extensions = Some(required);
    RefOr::T(header)
}

/// The operations a rate limit can refuse (`rate_limit`, `auth::policy::within_limit`).
const THROTTLED: &[(&str, &str)] = &[
    ("signUp", "sign-ups from the client's address"),
    (
        "logIn",
        "failed logins for this identifier (known or not) or from the client's address",
    ),
    (
        "requestPasswordReset",
        "reset requests for this email address or from the client's address",
    ),
    ("createInvite", "invitation emails sent by the organization"),
    ("resendInvite", "invitation emails sent by the organization"),
];

fn add_throttling(op: &mut Operation) {
    let id = op.operation_id.clone().unwrap_or_default();
    if let Some((_, what)) = THROTTLED.iter().find(|(op_id, _)| *op_id == id) {
        let description =
            format!("`too-many-attempts`: too many {what} in the limit's window; `Retry-After` says when to try again");
        op.responses
            .responses
            .entry("429".to_string())
            .or_insert_with(|| problem(&description));
    }
}

/// Set on every response by `request_id::middleware`.
const REQUEST_ID: &str = "X-Request-Id";

fn request_id_header() -> RefOr<utoipa::openapi::header::Header> {
    let mut header = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[A-Za-z0-9._:-]+$")),
        ))
        .description(Some(
            "The request's id: the caller's own `X-Request-Id` when it is sane (1 to 128 letters, digits, \
`-`, `_`, `.`, `:`), a generated one otherwise. It is in the access log, in audit events and in \
problem documents; quote it to support.",
        ))
        .build();
    // utoipa's Header has no `required` field; the document states it anyway, since every
    // response carries the header.
    let mut required = Extensions::default();
    required.insert("required".to_string(), serde_json::Value::Bool(true));
    header.extensions = Some(required);
    RefOr::T(header)
}

/// An authenticated POST that creates something takes an `Idempotency-Key`
/// (`idempotency::middleware`): a retry with the same key and body gets the first response.
/// Not called for the paths whose answers are never kept (`idempotency::NOT_KEPT`).
fn add_idempotency_key(op: &mut Operation) {
    let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let creates = ["201", "202"].iter().any(|s| op.responses.responses.contains_key(*s));
    if !(authenticated && creates) {
        return;
    }
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: the same key with the same request within 24 hours returns the first \
response (with `Idempotent-Replayed: true`) without doing it again. 1 to 255 visible ASCII characters, \
e.g. a UUID; kept per caller.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[\\x21-\\x7E]+$")),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(parameter));
    let responses = &mut op.responses.responses;
    responses.entry("409".to_string()).or_insert_with(|| {
        problem("`idempotency-in-progress`: a request with this Idempotency-Key is still being served")
    });
    responses.entry("422".to_string()).or_insert_with(|| {
        problem("Invalid fields, or `idempotency-key-reused`: the key was used for a different request")
    });
}

/// The operations whose resource has a version (`service::versions`): their 200 responses
/// carry it as `ETag`, and those that change it honour `If-Match`.
const VERSIONED: &[&str] = &[
    "getUser",
    "updateUser",
    "setUserRoles",
    "moveUser",
    "getAccount",
    "updateAccount",
    "moveAccount",
    "getRole",
    "updateRole",
    "getBillingProfile",
    "updateBillingProfile",
    "getCaretaker",
    "replaceCaretaker",
    "getContact",
    "updateContact",
];
const HONOUR_IF_MATCH: &[&str] = &[
    "updateUser",
    "setUserRoles",
    "moveUser",
    "deleteUser",
    "updateAccount",
    "moveAccount",
    "updateRole",
    "deleteRole",
    "updateBillingProfile",
    "replaceCaretaker",
    "removeCaretaker",
    "updateContact",
    "deleteContact",
];

fn add_versions(op: &mut Operation) {
    let id = op.operation_id.clone().unwrap_or_default();
    if VERSIONED.contains(&id.as_str()) {
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            let header = HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "The resource's version (a strong entity tag): send it back as `If-Match` to change \
the resource only if nobody changed it since.",
                ))
                .build();
            ok.headers.insert("ETag".to_string(), RefOr::T(header));
        }
    }
    if HONOUR_IF_MATCH.contains(&id.as_str()) {
        let parameter = ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The `ETag` read before the change (or `*`): when the resource has changed since, \
nothing is written and the answer is 412 `precondition-failed`.",
            ))
            // Visible ASCII, not starting or ending with a space: what `extract::IfMatch` takes.
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .pattern(Some(r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$")),
            ))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(parameter));
        op.responses.responses.entry("412".to_string()).or_insert_with(|| {
            problem("`precondition-failed`: the resource changed since the `ETag` sent as `If-Match`")
        });
        op.responses
            .responses
            .entry("422".to_string())
            .or_insert_with(|| problem("Invalid fields, or an empty `If-Match`; `errors` lists each one"));
    }
}

/// Every operation can fail in these ways; each is documented on each operation so that
/// generated clients know the error shape everywhere.
fn add_shared_problems(op: &mut Operation) {
    let responses = &mut op.responses.responses;
    let mut add = |status: u16, description: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem(description));
    };
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add(
            401,
            "Missing, invalid or expired access token or API key, or the session has ended",
        );
        add(
            403,
            "Not allowed: a missing permission, `password-change-required`, `acting-as-forbidden`, or `api-key-forbidden` (what only a person's own session may do)",
        );
    }
    if op.request_body.is_some() {
        add(400, "The body is not valid JSON");
        add(413, "The body is too large");
        add(415, "The body is not sent as application/json");
        add(422, "Invalid fields; `errors` lists each one");
    }
    add(500, "Unexpected error; the response carries a request id to quote");
    add(
        503,
        "`database-unavailable`: the database is not reachable right now (answered within a second, \
not after a long wait); `Retry-After` says when to try again",
    );
}
