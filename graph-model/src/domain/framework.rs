//! Framework references: the controls a case, decision, policy or piece of evidence
//! speaks to, so auditors can pull records by the framework they test against.
//!
//! Two families are recognised: NIST CSF 2.0 subcategories (`GV.OC-01`: a function, a
//! category, a number) and the OWASP Non-Human Identity Top 10 (`NHI-01` to `NHI-10`).
//! Numbers are written with two digits, so `RS.AN-1` and `RS.AN-01`, `NHI-1` and
//! `NHI-01`, are one reference.
//!
//! Records written before CSF numbers were padded keep their text (`RS.AN-1`): refs
//! are inside hash-chained decisions and digested policies, so a stored ref is read back
//! exactly as written, and filters match every spelling of a reference ([`FrameworkRef::forms`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::ValueError;

/// One validated framework reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FrameworkRef(String);

const CSF_FUNCTIONS: [&str; 6] = ["GV", "ID", "PR", "DE", "RS", "RC"];

impl FrameworkRef {
    /// Check a reference and write it in its one spelling: upper case, numbers with two
    /// digits.
    pub fn parse(raw: &str) -> Result<FrameworkRef, ValueError> {
        let written = FrameworkRef::parse_as_written(raw)?;
        match written.0.rsplit_once('-') {
            Some((head, n)) if n.len() == 1 => Ok(FrameworkRef(format!("{head}-0{n}"))),
            _ => Ok(written),
        }
    }

    /// Every spelling of this reference a stored record may carry: its own, and the
    /// CSF number with or without its leading zero.
    pub fn forms(&self) -> Vec<String> {
        let mut forms = vec![self.0.clone()];
        if let Some((head, n)) = self.0.rsplit_once('-')
            && !head.starts_with("NHI")
        {
            let other = match n.strip_prefix('0') {
                Some(one) if one.len() == 1 => format!("{head}-{one}"),
                _ if n.len() == 1 => format!("{head}-0{n}"),
                _ => return forms,
            };
            forms.push(other);
        }
        forms
    }

    /// Check a reference, upper-cased, the NHI number padded and a CSF number kept as
    /// written: the spelling records were stored with before CSF numbers were padded.
    fn parse_as_written(raw: &str) -> Result<FrameworkRef, ValueError> {
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

/// What a framework reference names, or a part of a framework: a reference
/// (`RS.AN-03`), a NIST CSF category (`RS.AN`) or function (`RS`), or the OWASP NHI Top
/// 10 as a whole (`NHI`). "Everything under RS.AN" is the evidence of every reference
/// in that category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FrameworkScope(String);

impl FrameworkScope {
    pub fn parse(raw: &str) -> Result<FrameworkScope, ValueError> {
        let s = raw.trim().to_ascii_uppercase();
        if s == "NHI" {
            return Ok(FrameworkScope(s));
        }
        let part = match s.split_once('.') {
            None => CSF_FUNCTIONS.contains(&s.as_str()),
            Some((function, category)) => {
                CSF_FUNCTIONS.contains(&function)
                    && category.len() == 2
                    && category.bytes().all(|b| b.is_ascii_uppercase())
            }
        };
        if part {
            return Ok(FrameworkScope(s));
        }
        FrameworkRef::parse(raw).map(|r| FrameworkScope(r.0)).map_err(|_| {
            ValueError::new(
                "framework",
                format!(
                    "`{}` is not a framework reference (RS.AN-03, NHI-01), a NIST CSF category (RS.AN) or function (RS), or NHI",
                    raw.chars().take(40).collect::<String>()
                ),
            )
        })
    }

    /// Does `r` fall under this scope? A reference covers itself in every spelling.
    pub fn covers(&self, r: &FrameworkRef) -> bool {
        let s = self.0.as_str();
        if s.contains('-') {
            let mine = FrameworkRef(self.0.clone()).forms();
            return r.forms().iter().any(|f| mine.contains(f));
        }
        let sep = if s == "NHI" || s.contains('.') { '-' } else { '.' };
        r.as_str().strip_prefix(s).is_some_and(|rest| rest.starts_with(sep))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FrameworkScope {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        FrameworkScope::parse(&s)
    }
}

impl From<FrameworkScope> for String {
    fn from(s: FrameworkScope) -> String {
        s.0
    }
}

impl fmt::Display for FrameworkScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for FrameworkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FrameworkRef {
    /// A stored ref reads back exactly as written (its record's hash covers it); any
    /// other text is checked and written in its one spelling.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let written = FrameworkRef::parse_as_written(&s).map_err(serde::de::Error::custom)?;
        if written.0 == s { Ok(written) } else { FrameworkRef::parse(&s).map_err(serde::de::Error::custom) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_covers_the_references_under_it_in_every_spelling() {
        let r = |s: &str| FrameworkRef::parse(s).unwrap();
        let legacy: FrameworkRef = serde_json::from_str("\"RS.AN-3\"").unwrap();
        let scope = |s: &str| FrameworkScope::parse(s).unwrap();
        assert!(scope("RS.AN").covers(&r("RS.AN-03")) && scope("RS.AN").covers(&legacy));
        assert!(!scope("RS.AN").covers(&r("RS.MA-01")));
        assert!(scope("rs").covers(&r("RS.MA-01")) && !scope("RS").covers(&r("PR.AA-01")));
        assert!(scope("RS.AN-3").covers(&legacy) && scope("RS.AN-03").covers(&r("RS.AN-03")));
        assert!(!scope("RS.AN-03").covers(&r("RS.AN-04")));
        assert!(scope("NHI").covers(&r("NHI-07")) && !scope("NHI").covers(&r("RS.AN-01")));
        for bad in ["RS.A", "XX", "RS.AN-", "NHI-11", ""] {
            assert!(FrameworkScope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csf_and_owasp_ids_are_accepted_and_normalised() {
        assert_eq!(FrameworkRef::parse("GV.OC-01").unwrap().as_str(), "GV.OC-01");
        assert_eq!(FrameworkRef::parse(" rs.an-1 ").unwrap().as_str(), "RS.AN-01");
        assert_eq!(FrameworkRef::parse("NHI-1").unwrap().as_str(), "NHI-01");
        assert_eq!(FrameworkRef::parse("nhi-10").unwrap().as_str(), "NHI-10");
    }

    #[test]
    fn a_stored_ref_reads_back_as_written_and_filters_match_every_spelling() {
        // Written before CSF numbers were padded: kept, since a hash covers it.
        let legacy: FrameworkRef = serde_json::from_str("\"RS.AN-1\"").unwrap();
        assert_eq!(legacy.as_str(), "RS.AN-1");
        let mut forms = legacy.forms();
        forms.sort();
        assert_eq!(forms, ["RS.AN-01", "RS.AN-1"]);
        // Text that is not a stored spelling is written in the one spelling.
        let typed: FrameworkRef = serde_json::from_str("\"rs.an-1\"").unwrap();
        assert_eq!(typed.as_str(), "RS.AN-01");
        assert_eq!(FrameworkRef::parse("RS.AN-1").unwrap().forms(), ["RS.AN-01", "RS.AN-1"]);
        assert_eq!(FrameworkRef::parse("RS.AN-12").unwrap().forms(), ["RS.AN-12"]);
        assert_eq!(FrameworkRef::parse("NHI-1").unwrap().forms(), ["NHI-01"]);
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
