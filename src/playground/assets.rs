//! The playground's JavaScript, CSS, Monaco workers and icon font, built from pinned npm
//! packages by `clients/playground/build.mjs` and committed gzip-compressed in
//! `assets/playground/`: the binary carries them, so the page needs nothing from outside
//! the gateway. They are served under a path carrying a hash of all of them (`version`),
//! which is why a browser may cache them for good.

use std::{
    io::{self, Read},
    sync::LazyLock,
};

use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The file's name, as the page and the other files refer to it.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file, gzip-compressed.
    pub gzip: &'static [u8],
}

impl Asset {
    /// The file itself, for a client that does not accept gzip.
    pub fn decompressed(&self) -> io::Result<Vec<u8>> {
        let mut file = Vec::with_capacity(self.gzip.len() * 4);
        flate2::read::GzDecoder::new(self.gzip).read_to_end(&mut file)?;
        Ok(file)
    }
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            gzip: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/playground/", $name, ".gz")),
        }
    };
}

/// Every file the build writes (a test checks this is the whole directory).
pub const ASSETS: &[Asset] = &[
    asset!("playground.js", "text/javascript; charset=utf-8"),
    asset!("playground.css", "text/css; charset=utf-8"),
    asset!("editor.worker.js", "text/javascript; charset=utf-8"),
    asset!("json.worker.js", "text/javascript; charset=utf-8"),
    asset!("graphql.worker.js", "text/javascript; charset=utf-8"),
    asset!("THIRD_PARTY_LICENSES.txt", "text/plain; charset=utf-8"),
];

/// The first 16 hex digits of the SHA-256 over every asset's name and bytes: a new build
/// gets new URLs, so the long-lived cache never serves a stale file.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hash = Sha256::new();
        for asset in ASSETS {
            hash.update(asset.name.as_bytes());
            hash.update([0]);
            hash.update(asset.gzip);
        }
        hash.finalize()[..8].iter().map(|byte| format!("{byte:02x}")).collect()
    });
    &VERSION
}

/// The asset `name` of build `version`; `None` for an unknown file or another build's.
pub fn find(version: &str, name: &str) -> Option<&'static Asset> {
    if version != self::version() {
        return None;
    }
    ASSETS.iter().find(|asset| asset.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/playground");
        let mut committed: Vec<String> = std::fs::read_dir(dir)
            .expect("assets/playground")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        committed.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|asset| format!("{}.gz", asset.name)).collect();
        embedded.sort();
        assert_eq!(
            committed, embedded,
            "list new build outputs in playground::assets::ASSETS"
        );
    }

    #[test]
    fn every_asset_decompresses() {
        for asset in ASSETS {
            let file = asset.decompressed().expect(asset.name);
            assert!(file.len() > asset.gzip.len() / 2, "{}", asset.name);
        }
    }

    #[test]
    fn only_this_build_s_version_finds_an_asset() {
        assert_eq!(version().len(), 16);
        assert!(find(version(), "playground.js").is_some());
        assert!(find(version(), "missing.js").is_none());
        assert!(find("0000000000000000", "playground.js").is_none());
    }
}
