//! Trusted-document manifests: a JSON object mapping the SHA-256 hex digest of each
//! document's exact text to that text. It is the `persisted-documents.json` shape GraphQL
//! Code Generator's client preset writes (with `hashAlgorithm: "sha256"`), and what
//! `blocks-gateway trusted-documents DIR` prints for a directory of `.graphql` files.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    path::Path,
    sync::Arc,
};

use async_graphql::parser::parse_query;
use sha2::{Digest, Sha256};

use super::{TrustedDocumentsError, validate::validation_errors};

/// The allow-list: documents by the SHA-256 of their text.
#[derive(Clone)]
pub struct TrustedDocuments {
    documents: HashMap<String, Arc<str>>,
}

impl fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedDocuments")
            .field("documents", &self.documents.len())
            .finish()
    }
}

impl TrustedDocuments {
    /// Reads a manifest file; every key must be its document's hash and every document
    /// must parse, so a corrupt manifest stops start-up instead of refusing callers later.
    pub fn load(path: &Path) -> Result<Self, TrustedDocumentsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TrustedDocumentsError::Read {
            path: shown.clone(),
            source,
        })?;
        let manifest: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|error| TrustedDocumentsError::NotAManifest {
                path: shown.clone(),
                reason: error.to_string(),
            })?;
        if manifest.is_empty() {
            return Err(TrustedDocumentsError::Empty { path: shown });
        }
        Self::from_manifest(manifest)
    }

    /// The allow-list of a manifest already in memory (checked like [`Self::load`]).
    pub fn from_manifest(manifest: BTreeMap<String, String>) -> Result<Self, TrustedDocumentsError> {
        let mut documents = HashMap::with_capacity(manifest.len());
        for (key, document) in manifest {
            if sha256_hex(&document) != key {
                return Err(TrustedDocumentsError::HashMismatch { key });
            }
            if let Err(error) = parse_query(&document) {
                return Err(TrustedDocumentsError::InvalidDocument {
                    name: key,
                    problems: error.to_string(),
                });
            }
            documents.insert(key, Arc::from(document));
        }
        Ok(Self { documents })
    }

    /// The document with this hash (lower-case hex), if it is allowed.
    pub fn document(&self, hash: &str) -> Option<&Arc<str>> {
        self.documents.get(hash)
    }

    /// Whether the document with this hash is allowed.
    pub fn contains(&self, hash: &str) -> bool {
        self.documents.contains_key(hash)
    }

    /// How many documents are allowed.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether nothing is allowed (never true for a loaded manifest).
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

/// The lower-case hex SHA-256 of a document's exact text: what clients send as
/// `extensions.persistedQuery.sha256Hash`.
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The manifest of every `*.graphql` file directly in `dir`, one document per file (an
/// operation with its fragments), keyed by hash. Each must validate against the schema.
pub async fn manifest_from_dir(dir: &Path) -> Result<BTreeMap<String, String>, TrustedDocumentsError> {
    let read_error = |source| TrustedDocumentsError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?
        .into_iter()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "graphql"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TrustedDocumentsError::Empty {
            path: dir.display().to_string(),
        });
    }
    let mut manifest = BTreeMap::new();
    for file in files {
        let name = file.display().to_string();
        let document = std::fs::read_to_string(&file).map_err(|source| TrustedDocumentsError::Read {
            path: name.clone(),
            source,
        })?;
        let problems = validation_errors(&document, None).await.join("; ");
        if !problems.is_empty() {
            return Err(TrustedDocumentsError::InvalidDocument { name, problems });
        }
        manifest.insert(sha256_hex(&document), document);
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_key_must_be_the_hash_of_its_document() {
        let document = "{ persons { totalCount } }".to_owned();
        let good = BTreeMap::from([(sha256_hex(&document), document.clone())]);
        let trusted = TrustedDocuments::from_manifest(good).expect("valid manifest");
        assert!(trusted.contains(&sha256_hex(&document)));
        let bad = BTreeMap::from([("0".repeat(64), document)]);
        assert!(matches!(
            TrustedDocuments::from_manifest(bad),
            Err(TrustedDocumentsError::HashMismatch { .. })
        ));
    }

    #[test]
    fn a_manifest_document_must_parse() {
        let document = "{ persons {".to_owned();
        let manifest = BTreeMap::from([(sha256_hex(&document), document)]);
        assert!(matches!(
            TrustedDocuments::from_manifest(manifest),
            Err(TrustedDocumentsError::InvalidDocument { .. })
        ));
    }

    #[test]
    fn the_hash_is_lower_case_hex_sha256() {
        // SHA-256 of the empty string.
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
