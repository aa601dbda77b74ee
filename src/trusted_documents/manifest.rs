//! Trusted-document manifests: a JSON object mapping the SHA-256 hex digest of each
//! document's exact text to that text. It is the `persisted-documents.json` shape GraphQL
//! Code Generator's client preset writes (with `hashAlgorithm: "sha256"`; its keys carry
//! the `sha256:` prefix of the GraphQL-over-HTTP persisted-documents appendix), and what
//! `blocks-gateway trusted-documents DIR` prints for a directory of `.graphql` files (bare
//! hex). Keys and request hashes are read with or without the prefix, in any case.

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
            let hash = sha256_hex(&document);
            if document_hash(&key) != hash {
                return Err(TrustedDocumentsError::HashMismatch { key });
            }
            if let Err(error) = parse_query(&document) {
                return Err(TrustedDocumentsError::InvalidDocument {
                    name: key,
                    problems: error.to_string(),
                });
            }
            documents.insert(hash, Arc::from(document));
        }
        Ok(Self { documents })
    }

    /// The document with this hash (hex, `sha256:` prefix optional), if it is allowed.
    pub fn document(&self, hash: &str) -> Option<&Arc<str>> {
        self.documents.get(&document_hash(hash))
    }

    /// Whether the document with this hash (hex, `sha256:` prefix optional) is allowed.
    pub fn contains(&self, hash: &str) -> bool {
        self.documents.contains_key(&document_hash(hash))
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

/// A document hash as clients send it or manifests key it, in the form [`sha256_hex`]
/// gives: the `sha256:` prefix (any case) removed, lower case. Nothing else is changed, so
/// a value that is not a hash still matches no document.
pub fn document_hash(hash: &str) -> String {
    const PREFIX: &str = "sha256:";
    let hex = match hash.get(..PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(PREFIX) => &hash[PREFIX.len()..],
        _ => hash,
    };
    hex.to_ascii_lowercase()
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
    fn manifest_keys_may_carry_the_sha256_prefix_of_the_client_preset() {
        let document = "{ persons { totalCount } }".to_owned();
        let hex = sha256_hex(&document);
        for key in [format!("sha256:{hex}"), format!("SHA256:{}", hex.to_uppercase())] {
            let manifest = BTreeMap::from([(key.clone(), document.clone())]);
            let trusted = TrustedDocuments::from_manifest(manifest).expect("a prefixed key is a valid key");
            for asked in [hex.clone(), format!("sha256:{hex}"), hex.to_uppercase()] {
                assert_eq!(
                    trusted.document(&asked).map(|d| &**d),
                    Some(document.as_str()),
                    "{key} asked as {asked}"
                );
            }
        }
        // The prefix is the only thing removed: another prefix or a wrong digest still fails.
        for key in [
            format!("md5:{hex}"),
            format!("sha256:{}", "0".repeat(64)),
            format!("sha256: {hex}"),
        ] {
            let manifest = BTreeMap::from([(key.clone(), document.clone())]);
            assert!(
                matches!(
                    TrustedDocuments::from_manifest(manifest),
                    Err(TrustedDocumentsError::HashMismatch { .. })
                ),
                "{key}"
            );
        }
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
