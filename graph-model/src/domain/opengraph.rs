//! BloodHound OpenGraph documents turned into inventory documents, so collectors that
//! already speak OpenGraph can feed the graph.
//!
//! ```json
//! { "metadata": { "source_kind": "GitHub" },
//!   "graph": {
//!     "nodes": [ { "id": "U_1", "kinds": ["GHUser"], "properties": { "name": "ana", "email": "ana@corp.example" } } ],
//!     "edges": [ { "kind": "Owns", "start": { "value": "U_1" },
//!                  "end": { "value": "deploy", "match_by": "name", "kind": "GHApp" } } ] } }
//! ```
//!
//! A node becomes a person, team, NHI, secret or system by the first of its `kinds`
//! that names one ([`node_type`]; `nhigov_type` in its properties overrides). Fields come
//! from properties of the same names (`name`, `email`, `environment`, `criticality`,
//! `fingerprint`, `kind`...), with defaults where the inventory has them; the node's id
//! becomes its `ref`, and an NHI's `external_id` with the source kind as `provider`. An
//! edge's kind maps to an edge of the inventory ([`edge_kind`]); its ends are matched by
//! id (the default) or by name (`match_by: "name"`, optionally only among nodes of a
//! `kind`). What cannot be mapped (a node of no known kind, a person without an e-mail,
//! a secret without a fingerprint, an edge of an unknown kind or with an end not in
//! the document) is skipped and reported, and the rest imports. The resulting document
//! then goes through the inventory's own checks, which name every remaining fault.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// The converted document, and what was left out and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub document: Value,
    pub skipped: Vec<String>,
}

/// The inventory type an OpenGraph kind names, and the inventory `kind` it implies.
pub fn node_type(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    let k = kind.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| k.ends_with(w));
    Some(if has(&["user", "person", "human"]) {
        ("person", None)
    } else if has(&["team", "group"]) {
        ("team", None)
    } else if has(&["agent"]) {
        ("nhi", Some("ai_agent"))
    } else if has(&["managedidentity", "workloadidentity"]) {
        ("nhi", Some("workload_identity"))
    } else if has(&["oauthapp", "oauthclient"]) {
        ("nhi", Some("oauth_client"))
    } else if has(&["serviceaccount", "serviceprincipal", "app", "bot", "role", "nhi"]) {
        ("nhi", Some("service_account"))
    } else if has(&["personalaccesstoken", "pat", "token"]) {
        ("nhi", Some("token"))
    } else if has(&["secret", "credential", "accesskey", "apikey", "key"]) {
        ("secret", Some(if has(&["apikey", "accesskey"]) { "api_key" } else { "other" }))
    } else if has(&["certificate"]) {
        ("secret", Some("certificate"))
    } else if has(&["repository", "repo"]) {
        ("system", Some("repository"))
    } else if has(&["database", "db"]) {
        ("system", Some("database"))
    } else if has(&["vault", "keyvault"]) {
        ("system", Some("vault"))
    } else if has(&["cluster"]) {
        ("system", Some("cluster"))
    } else if has(&["pipeline", "workflow"]) {
        ("system", Some("pipeline"))
    } else if has(&["account", "subscription", "tenant", "organization", "project"]) {
        ("system", Some("cloud_account"))
    } else if has(&["system", "server", "service", "application", "bucket"]) {
        ("system", Some("application"))
    } else {
        return None;
    })
}

/// The inventory edge an OpenGraph edge kind names, and the privilege it implies.
pub fn edge_kind(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "owns" | "ownerof" | "owner" => ("owns", None),
        "memberof" | "member" => ("member_of", None),
        "holds" | "hassecret" | "haskey" | "hascredential" => ("holds", None),
        "adminto" | "admin" | "hasadmin" => ("can_access", Some("admin")),
        "canwrite" | "write" | "haswrite" | "writeto" => ("can_access", Some("write")),
        "canaccess" | "hasaccess" | "canread" | "read" | "readfrom" => ("can_access", Some("read")),
        "authenticatesto" | "authto" => ("authenticates_to", None),
        "storedin" => ("stored_in", None),
        "assumes" | "canassume" | "assumerole" => ("assumes", None),
        "dependson" => ("depends_on", None),
        _ => return None,
    })
}

fn prop<'a>(props: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| props.get(*k)).filter(|v| !v.is_null())
}

fn prop_text(props: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    prop(props, keys).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Convert an OpenGraph document; `environment` is the environment of NHIs and
/// systems whose properties name none.
pub fn convert(doc: &Value, environment: &str) -> Result<Converted, String> {
    let graph = doc.get("graph").ok_or("an OpenGraph document has a `graph` object")?;
    let nodes = graph.get("nodes").and_then(Value::as_array).ok_or("graph.nodes: a list is required")?;
    let edges = graph.get("edges").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let source = doc.pointer("/metadata/source_kind").and_then(Value::as_str).unwrap_or("opengraph");
    let mut skipped = Vec::new();
    let mut out_nodes = Vec::new();
    let mut known = Known::default();
    for (i, n) in nodes.iter().enumerate() {
        match convert_node(&format!("graph.nodes[{i}]"), n, environment, source) {
            Ok(node) => {
                known.by_name.entry(node.name).or_default().push(node.id.clone());
                known.types.insert(node.id, node.kinds);
                out_nodes.push(node.value);
            }
            Err(why) => skipped.push(why),
        }
    }
    let mut out_edges = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        match convert_edge(&format!("graph.edges[{i}]"), e, &known) {
            Ok(edge) => out_edges.push(edge),
            Err(why) => skipped.push(why),
        }
    }
    // The edges it opens carry the collector's name, so a later document from the same
    // collector recognises them; an OpenGraph document never says it is complete, so a
    // refresh from it closes nothing.
    Ok(Converted {
        document: json!({ "source": format!("opengraph:{source}"), "nodes": out_nodes, "edges": out_edges }),
        skipped,
    })
}

/// The converted nodes edges can name: their OpenGraph kinds by id, and ids by name.
#[derive(Default)]
struct Known {
    types: HashMap<String, Vec<String>>,
    by_name: HashMap<String, Vec<String>>,
}

/// One converted node, with what edges match it by.
struct NodeOut {
    id: String,
    kinds: Vec<String>,
    name: String,
    value: Value,
}

/// An OpenGraph id: a string, or a number written as one.
fn id_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|x| x.to_string()))
}

/// Convert one node, or say why it is skipped.
fn convert_node(at: &str, n: &Value, environment: &str, source: &str) -> Result<NodeOut, String> {
    let id = n.get("id").and_then(id_text).ok_or(format!("{at}: no id"))?;
    let empty = Map::new();
    let props = n.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let kinds: Vec<String> = n
        .get("kinds")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let implied_by_kinds = || kinds.iter().find_map(|k| node_type(k));
    let mapped = match prop_text(props, &["nhigov_type"]).as_deref() {
        Some(t @ ("person" | "team" | "nhi" | "secret" | "system")) => {
            let t: &'static str = match t {
                "person" => "person",
                "team" => "team",
                "nhi" => "nhi",
                "secret" => "secret",
                _ => "system",
            };
            Some((t, implied_by_kinds().and_then(|(_, k)| k)))
        }
        _ => implied_by_kinds(),
    };
    let Some((ty, implied)) = mapped else {
        return Err(format!("{at} ({id}): no kind of {kinds:?} maps to a person, team, NHI, secret or system"));
    };
    let name = prop_text(props, &["name", "displayname", "display_name", "login"]).unwrap_or_else(|| id.clone());
    let mut node = json!({ "type": ty, "ref": id, "name": name });
    node_fields(&mut node, ty, implied, props, environment, source, &id)
        .map_err(|what| format!("{at} ({id}): {what}"))?;
    Ok(NodeOut { id, kinds, name, value: node })
}

/// The fields of a node of inventory type `ty`, from its properties; the one it
/// cannot do without, when missing, is the error.
fn node_fields(
    node: &mut Value,
    ty: &str,
    implied: Option<&str>,
    props: &Map<String, Value>,
    environment: &str,
    source: &str,
    id: &str,
) -> Result<(), &'static str> {
    let set = |node: &mut Value, key: &str, v: Option<String>| {
        if let Some(v) = v {
            node[key] = Value::String(v);
        }
    };
    let kind = |keys: &[&str]| json!(prop_text(props, keys).or(implied.map(str::to_owned)));
    let env = || json!(prop_text(props, &["environment", "env"]).unwrap_or_else(|| environment.into()));
    match ty {
        "person" => {
            let email = prop_text(props, &["email", "mail", "userprincipalname"]);
            node["email"] = json!(email.ok_or("a person needs an `email` property")?);
        }
        "team" => set(node, "description", prop_text(props, &["description"])),
        "nhi" => {
            node["kind"] = kind(&["nhi_kind", "kind"]);
            node["environment"] = env();
            node["provider"] = json!(source);
            node["external_id"] = json!(id);
            set(node, "status", prop_text(props, &["status"]));
            set(node, "last_used_at", prop_text(props, &["last_used_at", "lastused"]));
            set(node, "description", prop_text(props, &["description"]));
        }
        "secret" => {
            let fp = prop_text(props, &["fingerprint", "sha256", "hash"]);
            node["fingerprint"] = json!(fp.ok_or("a secret needs a `fingerprint` property (a hash of its value)")?);
            node["kind"] = kind(&["secret_kind", "kind"]);
            for key in ["created_at", "last_rotated_at", "expires_at", "rotation_period_days"] {
                if let Some(v) = prop(props, &[key]) {
                    node[key] = v.clone();
                }
            }
        }
        _ => {
            node["kind"] = kind(&["system_kind", "kind"]);
            node["environment"] = env();
            set(node, "criticality", prop_text(props, &["criticality", "tier"]));
            set(node, "description", prop_text(props, &["description"]));
        }
    }
    Ok(())
}

/// Convert one edge, or say why it is skipped.
fn convert_edge(at: &str, e: &Value, known: &Known) -> Result<Value, String> {
    let kind = e.get("kind").and_then(Value::as_str).unwrap_or("");
    let (ty, implied) = edge_kind(kind).ok_or(format!("{at}: the edge kind `{kind}` maps to no inventory edge"))?;
    let from = edge_end(at, e, "start", known)?;
    let to = edge_end(at, e, "end", known)?;
    let empty = Map::new();
    let props = e.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let mut edge = json!({ "type": ty, "from": from, "to": to });
    if ty == "can_access" {
        edge["privilege"] = json!(prop_text(props, &["privilege"]).or(implied.map(str::to_owned)));
    }
    for key in ["mechanism", "expires_at"] {
        if let Some(v) = prop_text(props, &[key]) {
            edge[key] = json!(v);
        }
    }
    Ok(edge)
}

/// The node id one end of an edge names, by id or by name (optionally among nodes of
/// one OpenGraph kind).
fn edge_end(at: &str, e: &Value, side: &str, known: &Known) -> Result<String, String> {
    let m = e.get(side).ok_or(format!("{at}.{side}: missing"))?;
    let value = m.get("value").and_then(id_text).ok_or(format!("{at}.{side}.value: missing"))?;
    match m.get("match_by").and_then(Value::as_str).unwrap_or("id") {
        "id" if known.types.contains_key(&value) => Ok(value),
        "id" => Err(format!("{at}.{side}: no node `{value}` in the document (or it was skipped)")),
        "name" => {
            let want = m.get("kind").and_then(Value::as_str);
            let found: Vec<&String> = known
                .by_name
                .get(&value)
                .map(|ids| {
                    ids.iter().filter(|id| want.is_none_or(|k| known.types[*id].iter().any(|x| x == k))).collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(format!("{at}.{side}: no node named `{value}`")),
                _ => Err(format!("{at}.{side}: {} nodes are named `{value}`; match by id", found.len())),
            }
        }
        other => Err(format!("{at}.{side}.match_by: `{other}` is neither id nor name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_by_their_endings() {
        assert_eq!(node_type("GHUser"), Some(("person", None)));
        assert_eq!(node_type("AZServicePrincipal"), Some(("nhi", Some("service_account"))));
        assert_eq!(node_type("GHRepository"), Some(("system", Some("repository"))));
        assert_eq!(node_type("AZKeyVault"), Some(("system", Some("vault"))));
        assert_eq!(node_type("Base"), None);
        assert_eq!(edge_kind("AdminTo"), Some(("can_access", Some("admin"))));
        assert_eq!(edge_kind("Knows"), None);
    }

    #[test]
    fn ends_match_by_id_or_by_name_and_the_unmappable_is_reported() {
        let doc = json!({ "metadata": { "source_kind": "GitHub" }, "graph": {
            "nodes": [
                { "id": "1", "kinds": ["GHUser"], "properties": { "name": "ana", "email": "ana@corp.example" } },
                { "id": "2", "kinds": ["GHApp"], "properties": { "name": "deployer" } },
                { "id": "3", "kinds": ["GHRepository"], "properties": { "name": "payments", "criticality": "tier1" } },
                { "id": "4", "kinds": ["GHUser"], "properties": { "name": "no-mail" } },
                { "id": "5", "kinds": ["Base"], "properties": {} }
            ],
            "edges": [
                { "kind": "Owns", "start": { "value": "1" }, "end": { "value": "deployer", "match_by": "name" } },
                { "kind": "CanWrite", "start": { "value": "2" }, "end": { "value": "payments", "match_by": "name", "kind": "GHRepository" } },
                { "kind": "Knows", "start": { "value": "1" }, "end": { "value": "2" } },
                { "kind": "Owns", "start": { "value": "4" }, "end": { "value": "2" } }
            ] } });
        let c = convert(&doc, "production").unwrap();
        assert_eq!(c.document["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(c.document["nodes"][1]["provider"], "GitHub");
        assert_eq!(c.document["nodes"][1]["external_id"], "2");
        assert_eq!(
            c.document["edges"],
            json!([
                { "type": "owns", "from": "1", "to": "2" },
                { "type": "can_access", "from": "2", "to": "3", "privilege": "write" }
            ])
        );
        assert_eq!(c.skipped.len(), 4, "{:?}", c.skipped);
        assert!(c.skipped[0].contains("graph.nodes[3] (4): a person needs an `email`"));
        assert!(c.skipped.iter().any(|s| s.contains("`Knows`")));
    }
}
