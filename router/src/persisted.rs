//! Stage 0: the query text of a request, which may name a persisted query instead of sending it.
//!
//! - **Automatic persisted queries** (APQ, Apollo's protocol): `extensions.persistedQuery =
//!   {version: 1, sha256Hash}`. With the query too, the hash must be the query's SHA-256
//!   (`PERSISTED_QUERY_HASH_MISMATCH`) and the pair is remembered in a bounded LRU cache; with the
//!   hash alone, a remembered query runs, and an unknown hash gets `PERSISTED_QUERY_NOT_FOUND` so the
//!   client sends the query with it.
//! - **Persisted documents**: a [`Manifest`] (Apollo's persisted query manifest format) the
//!   frontend's build wrote; `documentId` (or an APQ hash) is looked up in it
//!   (`PERSISTED_QUERY_NOT_IN_LIST`). The file is re-read when it changes ([`Persisted::reload`]).
//! - **Safelist**: with one, a query whose text is not in the manifest does not run
//!   (`QUERY_NOT_IN_SAFELIST`), however it arrived.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, RwLock},
};

use anyhow::Context as _;
use axum::http::StatusCode;
use moka::{policy::EvictionPolicy, sync::Cache};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Code, RequestError};

/// The `format` of an Apollo persisted query manifest.
pub const MANIFEST_FORMAT: &str = "apollo-persisted-query-manifest";

/// A persisted query manifest: each operation's id and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub format: String,
    pub version: u32,
    pub operations: Vec<ManifestOperation>,
}

/// One operation of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOperation {
    /// The SHA-256 of `body`, in lowercase hex (other tools' manifests may use other ids).
    pub id: String,
    pub name: String,
    /// `query`, `mutation` or `subscription`.
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
}

/// The SHA-256 of `text`, in lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

/// A loaded manifest: texts by id, and the set of texts (the safelist).
#[derive(Debug, Default)]
pub struct Manifest {
    by_id: HashMap<String, Arc<str>>,
    texts: HashSet<Arc<str>>,
}

impl Manifest {
    /// Reads a manifest from its JSON text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: ManifestFile =
            serde_json::from_str(text).context("not a persisted query manifest")?;
        anyhow::ensure!(
            file.format == MANIFEST_FORMAT,
            "`format` is {:?}, not {MANIFEST_FORMAT:?}",
            file.format
        );
        anyhow::ensure!(
            file.version == 1,
            "`version` is {}; only version 1 is known",
            file.version
        );
        let mut manifest = Manifest::default();
        for operation in file.operations {
            let body: Arc<str> = operation.body.into();
            if let Some(other) = manifest.by_id.insert(operation.id.clone(), body.clone()) {
                anyhow::ensure!(
                    other == body,
                    "the id {} is given to two different operations",
                    operation.id
                );
            }
            manifest.texts.insert(body);
        }
        Ok(manifest)
    }

    /// How many operations it holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Where the manifest comes from, and what was last read.
struct ManifestSource {
    path: PathBuf,
    /// The SHA-256 of the text last read (or why it could not be read), to notice a change.
    seen: String,
    manifest: Arc<Manifest>,
}

/// Settings of [`Persisted`].
#[derive(Debug, Clone, Default)]
pub struct PersistedSettings {
    /// The APQ cache's size in bytes of query text (0: APQ off).
    pub apq_cache_bytes: u64,
    /// A manifest file of persisted documents.
    pub manifest: Option<PathBuf>,
    /// Run only operations whose text is in the manifest.
    pub safelist: bool,
}

/// The APQ cache, the manifest and the safelist switch.
pub struct Persisted {
    apq: Option<Cache<String, Arc<str>>>,
    manifest: Option<RwLock<ManifestSource>>,
    safelist: bool,
}

/// A request's query text: the client's own, or a stored one (shared, not copied per request).
#[derive(Debug, Clone)]
pub enum QueryText<'r> {
    Sent(&'r str),
    Stored(Arc<str>),
}

impl std::ops::Deref for QueryText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            QueryText::Sent(text) => text,
            QueryText::Stored(text) => text,
        }
    }
}

impl PartialEq<&str> for QueryText<'_> {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl Persisted {
    /// Persisted queries as `settings` say; reads the manifest, whose errors are the caller's.
    pub fn new(settings: &PersistedSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.safelist || settings.manifest.is_some(),
            "a safelist needs a manifest of persisted documents"
        );
        let apq = (settings.apq_cache_bytes > 0).then(|| {
            Cache::builder()
                .eviction_policy(EvictionPolicy::lru())
                .weigher(|hash: &String, text: &Arc<str>| {
                    u32::try_from(hash.len() + text.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(settings.apq_cache_bytes)
                .build()
        });
        let manifest = match &settings.manifest {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("--persisted-documents: cannot read {}", path.display())
                })?;
                let manifest = Manifest::parse(&text)
                    .with_context(|| format!("--persisted-documents {}", path.display()))?;
                let seen = sha256_hex(&text);
                tracing::info!(path = %path.display(), operations = manifest.len(), "persisted documents loaded");
                Some(RwLock::new(ManifestSource {
                    path: path.clone(),
                    seen,
                    manifest: Arc::new(manifest),
                }))
            }
        };
        Ok(Persisted {
            apq,
            manifest,
            safelist: settings.safelist,
        })
    }

    /// Whether a manifest file is being served (and should be watched).
    pub fn watches_a_file(&self) -> bool {
        self.manifest.is_some()
    }

    fn manifest(&self) -> Option<Arc<Manifest>> {
        self.manifest.as_ref().map(|source| {
            source
                .read()
                .expect("the manifest lock is never poisoned")
                .manifest
                .clone()
        })
    }

    /// Re-reads the manifest file if its content changed since it was last read; a file that does
    /// not read or parse leaves the current manifest in service, and the error is returned (to be
    /// logged; once per change, not on every poll). `Ok(true)` when a new manifest is in service.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let Some(source) = &self.manifest else {
            return Ok(false);
        };
        let path = source
            .read()
            .expect("the manifest lock is never poisoned")
            .path
            .clone();
        let text = std::fs::read_to_string(&path);
        let seen = match &text {
            Ok(text) => sha256_hex(text),
            Err(error) => format!("unreadable: {error}"),
        };
        {
            let mut source = source.write().expect("the manifest lock is never poisoned");
            if source.seen == seen {
                return Ok(false);
            }
            source.seen = seen;
        }
        let text = text.with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::parse(&text).with_context(|| path.display().to_string())?;
        source
            .write()
            .expect("the manifest lock is never poisoned")
            .manifest = Arc::new(manifest);
        Ok(true)
    }

    /// The query text `query`, `document_id` and `extensions` stand for, or why there is none.
    pub fn resolve<'r>(
        &self,
        query: Option<&'r str>,
        document_id: Option<&str>,
        extensions: &Map<String, Value>,
    ) -> Result<QueryText<'r>, RequestError> {
        let hash = apq_hash(extensions)?;
        let manifest = self.manifest();
        let text: QueryText<'r> = match (query, document_id, hash) {
            (Some(_), Some(_), _) | (None, Some(_), Some(_)) => {
                return Err(bad(
                    "send either a query or a documentId (a persisted document), not both",
                ))
            }
            (None, Some(id), None) => {
                let Some(manifest) = &manifest else {
                    return Err(not_supported(
                        "this router keeps no persisted documents; send the query",
                    ));
                };
                let id = id.strip_prefix("sha256:").unwrap_or(id);
                // SHA-256 ids are hex, which is case-insensitive; the manifest's are lowercase.
                let lower = id.to_ascii_lowercase();
                match manifest
                    .by_id
                    .get(id)
                    .or_else(|| manifest.by_id.get(&lower))
                {
                    Some(text) => return Ok(QueryText::Stored(text.clone())),
                    None => return Err(not_in_list(id)),
                }
            }
            (Some(query), None, Some(hash)) => {
                if sha256_hex(query) != hash {
                    return Err(RequestError::new(
                        StatusCode::BAD_REQUEST,
                        Code::PersistedQueryHashMismatch,
                        "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
                    ));
                }
                let listed = manifest.as_ref().is_some_and(|m| m.texts.contains(query));
                if let Some(apq) = &self.apq {
                    // A safelisted router remembers only what it would run.
                    if !self.safelist || listed {
                        apq.insert(hash, Arc::from(query));
                    }
                }
                QueryText::Sent(query)
            }
            (None, None, Some(hash)) => {
                if let Some(text) = manifest.as_ref().and_then(|m| m.by_id.get(&hash)) {
                    return Ok(QueryText::Stored(text.clone()));
                }
                if self.safelist {
                    return Err(not_in_list(&hash));
                }
                return match &self.apq {
                    Some(apq) => match apq.get(&hash) {
                        Some(text) => Ok(QueryText::Stored(text.clone())),
                        None => Err(RequestError::new(
                            StatusCode::OK,
                            Code::PersistedQueryNotFound,
                            "PersistedQueryNotFound",
                        )),
                    },
                    None if manifest.is_some() => Err(not_in_list(&hash)),
                    None => Err(not_supported(
                        "automatic persisted queries are off on this router; send the query",
                    )),
                };
            }
            (Some(query), None, None) => QueryText::Sent(query),
            (None, None, None) => return Err(bad("the request has no query")),
        };
        if self.safelist && !manifest.is_some_and(|m| m.texts.contains(&*text)) {
            return Err(RequestError::new(
                StatusCode::FORBIDDEN,
                Code::QueryNotInSafelist,
                "this router runs only the operations in its safelist, and this one is not there",
            ));
        }
        Ok(text)
    }

    /// The number of queries in the APQ cache (after pending evictions).
    pub fn apq_entries(&self) -> u64 {
        self.apq.as_ref().map_or(0, |apq| {
            apq.run_pending_tasks();
            apq.entry_count()
        })
    }

    /// The APQ cache's weight, in bytes of hashes and query text.
    pub fn apq_bytes(&self) -> u64 {
        self.apq.as_ref().map_or(0, |apq| {
            apq.run_pending_tasks();
            apq.weighted_size()
        })
    }
}

/// `extensions.persistedQuery`'s hash, lowercase, if the request has one.
fn apq_hash(extensions: &Map<String, Value>) -> Result<Option<String>, RequestError> {
    let Some(persisted) = extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let Some(persisted) = persisted.as_object() else {
        return Err(bad(
            "extensions.persistedQuery must be an object {version: 1, sha256Hash}",
        ));
    };
    match persisted.get("version").and_then(Value::as_i64) {
        Some(1) => {}
        Some(version) => {
            return Err(not_supported(format!(
                "persisted query version {version} is not supported; use version 1"
            )))
        }
        None => {
            return Err(bad(
                "extensions.persistedQuery.version must be the number 1",
            ))
        }
    }
    match persisted.get("sha256Hash").and_then(Value::as_str) {
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => Err(bad(
            "extensions.persistedQuery.sha256Hash must be a SHA-256 in hex (64 characters)",
        )),
    }
}

fn bad(message: impl Into<String>) -> RequestError {
    RequestError::new(StatusCode::BAD_REQUEST, Code::BadRequest, message)
}

fn not_supported(message: impl Into<String>) -> RequestError {
    RequestError::new(
        StatusCode::BAD_REQUEST,
        Code::PersistedQueryNotSupported,
        message,
    )
}

fn not_in_list(id: &str) -> RequestError {
    RequestError::new(
        StatusCode::NOT_FOUND,
        Code::PersistedQueryNotInList,
        format!("no persisted document has the id {id}"),
    )
}
