//! API key scopes: what a key may do. `admin` implies every other scope.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send tracking events.
    Ingest,
    /// Read shipments, events and keys.
    Read,
    /// Create, update and cancel shipments.
    Write,
    /// Everything, including managing API keys.
    Admin,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::Ingest, Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key holding `granted` may act where `self` is needed.
    pub fn is_satisfied_by(&self, granted: &[Scope]) -> bool {
        granted.iter().any(|g| g == self || *g == Scope::Admin)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope '{}'; expected ingest, read, write or admin",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// A dashboard user's role in their tenant. Each role grants a fixed set of scopes, so users and
/// API keys pass through the same checks; `owner` alone may change tenant-wide security settings.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads shipments and timelines.
    Viewer,
    /// Reads everything a viewer does, and analytics and exports.
    Analyst,
    /// Manages shipments, API keys, users (not owners), erasures; reads the audit log.
    Admin,
    /// Everything, including tenant security settings and other owners.
    Owner,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Viewer, Role::Analyst, Role::Admin, Role::Owner];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The scopes this role acts with.
    pub fn scopes(&self) -> &'static [Scope] {
        match self {
            Role::Viewer | Role::Analyst => &[Scope::Read],
            Role::Admin | Role::Owner => &[Scope::Admin],
        }
    }

    /// The least role whose scopes satisfy `scope`.
    pub fn least_for(scope: Scope) -> Role {
        Role::ALL
            .iter()
            .copied()
            .find(|r| scope.is_satisfied_by(r.scopes()))
            .unwrap_or(Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown role '{}'; expected viewer, analyst, admin or owner",
                    s.chars().take(32).collect::<String>()
                )
            })
    }
}

/// Parses a comma-separated scope list such as `read,write`.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Scope::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err("at least one scope is required".into());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything_and_others_only_themselves() {
        assert!(Scope::Write.is_satisfied_by(&[Scope::Admin]));
        assert!(Scope::Read.is_satisfied_by(&[Scope::Read, Scope::Ingest]));
        assert!(!Scope::Write.is_satisfied_by(&[Scope::Read]));
        assert!(!Scope::Admin.is_satisfied_by(&[Scope::Read, Scope::Write, Scope::Ingest]));
    }

    #[test]
    fn scope_lists_parse_dedupe_and_refuse_unknowns() {
        assert_eq!(
            parse_scopes("write, read,read").unwrap(),
            [Scope::Read, Scope::Write]
        );
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("read,root").unwrap_err().contains("root"));
    }
}
