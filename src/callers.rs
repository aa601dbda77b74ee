//! Who may call the gateway, and with whose block credentials.
//!
//! - `service` (the default outside the sandbox): callers present a gateway API key as
//!   `Authorization: Bearer <key>`; keys are configured as SHA-256 digests and compared in
//!   constant time. Blocks are called with the gateway's own credentials.
//! - `forward`: each caller's own block credentials, sent in the per-block headers below,
//!   are passed through; a block without one answers `UNAUTHENTICATED` without a request,
//!   and the cache is partitioned by a fingerprint of the forwarded credentials. API keys
//!   are checked too when any are configured.
//! - `open` (the sandbox default): anyone may call; logged loudly at start.

use std::{fmt, str::FromStr, sync::Arc};

use axum::http::{HeaderMap, HeaderName, header::AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::blocks::{BlockName, http::BlockAuth};

/// How callers are authenticated and whose credentials reach the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Gateway API keys; the gateway's own block credentials.
    Service,
    /// The caller's block credentials, forwarded per block.
    Forward,
    /// No authentication (sandbox, local development).
    Open,
}

impl AuthMode {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Forward => "forward",
            Self::Open => "open",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMode {
    type Err = CallerConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "service" => Ok(Self::Service),
            "forward" => Ok(Self::Forward),
            "open" => Ok(Self::Open),
            _ => Err(CallerConfigError::UnknownMode),
        }
    }
}

/// Why the caller settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerConfigError {
    /// `GATEWAY_AUTH_MODE` is none of the three words.
    #[error("must be `service`, `forward` or `open`")]
    UnknownMode,
    /// An entry of `GATEWAY_API_KEY_HASHES` is not 64 hex digits (entry number, from 1).
    #[error("entry {0} is not a SHA-256 digest (64 hex digits; `blocks-gateway hash-key` prints one)")]
    BadDigest(usize),
    /// Service mode without any key: nobody could call.
    #[error("is required in `service` mode (or set GATEWAY_AUTH_MODE=open for an open gateway)")]
    NoKeys,
}

/// The SHA-256 digest of an API key.
pub type KeyDigest = [u8; 32];

/// The caller settings: mode, accepted key digests, and where forwarded CRM credentials go.
#[derive(Debug, Clone)]
pub struct CallerSettings {
    /// The mode.
    pub mode: AuthMode,
    /// Digests of the accepted gateway API keys.
    pub key_digests: Vec<KeyDigest>,
    /// The header the CRM reads its credential from (`CRM_AUTH_HEADER`).
    pub crm_header: HeaderName,
}

impl Default for CallerSettings {
    /// Open, as the sandbox runs.
    fn default() -> Self {
        Self::open()
    }
}

impl CallerSettings {
    /// Anyone may call.
    pub fn open() -> Self {
        Self {
            mode: AuthMode::Open,
            key_digests: Vec::new(),
            crm_header: AUTHORIZATION,
        }
    }

    /// Callers need one of `keys` (plain keys, hashed here).
    pub fn service(keys: &[&str]) -> Self {
        Self {
            mode: AuthMode::Service,
            key_digests: keys.iter().map(|key| digest(key)).collect(),
            ..Self::open()
        }
    }

    /// Callers forward their own block credentials.
    pub fn forward() -> Self {
        Self {
            mode: AuthMode::Forward,
            ..Self::open()
        }
    }

    /// From the configuration: `mode` and the comma-separated hex digests. Without an
    /// explicit mode: `open` in the sandbox; `service` when keys are configured; otherwise
    /// `open`, logged loudly at start (see [`log_mode`]), so that a gateway pointed at its
    /// blocks with nothing else set serves instead of refusing to start. An explicit
    /// `service` without keys is refused.
    pub fn parse(mode: Option<AuthMode>, digests: Option<&str>, sandbox: bool) -> Result<Self, CallerConfigError> {
        let key_digests = digests.map(parse_digests).transpose()?.unwrap_or_default();
        let default_mode = if sandbox || key_digests.is_empty() {
            AuthMode::Open
        } else {
            AuthMode::Service
        };
        let mode = mode.unwrap_or(default_mode);
        if mode == AuthMode::Service && key_digests.is_empty() {
            return Err(CallerConfigError::NoKeys);
        }
        Ok(Self {
            mode,
            key_digests,
            ..Self::open()
        })
    }
}

fn parse_digests(text: &str) -> Result<Vec<KeyDigest>, CallerConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| decode_hex_digest(entry).ok_or(CallerConfigError::BadDigest(index + 1)))
        .collect()
}

fn decode_hex_digest(text: &str) -> Option<KeyDigest> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(digest)
}

fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// The hex SHA-256 digest of `key`, as `GATEWAY_API_KEY_HASHES` lists it.
pub fn hash_key(key: &str) -> String {
    digest(key).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Says at start who may call; an open gateway outside the sandbox is logged loudly.
pub fn log_mode(settings: &CallerSettings) {
    match settings.mode {
        AuthMode::Open => tracing::warn!(
            "open gateway: callers are NOT authenticated; anyone who reaches this address may read and write through the gateway (set GATEWAY_API_KEY_HASHES for service mode, or GATEWAY_AUTH_MODE=open to acknowledge)"
        ),
        AuthMode::Service => tracing::info!(
            keys = settings.key_digests.len(),
            "callers authenticate with gateway API keys"
        ),
        AuthMode::Forward => tracing::info!(
            api_keys = !settings.key_digests.is_empty(),
            "callers forward their own block credentials"
        ),
    }
}

/// The note the start-up banner carries after the name.
pub fn banner_note(sandbox: bool, mode: AuthMode) -> &'static str {
    match (sandbox, mode) {
        (true, AuthMode::Open) => " (sandbox, open: callers are not authenticated)",
        (true, _) => " (sandbox)",
        (false, AuthMode::Open) => " (open: callers are not authenticated)",
        (false, _) => "",
    }
}

/// Why a caller was turned away (HTTP 401, `UNAUTHENTICATED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// No `Authorization: Bearer` key was sent.
    #[error("an API key is required: send `Authorization: Bearer <key>`")]
    MissingKey,
    /// The key is not one of the configured keys.
    #[error("the API key is not valid")]
    WrongKey,
}

/// A caller that was let in.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Blocks are called with the gateway's own credentials.
    Service,
    /// Blocks are called with these forwarded credentials.
    Forwarded(Arc<ForwardedCredentials>),
}

/// The caller check, built once from the settings.
#[derive(Debug, Clone)]
pub struct Callers {
    settings: Arc<CallerSettings>,
}

impl Callers {
    /// From the settings.
    pub fn new(settings: CallerSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    /// The mode in force.
    pub fn mode(&self) -> AuthMode {
        self.settings.mode
    }

    /// Whether callers must present a gateway API key.
    pub fn requires_key(&self) -> bool {
        match self.settings.mode {
            AuthMode::Open => false,
            AuthMode::Service => true,
            AuthMode::Forward => !self.settings.key_digests.is_empty(),
        }
    }

    /// Lets the caller in, or says why not. Nothing of the presented key is kept.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, CallerError> {
        if self.requires_key() {
            let key = bearer_key(headers).ok_or(CallerError::MissingKey)?;
            if !self.accepts(key) {
                return Err(CallerError::WrongKey);
            }
        }
        Ok(match self.settings.mode {
            AuthMode::Forward => Caller::Forwarded(Arc::new(ForwardedCredentials::from_headers(
                headers,
                &self.settings.crm_header,
            ))),
            AuthMode::Service | AuthMode::Open => Caller::Service,
        })
    }

    /// Compares the key's digest with every configured digest, without stopping early.
    fn accepts(&self, key: &str) -> bool {
        let presented = digest(key);
        let matched = self
            .settings
            .key_digests
            .iter()
            .fold(Choice::from(0), |matched, known| {
                matched | presented.as_slice().ct_eq(known.as_slice())
            });
        matched.into()
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` with exactly `token` (the
/// `/metrics` token). Compared in constant time, through digests, so that neither the
/// content nor the length of the token shows in the time taken.
pub fn bearer_token_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let Some(presented) = bearer_key(headers) else {
        return false;
    };
    digest(presented)
        .as_slice()
        .ct_eq(digest(token.expose_secret()).as_slice())
        .into()
}

/// The key of an `Authorization: Bearer <key>` header (scheme case-insensitive).
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// One forwarded header: the request header, and the block's header it is sent as (`None`:
/// the configurable CRM header).
type ForwardedHeader = (&'static str, Option<&'static str>);

/// The request headers a caller forwards block credentials in, per block.
const FORWARDED_HEADERS: [(BlockName, &[ForwardedHeader]); 5] = [
    (
        BlockName::Sales,
        &[
            ("x-sales-authorization", Some("authorization")),
            ("x-sales-appid", Some("appid")),
        ],
    ),
    (
        BlockName::Search,
        &[
            ("x-search-authorization", Some("authorization")),
            ("x-search-appid", Some("appid")),
        ],
    ),
    (
        BlockName::Assets,
        &[
            ("x-assets-authorization", Some("authorization")),
            ("x-assets-appid", Some("appid")),
        ],
    ),
    (BlockName::B2b, &[("x-b2b-authorization", Some("authorization"))]),
    (BlockName::Crm, &[("x-crm-authorization", None)]),
];

/// Every request header that carries forwarded credentials (for CORS and redaction).
pub fn forwarded_header_names() -> impl Iterator<Item = &'static str> {
    FORWARDED_HEADERS
        .iter()
        .flat_map(|(_, headers)| headers.iter().map(|(name, _)| *name))
}

/// The block credentials one caller forwarded, and their fingerprint.
pub struct ForwardedCredentials {
    per_block: Vec<(BlockName, BlockAuth)>,
    fingerprint: u64,
}

impl fmt::Debug for ForwardedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: Vec<BlockName> = self.per_block.iter().map(|(block, _)| *block).collect();
        f.debug_struct("ForwardedCredentials")
            .field("blocks", &blocks)
            .field("credentials", &"[REDACTED]")
            .finish()
    }
}

impl ForwardedCredentials {
    /// Reads the per-block headers. A block counts as forwarded only when all of its headers
    /// are present and non-blank (the 23blocks blocks need both `Authorization` and `AppId`).
    pub fn from_headers(headers: &HeaderMap, crm_header: &HeaderName) -> Self {
        let mut hasher = Sha256::new();
        let mut per_block = Vec::new();
        for (block, names) in FORWARDED_HEADERS {
            let mut sent = Vec::new();
            for (incoming, target) in names {
                let value = headers
                    .get(*incoming)
                    .and_then(|value| value.to_str().ok())
                    .map(str::trim)
                    .filter(|value| !value.is_empty());
                let target = match target {
                    Some(name) => HeaderName::from_static(name),
                    None => crm_header.clone(),
                };
                if let Some(value) = value {
                    sent.push((target, value));
                }
            }
            if sent.len() != names.len() {
                continue;
            }
            for (target, value) in &sent {
                // Length-prefixed parts, so no two credential sets hash alike by concatenation.
                for part in [block.label(), target.as_str(), *value] {
                    hasher.update((part.len() as u64).to_be_bytes());
                    hasher.update(part.as_bytes());
                }
            }
            let headers = sent
                .into_iter()
                .map(|(target, value)| (target, SecretString::from(value.to_owned())))
                .collect();
            per_block.push((block, BlockAuth::Verbatim(headers)));
        }
        let digest: KeyDigest = hasher.finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self {
            per_block,
            // The top bit keeps every fingerprint apart from the service tenant (0).
            fingerprint: u64::from_be_bytes(first) | (1 << 63),
        }
    }

    /// The credential for `block`, or [`BlockAuth::Missing`].
    pub fn auth_for(&self, block: BlockName) -> BlockAuth {
        self.per_block
            .iter()
            .find(|(forwarded, _)| *forwarded == block)
            .map(|(_, auth)| auth.clone())
            .unwrap_or(BlockAuth::Missing)
    }

    /// The cache partition of this caller: a fingerprint of everything forwarded.
    pub fn tenant(&self) -> u64 {
        self.fingerprint
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn hash_key_is_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn service_mode_needs_a_listed_key() {
        let callers = Callers::new(CallerSettings::service(&["k-one", "k-two"]));
        assert_eq!(callers.authenticate(&headers(&[])).err(), Some(CallerError::MissingKey));
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(callers.authenticate(&wrong).err(), Some(CallerError::WrongKey));
        let basic = headers(&[("authorization", "Basic k-two")]);
        assert_eq!(callers.authenticate(&basic).err(), Some(CallerError::MissingKey));
        let right = headers(&[("authorization", "bearer  k-two ")]);
        assert!(matches!(callers.authenticate(&right), Ok(Caller::Service)));
    }

    #[test]
    fn settings_parse_digests_and_name_bad_entries() {
        let good = hash_key("secret");
        let settings =
            CallerSettings::parse(Some(AuthMode::Service), Some(&format!(" {good} ,")), false).expect("valid");
        assert_eq!(settings.key_digests, vec![digest("secret")]);
        assert_eq!(
            CallerSettings::parse(None, Some(&format!("{good},xyz")), false).err(),
            Some(CallerConfigError::BadDigest(2))
        );
        assert_eq!(
            CallerSettings::parse(Some(AuthMode::Service), None, false).err(),
            Some(CallerConfigError::NoKeys)
        );
        assert_eq!(
            CallerSettings::parse(None, None, false).map(|s| s.mode),
            Ok(AuthMode::Open)
        );
        assert_eq!(
            CallerSettings::parse(None, Some(&good), false).map(|s| s.mode),
            Ok(AuthMode::Service)
        );
        assert_eq!(
            CallerSettings::parse(None, None, true).map(|s| s.mode),
            Ok(AuthMode::Open)
        );
        assert_eq!("nope".parse::<AuthMode>().err(), Some(CallerConfigError::UnknownMode));
        assert_eq!(" Forward ".parse::<AuthMode>(), Ok(AuthMode::Forward));
    }

    #[test]
    fn forwarded_credentials_need_every_header_of_a_block() {
        let sent = headers(&[
            ("x-sales-authorization", "Bearer s"),
            ("x-search-authorization", "Bearer only-half"),
            ("x-crm-authorization", "Api-Token c"),
        ]);
        let forwarded = ForwardedCredentials::from_headers(&sent, &HeaderName::from_static("x-api-key"));
        assert!(matches!(forwarded.auth_for(BlockName::Sales), BlockAuth::Missing));
        assert!(matches!(forwarded.auth_for(BlockName::Search), BlockAuth::Missing));
        match forwarded.auth_for(BlockName::Crm) {
            BlockAuth::Verbatim(headers) => assert_eq!(headers[0].0.as_str(), "x-api-key"),
            _ => panic!("the CRM credential was forwarded"),
        }
        assert!(!format!("{forwarded:?}").contains("Api-Token c"));
    }

    #[test]
    fn fingerprints_differ_per_credential_set_and_never_are_the_service_tenant() {
        let crm = HeaderName::from_static("authorization");
        let one = ForwardedCredentials::from_headers(&headers(&[("x-b2b-authorization", "Token a")]), &crm);
        let two = ForwardedCredentials::from_headers(&headers(&[("x-b2b-authorization", "Token b")]), &crm);
        let again = ForwardedCredentials::from_headers(&headers(&[("x-b2b-authorization", "Token a")]), &crm);
        assert_ne!(one.tenant(), two.tenant());
        assert_eq!(one.tenant(), again.tenant());
        assert_ne!(ForwardedCredentials::from_headers(&HeaderMap::new(), &crm).tenant(), 0);
    }
}
