//! Many approvals, rejections and case transitions fired at the same subjects at once,
//! over HTTP. Snapshot isolation would let two decisions that each checked "no
//! conflicting approval" both commit; the chain head every decision writes makes that
//! impossible. Afterwards: no double approval, no approval that breaks a rule, no fork
//! or gap in the chain, and every acknowledged decision present.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use nhigov_tests::{TestServer, code};
use serde_json::{Value, json};

const DECIDE: &str = "mutation($r: ID!, $o: DecideOutcome!) {
    decideRequest(id: $r, outcome: $o, rationale: \"concurrent\") { decision { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_never_double_approve_or_fork_the_chain() {
    let s = TestServer::start().await;
    let w = s.world().await;
    let priya = s.as_("priya");

    // Six requests to production systems: privileged ones (write or admin) need two
    // approvers and olga, who owns both systems, may not approve them; read needs one.
    let mut requests = Vec::new();
    for (target, privilege) in
        [("vault", "READ"), ("vault", "WRITE"), ("db", "ADMIN"), ("db", "READ"), ("vault", "ADMIN"), ("db", "ADMIN")]
    {
        let d = s
            .ok(
                &priya,
                "mutation($i: RequestInput!) { createRequest(input: $i) { id approvalsNeeded } }",
                json!({ "i": { "kind": "GRANT_ACCESS", "subjectId": w.id("bot"), "targetId": w.id(target),
                                "privilege": privilege, "justification": "load test" } }),
            )
            .await;
        let privileged = privilege != "READ";
        requests.push((
            d["createRequest"]["id"].as_str().unwrap().to_owned(),
            d["createRequest"]["approvalsNeeded"].as_u64().unwrap(),
            privileged,
        ));
    }
    // One case several investigators move at once.
    let d = s
        .ok(
            &s.as_("ines"),
            "mutation($n: ID!) { openCase(input: { title: \"race\", severity: HIGH, subjectIds: [$n] }) { id } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let case = d["openCase"]["id"].as_str().unwrap().to_owned();

    // Every request gets, at the same moment: approvals from jules, kim and olga (the
    // owner), one from priya (the requester), and a rejection from each of two more;
    // the case gets competing transitions.
    let mut calls: Vec<(String, String, Value)> = Vec::new();
    for (r, _, _) in &requests {
        for (who, outcome) in [
            ("jules", "APPROVE"),
            ("kim", "APPROVE"),
            ("olga", "APPROVE"),
            ("priya", "APPROVE"),
            ("jules", "APPROVE"),
            ("kim", "REJECT"),
        ] {
            calls.push((who.into(), DECIDE.into(), json!({ "r": r, "o": outcome })));
        }
    }
    for (who, to) in [("ines", "TRIAGE"), ("priya", "INVESTIGATING"), ("ines", "ESCALATED"), ("priya", "TRIAGE")] {
        calls.push((
            who.into(),
            "mutation($c: ID!, $t: CaseStatus!) { transitionCase(id: $c, to: $t, rationale: \"race\") { status } }"
                .into(),
            json!({ "c": case, "t": to }),
        ));
    }
    let server = &s;
    let answers = join_all(calls.iter().map(|(who, q, v)| async move {
        let (status, body) = server.gql(&server.as_(who), q, v.clone()).await;
        (who.clone(), status, body)
    }))
    .await;

    // Every call was answered: a decision, a recorded refusal, or a clean refusal of
    // something no longer possible.
    let mut acknowledged: HashSet<String> = HashSet::new();
    for (who, status, body) in &answers {
        assert_eq!(*status, 200, "{who}: {body}");
        match code(body) {
            "" => {
                if let Some(id) = body["data"]["decideRequest"]["decision"]["id"].as_str() {
                    acknowledged.insert(id.to_owned());
                }
            }
            "SOD_VIOLATION" => {
                acknowledged.insert(body["errors"][0]["extensions"]["decision"].as_str().unwrap().to_owned());
            }
            "CONFLICT" | "BAD_USER_INPUT" => {}
            other => panic!("{who}: unexpected {other}: {body}"),
        }
    }

    let ada = s.as_("ada");
    let d = s
        .ok(
            &ada,
            "{ verifyDecisionChain { ok length firstBroken { problem } }
               decisions(first: 100) { totalCount edges { node { id seq kind outcome subject actor { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["verifyDecisionChain"]["ok"], true, "{d}");
    let decisions: Vec<Value> = d["decisions"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    let seqs: Vec<u64> = decisions.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=decisions.len() as u64).collect::<Vec<_>>(), "no fork, no gap");
    assert_eq!(d["verifyDecisionChain"]["length"].as_u64().unwrap(), decisions.len() as u64);
    let stored: HashSet<String> = decisions.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged decision {id} is missing");
    }

    // Per request: approvals by distinct people, never by the requester, never by the
    // owner on a privileged grant (an unprivileged one she may approve), never more
    // than needed; a grant opened once.
    let mut by_request: HashMap<&str, Vec<&Value>> = HashMap::new();
    for dec in &decisions {
        if dec["kind"] == "DECIDE_REQUEST" {
            by_request.entry(dec["subject"].as_str().unwrap()).or_default().push(dec);
        }
    }
    for (r, needed, privileged) in &requests {
        let ds = by_request.get(r.as_str()).cloned().unwrap_or_default();
        let approvers: Vec<&str> =
            ds.iter().filter(|d| d["outcome"] == "APPROVED").map(|d| d["actor"]["email"].as_str().unwrap()).collect();
        let unique: HashSet<&&str> = approvers.iter().collect();
        assert_eq!(unique.len(), approvers.len(), "{r}: someone approved twice: {approvers:?}");
        assert!(!approvers.contains(&"priya@corp.example"), "{r}: the requester approved");
        if *privileged {
            assert!(!approvers.contains(&"olga@corp.example"), "{r}: the owner approved a privileged grant");
        }
        assert!(approvers.len() as u64 <= *needed, "{r}: {approvers:?} for {needed} needed");
        let rejections = ds.iter().filter(|d| d["outcome"] == "REJECTED").count();
        let d = s
            .ok(
                &ada,
                "query($r: ID!) { request(id: $r) { status approvals { approver { email } } grantedEdge } }",
                json!({ "r": r }),
            )
            .await;
        let status = d["request"]["status"].as_str().unwrap();
        match status {
            "APPROVED" => {
                assert_eq!(approvers.len() as u64, *needed, "{r}");
                assert_eq!(rejections, 0, "{r}: approved and rejected");
                assert!(d["request"]["grantedEdge"].is_string());
            }
            "REJECTED" => {
                assert_eq!(rejections, 1, "{r}: rejected {rejections} times");
                assert!(d["request"]["grantedEdge"].is_null());
            }
            other => panic!("{r} ended {other}: every request got enough approvals or a rejection"),
        }
        assert_eq!(d["request"]["approvals"].as_array().unwrap().len(), approvers.len(), "{r}");
    }
    // However the grants raced, the NHI holds at most one open edge per system.
    let d = s
        .ok(
            &ada,
            "query($n: ID!) { node(id: $n) { ... on Nhi { access { system { name } } } } }",
            json!({ "n": w.id("bot") }),
        )
        .await;
    let names: Vec<&str> =
        d["node"]["access"].as_array().unwrap().iter().map(|a| a["system"]["name"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "two open edges to one system: {names:?}");

    // The case moved through legal transitions only, each recorded once.
    let d =
        s.ok(&ada, "query($c: ID!) { case(id: $c) { status decisions { kind outcome } } }", json!({ "c": case })).await;
    let transitions =
        d["case"]["decisions"].as_array().unwrap().iter().filter(|d| d["kind"] == "TRANSITION_CASE").count();
    let ok_transitions = answers.iter().filter(|(_, _, b)| b["data"]["transitionCase"]["status"].is_string()).count();
    assert_eq!(transitions, ok_transitions);
    assert!(ok_transitions >= 1);
    s.stop().await;
}
