//! Validated values: each input string or number becomes one of these once, at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused: the field it came from and a sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValueError {
    pub field: String,
    pub message: String,
}

impl ValueError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ValueError {
        ValueError { field: field.into(), message: message.into() }
    }

    /// The same error, reported under another field name (an input's own name).
    pub fn at(mut self, field: impl Into<String>) -> ValueError {
        self.field = field.into();
        self
    }
}

/// Declares a closed set of values stored as snake_case text.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$name, $crate::domain::values::ValueError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::values::ValueError::new(
                        $field,
                        format!(
                            "`{}` is not one of: {}",
                            s.chars().take(60).collect::<String>(),
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What kind of non-human identity this is.
    NhiKind, "kind" {
        ServiceAccount => "service_account",
        ApiKey => "api_key",
        OauthClient => "oauth_client",
        Token => "token",
        Certificate => "certificate",
        SshKey => "ssh_key",
        AiAgent => "ai_agent",
        WorkloadIdentity => "workload_identity",
    }
);

text_enum!(
    /// Lifecycle status of an NHI.
    NhiStatus, "status" {
        Active => "active",
        Disabled => "disabled",
        Revoked => "revoked",
        Decommissioned => "decommissioned",
    }
);

text_enum!(
    /// What kind of credential a secret is.
    SecretKind, "kind" {
        ApiKey => "api_key",
        Password => "password",
        Token => "token",
        Certificate => "certificate",
        SshKey => "ssh_key",
        OauthSecret => "oauth_secret",
        PrivateKey => "private_key",
        Other => "other",
    }
);

text_enum!(
    /// What kind of system.
    SystemKind, "kind" {
        Application => "application",
        Database => "database",
        Vault => "vault",
        Repository => "repository",
        CloudAccount => "cloud_account",
        Saas => "saas",
        Cluster => "cluster",
        Pipeline => "pipeline",
    }
);

text_enum!(
    /// Deployment environment.
    Environment, "environment" {
        Production => "production",
        Staging => "staging",
        Development => "development",
        Test => "test",
    }
);

text_enum!(
    /// Business criticality of a system, tier0 being the most critical.
    Criticality, "criticality" {
        Tier0 => "tier0",
        Tier1 => "tier1",
        Tier2 => "tier2",
        Tier3 => "tier3",
    }
);

text_enum!(
    /// Level of access an NHI has on a system; ordered from least to most.
    Privilege, "privilege" {
        Read => "read",
        Write => "write",
        Admin => "admin",
    }
);

text_enum!(
    /// How one NHI acts as another.
    AssumeMechanism, "mechanism" {
        RoleAssumption => "role_assumption",
        Impersonation => "impersonation",
        Delegation => "delegation",
    }
);

text_enum!(
    /// What a person may do. Roles add up; an admin is not implicitly an approver.
    Role, "roles" {
        Viewer => "viewer",
        Investigator => "investigator",
        Approver => "approver",
        Admin => "admin",
        Auditor => "auditor",
        Ingest => "ingest",
    }
);

pub(crate) use text_enum;

/// Trimmed text of bounded length with no control characters.
fn bounded_text(field: &str, raw: &str, max: usize) -> Result<String, ValueError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ValueError::new(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(ValueError::new(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ValueError::new(field, "must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// Declares a validated text newtype.
macro_rules! text_newtype {
    ($(#[$meta:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<$name, ValueError> {
                bounded_text($field, raw, $max).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_newtype!(
    /// A display name: 1 to 200 characters.
    Name, "name", 200
);
text_newtype!(
    /// A short label such as a provider (`aws`, `github`) or an external id.
    Label, "label", 512
);
text_newtype!(
    /// Free text: descriptions, justifications, rationales; up to 10,000 characters.
    Text, "text", 10_000
);

/// A person's e-mail address, lower-cased; the subject of their tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ValueError> {
        let s = raw.trim().to_lowercase();
        let invalid = || {
            ValueError::new("email", format!("`{}` is not an e-mail address", s.chars().take(80).collect::<String>()))
        };
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A digest that identifies a secret without revealing it (never the value itself).
///
/// Scanners report different forms (hex SHA-256, `sha256:...`, base64), so any 8 to 256
/// printable, non-space ASCII characters are accepted; hex is lower-cased so the same
/// digest always matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn parse(raw: &str) -> Result<Fingerprint, ValueError> {
        let s = raw.trim();
        if s.len() < 8 || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValueError::new(
                "fingerprint",
                "a fingerprint is 8 to 256 printable ASCII characters without spaces",
            ));
        }
        let is_hex = s.bytes().all(|b| b.is_ascii_hexdigit());
        Ok(Fingerprint(if is_hex { s.to_ascii_lowercase() } else { s.to_owned() }))
    }

    /// The fingerprint of a secret's value: hex SHA-256. The value is never kept.
    pub fn of_value(value: &str) -> Fingerprint {
        use sha2::{Digest, Sha256};
        Fingerprint(hex::encode(Sha256::digest(value.as_bytes())))
    }

    /// The forms a stored fingerprint may take for what a scanner or a person reports:
    /// the text as given (hex lowercased), and, for a digest written with its
    /// algorithm (`sha256:<hex>`, `sha1:<hex>`, or OpenSSH's `SHA256:<base64>`), the
    /// bare lowercase hex of the same digest. Inventories store SHA-256 or SHA-1 hex.
    pub fn lookup_forms(raw: &str) -> Result<Vec<Fingerprint>, ValueError> {
        let given = Fingerprint::parse(raw)?;
        let mut forms = vec![given.clone()];
        if let Some(hex) = digest_hex(given.as_str())
            && hex != given.0
        {
            forms.push(Fingerprint(hex));
        }
        Ok(forms)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bare hex of a digest written as `<algorithm>:<hex or base64>`, when the text is
/// one and the digest has its algorithm's length (32 bytes for SHA-256, 20 for SHA-1).
fn digest_hex(s: &str) -> Option<String> {
    use base64::Engine;
    let (algorithm, digest) = s.split_once(':')?;
    let len = match algorithm.to_ascii_lowercase().replace('-', "").as_str() {
        "sha256" => 32,
        "sha1" => 20,
        _ => return None,
    };
    let bytes = if digest.len() == len * 2 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(digest).ok()?
    } else {
        let unpadded = digest.trim_end_matches('=');
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).ok()?
    };
    (bytes.len() == len).then(|| hex::encode(bytes))
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Fingerprint::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How often a secret must be rotated, in whole days (1 to 3650).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RotationDays(u32);

impl RotationDays {
    pub fn parse(days: i64) -> Result<RotationDays, ValueError> {
        if (1..=3650).contains(&days) {
            Ok(RotationDays(days as u32))
        } else {
            Err(ValueError::new("rotation_period_days", "must be between 1 and 3650 days"))
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for RotationDays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        RotationDays::parse(n).map_err(serde::de::Error::custom)
    }
}

/// A control key: upper-case letters and digits in two or more parts joined by `-`,
/// at most 40 characters.
pub fn check_control_key(key: &str) -> Result<(), ValueError> {
    let parts: Vec<&str> = key.split('-').collect();
    let ok = key.len() <= 40
        && parts.len() >= 2
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        && key.starts_with(|c: char| c.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(ValueError::new(
            "key",
            format!(
                "`{}` is not a control key: upper-case letters and digits in parts joined by `-`, like NHI-ROT-01",
                key.chars().take(60).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  ci-deployer ").unwrap().as_str(), "ci-deployer");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(201)).is_err());
        assert!(Name::parse("bad\u{0}name").is_err());
    }

    #[test]
    fn emails_are_lowercased_and_need_a_domain() {
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().as_str(), "alice@example.com");
        for bad in ["alice", "alice@", "@example.com", "a@b", "a b@example.com", "a@@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn hex_fingerprints_are_case_insensitive() {
        assert_eq!(Fingerprint::parse("ABCDEF0123456789").unwrap(), Fingerprint::parse("abcdef0123456789").unwrap());
        assert!(Fingerprint::parse("short").is_err());
        assert!(Fingerprint::parse("has space inside").is_err());
    }

    #[test]
    fn a_digest_written_with_its_algorithm_is_also_looked_up_as_bare_hex() {
        let sha256 = Fingerprint::of_value("ghp_example");
        let forms = |raw: &str| -> Vec<String> {
            Fingerprint::lookup_forms(raw).unwrap().iter().map(|f| f.as_str().to_owned()).collect()
        };
        assert_eq!(forms(sha256.as_str()), [sha256.as_str()]);
        let prefixed = format!("SHA256:{}", sha256.as_str().to_ascii_uppercase());
        assert_eq!(forms(&prefixed)[1], sha256.as_str());
        // OpenSSH prints SHA256:<base64 without padding>.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(hex::decode(sha256.as_str()).unwrap());
        assert_eq!(forms(&format!("SHA256:{b64}")), [format!("SHA256:{b64}"), sha256.as_str().to_owned()]);
        let sha1 = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
        assert_eq!(forms(&format!("sha1:{sha1}"))[1], sha1);
        // A digest of the wrong length for its algorithm is taken as given only.
        assert_eq!(forms(&format!("sha256:{sha1}")).len(), 1);
        assert!(Fingerprint::lookup_forms("short").is_err());
    }

    #[test]
    fn a_secret_value_is_kept_only_as_its_digest() {
        let fp = Fingerprint::of_value("ghp_example");
        assert_eq!(fp.as_str().len(), 64);
        assert!(!fp.as_str().contains("ghp_"));
    }

    #[test]
    fn enums_round_trip_through_their_text() {
        for kind in NhiKind::ALL {
            assert_eq!(NhiKind::parse(kind.as_str()).unwrap(), *kind);
        }
        let err = Criticality::parse("tier9").unwrap_err();
        assert_eq!(err.field, "criticality");
        assert!(err.message.contains("tier0"));
    }

    #[test]
    fn privileges_order_from_read_to_admin() {
        assert!(Privilege::Read < Privilege::Write && Privilege::Write < Privilege::Admin);
    }

    #[test]
    fn rotation_periods_are_bounded() {
        assert!(RotationDays::parse(0).is_err());
        assert_eq!(RotationDays::parse(90).unwrap().days(), 90);
        assert!(RotationDays::parse(5000).is_err());
    }
}

text_enum!(
    /// What an approver decides.
    DecideOutcome, "outcome" {
        Approve => "approve",
        Reject => "reject",
        Escalate => "escalate",
    }
);

/// The facts about a grant's target that decide how strict its approval is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFacts {
    pub criticality: Criticality,
    pub environment: Environment,
}

impl TargetFacts {
    /// Privileged access, the one definition every rule uses: ADMIN anywhere, or WRITE
    /// and above on a tier0 or tier1 system or on any production system. A privileged
    /// grant needs the policy's distinct approvers, its subject's owners may not approve
    /// it, and one asked for through `relate` waits for an approver.
    pub fn privileged(&self, privilege: Privilege) -> bool {
        privilege == Privilege::Admin
            || (privilege >= Privilege::Write
                && (self.criticality <= Criticality::Tier1 || self.environment == Environment::Production))
    }
}
