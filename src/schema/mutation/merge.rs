//! `mergePersons`: duplicates folded into a primary CRM person, their identity links moved
//! onto it in the index; or, with `dryRun`, a preview of exactly that which writes nothing.
//!
//! What the CRM contract says a merge does, and so what the preview can tell: each duplicate
//! is marked inactive, its related records (deals, activities, tags) are re-parented onto
//! the primary, and the counts are reported; the primary's own fields are not changed. The
//! CRM refuses a merge whose primary it does not know (404) or whose duplicates are not
//! persons of the platform (400). The gateway then moves the duplicates' identity links.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Result, SimpleObject};
use futures::future::join_all;
use serde_json::Value;

use super::{
    link_identity::{move_merged_links, stuck_link},
    outcome::UserError,
    validate::Checks,
};
use crate::{
    cache::Record,
    link_index::{MergeReport, canonical_person_id},
    loaders::{PersonKey, Touched, forget},
    schema::{
        crm::Person,
        errors::{IntoGraphql, SchemaError, report},
        identity_links::link_index,
        load_one, loaders,
    },
};

/// Most duplicates one merge may carry.
pub const MAX_MERGE_DUPLICATES: usize = 50;

/// Duplicates to fold into a primary person.
#[derive(InputObject)]
pub struct MergePersonsInput {
    /// The surviving person (UUID).
    pub primary_id: ID,
    /// Persons to merge into the primary (1 to 50 UUIDs, without the primary, no repeats).
    pub duplicate_ids: Vec<ID>,
    /// True: only preview the merge. Nothing is written to the CRM or to the identity link
    /// index; the payload says what the merge would do and carries the `userErrors` that
    /// would stop it. A merge cannot be undone. Default false.
    pub dry_run: Option<bool>,
}

/// What `mergePersons` did or, in a dry run, would do.
#[derive(SimpleObject, Default)]
#[graphql(complex)]
pub struct MergePersonsPayload {
    /// The primary person. After a merge: read fresh from the CRM. In a dry run: the primary
    /// as the CRM holds it now, which is how it would look, since the CRM's merge changes
    /// none of the primary's own fields; not shown are the duplicates' deals, activities and
    /// tags it would gain, and the new `updatedAt`, which only the merge sets. Its
    /// `identity` is the one it would have once the links moved; its `mergedInto` is read
    /// as the index holds it now (a merge clears it for the primary).
    pub primary: Option<Person>,
    /// Persons the CRM marked inactive (in a dry run: would mark, every duplicate). Empty when
    /// a `userError` stops the merge.
    pub merged_ids: Vec<ID>,
    /// Per-relation counts (deals, activities, tags) re-parented onto the primary. Always
    /// null in a dry run: the CRM counts them only while merging.
    pub reparented: Option<Json<Value>>,
    /// `BAD_USER_INPUT` (the input; in a dry run also a duplicate the CRM does not know in
    /// this platform, which it would refuse), `NOT_FOUND` (no such primary);
    /// `ALREADY_LINKED_TO_OTHER_IDENTITY` for an identity link that cannot move to the
    /// primary because another identity holds it (the merge itself goes ahead).
    pub user_errors: Vec<UserError>,
    /// Whether this was a preview: true means nothing was written anywhere.
    pub dry_run: bool,
    /// What the merge did (in a dry run: would do) with the identity links of the merged
    /// persons in the gateway's identity link index, in the order of `duplicateIds`.
    pub link_changes: Vec<MergeLinkChange>,
}

#[ComplexObject]
impl MergePersonsPayload {
    /// The merged persons as they are after the merge (inactive, `mergedInto` the
    /// primary), read fresh, so that a client cache holding them updates from this answer.
    /// A person the CRM no longer holds is left out; one that could not be read is reported
    /// as an error beside the others. Empty in a dry run: nothing was merged.
    async fn merged(&self, ctx: &Context<'_>) -> Result<Vec<Person>> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        let loaders = loaders(ctx)?;
        let reads = self
            .merged_ids
            .iter()
            .map(|id| load_one(loaders, PersonKey(id.to_string())));
        let mut merged = Vec::with_capacity(self.merged_ids.len());
        for read in join_all(reads).await {
            match read {
                Ok(Some(record)) => merged.push(Person::new(record)),
                Ok(None) => {}
                Err(error) => report(ctx, SchemaError::Block(error)),
            }
        }
        Ok(merged)
    }
}

/// An identity link of a merged person, and what the merge does with it.
#[derive(SimpleObject, Debug, Clone)]
pub struct MergeLinkChange {
    /// The identity holding the link.
    pub identity_id: ID,
    /// The merged person the link held.
    pub person_id: ID,
    /// What happens to the link.
    pub outcome: MergeLinkOutcome,
}

/// What a merge does with an identity link of a merged person.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeLinkOutcome {
    /// Moved onto the primary: the identity's CRM person is now the primary.
    Moved,
    /// Removed: the same identity already holds the primary.
    Dropped,
    /// Left on the merged person, because another identity holds the primary (reported as
    /// `ALREADY_LINKED_TO_OTHER_IDENTITY` too); the merged person still leads to the primary
    /// through `mergedInto`.
    Kept,
}

/// The link changes of a merge report, in the order of `duplicates` (canonical ids).
fn link_changes(report: &MergeReport, duplicates: &[String]) -> Vec<MergeLinkChange> {
    let change = |link: &crate::link_index::Link, outcome| MergeLinkChange {
        identity_id: ID(link.identity_id.clone()),
        person_id: ID(link.external_id.clone()),
        outcome,
    };
    let mut changes: Vec<MergeLinkChange> = report
        .moved
        .iter()
        .map(|(held, _)| change(held, MergeLinkOutcome::Moved))
        .chain(
            report
                .dropped
                .iter()
                .map(|held| change(held, MergeLinkOutcome::Dropped)),
        )
        .chain(
            report
                .conflicts
                .iter()
                .map(|(held, _)| change(held, MergeLinkOutcome::Kept)),
        )
        .collect();
    changes.sort_by_key(|change| duplicates.iter().position(|id| *id == change.person_id.0));
    changes
}

/// Validates a merge: well-formed ids, at least one and at most 50 duplicates, no repeats,
/// the primary not among them.
fn validate_merge(input: &MergePersonsInput) -> Result<(String, Vec<String>), Vec<UserError>> {
    let mut checks = Checks::default();
    let primary = checks.uuid(&["input", "primaryId"], &input.primary_id);
    if input.duplicate_ids.is_empty() {
        checks.fail(UserError::bad_input(
            &["input", "duplicateIds"],
            "name at least one duplicate",
        ));
    }
    if input.duplicate_ids.len() > MAX_MERGE_DUPLICATES {
        checks.fail(UserError::bad_input(
            &["input", "duplicateIds"],
            format!("at most {MAX_MERGE_DUPLICATES} duplicates per merge"),
        ));
    }
    let mut duplicates: Vec<String> = Vec::new();
    for (index, id) in input.duplicate_ids.iter().enumerate().take(MAX_MERGE_DUPLICATES + 1) {
        let position = index.to_string();
        let field = ["input", "duplicateIds", position.as_str()];
        let Some(id) = checks.uuid(&field, id) else { continue };
        if primary.as_ref() == Some(&id) {
            checks.fail(UserError::bad_input(&field, "the primary cannot be merged into itself"));
        } else if duplicates.contains(&id) {
            checks.fail(UserError::bad_input(&field, format!("{id} is listed twice")));
        } else {
            duplicates.push(id);
        }
    }
    match primary {
        Some(primary) if checks.passed() => Ok((primary, duplicates)),
        _ => Err(checks.into_errors()),
    }
}

/// Runs `mergePersons`.
pub async fn merge_persons(ctx: &Context<'_>, input: MergePersonsInput) -> Result<MergePersonsPayload> {
    let dry_run = input.dry_run.unwrap_or(false);
    let (primary_id, duplicates) = match validate_merge(&input) {
        Ok(valid) => valid,
        Err(user_errors) => {
            return Ok(MergePersonsPayload {
                user_errors,
                dry_run,
                ..MergePersonsPayload::default()
            });
        }
    };
    if dry_run {
        return preview_merge(ctx, primary_id, duplicates).await;
    }
    let loaders = loaders(ctx)?;
    let crm = loaders.loader().clients().crm().gql()?;
    let merged = crm.merge_persons(&primary_id, &duplicates).await;
    for id in std::iter::once(&primary_id).chain(&duplicates) {
        forget(loaders, &Touched::Person { id: id.clone() });
    }
    let merged = match merged {
        Ok(merged) => merged,
        Err(error) => {
            let code = match error.status() {
                Some(400) => "BAD_USER_INPUT",
                Some(404) => "NOT_FOUND",
                _ => return Err(error).gql(),
            };
            let mut user_error = UserError::from_block(&error, &["input"]);
            user_error.code = code.to_owned();
            return Ok(MergePersonsPayload {
                user_errors: vec![user_error],
                ..MergePersonsPayload::default()
            });
        }
    };
    let merged_ids: Vec<String> = merged.merged_ids.iter().map(|id| canonical_person_id(id)).collect();
    let moved = move_merged_links(ctx, &primary_id, &merged_ids).await;
    // Fresh, not cached: the merge changed the primary's related records.
    let primary = crm.get_person(&primary_id).await.gql()?;
    if let Some(primary) = &primary {
        loaders
            .loader()
            .prime([(PersonKey(primary.id.clone()), Record::complete(primary.clone()))])
            .await;
    }
    Ok(MergePersonsPayload {
        primary: primary.map(|person| Person::new(Record::complete(person))),
        merged_ids: merged.merged_ids.into_iter().map(ID).collect(),
        reparented: merged.reparented.map(Json),
        user_errors: moved.conflicts.iter().map(stuck_link).collect(),
        dry_run: false,
        link_changes: link_changes(&moved, &merged_ids),
    })
}

/// The dry run: what the CRM would refuse, read from the CRM (fresh: a decision that cannot
/// be undone should not rest on cached records), and what the index would do with the links,
/// decided by the same rule as the merge. Nothing is written.
async fn preview_merge(ctx: &Context<'_>, primary_id: String, duplicates: Vec<String>) -> Result<MergePersonsPayload> {
    let loaders = loaders(ctx)?;
    let crm = loaders.loader().clients().crm().gql()?;
    let (primary, found) = futures::join!(
        crm.get_person(&primary_id),
        join_all(duplicates.iter().map(|id| crm.get_person(id)))
    );
    let primary = primary.gql()?;
    let mut user_errors = Vec::new();
    if primary.is_none() {
        user_errors.push(UserError::new(
            &["input", "primaryId"],
            "NOT_FOUND",
            format!("the CRM knows no person {primary_id}: the merge would be refused"),
        ));
    }
    for (index, (id, found)) in duplicates.iter().zip(found).enumerate() {
        if found.gql()?.is_none() {
            user_errors.push(UserError::bad_input(
                &["input", "duplicateIds", &index.to_string()],
                format!("the CRM knows no person {id} in this platform: the merge would be refused"),
            ));
        }
    }
    let primary = primary.map(Record::complete);
    if let Some(primary) = &primary {
        loaders
            .loader()
            .prime([(PersonKey(primary.data.id.clone()), primary.clone())])
            .await;
    }
    let (Some(primary), true) = (primary.clone(), user_errors.is_empty()) else {
        return Ok(MergePersonsPayload {
            primary: primary.map(Person::new),
            user_errors,
            dry_run: true,
            ..MergePersonsPayload::default()
        });
    };
    let merged: Vec<String> = duplicates.iter().map(|id| canonical_person_id(id)).collect();
    let plan = match link_index(ctx)?
        .plan_merge(&canonical_person_id(&primary_id), &merged)
        .await
    {
        Ok(plan) => plan,
        Err(error) => {
            report(ctx, SchemaError::LinkIndex(error.into()));
            MergeReport::default()
        }
    };
    // The identity the primary would be linked to: the one moving onto it, else as now.
    let primary = match plan.moved.first() {
        Some((_, moved)) => Person::with_linked_identity(primary, Some(moved.identity_id.clone())),
        None => Person::new(primary),
    };
    Ok(MergePersonsPayload {
        primary: Some(primary),
        merged_ids: duplicates.into_iter().map(ID).collect(),
        reparented: None,
        user_errors: plan.conflicts.iter().map(stuck_link).collect(),
        dry_run: true,
        link_changes: link_changes(&plan, &merged),
    })
}
