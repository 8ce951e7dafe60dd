//! What every decision plan shares: who acts ([`Actor`]), and the checks that re-read
//! the facts a plan relied on inside the transaction that seals it ([`Guards`]). Below
//! both `requests` and `changes`, so neither imports the other for them.

use surrealdb::types::RecordId;

use crate::domain::*;
use crate::store::STALE;
use crate::store::{Result, Vars, rid};

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
    /// active flags) is still as read. One condition, with no statement of its own:
    /// when the owners are the same, the owning teams are the plan's, so who is behind
    /// them is read from those teams alone, and the people's flags from the plan's
    /// people; when they are not, the plan is stale whatever the rest says.
    pub fn owners(mut self, node: &NodeId, facts: &OwnerFacts) -> Guards {
        let k = self.key();
        let in_force = crate::store::nodes::IN_FORCE;
        let (teams, direct): (Vec<&NodeId>, Vec<&NodeId>) = facts.owners.iter().partition(|o| o.table() == Table::Team);
        let (teams, direct): (Vec<RecordId>, Vec<RecordId>) =
            (teams.into_iter().map(rid).collect(), direct.into_iter().map(rid).collect());
        let active: Vec<RecordId> = facts.people.iter().filter(|(_, a)| *a).map(|(p, _)| rid(p)).collect();
        let people: Vec<RecordId> = facts.people.iter().map(|(p, _)| rid(p)).collect();
        let mut changed =
            format!("array::sort((SELECT VALUE in FROM ${k}<-owns WHERE {in_force})) != array::sort(${k}_owners)");
        if !teams.is_empty() {
            changed.push_str(&format!(
                "\n OR array::sort(array::distinct(array::concat(${k}_direct, array::flatten(
                     SELECT VALUE (SELECT VALUE in FROM $parent.id<-member_of WHERE {in_force}) FROM ${k}_teams))))
                     != array::sort(${k}_people)"
            ));
        }
        if !people.is_empty() {
            changed.push_str(&format!(
                "\n OR array::sort((SELECT VALUE id FROM ${k}_people WHERE active = true)) != array::sort(${k}_active)"
            ));
        }
        let owners: Vec<RecordId> = facts.owners.iter().map(rid).collect();
        let node = rid(node);
        self.check(changed, |v| {
            v.set(&k, node)
                .set(&format!("{k}_owners"), owners)
                .set(&format!("{k}_direct"), direct)
                .set(&format!("{k}_teams"), teams)
                .set(&format!("{k}_people"), people)
                .set(&format!("{k}_active"), active)
        })
    }

    /// The guard's statement, and `vars` with its bindings.
    pub fn finish(self, vars: Vars) -> (String, Vars) {
        if self.changed.is_empty() {
            return (String::new(), vars.merge(self.vars));
        }
        let changed: Vec<String> = self.changed.iter().map(|c| format!("({c})")).collect();
        (format!("IF {} {{ THROW '{STALE}' }};\n", changed.join("\n OR ")), vars.merge(self.vars))
    }
}
