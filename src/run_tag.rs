//! The run's name on the wire: the run id every outgoing request carries once it is known, so
//! that the API's access logs (the `User-Agent`) and CloudTrail (the AWS role session name)
//! join to the lake's files and their `_lineage.jsonl.gz`.
//!
//! A [`RunTag`] is shared by the parts of one run: the engine hands the same tag to the API
//! client and to the web-identity exchange before any request is made. The binary mints a run id
//! up front ([`RunTag::with_id`]), so the first STS exchange already names it; a new run takes
//! that id, a resumed run sets its own ([`RunTag::set`]) and from then on the requests carry it
//! (the AWS credentials are then exchanged again under the run's name). The tag also keeps the
//! role session the last exchange got, so the run's records name the session that signed its
//! requests. Nothing secret is kept here.

use std::sync::{Arc, RwLock};

/// The product and version every request names (`gatelake/<version>`).
pub const PRODUCT: &str = concat!("gatelake/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Default)]
struct Inner {
    run_id: Option<String>,
    /// The role ARN STS assumed and the session's name, from the last exchange.
    session: Option<(Option<String>, String)>,
}

/// The id of the run the requests belong to (none yet: the product alone). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RunTag(Arc<RwLock<Inner>>);

impl RunTag {
    /// A tag with no run id (requests name the product only).
    pub fn new() -> Self {
        Self::default()
    }

    /// A tag that already names `run_id` (minted before the run starts: a new run takes it).
    pub fn with_id(run_id: &str) -> Self {
        let tag = Self::new();
        tag.set(run_id);
        tag
    }

    /// The run id requests carry from now on.
    pub fn set(&self, run_id: &str) {
        match self.0.write() {
            Ok(mut g) => g.run_id = Some(run_id.to_string()),
            Err(p) => p.into_inner().run_id = Some(run_id.to_string()),
        }
    }

    /// The run id, if one is known.
    pub fn run_id(&self) -> Option<String> {
        match self.0.read() {
            Ok(g) => g.run_id.clone(),
            Err(p) => p.into_inner().run_id.clone(),
        }
    }

    /// `gatelake/<version> run/<id>` (the product alone before the run id is known).
    pub fn user_agent(&self) -> String {
        user_agent(self.run_id().as_deref())
    }

    /// Note the role session an exchange got (its assumed-role ARN, when STS said it).
    pub fn set_session(&self, arn: Option<String>, session_name: String) {
        match self.0.write() {
            Ok(mut g) => g.session = Some((arn, session_name)),
            Err(p) => p.into_inner().session = Some((arn, session_name)),
        }
    }

    /// The role session of the last exchange: (assumed-role ARN, session name).
    pub fn session(&self) -> Option<(Option<String>, String)> {
        match self.0.read() {
            Ok(g) => g.session.clone(),
            Err(p) => p.into_inner().session.clone(),
        }
    }
}

/// `gatelake/<version> run/<id>`, or `gatelake/<version>` without a run id. Characters a
/// header value cannot carry never get here: run ids are `[0-9A-Za-z-]`.
pub fn user_agent(run_id: Option<&str>) -> String {
    match run_id {
        Some(id) => format!("{PRODUCT} run/{id}"),
        None => PRODUCT.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_the_run_once_it_is_known() {
        let tag = RunTag::new();
        assert_eq!(tag.user_agent(), PRODUCT);
        let shared = tag.clone();
        shared.set("20261207T031600Z-1a2b");
        assert_eq!(
            tag.user_agent(),
            format!(
                "gatelake/{} run/20261207T031600Z-1a2b",
                env!("CARGO_PKG_VERSION")
            )
        );
        let minted = RunTag::with_id("20261207T031601Z-0000");
        assert!(minted.user_agent().ends_with(" run/20261207T031601Z-0000"));
    }
}
