//! What every decision plan shares: who acts ([`Actor`]), and the checks that re-read
//! the facts a plan relied on inside the transaction that seals it ([`Guards`]). Below
//! both `requests` and `changes`, so neither imports the other for them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use surrealdb::types::RecordId;

use crate::domain::*;
use crate::store::STALE;
use crate::store::{Result, Vars, dt, rid};

/// Who acts, and with which roles: a signed-in person's roles, or an API token's scopes.
/// The store acts with the roles given that the person still holds.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: NodeId,
    pub roles: Vec<Role>,
}

/// The server's own principal: the actor of what the server does by itself (closing
/// emergency access nobody approved in time, recording a command-line import). It is a
/// person record that cannot sign in (inactive, no roles), so the chain names the
/// server plainly instead of borrowing someone's name.
pub const SERVER_PRINCIPAL: &str = "person:nhigov";

impl Actor {
    /// The actor's standing, `person` being its record as read now: the roles given
    /// that the person still holds; refused when the person is inactive (but for the
    /// server's own principal, which acts with no role).
    pub(crate) fn standing(&self, person: Person) -> Result<(PersonFacts, Vec<Role>)> {
        if !person.active && self.id.to_string() != SERVER_PRINCIPAL {
            return Err(ValueError::new("actor", format!("{} is not active", person.email)).into());
        }
        let roles = self.roles.iter().copied().filter(|r| person.has_role(*r)).collect();
        Ok((PersonFacts { roles: person.roles, active: person.active, machine: person.machine }, roles))
    }
}

/// Fact checks that run inside a decision's transaction, before its effects: the
/// stale-plan signal is thrown when any fact is no longer what the plan read. The checks
/// are one statement: a decision's commit runs on the chain's single committer, so each
/// statement saved there is throughput.
#[derive(Default)]
pub(crate) struct Guards {
    /// Statements that prepare the conditions (`LET`s).
    before: Vec<String>,
    /// Conditions, each true when its fact changed.
    changed: Vec<String>,
    vars: Vars,
    n: usize,
}

impl Guards {
    fn key(&mut self) -> String {
        self.n += 1;
        format!("guard{}", self.n)
    }

    /// A condition that is true when a fact the plan read has changed, and its bindings.
    pub(super) fn check(mut self, changed: String, vars: impl FnOnce(Vars) -> Vars) -> Guards {
        self.changed.push(changed);
        self.vars = vars(std::mem::take(&mut self.vars));
        self
    }

    /// The request being decided is still at the revision read (`$request` and `$rev`,
    /// bound by the plan).
    pub fn request_rev(self) -> Guards {
        self.check("$request.rev != $rev".into(), |v| v)
    }

    /// A person's roles and active flag are still as read.
    pub fn person(mut self, id: &NodeId, facts: &PersonFacts) -> Guards {
        let k = self.key();
        let roles: Vec<&str> = facts.roles.iter().map(|r| r.as_str()).collect();
        let (id, active) = (rid(id), facts.active);
        self.check(
            format!("${k}.active != ${k}_active OR array::sort(${k}.roles ?? []) != array::sort(${k}_roles)"),
            |v| v.set(&k, id).set(&format!("{k}_active"), active).set(&format!("{k}_roles"), roles),
        )
    }

    /// The policy in force is still the version read.
    pub fn policy(mut self, policy: &Policy) -> Guards {
        let k = self.key();
        let id = rid(&policy.id);
        self.check(format!("(SELECT VALUE current FROM ONLY meta:policy) != ${k}"), |v| v.set(&k, id))
    }

    /// A system's criticality and environment are still as read.
    pub fn system(mut self, id: &NodeId, facts: &TargetFacts) -> Guards {
        let k = self.key();
        let (id, c, e) = (rid(id), facts.criticality.as_str(), facts.environment.as_str());
        self.check(format!("${k}.criticality != ${k}_c OR ${k}.environment != ${k}_e"), |v| {
            v.set(&k, id).set(&format!("{k}_c"), c).set(&format!("{k}_e"), e)
        })
    }

    /// An NHI's status is still as read.
    pub fn nhi_status(mut self, id: &NodeId, status: NhiStatus) -> Guards {
        let k = self.key();
        let id = rid(id);
        self.check(format!("${k}.status != ${k}_s"), |v| v.set(&k, id).set(&format!("{k}_s"), status.as_str()))
    }

    /// Who owns a node (the owners in force and the people behind them, with their
    /// active flags) is still as read.
    ///
    /// In full, one condition: when the owners are the same, the owning teams are the
    /// plan's, so who is behind them is read from those teams alone, and the people's
    /// flags from the plan's people; when they are not, the plan is stale whatever the
    /// rest says. Read in full, these facts were a fifth of the committer's time.
    ///
    /// So the check first asks whether anything that could change them has moved since
    /// the committer last saw them in full ([`OwnerCheck`]): the node's `owners_rev` and
    /// each owning team's `members_rev` (which the schema's events give a new value with
    /// every write that can change who owns the node, or who is behind a team), and the
    /// earliest expiry among the edges they rested on. When nothing moved and the
    /// committer saw these very facts, the full check is skipped (SurrealQL's `AND` does
    /// not evaluate its right side after a false left one). Otherwise it runs, and
    /// `${k}_seen` carries the revisions and the expiry read in the same transaction, for
    /// the committer to remember once the transaction commits.
    pub fn owners(mut self, node: &NodeId, facts: &OwnerFacts) -> Guards {
        let k = self.key();
        let in_force = crate::store::nodes::IN_FORCE;
        let (teams, direct): (Vec<&NodeId>, Vec<&NodeId>) = facts.owners.iter().partition(|o| o.table() == Table::Team);
        let team_ids: Vec<NodeId> = teams.iter().map(|t| (*t).clone()).collect();
        let (teams, direct): (Vec<RecordId>, Vec<RecordId>) =
            (teams.into_iter().map(rid).collect(), direct.into_iter().map(rid).collect());
        let active: Vec<RecordId> = facts.people.iter().filter(|(_, a)| *a).map(|(p, _)| rid(p)).collect();
        let people: Vec<RecordId> = facts.people.iter().map(|(p, _)| rid(p)).collect();
        // Read in full, the owning edges and the members behind the owning teams are read
        // once, for the check and for what the committer will remember.
        self.before.push(format!(
            "LET ${k}_seen = IF ${k}_fast AND ${k}.owners_rev = ${k}_rev
                 AND (SELECT VALUE members_rev FROM ${k}_teams) = ${k}_team_revs
                 AND (${k}_until = NONE OR time::now() < ${k}_until)
             {{ NONE }} ELSE {{
                 LET $owning = (SELECT in, expires_at FROM ${k}<-owns WHERE {in_force});
                 LET $members = array::flatten(SELECT VALUE (SELECT in, expires_at FROM $parent.id<-member_of
                     WHERE {in_force}) FROM ${k}_teams);
                 [
                     ${k}.owners_rev,
                     (SELECT id, members_rev FROM ${k}_teams),
                     array::min(array::filter(array::concat($owning.expires_at, $members.expires_at), |$t| $t != NONE)),
                     $owning.in,
                     $members.in
                 ]
             }};"
        ));
        let mut changed = format!("array::sort(${k}_seen[3]) != array::sort(${k}_owners)");
        if !teams.is_empty() {
            changed.push_str(&format!(
                "\n OR array::sort(array::distinct(array::concat(${k}_direct, ${k}_seen[4]))) != array::sort(${k}_people)"
            ));
        }
        if !people.is_empty() {
            changed.push_str(&format!(
                "\n OR array::sort((SELECT VALUE id FROM ${k}_people WHERE active = true)) != array::sort(${k}_active)"
            ));
        }
        let owners: Vec<RecordId> = facts.owners.iter().map(rid).collect();
        let check = OwnerCheck { key: k.clone(), node: node.clone(), facts: facts.clone(), teams: team_ids };
        let node = rid(node);
        self.check(format!("${k}_seen != NONE AND ({changed})"), |v| {
            let v = v
                .set(&k, node)
                .set(&format!("{k}_owners"), owners)
                .set(&format!("{k}_direct"), direct)
                .set(&format!("{k}_teams"), teams);
            check
                .unseen(v)
                .set(&format!("{k}_people"), people)
                .set(&format!("{k}_active"), active)
                .with_owner_check(check)
        })
    }

    /// The guard's statement, and `vars` with its bindings.
    pub fn finish(self, vars: Vars) -> (String, Vars) {
        if self.changed.is_empty() {
            return (String::new(), vars.merge(self.vars));
        }
        let changed: Vec<String> = self.changed.iter().map(|c| format!("({c})")).collect();
        let before: String = self.before.iter().map(|s| format!("{s}\n")).collect();
        (format!("{before}IF {} {{ THROW '{STALE}' }};\n", changed.join("\n OR ")), vars.merge(self.vars))
    }
}

/// An owner check in a plan ([`Guards::owners`]): the name its bindings go by, the
/// node, and the owners the plan relied on, which the committer compares with what it
/// last saw in full ([`OwnersSeen`]).
#[derive(Debug, Clone)]
pub(crate) struct OwnerCheck {
    pub key: String,
    pub node: NodeId,
    pub facts: OwnerFacts,
    /// The owning teams, in the order `${key}_teams` binds them.
    pub teams: Vec<NodeId>,
}

impl OwnerCheck {
    /// The same check, its names with `prefix` before them (`Vars::prefixed`).
    pub fn prefixed(mut self, prefix: &str) -> OwnerCheck {
        self.key = format!("{prefix}{}", self.key);
        self
    }

    /// `vars` with the check's quick path closed: the full check runs.
    fn unseen(&self, vars: Vars) -> Vars {
        let k = &self.key;
        vars.set(&format!("{k}_fast"), false)
            .set(&format!("{k}_rev"), None::<String>)
            .set(&format!("{k}_team_revs"), Vec::<String>::new())
            .set(&format!("{k}_until"), None::<surrealdb::types::Datetime>)
    }

    /// `vars` with the check's quick path open, when `seen` saw these very owners under
    /// revisions that every write which could change them replaces.
    pub fn answered(&self, seen: &OwnersSeen, vars: Vars) -> Vars {
        let Some(known) = seen.0.get(&self.node).filter(|k| same_owners(&k.facts, &self.facts)) else { return vars };
        let team_revs: Option<Vec<String>> = self.teams.iter().map(|t| known.teams.get(t).cloned()).collect();
        let Some(team_revs) = team_revs else { return vars };
        let k = &self.key;
        vars.set(&format!("{k}_fast"), true)
            .set(&format!("{k}_rev"), known.rev.clone())
            .set(&format!("{k}_team_revs"), team_revs)
            .set(&format!("{k}_until"), known.until.map(dt))
    }
}

/// What a full owner check read (`${key}_seen`): the node's `owners_rev`, each owning
/// team's `members_rev`, the earliest expiry among the edges in force it read, and
/// (for the check alone) the owners and the members of the owning teams.
#[derive(Deserialize)]
pub(crate) struct SeenRow(
    Option<String>,
    Vec<TeamRev>,
    Option<DateTime<Utc>>,
    serde::de::IgnoredAny,
    serde::de::IgnoredAny,
);

#[derive(Deserialize)]
pub(crate) struct TeamRev {
    id: NodeId,
    members_rev: Option<String>,
}

/// The owners a decision's committer has checked in full, by node, under the revisions
/// read in the same transaction. The revisions are random values the schema's events
/// write: any revision seen again stands for the very same owners, so an entry never
/// goes wrong, only unused (and a store restored from another history cannot repeat
/// one). A node or team whose revision was never written (a store upgraded from before
/// the events) is not remembered, and checked in full each time.
#[derive(Default)]
pub(crate) struct OwnersSeen(HashMap<NodeId, KnownOwners>);

struct KnownOwners {
    facts: OwnerFacts,
    rev: String,
    teams: HashMap<NodeId, String>,
    until: Option<DateTime<Utc>>,
}

impl OwnersSeen {
    /// The most nodes remembered; past it the memory starts again (a few tens of MB).
    const MAX: usize = 100_000;

    /// Were these the owners of `node` when it was last checked in full?
    #[cfg(test)]
    pub fn knows(&self, node: &NodeId, facts: &OwnerFacts) -> bool {
        self.0.get(node).is_some_and(|k| same_owners(&k.facts, facts))
    }

    /// Remember what a committed full check of `check` saw.
    pub fn remember(&mut self, check: &OwnerCheck, row: SeenRow) {
        let SeenRow(Some(rev), teams, until, ..) = row else { return };
        let teams: Option<HashMap<NodeId, String>> =
            teams.into_iter().map(|t| t.members_rev.map(|r| (t.id, r))).collect();
        let Some(teams) = teams else { return };
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(check.node.clone(), KnownOwners { facts: check.facts.clone(), rev, teams, until });
    }
}

/// Do two readings name the same owners and the same people, equally active?
fn same_owners(a: &OwnerFacts, b: &OwnerFacts) -> bool {
    fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
        let mut v = v.to_vec();
        v.sort();
        v
    }
    sorted(&a.owners) == sorted(&b.owners) && sorted(&a.people) == sorted(&b.people)
}
