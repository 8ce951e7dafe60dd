//! Framework references: the controls a case, decision, policy or piece of evidence
//! speaks to, so auditors can pull records by the framework they test against.
//!
//! Two families are recognised: NIST CSF 2.0 subcategories (`GV.OC-01`, `RS.AN-1`: a
//! function, a category, a number) and the OWASP Non-Human Identity Top 10 (`NHI-01` to
//! `NHI-10`, stored with two digits so `NHI-1` and `NHI-01` are one reference).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::ValueError;

/// One validated framework reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FrameworkRef(String);

const CSF_FUNCTIONS: [&str; 6] = ["GV", "ID", "PR", "DE", "RS", "RC"];

impl FrameworkRef {
    pub fn parse(raw: &str) -> Result<FrameworkRef, ValueError> {
        let s = raw.trim().to_ascii_uppercase();
        let bad = || {
            ValueError::new(
                "refs",
                format!(
                    "`{}` is not a NIST CSF 2.0 id (such as GV.OC-01) or an OWASP NHI Top 10 id (NHI-01 to NHI-10)",
                    raw.chars().take(40).collect::<String>()
                ),
            )
        };
        if let Some(n) = s.strip_prefix("NHI-") {
            let n: u8 = n.parse().map_err(|_| bad())?;
            if !(1..=10).contains(&n) || s.len() > 6 {
                return Err(bad());
            }
            return Ok(FrameworkRef(format!("NHI-{n:02}")));
        }
        let (function, rest) = s.split_once('.').ok_or_else(bad)?;
        let (category, number) = rest.split_once('-').ok_or_else(bad)?;
        let ok = CSF_FUNCTIONS.contains(&function)
            && category.len() == 2
            && category.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=2).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit());
        if ok { Ok(FrameworkRef(s)) } else { Err(bad()) }
    }

    /// Parse a list, dropping duplicates and keeping the order given.
    pub fn parse_all<S: AsRef<str>>(raw: &[S]) -> Result<Vec<FrameworkRef>, ValueError> {
        if raw.len() > 32 {
            return Err(ValueError::new("refs", "at most 32 framework references"));
        }
        let mut out: Vec<FrameworkRef> = Vec::with_capacity(raw.len());
        for r in raw {
            let r = FrameworkRef::parse(r.as_ref())?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FrameworkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FrameworkRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FrameworkRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csf_and_owasp_ids_are_accepted_and_normalised() {
        assert_eq!(FrameworkRef::parse("GV.OC-01").unwrap().as_str(), "GV.OC-01");
        assert_eq!(FrameworkRef::parse(" rs.an-1 ").unwrap().as_str(), "RS.AN-1");
        assert_eq!(FrameworkRef::parse("NHI-1").unwrap().as_str(), "NHI-01");
        assert_eq!(FrameworkRef::parse("nhi-10").unwrap().as_str(), "NHI-10");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "NHI-0", "NHI-11", "NHI-001", "XX.OC-01", "GV.OC", "GV.O1-01", "GV.OC-123", "ISO27001"] {
            assert!(FrameworkRef::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn duplicates_collapse() {
        let refs = FrameworkRef::parse_all(&["NHI-1", "NHI-01", "GV.OC-01"]).unwrap();
        assert_eq!(refs.len(), 2);
    }
}
