//! [`Identity`]: a mailbox or trustee named by the caller (UPN, SMTP address, GUID or alias),
//! checked before anything is sent. Wildcards, quotes, control characters, separators and
//! over-long values are refused with a clear error: Exchange would otherwise match several
//! objects, or a whole tenant (`Identity: null` lists every mailbox).

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

/// Longest identity accepted (characters).
pub const MAX_IDENTITY_LEN: usize = 256;

/// Why an identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentityError {
    #[error("the identity is empty")]
    Empty,
    #[error("the identity is {len} characters long; at most {MAX_IDENTITY_LEN} are allowed")]
    TooLong { len: usize },
    #[error("the identity contains a control character (U+{code:04X})")]
    ControlCharacter { code: u32 },
    #[error("the identity contains the wildcard '{ch}'; name exactly one mailbox or user")]
    Wildcard { ch: char },
    #[error("the identity contains a quote ('{ch}')")]
    Quote { ch: char },
    #[error("the identity contains whitespace; use a UPN, an email address, a GUID or an alias")]
    Whitespace,
    #[error("the identity contains '{ch}', which no UPN, email address, GUID or alias contains")]
    InvalidCharacter { ch: char },
    #[error("the identity is not a valid address: {reason}")]
    Malformed { reason: &'static str },
}

/// The form an [`Identity`] was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// `local@domain` (a UPN or an SMTP address; Exchange resolves either).
    Address,
    /// An object GUID (normalised to lower-case hyphenated form).
    Guid,
    /// A bare alias.
    Alias,
}

/// A validated identity. Construct with [`Identity::parse`] (or `str::parse`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Identity(String);

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?})", self.0)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identity {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Characters allowed in an alias or the local part of an address besides letters and digits
/// (Exchange's alias rules, minus the wildcards `*` `?` and the quote characters).
fn local_ok(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '.' | '-' | '_' | '+' | '!' | '#' | '$' | '%' | '&' | '=' | '^' | '~'
        )
}

fn domain_ok(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

impl Identity {
    /// Validates `raw`. Surrounding whitespace is refused rather than trimmed, so what is shown
    /// for approval is exactly what is sent.
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        if raw.is_empty() {
            return Err(IdentityError::Empty);
        }
        let len = raw.chars().count();
        if len > MAX_IDENTITY_LEN {
            return Err(IdentityError::TooLong { len });
        }
        for c in raw.chars() {
            if c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{FEFF}')
            {
                return Err(IdentityError::ControlCharacter { code: c as u32 });
            }
        }
        if let Some(ch) = raw.chars().find(|c| matches!(c, '*' | '?')) {
            return Err(IdentityError::Wildcard { ch });
        }
        if let Some(ch) = raw.chars().find(|c| {
            matches!(
                c,
                '"' | '`' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}'
            )
        }) {
            return Err(IdentityError::Quote { ch });
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(IdentityError::Whitespace);
        }
        if let Ok(g) = Uuid::parse_str(raw) {
            return Ok(Self(g.hyphenated().to_string()));
        }
        match raw.split_once('@') {
            Some((local, domain)) => {
                if local.is_empty() {
                    return Err(IdentityError::Malformed {
                        reason: "nothing before '@'",
                    });
                }
                if domain.is_empty() || domain.contains('@') {
                    return Err(IdentityError::Malformed {
                        reason: "the part after '@' is not a domain",
                    });
                }
                // An apostrophe is legal in real addresses (o'brien@contoso.com), but only
                // between other characters of the local part.
                for (i, c) in local.char_indices() {
                    let inner_apostrophe = c == '\'' && i > 0 && i + 1 < local.len();
                    if !(local_ok(c) || inner_apostrophe) {
                        return Err(if c == '\'' {
                            IdentityError::Quote { ch: c }
                        } else {
                            IdentityError::InvalidCharacter { ch: c }
                        });
                    }
                }
                if let Some(ch) = domain.chars().find(|c| !domain_ok(*c)) {
                    return Err(IdentityError::InvalidCharacter { ch });
                }
                if !domain.contains('.')
                    || domain.starts_with(['.', '-'])
                    || domain.ends_with(['.', '-'])
                    || domain.contains("..")
                {
                    return Err(IdentityError::Malformed {
                        reason: "the part after '@' is not a domain",
                    });
                }
            }
            None => {
                if let Some(ch) = raw.chars().find(|c| !local_ok(*c)) {
                    return Err(if ch == '\'' {
                        IdentityError::Quote { ch }
                    } else {
                        IdentityError::InvalidCharacter { ch }
                    });
                }
            }
        }
        if raw.starts_with('.') || raw.ends_with('.') {
            return Err(IdentityError::Malformed {
                reason: "starts or ends with '.'",
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> IdentityKind {
        if Uuid::parse_str(&self.0).is_ok() {
            IdentityKind::Guid
        } else if self.0.contains('@') {
            IdentityKind::Address
        } else {
            IdentityKind::Alias
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_four_forms() {
        for ok in [
            "alice@contoso.onmicrosoft.com",
            "o'brien@contoso.com",
            "user_ext#EXT#@contoso.onmicrosoft.com",
            "first.last+tag@sub.contoso.com",
            "sales",
            "j-doe_2",
            "7CDBE897-3C7F-4FB6-A369-56408D68081F",
            "{7cdbe897-3c7f-4fb6-a369-56408d68081f}",
        ] {
            Identity::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(
            Identity::parse("{7CDBE897-3C7F-4FB6-A369-56408D68081F}")
                .unwrap()
                .as_str(),
            "7cdbe897-3c7f-4fb6-a369-56408d68081f"
        );
        assert_eq!(
            Identity::parse("sales").unwrap().kind(),
            IdentityKind::Alias
        );
    }

    #[test]
    fn refuses_hostile_strings() {
        use IdentityError as E;
        type Check = fn(&E) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| *e == E::Empty),
            ("*", |e| matches!(e, E::Wildcard { .. })),
            ("al?ce@contoso.com", |e| matches!(e, E::Wildcard { .. })),
            ("alice\"@contoso.com", |e| matches!(e, E::Quote { .. })),
            ("'alice", |e| matches!(e, E::Quote { .. })),
            ("alice\n@contoso.com", |e| {
                matches!(e, E::ControlCharacter { .. })
            }),
            ("alice\0", |e| matches!(e, E::ControlCharacter { .. })),
            // Tag characters ("ASCII smuggling"), variation selectors, separators.
            ("alice\u{E0041}\u{E0042}", |e| {
                matches!(e, E::InvalidCharacter { ch: '\u{E0041}' })
            }),
            ("alice@contoso.com\u{E007F}", |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("alice\u{FE0F}", |e| matches!(e, E::InvalidCharacter { .. })),
            ("al\u{2028}ice", |e| matches!(e, E::ControlCharacter { .. })),
            ("alice,bob", |e| {
                matches!(e, E::InvalidCharacter { ch: ',' })
            }),
            ("alice;bob", |e| {
                matches!(e, E::InvalidCharacter { ch: ';' })
            }),
            ("[alice]", |e| matches!(e, E::InvalidCharacter { .. })),
            ("alice@contoso.com)", |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("DOMAIN\\alice", |e| matches!(e, E::InvalidCharacter { .. })),
            ("alice smith", |e| *e == E::Whitespace),
            (" alice", |e| *e == E::Whitespace),
            ("@contoso.com", |e| matches!(e, E::Malformed { .. })),
            ("alice@", |e| matches!(e, E::Malformed { .. })),
            ("alice@@contoso.com", |e| matches!(e, E::Malformed { .. })),
            ("alice@localhost", |e| matches!(e, E::Malformed { .. })),
        ];
        for (input, check) in cases {
            let e = Identity::parse(input).expect_err(input);
            assert!(check(&e), "{input:?} gave {e:?}");
        }
        let long = format!("{}@contoso.com", "a".repeat(250));
        assert!(matches!(
            Identity::parse(&long),
            Err(IdentityError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_accepts_wildcards_quotes_or_controls(s in "\\PC{0,40}[*?\"\\x00-\\x1f]\\PC{0,40}") {
            prop_assert!(Identity::parse(&s).is_err());
        }

        #[test]
        fn accepted_values_round_trip(local in "[a-z][a-z0-9._-]{0,20}[a-z0-9]", dom in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let s = format!("{local}@{dom}");
            if !s.contains("..") {
                let parsed = Identity::parse(&s).unwrap();
                prop_assert_eq!(parsed.as_str(), s.as_str());
            }
        }
    }
}
