//! The facts the control checks read, in two shapes.
//!
//! - [`Store::compliance_facts`]: one snapshot of everything, for a full evaluation (a
//!   control version's first, and the scheduled pass that catches the checks the clock
//!   turns). Access, secrets held and identities assumed come from the in-process graph
//!   index; the rest is one round trip of flat scans.
//! - [`Store::touched_since`] then [`Store::compliance_facts_of`]: the subjects whose
//!   results a write may have changed since a time, read from indexed change stamps as
//!   the graph index reads its changes, and the complete facts of just those subjects.
//!   Between full evaluations a pass costs what changed, not the size of the graph.
//!
//! What touches a subject, so that judging the touched subjects judges every result a
//! write can change:
//!
//! | write | subjects touched |
//! |---|---|
//! | an NHI (status, use, environment, kind) | the NHI, and the secrets it holds (their scope reads their holders) |
//! | a secret | the secret, and the NHIs holding it (their scope reads its kind) |
//! | a system (criticality, environment) | the NHIs with access to it |
//! | a person (active or not) | what the person owns, directly or through a team |
//! | ownership opened or closed | the node owned |
//! | membership opened or closed | what the team owns |
//! | access, holding or assuming opened, closed or adopted | the NHI, and the secret held |
//! | an exception | the exception, and its subject |
//! | a request | its subject, and a break-glass request itself |
//! | a review answer | the NHI reviewed |
//!
//! A secret's scope reads its holders; those the write did not touch are not judged,
//! and what the scope reads of them comes from the graph index (a node's environment
//! and kind, its owning teams, the systems it reaches). What only the clock changes (an age passing its limit, an edge
//! expiring) is left to the scheduled full pass.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use surrealdb::types::RecordId;

use crate::domain::control::*;
use crate::domain::graph::{Direction, GraphIndex};
use crate::domain::*;
use crate::store::nodes::IN_FORCE;
use crate::store::{Result, Store, Vars, chunk_vars, in_chunks, rid, take};

/// The subjects a pass judges again, and the database's clock when they were read.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    /// The database's clock before the changes were read: the next look starts there.
    pub at: DateTime<Utc>,
    pub subjects: BTreeSet<NodeId>,
    /// Every stamp read, judged before or now: what the next pass leaves out.
    pub stamps: HashSet<StampKey>,
}

/// One stamp a change left: the statement of [`Store::touched_since`] that read it, the
/// record, and the time it carries.
pub(crate) type StampKey = (u8, String, String);

/// How far this process's passes have judged the changes: the database's clock up to
/// which every change is judged, and the stamps already judged among those a pass reads
/// again. Each pass re-reads the store's margin (`StoreConfig::change_margin`) of
/// changes before that clock, as the graph index does, for a transaction that committed
/// a little after the time it wrote; a stamp judged before is left out, since its
/// subject was judged on facts read after it had committed (a later write leaves a
/// stamp of its own). Under a burst of writes the margin held thousands of subjects a
/// pass, all judged again for nothing.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub to: Option<DateTime<Utc>>,
    pub stamps: HashSet<StampKey>,
}

/// What one `touched_since` round trip names, before it is widened.
#[derive(Default)]
pub(crate) struct Stamps {
    nhis: Vec<NodeId>,
    secrets: Vec<NodeId>,
    systems: Vec<NodeId>,
    people: Vec<NodeId>,
    /// Nodes whose ownership changed.
    owned: Vec<NodeId>,
    /// Teams whose membership changed.
    teams: Vec<NodeId>,
    /// Both ends of access, holding and assuming edges that changed.
    edge_ends: Vec<Pair>,
    exceptions: Vec<Subjected>,
    requests: Vec<Subjected>,
    reviewed: Vec<NodeId>,
}

/// The rows of `touched_since`'s statements whose stamps a pass has not judged yet, and
/// every stamp read.
struct Fresh<'a> {
    judged: &'a HashSet<StampKey>,
    stamps: HashSet<StampKey>,
}

impl Fresh<'_> {
    fn take<T: serde::de::DeserializeOwned>(
        &mut self,
        resp: &mut surrealdb::IndexedResults,
        i: usize,
    ) -> Result<Vec<T>> {
        let mut fresh = Vec::new();
        for row in take::<Vec<serde_json::Value>>(resp, i)? {
            let key = (i as u8, row["id"].to_string(), row["at"].to_string());
            if !self.judged.contains(&key) {
                fresh.push(
                    serde_json::from_value(row)
                        .map_err(|e| crate::store::StoreError::Database(format!("unexpected change stamp: {e}")))?,
                );
            }
            self.stamps.insert(key);
        }
        Ok(fresh)
    }
}

#[derive(Deserialize)]
struct IdRow {
    id: NodeId,
}

#[derive(Deserialize)]
struct OutRow {
    out: NodeId,
}

#[derive(Deserialize)]
struct ReviewedRow {
    nhi: NodeId,
}

#[derive(Deserialize)]
struct Subjected {
    id: NodeId,
    subject: NodeId,
    /// Whether the record is a subject of its own (an exception, a break-glass
    /// request), or only speaks of one.
    #[serde(default = "yes")]
    judged: bool,
}

fn yes() -> bool {
    true
}

impl Store {
    /// One snapshot of every fact the checks read at `now`.
    pub async fn compliance_facts(&self, now: DateTime<Utc>) -> Result<ComplianceFacts> {
        let sql = format!(
            "SELECT id, name, kind, environment, status, last_used_at, created_at FROM nhi;
             SELECT id, name, kind, last_rotated_at, issued_at, created_at FROM secret;
             SELECT id, email, active FROM person;
             SELECT in, out FROM owns WHERE {IN_FORCE};
             SELECT in, out FROM member_of WHERE {IN_FORCE};
             SELECT id, subject, status, expires_at, review_due, waives FROM exception WHERE status = 'active';
             SELECT {REQUEST_FIELDS} FROM request WHERE kind = 'emergency_access' OR (status = 'approved' AND granted_edge != NONE AND approval_expires_at != NONE);
             SELECT nhi, time::max(answered_at) AS at FROM review_item WHERE status = 'certified' GROUP BY nhi;"
        );
        let mut resp = self.read(&sql, &Vars::new()).await?;
        let graph = self.with_graph(|g| GraphRows::all(g, now)).await?;
        let rows = FactRows::take(
            &mut resp,
            Slots {
                nhis: 0,
                secrets: 1,
                people: 2,
                owns: 3,
                members: 4,
                exceptions: 5,
                requests: 6,
                certified: 7,
                held_kinds: None,
            },
            graph,
        )?;
        Ok(rows.join(now))
    }

    /// The subjects whose results a write at or after `since` may have changed (see the
    /// module's table), leaving out the stamps in `judged`, read in one round trip over
    /// indexed stamps and widened in a second.
    pub(crate) async fn touched_since(&self, since: DateTime<Utc>, judged: &HashSet<StampKey>) -> Result<Touched> {
        let (at, stamps, seen) = self.stamps_since(since, judged).await?;
        let subjects = self.widen(stamps, at).await?;
        Ok(Touched { at, subjects, stamps: seen })
    }

    /// The stamps of writes at or after `since`, leaving out those in `judged`, in one
    /// round trip: the database's clock before they were read, what they name, and
    /// every stamp read.
    pub(crate) async fn stamps_since(
        &self,
        since: DateTime<Utc>,
        judged: &HashSet<StampKey>,
    ) -> Result<(DateTime<Utc>, Stamps, HashSet<StampKey>)> {
        let mut sql = String::from(
            "RETURN time::now();
             SELECT id, updated_at AS at FROM nhi WHERE updated_at >= $since;
             SELECT id, updated_at AS at FROM secret WHERE updated_at >= $since;
             SELECT id, updated_at AS at FROM system WHERE updated_at >= $since;
             SELECT id, updated_at AS at FROM person WHERE updated_at >= $since;
             SELECT id, out, changed_at AS at FROM owns WHERE changed_at >= $since;
             SELECT id, out, changed_at AS at FROM member_of WHERE changed_at >= $since;
             SELECT id, subject, changed_at AS at FROM exception WHERE changed_at >= $since;
             SELECT id, subject, kind = 'emergency_access' AS judged, changed_at AS at FROM request WHERE changed_at >= $since AND record::tb(subject) IN ['nhi', 'secret', 'system'];
             SELECT id, nhi, changed_at AS at FROM review_item WHERE changed_at >= $since;\n",
        );
        // Opened, closed or granted: each write stamps the edge's `changed_at`.
        for kind in [EdgeKind::CanAccess, EdgeKind::Holds, EdgeKind::Assumes] {
            sql.push_str(&format!(
                "SELECT id, in, out, changed_at AS at FROM {} WHERE changed_at >= $since;\n",
                kind.as_str()
            ));
        }
        let vars = Vars::new().set("since", surrealdb::types::Datetime::from(since));
        let mut resp = self.read(&sql, &vars).await?;
        let at: DateTime<Utc> = take(&mut resp, 0)?;
        let mut read = Fresh { judged, stamps: HashSet::new() };
        let ids = |rows: Vec<IdRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let outs = |rows: Vec<OutRow>| rows.into_iter().map(|r| r.out).collect::<Vec<_>>();
        let mut stamps = Stamps {
            nhis: ids(read.take(&mut resp, 1)?),
            secrets: ids(read.take(&mut resp, 2)?),
            systems: ids(read.take(&mut resp, 3)?),
            people: ids(read.take(&mut resp, 4)?),
            owned: outs(read.take(&mut resp, 5)?),
            teams: outs(read.take(&mut resp, 6)?),
            exceptions: read.take(&mut resp, 7)?,
            requests: read.take(&mut resp, 8)?,
            reviewed: read.take::<ReviewedRow>(&mut resp, 9)?.into_iter().map(|r| r.nhi).collect(),
            edge_ends: Vec::new(),
        };
        for i in 10..13 {
            stamps.edge_ends.extend(read.take::<Pair>(&mut resp, i)?);
        }
        Ok((at, stamps, read.stamps))
    }

    /// From what was stamped to the subjects it touches.
    async fn widen(&self, s: Stamps, now: DateTime<Utc>) -> Result<BTreeSet<NodeId>> {
        let mut out: BTreeSet<NodeId> = BTreeSet::new();
        if !s.people.is_empty() || !s.teams.is_empty() {
            let sql =
                "LET $all_teams = array::union($teams, array::flatten(SELECT VALUE ->member_of->team FROM $people));
                       LET $owners = array::concat($people, $all_teams);
                       RETURN array::distinct(array::flatten(SELECT VALUE ->owns->? FROM $owners));";
            let people: Vec<RecordId> = s.people.iter().map(rid).collect();
            let teams: Vec<RecordId> = s.teams.iter().map(rid).collect();
            let mut resp = self.read(sql, &Vars::new().set("people", people).set("teams", teams)).await?;
            out.extend(take::<Vec<NodeId>>(&mut resp, 2)?);
        }
        out.extend(s.nhis);
        out.extend(s.secrets.iter().cloned());
        out.extend(s.owned);
        out.extend(s.reviewed);
        for x in s.exceptions.into_iter().chain(s.requests) {
            if x.judged {
                out.insert(x.id);
            }
            out.insert(x.subject);
        }
        for p in s.edge_ends {
            out.insert(p.from);
            if p.to.table() == Table::Secret {
                out.insert(p.to);
            }
        }
        let systems = &s.systems;
        self.with_graph(|g| {
            // The holders of a secret that changed: their scope reads its kind.
            for secret in &s.secrets {
                out.extend(
                    g.edges_at(secret, Direction::Reverse, now)
                        .filter(|e| e.id.kind == EdgeKind::Holds)
                        .map(|e| e.from.clone()),
                );
            }
            // The NHIs with access to a system that changed.
            for system in systems {
                out.extend(
                    g.edges_at(system, Direction::Reverse, now)
                        .filter(|e| e.id.kind == EdgeKind::CanAccess)
                        .map(|e| e.from.clone()),
                );
            }
            // The secrets each touched NHI holds: their scope reads it.
            let nhis: Vec<NodeId> = out.iter().filter(|n| n.table() == Table::Nhi).cloned().collect();
            for n in &nhis {
                out.extend(
                    g.edges_at(n, Direction::Forward, now)
                        .filter(|e| e.id.kind == EdgeKind::Holds)
                        .map(|e| e.to.clone()),
                );
            }
        })
        .await?;
        out.retain(|n| {
            matches!(n.table(), Table::Nhi | Table::Secret | Table::System | Table::Exception | Table::Request)
        });
        Ok(out)
    }

    /// The complete facts of `touched` at `now`, and every subject they judge: the
    /// touched ones too, so that a subject gone from a check's reach is seen to go. A
    /// touched secret's scope reads its holders (kind, environment, owning teams,
    /// access); those not touched are not judged (nothing of theirs changed) and what
    /// the scope reads of them comes from the graph index (a secret held by thousands of
    /// NHIs cost 300 ms a pass read from the database).
    pub(crate) async fn compliance_facts_of(
        &self,
        touched: &BTreeSet<NodeId>,
        now: DateTime<Utc>,
    ) -> Result<(ComplianceFacts, BTreeSet<NodeId>)> {
        let of = |t: Table| -> Vec<NodeId> { touched.iter().filter(|n| n.table() == t).cloned().collect() };
        let (judged_nhis, secrets, systems) = (of(Table::Nhi), of(Table::Secret), of(Table::System));
        let (graph, beyond) = self
            .with_graph(|g| {
                let beyond: HashMap<NodeId, ScopeFacts> =
                    secrets.iter().map(|s| (s.clone(), holders_scope(g, s, touched, now))).collect();
                (GraphRows::of(g, &judged_nhis, &systems, now), beyond)
            })
            .await?;
        let judged: Vec<RecordId> = judged_nhis.iter().chain(&secrets).chain(&systems).map(rid).collect();
        let sql = facts_of_sql(&judged);
        let held: Vec<RecordId> =
            graph.held.iter().filter(|h| h.to.table() == Table::Secret).map(|h| rid(&h.to)).collect();
        // The chunks the three reads by index name (`facts_of_sql`), bound once.
        let chunks = chunk_vars("judged", &judged);
        let vars = Vars::new()
            .set("held", held)
            .set("nhis", judged_nhis.iter().map(rid).collect::<Vec<_>>())
            .set("secrets", secrets.iter().map(rid).collect::<Vec<_>>())
            .set("judged", judged)
            .merge(chunks);
        let mut resp = self.read(&sql, &vars).await?;
        let mut rows = FactRows::take(
            &mut resp,
            Slots {
                nhis: 0,
                secrets: 1,
                owns: 4,
                members: 8,
                people: 10,
                exceptions: 11,
                requests: 12,
                certified: 13,
                held_kinds: Some(14),
            },
            graph,
        )?;
        rows.holders_beyond = beyond;
        let facts = rows.join(now);
        let mut judged: BTreeSet<NodeId> = touched.iter().filter(|n| n.table() != Table::System).cloned().collect();
        judged.extend(facts.nhis.iter().map(|n| n.id.clone()));
        judged.extend(facts.secrets.iter().map(|s| s.id.clone()));
        judged.extend(facts.exceptions.iter().map(|x| x.id.clone()));
        judged.extend(facts.emergencies.iter().map(|e| e.id.clone()));
        Ok((facts, judged))
    }
}

/// The fields of a request the checks read: break-glass requests are judged, approvals
/// with an expiry lapse the access they opened.
const REQUEST_FIELDS: &str =
    "id, subject, kind, status, requested_at, post_approval_due, decided_at, granted_edge, approval_expires_at";

#[derive(Deserialize)]
struct RequestRow {
    id: NodeId,
    subject: NodeId,
    kind: RequestKind,
    status: RequestStatus,
    requested_at: DateTime<Utc>,
    post_approval_due: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
    granted_edge: Option<String>,
    approval_expires_at: Option<DateTime<Utc>>,
}

fn split_requests(rows: Vec<RequestRow>) -> (Vec<EmergencyRow>, Vec<ApprovalRow>) {
    let (mut emergencies, mut approvals) = (Vec::new(), Vec::new());
    for r in rows {
        if r.status == RequestStatus::Approved
            && let (Some(granted_edge), Some(approval_expires_at)) = (r.granted_edge, r.approval_expires_at)
        {
            approvals.push(ApprovalRow { granted_edge, approval_expires_at });
        }
        if r.kind == RequestKind::EmergencyAccess {
            emergencies.push(EmergencyRow {
                id: r.id,
                subject: r.subject,
                status: r.status,
                requested_at: r.requested_at,
                post_approval_due: r.post_approval_due,
                decided_at: r.decided_at,
            });
        }
    }
    (emergencies, approvals)
}

/// What the graph index gives the facts: access in force, what is held or assumed, and
/// the systems accessed.
struct GraphRows {
    access: Vec<AccessRow>,
    held: Vec<Pair>,
    systems: HashMap<NodeId, TargetFacts>,
}

impl GraphRows {
    /// Over the whole graph.
    fn all(g: &GraphIndex, now: DateTime<Utc>) -> GraphRows {
        let mut rows = GraphRows { access: Vec::new(), held: Vec::new(), systems: HashMap::new() };
        for e in g.edges_in_force(now) {
            rows.add(g, e);
        }
        rows
    }

    /// Leaving `nhis` (and holding secrets), and what is known of `systems`.
    fn of(g: &GraphIndex, nhis: &[NodeId], systems: &[NodeId], now: DateTime<Utc>) -> GraphRows {
        let mut rows = GraphRows { access: Vec::new(), held: Vec::new(), systems: HashMap::new() };
        for n in nhis {
            for e in g.edges_at(n, Direction::Forward, now) {
                rows.add(g, e);
            }
        }
        for s in systems {
            rows.system(g, s);
        }
        rows
    }

    fn add(&mut self, g: &GraphIndex, e: crate::domain::graph::EdgeView<'_>) {
        match e.id.kind {
            EdgeKind::CanAccess => {
                self.system(g, e.to);
                self.access.push(AccessRow {
                    id: e.id.clone(),
                    from: e.from.clone(),
                    to: e.to.clone(),
                    privilege: e.privilege,
                    governed: e.governed == Some(true),
                });
            }
            EdgeKind::Holds | EdgeKind::Assumes => self.held.push(Pair { from: e.from.clone(), to: e.to.clone() }),
            _ => {}
        }
    }

    fn system(&mut self, g: &GraphIndex, id: &NodeId) {
        if let Some(m) = g.meta(id)
            && let (Some(criticality), Some(environment)) = (m.criticality, m.environment)
        {
            self.systems.insert(id.clone(), TargetFacts { criticality, environment });
        }
    }
}

#[derive(Deserialize)]
struct NhiRow {
    id: NodeId,
    name: String,
    kind: NhiKind,
    environment: Environment,
    status: NhiStatus,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct SecretRow {
    id: NodeId,
    name: String,
    kind: SecretKind,
    last_rotated_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct PersonRow {
    id: NodeId,
    email: String,
    active: bool,
}

#[derive(Deserialize)]
struct Pair {
    #[serde(rename = "in")]
    from: NodeId,
    #[serde(rename = "out")]
    to: NodeId,
}

/// An access edge in force, from the graph index.
struct AccessRow {
    id: EdgeId,
    from: NodeId,
    to: NodeId,
    privilege: Option<Privilege>,
    governed: bool,
}

#[derive(Deserialize)]
struct ExceptionRow {
    id: NodeId,
    subject: NodeId,
    status: ExceptionStatus,
    expires_at: DateTime<Utc>,
    review_due: DateTime<Utc>,
    #[serde(default)]
    waives: Vec<String>,
}

struct EmergencyRow {
    id: NodeId,
    subject: NodeId,
    status: RequestStatus,
    requested_at: DateTime<Utc>,
    post_approval_due: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
}

struct ApprovalRow {
    granted_edge: String,
    approval_expires_at: DateTime<Utc>,
}

/// A secret's kind, for the scope of the NHIs holding it.
#[derive(Deserialize)]
struct KindRow {
    id: NodeId,
    kind: SecretKind,
}

/// When a review last certified an NHI.
#[derive(Deserialize)]
struct Certified {
    nhi: NodeId,
    at: DateTime<Utc>,
}

/// The flat rows of one snapshot, before they are joined.
struct FactRows {
    nhis: Vec<NhiRow>,
    secrets: Vec<SecretRow>,
    /// What the index knows of each system accessed.
    systems: HashMap<NodeId, TargetFacts>,
    people: Vec<PersonRow>,
    certified: Vec<Certified>,
    owns: Vec<Pair>,
    members: Vec<Pair>,
    access: Vec<AccessRow>,
    /// Secrets held and identities assumed.
    held: Vec<Pair>,
    /// The kind of each secret read or held.
    secret_kinds: HashMap<NodeId, SecretKind>,
    exceptions: Vec<ExceptionRow>,
    emergencies: Vec<EmergencyRow>,
    approvals: Vec<ApprovalRow>,
    /// By touched secret, the scope its holders outside the facts read give it (from
    /// the graph index; empty over the whole graph, where every holder is read).
    holders_beyond: HashMap<NodeId, ScopeFacts>,
}

/// What a pass after changes reads of the subjects it judges (`$judged`, and its chunks
/// `$judged_0`, ... for the reads by index; see `in_chunks`).
fn facts_of_sql(judged: &[RecordId]) -> String {
    format!(
            "SELECT id, name, kind, environment, status, last_used_at, created_at FROM $nhis;
             SELECT id, name, kind, last_rotated_at, issued_at, created_at FROM $secrets;
             LET $own_edges = array::flatten(SELECT VALUE <-owns FROM $judged);
             LET $owns = (SELECT in, out FROM $own_edges WHERE {IN_FORCE});
             RETURN $owns;
             LET $teams = array::distinct($owns[WHERE record::tb(in) = 'team' AND out IN $judged].in);
             LET $member_edges = array::flatten(SELECT VALUE <-member_of FROM $teams);
             LET $members = (SELECT in, out FROM $member_edges WHERE {IN_FORCE});
             RETURN $members;
             LET $people = array::distinct(array::concat($owns[WHERE record::tb(in) = 'person' AND out IN $judged].in, $members.in));
             SELECT id, email, active FROM $people;
             {exceptions}
             {requests}
             {certified}
             SELECT id, kind FROM $held;",
            exceptions = in_chunks(
                "SELECT id, subject, status, expires_at, review_due, waives FROM exception WHERE subject IN $judged AND status = 'active'",
                "judged",
                judged
            )
            .0,
            requests = in_chunks(&format!("SELECT {REQUEST_FIELDS} FROM request WHERE subject IN $judged"), "judged", judged).0,
            certified = in_chunks(
                "SELECT nhi, time::max(answered_at) AS at FROM review_item WHERE nhi IN $judged AND status = 'certified' GROUP BY nhi",
                "judged",
                judged
            )
            .0,
        )
}

/// Where each kind of row is in a response.
struct Slots {
    nhis: usize,
    secrets: usize,
    people: usize,
    owns: usize,
    members: usize,
    exceptions: usize,
    requests: usize,
    certified: usize,
    /// The kinds of the secrets held, when the secrets read are not all of them.
    held_kinds: Option<usize>,
}

impl FactRows {
    fn take(resp: &mut surrealdb::IndexedResults, at: Slots, graph: GraphRows) -> Result<FactRows> {
        let (emergencies, approvals) = split_requests(take(resp, at.requests)?);
        let secrets: Vec<SecretRow> = take(resp, at.secrets)?;
        let mut secret_kinds: HashMap<NodeId, SecretKind> = secrets.iter().map(|s| (s.id.clone(), s.kind)).collect();
        if let Some(i) = at.held_kinds {
            secret_kinds.extend(take::<Vec<KindRow>>(resp, i)?.into_iter().map(|k| (k.id, k.kind)));
        }
        Ok(FactRows {
            nhis: take(resp, at.nhis)?,
            secrets,
            secret_kinds,
            people: take(resp, at.people)?,
            owns: take(resp, at.owns)?,
            members: take(resp, at.members)?,
            exceptions: take(resp, at.exceptions)?,
            emergencies,
            approvals,
            certified: take(resp, at.certified)?,
            systems: graph.systems,
            access: graph.access,
            held: graph.held,
            holders_beyond: HashMap::new(),
        })
    }

    /// Join the rows into the facts each subject is judged on.
    fn join(self, now: DateTime<Utc>) -> ComplianceFacts {
        let people: HashMap<&NodeId, &PersonRow> = self.people.iter().map(|p| (&p.id, p)).collect();
        let mut own = Ownership::of(&self.owns, &self.members, &people);
        let mut access = access_facts(&self.access, &self.approvals, &self.systems, now);
        let certified: HashMap<&NodeId, DateTime<Utc>> = self.certified.iter().map(|c| (&c.nhi, c.at)).collect();
        let mut held = Held::of(&self.held, &self.secret_kinds);
        let nhis: Vec<NhiFacts> = self
            .nhis
            .into_iter()
            .map(|n| NhiFacts {
                owners: own.owners_of(&n.id, &people),
                direct_owners: {
                    let mut d = own.direct.remove(&n.id).unwrap_or_default();
                    d.sort();
                    d
                },
                certified_at: certified.get(&n.id).copied(),
                teams: own.teams.get(&n.id).cloned().unwrap_or_default(),
                access: access.remove(&n.id).unwrap_or_default(),
                holds: held.count.get(&n.id).copied().unwrap_or(0),
                secret_kinds: held.kinds.remove(&n.id).unwrap_or_default(),
                id: n.id,
                name: n.name,
                kind: n.kind,
                environment: n.environment,
                status: n.status,
                last_used_at: n.last_used_at,
                created_at: n.created_at,
            })
            .collect();
        let scopes = Scopes {
            by_nhi: nhis.iter().map(|n| (&n.id, n)).collect(),
            owner_teams: &own.teams,
            holders: &held.holders,
            systems: &self.systems,
            secret_kinds: &self.secret_kinds,
            holders_beyond: &self.holders_beyond,
        };
        let secrets = self
            .secrets
            .iter()
            .map(|s| SecretFacts {
                id: s.id.clone(),
                name: s.name.clone(),
                rotated_at: s.last_rotated_at.or(s.issued_at).unwrap_or(s.created_at),
                ever_rotated: s.last_rotated_at.is_some(),
                scope: scopes.of(&s.id),
            })
            .collect();
        let exceptions = self
            .exceptions
            .iter()
            .map(|x| ExceptionFacts {
                id: x.id.clone(),
                subject: x.subject.clone(),
                status: x.status,
                expires_at: x.expires_at,
                review_due: x.review_due,
                waives: x.waives.clone(),
                scope: scopes.of(&x.subject),
            })
            .collect();
        let emergencies = self
            .emergencies
            .iter()
            .map(|e| EmergencyFacts {
                id: e.id.clone(),
                status: e.status,
                requested_at: e.requested_at,
                post_approval_due: e.post_approval_due,
                decided_at: e.decided_at,
                scope: scopes.of(&e.subject),
            })
            .collect();
        ComplianceFacts { nhis, secrets, exceptions, emergencies }
    }
}

/// What is held: how much each NHI holds, the kinds of the secrets it holds, and who
/// holds each secret.
struct Held<'a> {
    count: HashMap<&'a NodeId, u32>,
    kinds: HashMap<&'a NodeId, Vec<SecretKind>>,
    holders: HashMap<&'a NodeId, Vec<&'a NodeId>>,
}

impl<'a> Held<'a> {
    fn of(held: &'a [Pair], secret_kinds: &HashMap<NodeId, SecretKind>) -> Held<'a> {
        let mut h = Held { count: HashMap::new(), kinds: HashMap::new(), holders: HashMap::new() };
        for p in held {
            *h.count.entry(&p.from).or_default() += 1;
            h.holders.entry(&p.to).or_default().push(&p.from);
            if let Some(k) = secret_kinds.get(&p.to) {
                let kinds = h.kinds.entry(&p.from).or_default();
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        }
        h
    }
}

/// Who owns each node: the people behind it (directly or through an owning team), the
/// people who own it directly (with whether they are active), and the owning teams.
struct Ownership<'a> {
    people: HashMap<&'a NodeId, Vec<&'a NodeId>>,
    direct: HashMap<&'a NodeId, Vec<(NodeId, bool)>>,
    teams: HashMap<&'a NodeId, Vec<NodeId>>,
}

impl<'a> Ownership<'a> {
    fn of(owns: &'a [Pair], members: &'a [Pair], people: &HashMap<&NodeId, &PersonRow>) -> Ownership<'a> {
        let mut team_members: HashMap<&NodeId, Vec<&NodeId>> = HashMap::new();
        for m in members {
            team_members.entry(&m.to).or_default().push(&m.from);
        }
        let mut own = Ownership { people: HashMap::new(), direct: HashMap::new(), teams: HashMap::new() };
        for o in owns {
            match o.from.table() {
                Table::Person => {
                    own.people.entry(&o.to).or_default().push(&o.from);
                    if let Some(p) = people.get(&o.from) {
                        own.direct.entry(&o.to).or_default().push((o.from.clone(), p.active));
                    }
                }
                Table::Team => {
                    own.teams.entry(&o.to).or_default().push(o.from.clone());
                    let members = team_members.get(&o.from).cloned().unwrap_or_default();
                    own.people.entry(&o.to).or_default().extend(members);
                }
                _ => {}
            }
        }
        own
    }

    /// The people answerable for a node, each once: e-mail and whether active.
    fn owners_of(&self, id: &NodeId, people: &HashMap<&NodeId, &PersonRow>) -> Vec<(String, bool)> {
        let mut seen: Vec<&NodeId> = self.people.get(id).cloned().unwrap_or_default();
        seen.sort();
        seen.dedup();
        seen.iter().filter_map(|p| people.get(p)).map(|p| (p.email.clone(), p.active)).collect()
    }
}

/// Each NHI's access to systems the index knows, with whether a decision stands behind
/// it and whether that decision's approval has lapsed.
fn access_facts<'a>(
    rows: &'a [AccessRow],
    approvals: &[ApprovalRow],
    systems: &HashMap<NodeId, TargetFacts>,
    now: DateTime<Utc>,
) -> HashMap<&'a NodeId, Vec<AccessFacts>> {
    let lapsed: std::collections::HashSet<&str> =
        approvals.iter().filter(|a| a.approval_expires_at <= now).map(|a| a.granted_edge.as_str()).collect();
    let mut access: HashMap<&NodeId, Vec<AccessFacts>> = HashMap::new();
    for a in rows {
        let (Some(s), Some(privilege)) = (systems.get(&a.to), a.privilege) else { continue };
        access.entry(&a.from).or_default().push(AccessFacts {
            edge: a.id.clone(),
            system: a.to.clone(),
            target: *s,
            privilege,
            governed: a.governed,
            approval_lapsed: lapsed.contains(a.id.to_string().as_str()),
        });
    }
    access
}

/// What a control's scope reads of a subject: an NHI's own facts, a secret's holders',
/// a system's own.
struct Scopes<'a> {
    by_nhi: HashMap<&'a NodeId, &'a NhiFacts>,
    owner_teams: &'a HashMap<&'a NodeId, Vec<NodeId>>,
    holders: &'a HashMap<&'a NodeId, Vec<&'a NodeId>>,
    systems: &'a HashMap<NodeId, TargetFacts>,
    secret_kinds: &'a HashMap<NodeId, SecretKind>,
    holders_beyond: &'a HashMap<NodeId, ScopeFacts>,
}

impl Scopes<'_> {
    fn of(&self, subject: &NodeId) -> ScopeFacts {
        match subject.table() {
            Table::Nhi => self.nhis(&[subject], subject),
            Table::Secret => {
                let mut s = ScopeFacts {
                    secret_kinds: self.secret_kinds.get(subject).into_iter().copied().collect(),
                    ..self.nhis(self.holders.get(subject).map(Vec::as_slice).unwrap_or_default(), subject)
                };
                if let Some(beyond) = self.holders_beyond.get(subject) {
                    widen_scope(&mut s, beyond);
                }
                s
            }
            Table::System => {
                let s = self.systems.get(subject);
                ScopeFacts {
                    environments: s.map(|s| vec![s.environment]).unwrap_or_default(),
                    criticality: s.map(|s| s.criticality),
                    teams: self.owner_teams.get(subject).cloned().unwrap_or_default(),
                    ..Default::default()
                }
            }
            _ => ScopeFacts::default(),
        }
    }

    /// The scope of a subject through the NHIs `ids`, plus the teams owning `own`.
    fn nhis(&self, ids: &[&NodeId], own: &NodeId) -> ScopeFacts {
        let mut s = ScopeFacts { teams: self.owner_teams.get(own).cloned().unwrap_or_default(), ..Default::default() };
        for n in ids.iter().filter_map(|i| self.by_nhi.get(i)) {
            s.environments.push(n.environment);
            s.nhi_kinds.push(n.kind);
            s.secret_kinds.extend(n.secret_kinds.iter().filter(|k| !s.secret_kinds.contains(k)).collect::<Vec<_>>());
            s.teams.extend(n.teams.iter().cloned());
            s.criticality = most_critical(s.criticality, n.access.iter().map(|a| a.target.criticality).min());
        }
        s
    }
}

fn most_critical(a: Option<Criticality>, b: Option<Criticality>) -> Option<Criticality> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `s` widened by what `more` adds: the scope of a subject reached through more NHIs.
fn widen_scope(s: &mut ScopeFacts, more: &ScopeFacts) {
    s.environments.extend(&more.environments);
    s.nhi_kinds.extend(&more.nhi_kinds);
    s.teams.extend(more.teams.iter().cloned());
    s.criticality = most_critical(s.criticality, more.criticality);
}

/// The scope that the holders of `secret` other than `skip` give it at `now`, from the
/// graph index alone: their environments and kinds, the teams owning them, the most
/// critical system they can access (what [`Scopes::nhis`] reads of each, without reading
/// every holder of a widely held secret from the database).
fn holders_scope(g: &GraphIndex, secret: &NodeId, skip: &BTreeSet<NodeId>, now: DateTime<Utc>) -> ScopeFacts {
    let mut s = ScopeFacts::default();
    let holders =
        g.edges_at(secret, Direction::Reverse, now).filter(|e| e.id.kind == EdgeKind::Holds && !skip.contains(e.from));
    for h in holders.map(|e| e.from) {
        let Some(meta) = g.meta(h) else { continue };
        s.environments.extend(meta.environment);
        s.nhi_kinds.extend(meta.nhi_kind);
        s.teams.extend(
            g.edges_of_kind_at(h, EdgeKind::Owns, Direction::Reverse, now)
                .filter(|o| o.from.table() == Table::Team)
                .map(|o| o.from.clone()),
        );
        let reach = g
            .edges_at(h, Direction::Forward, now)
            .filter(|e| e.id.kind == EdgeKind::CanAccess && e.privilege.is_some())
            .filter_map(|e| g.meta(e.to))
            .filter(|m| m.environment.is_some())
            .filter_map(|m| m.criticality)
            .min();
        s.criticality = most_critical(s.criticality, reach);
    }
    s
}
