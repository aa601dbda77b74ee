//! Export and import of the whole index as JSON lines: one object per line, tagged by
//! `kind` (`identity`, `link`, `merge`), in a stable order (emails by identity, links by
//! identity, block and external id, merges by person), timestamps in RFC 3339 UTC with
//! microseconds. Exporting, importing into an empty index and exporting again gives the
//! same bytes, whichever backend holds either index.

use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Link, LinkError, LinkIndex, normalize_email,
    store::{Contents, EmailRecord, MergeRecord},
};

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", rename_all_fields = "camelCase")]
enum Line {
    /// The email an identity was registered or linked with.
    Identity { identity_id: String, email: String },
    /// A link.
    Link {
        identity_id: String,
        block: String,
        external_id: String,
        source: String,
        created_at: String,
    },
    /// A merged person and its survivor.
    Merge {
        person_id: String,
        survivor_id: String,
        merged_at: String,
    },
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Identity emails written.
    pub emails: usize,
    /// Merge records written.
    pub merges: usize,
    /// Links written.
    pub added: usize,
    /// Links the index already held for the same identity.
    pub kept: usize,
    /// Links refused because another identity holds the record: (refused, holder).
    pub conflicts: Vec<(Link, Link)>,
}

fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_timestamp(text: &str, line: usize) -> Result<DateTime<Utc>, LinkError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| LinkError::Import {
            line,
            reason: format!("{text:?} is not an RFC 3339 timestamp"),
        })
}

fn required(text: String, field: &str, line: usize) -> Result<String, LinkError> {
    if text.trim().is_empty() {
        return Err(LinkError::Import {
            line,
            reason: format!("`{field}` is blank"),
        });
    }
    Ok(text)
}

impl LinkIndex {
    /// Writes the whole index to `out` as JSON lines; returns the number of lines.
    pub async fn export(&self, out: &mut impl Write) -> Result<usize, LinkError> {
        let contents = self.contents().await?;
        let emails = contents.emails.into_iter().map(|record| Line::Identity {
            identity_id: record.identity_id,
            email: record.email,
        });
        let links = contents.links.into_iter().map(|link| Line::Link {
            identity_id: link.identity_id,
            block: link.block.as_str().to_owned(),
            external_id: link.external_id,
            source: link.source.as_str().to_owned(),
            created_at: timestamp(&link.created_at),
        });
        let merges = contents.merges.into_iter().map(|record| Line::Merge {
            person_id: record.person_id,
            survivor_id: record.survivor_id,
            merged_at: timestamp(&record.merged_at),
        });
        let mut count = 0;
        for line in emails.chain(links).chain(merges) {
            // Serialized first, so a failed write reaches the caller as the I/O error it is.
            let mut text = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
            text.push(b'\n');
            out.write_all(&text)?;
            count += 1;
        }
        out.flush()?;
        Ok(count)
    }

    /// Reads JSON lines written by [`LinkIndex::export`] and writes them in one transaction
    /// (a bad line imports nothing and names its number). Links keep their own source and
    /// time; one whose record another identity holds is refused and reported. With
    /// `replace`, the index is emptied first (restoring a backup).
    pub async fn import(&self, input: impl BufRead, replace: bool) -> Result<ImportReport, LinkError> {
        let contents = parse_lines(input)?;
        let written = self.write_contents(&contents, replace).await?;
        Ok(ImportReport {
            emails: contents.emails.len(),
            merges: contents.merges.len(),
            added: written.added,
            kept: written.kept,
            conflicts: written.conflicts,
        })
    }
}

fn parse_lines(input: impl BufRead) -> Result<Contents, LinkError> {
    let mut contents = Contents::default();
    for (number, text) in input.lines().enumerate() {
        let line = number + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&text).map_err(|error| LinkError::Import {
            line,
            reason: error.to_string(),
        })?;
        match parsed {
            Line::Identity { identity_id, email } => contents.emails.push(EmailRecord {
                identity_id: required(identity_id, "identityId", line)?,
                email: required(normalize_email(&email), "email", line)?,
            }),
            Line::Link {
                identity_id,
                block,
                external_id,
                source,
                created_at,
            } => contents.links.push(Link {
                identity_id: required(identity_id, "identityId", line)?,
                block: block.parse().map_err(|error: LinkError| LinkError::Import {
                    line,
                    reason: error.to_string(),
                })?,
                external_id: required(external_id, "externalId", line)?,
                source: source.parse().map_err(|error: LinkError| LinkError::Import {
                    line,
                    reason: error.to_string(),
                })?,
                created_at: parse_timestamp(&created_at, line)?,
            }),
            Line::Merge {
                person_id,
                survivor_id,
                merged_at,
            } => contents.merges.push(MergeRecord {
                person_id: required(person_id, "personId", line)?,
                survivor_id: required(survivor_id, "survivorId", line)?,
                merged_at: parse_timestamp(&merged_at, line)?,
            }),
        }
    }
    Ok(contents)
}
