//! GraphQL enums mirroring the domain's closed sets of values.
//!
//! The domain enums stay free of GraphQL; each one here converts both ways, and its
//! doc comment is the description the published schema carries.

use async_graphql::Enum;
use graph_model as gm;

macro_rules! gql_enum {
    ($(#[$meta:meta])* $name:ident => $domain:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl From<$name> for $domain {
            fn from(v: $name) -> $domain {
                match v { $($name::$variant => <$domain>::$variant),+ }
            }
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> $name {
                match v { $(<$domain>::$variant => $name::$variant),+ }
            }
        }
    };
}

gql_enum!(
    /// What kind of non-human identity.
    NhiKind => gm::NhiKind { ServiceAccount, ApiKey, OauthClient, Token, Certificate, SshKey, AiAgent, WorkloadIdentity }
);
gql_enum!(
    /// Lifecycle status of an NHI.
    NhiStatus => gm::NhiStatus { Active, Disabled, Revoked, Decommissioned }
);
gql_enum!(
    /// What kind of credential.
    SecretKind => gm::SecretKind { ApiKey, Password, Token, Certificate, SshKey, OauthSecret, PrivateKey, Other }
);
gql_enum!(
    /// What kind of system.
    SystemKind => gm::SystemKind { Application, Database, Vault, Repository, CloudAccount, Saas, Cluster, Pipeline }
);
gql_enum!(
    /// Deployment environment.
    Environment => gm::Environment { Production, Staging, Development, Test }
);
/// Business criticality; TIER0 is the most critical.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    #[graphql(name = "TIER0")]
    Tier0,
    #[graphql(name = "TIER1")]
    Tier1,
    #[graphql(name = "TIER2")]
    Tier2,
    #[graphql(name = "TIER3")]
    Tier3,
}

impl From<Criticality> for gm::Criticality {
    fn from(v: Criticality) -> gm::Criticality {
        match v {
            Criticality::Tier0 => gm::Criticality::Tier0,
            Criticality::Tier1 => gm::Criticality::Tier1,
            Criticality::Tier2 => gm::Criticality::Tier2,
            Criticality::Tier3 => gm::Criticality::Tier3,
        }
    }
}

impl From<gm::Criticality> for Criticality {
    fn from(v: gm::Criticality) -> Criticality {
        match v {
            gm::Criticality::Tier0 => Criticality::Tier0,
            gm::Criticality::Tier1 => Criticality::Tier1,
            gm::Criticality::Tier2 => Criticality::Tier2,
            gm::Criticality::Tier3 => Criticality::Tier3,
        }
    }
}
gql_enum!(
    /// Level of access on a system, from least to most.
    Privilege => gm::Privilege { Read, Write, Admin }
);
gql_enum!(
    /// How one NHI acts as another.
    AssumeMechanism => gm::AssumeMechanism { RoleAssumption, Impersonation, Delegation }
);
gql_enum!(
    /// What a person or machine principal may do.
    Role => gm::Role { Viewer, Investigator, Approver, Admin, Auditor, Ingest }
);
gql_enum!(
    /// The kinds of relation in the identity graph.
    EdgeKind => gm::EdgeKind { Owns, MemberOf, Holds, CanAccess, AuthenticatesTo, StoredIn, Assumes, DependsOn }
);
