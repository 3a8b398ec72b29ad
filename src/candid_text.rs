//! Candid text in, Candid text out, typed against the canister's `.did` (like `dfx canister call`).

use candid::types::{Type, TypeInner};
use candid::{IDLArgs, TypeEnv};
use candid_parser::utils::CandidSource;

/// The canister's interface, embedded at build time (the same file the canister is checked against).
pub const PLUGIN_HOST_DID: &str = include_str!("../canister/plugin_host/plugin_host.did");

/// A parsed service interface.
pub struct Interface {
    env: TypeEnv,
    service: Type,
    init: Vec<Type>,
}

/// A Candid text or type error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct CandidTextError {
    context: String,
    message: String,
}

fn error(context: impl Into<String>, err: impl std::fmt::Display) -> CandidTextError {
    CandidTextError {
        context: context.into(),
        message: err.to_string(),
    }
}

impl Interface {
    /// Parses a `.did` file's text.
    pub fn parse(did: &str) -> Result<Self, CandidTextError> {
        let (env, actor) = CandidSource::Text(did)
            .load()
            .map_err(|e| error("cannot parse the interface", e))?;
        let actor = actor.ok_or_else(|| error("cannot parse the interface", "no service"))?;
        let (init, service) = match actor.as_ref() {
            TypeInner::Class(init, service) => (init.clone(), service.clone()),
            _ => (Vec::new(), actor.clone()),
        };
        Ok(Self { env, service, init })
    }

    /// The interface of `plugin_host`.
    pub fn plugin_host() -> Self {
        Self::parse(PLUGIN_HOST_DID).expect("the embedded plugin_host.did parses")
    }

    /// Encodes Candid text (e.g. `("counter", "get", blob "")`) as `method`'s arguments.
    pub fn encode_args(&self, method: &str, text: &str) -> Result<Vec<u8>, CandidTextError> {
        let function = self
            .env
            .get_method(&self.service, method)
            .map_err(|e| error(format!("unknown method `{method}`"), e))?;
        encode(&self.env, &function.args, text)
    }

    /// Encodes Candid text as the canister's init (or upgrade) argument.
    pub fn encode_init(&self, text: &str) -> Result<Vec<u8>, CandidTextError> {
        encode(&self.env, &self.init, text)
    }

    /// Decodes `method`'s reply bytes to Candid text.
    pub fn decode_reply(&self, method: &str, bytes: &[u8]) -> Result<String, CandidTextError> {
        let function = self
            .env
            .get_method(&self.service, method)
            .map_err(|e| error(format!("unknown method `{method}`"), e))?;
        let args = IDLArgs::from_bytes_with_types(bytes, &self.env, &function.rets)
            .map_err(|e| error(format!("cannot decode the reply of `{method}`"), e))?;
        Ok(args.to_string())
    }

    /// Whether `method` is a query.
    pub fn is_query(&self, method: &str) -> bool {
        self.env
            .get_method(&self.service, method)
            .map(|f| f.is_query())
            .unwrap_or(false)
    }
}

fn encode(env: &TypeEnv, types: &[Type], text: &str) -> Result<Vec<u8>, CandidTextError> {
    let text = if text.trim().is_empty() { "()" } else { text };
    let args = candid_parser::parse_idl_args(text)
        .map_err(|e| error(format!("cannot parse Candid arguments `{text}`"), e))?;
    args.to_bytes_with_types(env, types)
        .map_err(|e| error(format!("arguments `{text}` do not fit the interface"), e))
}
