//! One error type for the whole API, rendered as RFC 9457 problem details.
//!
//! Every kind of problem has a stable `type` URI, a title and a status, all defined in
//! [`ProblemKind`] and nowhere else. A 500 never shows its cause: the cause is logged with
//! the request id, and the response carries only that id.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::request_id;

/// The kinds of problem Steward reports. The slug is part of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    ValidationFailed,
    MalformedBody,
    Unauthenticated,
    InvalidCredentials,
    PasswordChangeRequired,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    LastOwner,
    AlreadyMember,
    InviteAlreadyPending,
    InviteNotPending,
    AccountClosed,
    EmailTaken,
    UsernameTaken,
    ExternalIdTaken,
    RoleNameTaken,
    BuiltinRole,
    RoleInUse,
    RootAccount,
    OwnNode,
    AlreadyOwner,
    MemberNotActive,
    PreconditionFailed,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    MemberAlreadyActive,
    UserNotArchived,
    CaretakerSelf,
    ManagedUserPrivileged,
    CaretakerUnavailable,
    CaretakerChain,
    CaretakerAlreadyAssigned,
    NoCaretaker,
    NotificationNotDead,
    AccountManaged,
    ActingAsForbidden,
    ApiKeyForbidden,
    UnsupportedGrantType,
    ImpersonationEscalation,
    ImpersonationSelf,
    ImpersonationTargetManaged,
    ImpersonationReadOnly,
    ImpersonationFullModeRefused,
    ImpersonationEnded,
    AssigneeUnavailable,
    SignupClosed,
    CorsRefused,
    PasswordTooCommon,
    InvalidToken,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    TooManyAttempts,
    ServiceUnavailable,
    DatabaseUnavailable,
    Internal,
}

impl ProblemKind {
    pub const ALL: &'static [ProblemKind] = &[
        Self::ValidationFailed,
        Self::MalformedBody,
        Self::Unauthenticated,
        Self::InvalidCredentials,
        Self::PasswordChangeRequired,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::LastOwner,
        Self::AlreadyMember,
        Self::InviteAlreadyPending,
        Self::InviteNotPending,
        Self::AccountClosed,
        Self::EmailTaken,
        Self::UsernameTaken,
        Self::ExternalIdTaken,
        Self::RoleNameTaken,
        Self::BuiltinRole,
        Self::RoleInUse,
        Self::RootAccount,
        Self::OwnNode,
        Self::AlreadyOwner,
        Self::MemberNotActive,
        Self::PreconditionFailed,
        Self::IdempotencyKeyReused,
        Self::IdempotencyInProgress,
        Self::MemberAlreadyActive,
        Self::UserNotArchived,
        Self::CaretakerSelf,
        Self::ManagedUserPrivileged,
        Self::CaretakerUnavailable,
        Self::CaretakerChain,
        Self::CaretakerAlreadyAssigned,
        Self::NoCaretaker,
        Self::NotificationNotDead,
        Self::AccountManaged,
        Self::ActingAsForbidden,
        Self::ApiKeyForbidden,
        Self::UnsupportedGrantType,
        Self::ImpersonationEscalation,
        Self::ImpersonationSelf,
        Self::ImpersonationTargetManaged,
        Self::ImpersonationReadOnly,
        Self::ImpersonationFullModeRefused,
        Self::ImpersonationEnded,
        Self::AssigneeUnavailable,
        Self::SignupClosed,
        Self::CorsRefused,
        Self::PasswordTooCommon,
        Self::InvalidToken,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::TooManyRequests,
        Self::TooManyAttempts,
        Self::ServiceUnavailable,
        Self::DatabaseUnavailable,
        Self::Internal,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation-failed",
            Self::MalformedBody => "malformed-body",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid-credentials",
            Self::PasswordChangeRequired => "password-change-required",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::LastOwner => "last-owner",
            Self::AlreadyMember => "already-a-member",
            Self::InviteAlreadyPending => "invite-already-pending",
            Self::InviteNotPending => "invite-not-pending",
            Self::AccountClosed => "account-closed",
            Self::EmailTaken => "email-taken",
            Self::UsernameTaken => "username-taken",
            Self::ExternalIdTaken => "external-id-taken",
            Self::RoleNameTaken => "role-name-taken",
            Self::BuiltinRole => "builtin-role",
            Self::RoleInUse => "role-in-use",
            Self::RootAccount => "root-account",
            Self::OwnNode => "own-node",
            Self::AlreadyOwner => "already-owner",
            Self::MemberNotActive => "member-not-active",
            Self::PreconditionFailed => "precondition-failed",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::IdempotencyInProgress => "idempotency-in-progress",
            Self::MemberAlreadyActive => "member-already-active",
            Self::UserNotArchived => "user-not-archived",
            Self::CaretakerSelf => "caretaker-self",
            Self::ManagedUserPrivileged => "managed-user-privileged",
            Self::CaretakerUnavailable => "caretaker-unavailable",
            Self::CaretakerChain => "caretaker-chain",
            Self::CaretakerAlreadyAssigned => "caretaker-already-assigned",
            Self::NoCaretaker => "no-caretaker",
            Self::NotificationNotDead => "notification-not-dead",
            Self::AccountManaged => "account-managed",
            Self::ActingAsForbidden => "acting-as-forbidden",
            Self::ApiKeyForbidden => "api-key-forbidden",
            Self::UnsupportedGrantType => "unsupported-grant-type",
            Self::ImpersonationEscalation => "impersonation-escalation",
            Self::ImpersonationSelf => "impersonation-self",
            Self::ImpersonationTargetManaged => "impersonation-target-managed",
            Self::ImpersonationReadOnly => "impersonation-read-only",
            Self::ImpersonationFullModeRefused => "impersonation-full-mode-refused",
            Self::ImpersonationEnded => "impersonation-ended",
            Self::AssigneeUnavailable => "assignee-unavailable",
            Self::SignupClosed => "signup-closed",
            Self::CorsRefused => "cors-refused",
            Self::PasswordTooCommon => "password-too-common",
            Self::InvalidToken => "invalid-token",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooManyRequests => "too-many-requests",
            Self::TooManyAttempts => "too-many-attempts",
            Self::ServiceUnavailable => "service-unavailable",
            Self::DatabaseUnavailable => "database-unavailable",
            Self::Internal => "internal-error",
        }
    }

    pub fn type_uri(self) -> String {
        format!("urn:steward:problem:{}", self.slug())
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::ValidationFailed => "The request has invalid fields",
            Self::MalformedBody => "The request body could not be read",
            Self::Unauthenticated => "Authentication is required",
            Self::InvalidCredentials => "The credentials are not valid",
            Self::PasswordChangeRequired => "The password must be changed first",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict with the current state",
            Self::LastOwner => "The organization would have no active owner",
            Self::AlreadyMember => "Already a member of this organization",
            Self::InviteAlreadyPending => "An invitation to this address is already pending",
            Self::InviteNotPending => "The invitation is no longer pending",
            Self::AccountClosed => "The account is closed",
            Self::EmailTaken => "The email address is taken",
            Self::UsernameTaken => "The username is taken",
            Self::ExternalIdTaken => "The external id is taken",
            Self::RoleNameTaken => "A role with this name exists",
            Self::BuiltinRole => "Built-in roles cannot be changed",
            Self::RoleInUse => "The role is in use",
            Self::RootAccount => "Not possible on a root account",
            Self::OwnNode => "Not possible on the caller's own node",
            Self::AlreadyOwner => "Already the owner",
            Self::MemberNotActive => "The member is not active",
            Self::PreconditionFailed => "The resource changed since you read it",
            Self::IdempotencyKeyReused => "The idempotency key was used for another request",
            Self::IdempotencyInProgress => "A request with this idempotency key is still being served",
            Self::MemberAlreadyActive => "The member is already active",
            Self::UserNotArchived => "The user is not archived",
            Self::CaretakerSelf => "A user cannot be their own caretaker",
            Self::ManagedUserPrivileged => "Owners and admins cannot have a caretaker",
            Self::CaretakerUnavailable => "The caretaker cannot take this on",
            Self::CaretakerChain => "Caretakers and managed users cannot chain",
            Self::CaretakerAlreadyAssigned => "The user already has a caretaker",
            Self::NoCaretaker => "The user has no caretaker",
            Self::NotificationNotDead => "Only a dead notification is retried",
            Self::AccountManaged => "The account is managed by a caretaker",
            Self::ActingAsForbidden => "Not allowed while acting as another user",
            Self::ApiKeyForbidden => "Not allowed with an API key",
            Self::UnsupportedGrantType => "Unsupported grant type",
            Self::ImpersonationEscalation => "The user holds permissions the impersonator lacks",
            Self::ImpersonationSelf => "Nobody impersonates themself",
            Self::ImpersonationTargetManaged => "The user's account is managed by a caretaker",
            Self::ImpersonationReadOnly => "The impersonation is read-only",
            Self::ImpersonationFullModeRefused => "Full mode is not allowed for this impersonation",
            Self::ImpersonationEnded => "The impersonation has already ended",
            Self::AssigneeUnavailable => "The user cannot be given these contacts",
            Self::SignupClosed => "Sign-up is closed",
            Self::CorsRefused => "Cross-origin request refused",
            Self::PasswordTooCommon => "The password is too common",
            Self::InvalidToken => "The token is not valid",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::TooManyRequests => "Too many requests",
            Self::TooManyAttempts => "Too many attempts; wait before trying again",
            Self::ServiceUnavailable => "Service unavailable",
            Self::DatabaseUnavailable => "The database is unavailable",
            Self::Internal => "Internal error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::ValidationFailed | Self::IdempotencyKeyReused | Self::PasswordTooCommon => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::MalformedBody => StatusCode::BAD_REQUEST,
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::PasswordChangeRequired
            | Self::Forbidden
            | Self::SignupClosed
            | Self::CorsRefused
            | Self::AccountManaged
            | Self::ActingAsForbidden
            | Self::ApiKeyForbidden
            | Self::ImpersonationEscalation
            | Self::ImpersonationReadOnly
            | Self::ImpersonationFullModeRefused => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict
            | Self::LastOwner
            | Self::AlreadyMember
            | Self::InviteAlreadyPending
            | Self::InviteNotPending
            | Self::AccountClosed
            | Self::EmailTaken
            | Self::UsernameTaken
            | Self::ExternalIdTaken
            | Self::RoleNameTaken
            | Self::BuiltinRole
            | Self::RoleInUse
            | Self::RootAccount
            | Self::OwnNode
            | Self::AlreadyOwner
            | Self::MemberNotActive
            | Self::IdempotencyInProgress
            | Self::MemberAlreadyActive
            | Self::UserNotArchived
            | Self::CaretakerSelf
            | Self::ManagedUserPrivileged
            | Self::CaretakerUnavailable
            | Self::CaretakerChain
            | Self::CaretakerAlreadyAssigned
            | Self::NoCaretaker
            | Self::NotificationNotDead
            | Self::ImpersonationSelf
            | Self::ImpersonationTargetManaged
            | Self::ImpersonationEnded
            | Self::AssigneeUnavailable => StatusCode::CONFLICT,
            Self::InvalidToken | Self::UnsupportedGrantType => StatusCode::BAD_REQUEST,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests | Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable | Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// How long a client is told to wait when the database is unreachable: Steward tries it
/// again every half second.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 1;

/// One invalid field of a request.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the request (`password`, `email`, …).
    pub field: String,
    /// A stable, machine-readable code (`length`, `email`, `required`, …).
    pub code: String,
    /// A sentence a front end can show.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem, e.g. `urn:steward:problem:validation-failed`.
    #[serde(rename = "type")]
    #[schema(example = "urn:steward:problem:validation-failed")]
    pub type_uri: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, in words a person can act on.
    pub detail: String,
    /// The request's id (also in the `X-Request-Id` header), for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
    /// The invalid fields, on validation failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
    /// On the OAuth 2.0 token endpoint only: the error code of RFC 6749 §5.2
    /// (`invalid_client`, `invalid_request`, `unsupported_grant_type`), for OAuth clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// The parts of a problem that only some problems have.
#[derive(Debug, Default)]
struct Extras {
    /// The `Allow` header of a 405.
    allow: Option<String>,
    /// The OAuth 2.0 error code (RFC 6749 §5.2), on the token endpoint.
    oauth_error: Option<&'static str>,
    /// Seconds for the `Retry-After` header (429, 503).
    retry_after: Option<u64>,
    /// The RFC 7644 §3.12 `scimType` a SCIM response gives this problem, when it has one.
    scim_type: Option<&'static str>,
}

/// Everything a request can fail with.
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    errors: Vec<FieldError>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// What few problems carry besides (kept apart so that the error stays small: it is the
    /// `Err` of every service call).
    extras: Option<Box<Extras>>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            source: None,
            extras: None,
        }
    }

    /// The same problem, naming the OAuth 2.0 error code a token endpoint client expects.
    pub fn with_oauth_error(mut self, code: &'static str) -> Self {
        self.extras_mut().oauth_error = Some(code);
        self
    }

    /// The same problem, with the `scimType` a SCIM response names it by.
    pub fn with_scim_type(mut self, scim_type: &'static str) -> Self {
        self.extras_mut().scim_type = Some(scim_type);
        self
    }

    pub fn scim_type(&self) -> Option<&'static str> {
        self.extras.as_ref().and_then(|e| e.scim_type)
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Whether this is an unexpected failure (logged in full, shown only as a 500).
    pub fn is_internal(&self) -> bool {
        self.kind == ProblemKind::Internal
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The per-field errors of a validation failure.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The same problem with per-field errors attached.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Invalid fields: `validation-failed`, or `password-too-common` when a new password on
    /// the common-passwords list is the request's only fault (its field error says which).
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let kind = match errors.as_slice() {
            [one] if one.code == crate::domain::NewPassword::TOO_COMMON => ProblemKind::PasswordTooCommon,
            _ => ProblemKind::ValidationFailed,
        };
        Self {
            errors,
            ..Self::new(kind, detail)
        }
    }

    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::MalformedBody, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Unauthenticated, detail)
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            ProblemKind::InvalidCredentials,
            "The identifier or the password is wrong.",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }

    /// What answers for an object that does not exist *or* belongs to another tenant (R1).
    pub fn not_found(what: &str) -> Self {
        Self::new(ProblemKind::NotFound, format!("No such {what}."))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Conflict, detail)
    }

    pub fn invalid_token(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidToken, detail)
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let detail = format!("This resource answers only {allow}.");
        let mut error = Self::new(ProblemKind::MethodNotAllowed, detail);
        error.extras_mut().allow = Some(allow);
        error
    }

    /// A 503 that is worth retrying in a moment (e.g. every password hasher is busy).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::ServiceUnavailable, detail).retry_after(1)
    }

    /// No database connection can be had: answered at once, to be retried shortly.
    pub fn database_unavailable() -> Self {
        Self::new(
            ProblemKind::DatabaseUnavailable,
            "The database is not reachable right now; try again shortly.",
        )
        .retry_after(DATABASE_RETRY_AFTER_SECS)
    }

    /// The same problem with a `Retry-After` header, in seconds.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.extras_mut().retry_after = Some(seconds);
        self
    }

    /// The seconds the answer's `Retry-After` header carries, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.extras.as_ref().and_then(|e| e.retry_after)
    }

    /// An unexpected failure: logged in full, shown to the client only as a 500.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                ProblemKind::Internal,
                "An unexpected error occurred; it has been logged.",
            )
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: self.kind.type_uri(),
            title: self.kind.title().to_string(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            request_id: request_id::current(),
            errors: self.errors.clone(),
            error: self.extras.as_ref().and_then(|e| e.oauth_error).map(str::to_string),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " (caused by: {source:?})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        if self.kind == ProblemKind::Internal {
            log::error!(
                "request {} failed: {:?}",
                problem.request_id.as_deref().unwrap_or("-"),
                self
            );
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(allow) = self.extras.as_ref().and_then(|e| e.allow.as_ref()) {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if let Some(seconds) = self.retry_after_secs() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.kind == ProblemKind::Unauthenticated {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(problem)
    }
}

impl From<DbError> for ApiError {
    /// A unique-constraint violation is a conflict with another write (two requests racing
    /// for the same email, username or external id), never a 500. A pool that cannot give a
    /// connection is a 503. Everything else is a 500.
    fn from(err: DbError) -> Self {
        match err {
            e if e.is_unique_violation() => Self::conflict(
                "This conflicts with an existing record (it may have just been created); reload and try again.",
            ),
            DbError::Down => Self::database_unavailable(),
            e if e.is_unavailable() => {
                log::warn!("database unavailable: {e}");
                Self::database_unavailable()
            }
            other => Self::internal(other),
        }
    }
}

/// Repository functions return diesel's error; it is the storage layer's.
impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        Self::from(DbError::from(err))
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errs: validator::ValidationErrors) -> Self {
        let mut fields = Vec::new();
        collect_validation_errors(String::new(), &errs, &mut fields);
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        Self::validation(fields)
    }
}

/// Turns a parser's error into a field error: `Email::parse(x).map_err(field_error("email"))`.
pub fn field_error(field: &'static str) -> impl Fn(validator::ValidationError) -> ApiError {
    move |e| {
        let message = e
            .message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| default_message(&e.code, &e));
        ApiError::field(field, &e.code, message)
    }
}

fn collect_validation_errors(prefix: String, errs: &validator::ValidationErrors, out: &mut Vec<FieldError>) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errs.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let message = e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| default_message(&e.code, e));
                    out.push(FieldError::new(&path, &e.code, message));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_validation_errors(path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_validation_errors(format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}

fn default_message(code: &str, e: &validator::ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(|v| v.to_string());
    match code {
        "email" => "must be an email address".into(),
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has the wrong length".into(),
        },
        "range" => "is out of range".into(),
        "required" => "is required".into(),
        other => format!("is invalid ({other})"),
    }
}

/// Renders actix's own extractor failures (JSON, query, path) as problems.
pub mod extractors {
    use super::*;
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::HttpRequest;

    pub fn json(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
        let api = match &err {
            JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                ApiError::new(
                    ProblemKind::PayloadTooLarge,
                    format!("The body is larger than {limit} bytes."),
                )
            }
            JsonPayloadError::ContentType => ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "Send the body as JSON with Content-Type: application/json.",
            ),
            JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
                ProblemKind::ValidationFailed,
                format!("The body does not fit the schema: {e}."),
            ),
            JsonPayloadError::Deserialize(e) => ApiError::malformed(format!("The body is not valid JSON: {e}.")),
            _ => ApiError::malformed("The body could not be read."),
        };
        api.into()
    }

    pub fn query(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::new(
            ProblemKind::ValidationFailed,
            format!("The query string is invalid: {err}."),
        )
        .into()
    }

    /// A path segment that cannot be one of our ids names nothing: 404, worded like any
    /// other missing resource (R1), whatever the parser said.
    pub fn path(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
        ApiError::not_found("resource").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_type_uri() {
        let mut uris: Vec<String> = ProblemKind::ALL.iter().map(|k| k.type_uri()).collect();
        let before = uris.len();
        uris.sort();
        uris.dedup();
        assert_eq!(uris.len(), before);
    }

    #[test]
    fn internal_errors_do_not_show_their_cause() {
        let err = ApiError::internal(std::io::Error::other("password=hunter2"));
        let problem = err.problem();
        assert!(!problem.detail.contains("hunter2"));
        assert_eq!(problem.status, 500);
    }
}
