//! Compliance over the graph: controls (versioned checks with an owner and a scope),
//! their results per subject now and at any past time, and the findings failures open,
//! followed to remediation and closure; certification campaigns, in which owners review
//! what they own.

pub mod campaigns;
pub mod mutation;
pub mod query;
pub mod types;
pub mod work;

pub use campaigns::{CampaignMutation, CampaignQuery};
pub use mutation::ComplianceMutation;
pub use query::ComplianceQuery;
pub use work::WorkQuery;
