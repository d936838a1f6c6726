//! Parsed input. Each type can only hold a valid value, so code past the handler never
//! re-checks. `check_*` adapt the parsers to `validator`, so that one response lists every
//! invalid field at once.

use std::borrow::Cow;
use validator::ValidationError;

fn error(code: &'static str, message: &'static str) -> ValidationError {
    ValidationError::new(code).with_message(Cow::Borrowed(message))
}

/// An email address, kept as given and compared in lower case (emails are unique
/// case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    original: String,
    normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 {
            return Err(error("length", "must be at most 254 characters long"));
        }
        let valid = validator::ValidateEmail::validate_email(&trimmed)
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return Err(error("email", "must be an email address"));
        }
        Ok(Self {
            original: trimmed.to_string(),
            normalized: trimmed.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

pub fn check_email(raw: &str) -> Result<(), ValidationError> {
    Email::parse(raw).map(|_| ())
}

/// A login name: 3 to 64 characters of letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit. It can never contain `@`, so a login identifier with `@` is an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username {
    original: String,
    normalized: String,
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        if !(3..=64).contains(&s.chars().count()) {
            return Err(error("length", "must be 3 to 64 characters long"));
        }
        let allowed = s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let starts_well = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !allowed || !starts_well {
            return Err(error(
                "username",
                "may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit",
            ));
        }
        Ok(Self {
            original: s.to_string(),
            normalized: s.to_ascii_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

pub fn check_username(raw: &str) -> Result<(), ValidationError> {
    Username::parse(raw).map(|_| ())
}

/// A new password: 8 to 256 characters and not a common one (ASVS 6.2, NIST SP 800-63B:
/// length and a blocklist, no composition rules).
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN: usize = 8;
    pub const MAX: usize = 256;
    /// The field error's code for a password on the common-passwords list; a request whose
    /// only fault it is answers with the `password-too-common` problem.
    pub const TOO_COMMON: &'static str = "too_common";

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let n = raw.chars().count();
        if n < Self::MIN {
            return Err(error("length", "must be at least 8 characters long"));
        }
        if n > Self::MAX {
            return Err(error("length", "must be at most 256 characters long"));
        }
        if raw.trim().is_empty() {
            return Err(error("blank", "must not be only spaces"));
        }
        if crate::auth::password::is_common(raw) {
            return Err(error(
                Self::TOO_COMMON,
                "is one of the most common passwords; choose a longer or less predictable one",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

pub fn check_new_password(raw: &str) -> Result<(), ValidationError> {
    NewPassword::parse(raw).map(|_| ())
}

/// A person's or an organization's name: trimmed, 1 to 100 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 {
        return Err(error("required", "must not be empty"));
    }
    if n > 100 {
        return Err(error("length", "must be at most 100 characters long"));
    }
    if s.chars().any(char::is_control) {
        return Err(error("characters", "must not contain control characters"));
    }
    Ok(s.to_string())
}

pub fn check_name(raw: &str) -> Result<(), ValidationError> {
    parse_name(raw).map(|_| ())
}

/// A phone number as people write it: 5 to 32 characters of digits, spaces, `+`, `-`, `.`,
/// `(` and `)`, holding at least 5 digits (`+1 (555) 010-0100`). Kept as given, trimmed.
pub fn parse_phone(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    if !(5..=32).contains(&s.chars().count()) {
        return Err(error("length", "must be 5 to 32 characters long"));
    }
    let allowed = s.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !allowed || s.chars().filter(char::is_ascii_digit).count() < 5 {
        return Err(error(
            "phone",
            "must be a phone number: digits, spaces, '+', '-', '.', '(' and ')', with at least 5 digits",
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_for_comparison_but_kept_as_given() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized(), "ada.lovelace@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "a@",
            "@b.c",
            "a b@c.d",
            &format!("{}@x.io", "a".repeat(260)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn usernames_cannot_look_like_emails() {
        assert!(Username::parse("ada@x").is_err());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(".ada").is_err());
        assert_eq!(Username::parse("Ada_L").unwrap().normalized(), "ada_l");
    }

    #[test]
    fn passwords_need_length_not_composition() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("seven77").is_err());
        assert!(NewPassword::parse("8 chars!").is_ok());
        assert_eq!(
            NewPassword::parse("Password1").unwrap_err().code,
            NewPassword::TOO_COMMON
        );
        assert!(NewPassword::parse("          ").is_err());
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
        assert!(NewPassword::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn phones_are_digits_and_punctuation() {
        assert_eq!(parse_phone(" +1 (555) 010-0100 ").unwrap(), "+1 (555) 010-0100");
        assert!(parse_phone("12-34").is_err());
        assert!(parse_phone("call me maybe").is_err());
        assert!(parse_phone(&"1".repeat(33)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Ada ").unwrap(), "Ada");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"n".repeat(101)).is_err());
        assert!(parse_name("a\u{0}b").is_err());
    }
}
