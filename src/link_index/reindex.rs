//! `blocks-gateway reindex`: rebuilds the links the blocks can prove.
//!
//! The strategy, bounded by the blocks' list sizes (never one request per pair):
//! 1. **Emails.** Walk the Sales users list (the identity directory) and read the Assets
//!    users list once: every identity id with its email. Emails are recorded for identities
//!    the index has none for (an email it already holds is kept).
//! 2. **CRM.** Walk the CRM persons list; a person with a non-blank `unique_id` proves the
//!    link (identity = that id, person). A person the index knows was merged links its
//!    survivor instead. Resumable: the last completed page is kept in the index's metadata.
//! 3. **Search emails.** Identities linked but still without an email (known only to
//!    Search) are read from Search one by one, `concurrency` at a time.
//! 4. **B2B.** Walk the B2B users list; a user whose email (case-insensitive) belongs to
//!    exactly one identity (emails from steps 1-3 and the index) proves the link. An email
//!    shared by several identities proves nothing and is reported. Every user's email goes
//!    into the B2B email lookup. Resumable like step 2.
//! 5. **Sales entities.** Walk the Sales entities list and record each entity's page in
//!    the entity lookup (Sales reads no entity by id).
//!
//! Every link goes through [`LinkIndex::add`]: new ones are added, existing ones kept, a
//! record another identity holds is reported as a conflict and never overwritten. Pages
//! are fetched `concurrency` at a time and applied in order. A block that fails, or a list
//! that has not ended after `MAX_WALK_PAGES` pages, stops the run; running it again resumes after the last completed page. A block that is not
//! configured is skipped (and reported).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    future::Future,
    marker::PhantomData,
    sync::Mutex,
};

use futures::{StreamExt, future::try_join_all, stream};
use indicatif::{ProgressBar, ProgressStyle};

use super::{
    AddOutcome, Link, LinkBlock, LinkError, LinkIndex, LinkSource, NewLink, canonical_person_id, normalize_email,
    store::EmailRecord,
};
use crate::blocks::{
    BlockClients, BlockError, BlockName, b2b::B2bUserFilter, crm::PersonFilter, sales::ENTITY_PAGE_SIZE,
    walk::MAX_WALK_PAGES, wire::Page,
};

/// Resume point of the CRM persons walk in the index's metadata.
const CRM_PROGRESS_KEY: &str = "reindex.crm_persons.page";
/// Resume point of the B2B users walk in the index's metadata.
const B2B_PROGRESS_KEY: &str = "reindex.b2b_users.page";

/// How to run a reindex.
#[derive(Debug, Clone, Copy)]
pub struct ReindexOptions {
    /// Records per list page.
    pub page_size: u32,
    /// Requests in flight at once (list pages or Search reads).
    pub concurrency: usize,
    /// Ignore the resume points of an interrupted run and start from the first pages.
    pub restart: bool,
}

impl Default for ReindexOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            concurrency: 4,
            restart: false,
        }
    }
}

/// Why a reindex stopped. Completed pages stay recorded: running again resumes.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// A block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] LinkError),
}

/// A link the blocks prove but the index cannot take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReindexConflict {
    /// Another identity already holds the record.
    Held {
        /// The identity the blocks name.
        claimed_by: String,
        /// The block of the record.
        block: LinkBlock,
        /// The record.
        external_id: String,
        /// The link holding it.
        held_by: Link,
    },
    /// A B2B user's email belongs to several identities.
    SharedEmail {
        /// The B2B user.
        b2b_user_id: i64,
        /// The identities with that email.
        identities: Vec<String>,
    },
}

impl fmt::Display for ReindexConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Held {
                claimed_by,
                block,
                external_id,
                held_by,
            } => write!(
                f,
                "{} {external_id}: the blocks name identity {claimed_by}, the index links it to {} ({}); kept",
                block.as_str(),
                held_by.identity_id,
                held_by.source.as_str(),
            ),
            Self::SharedEmail {
                b2b_user_id,
                identities,
            } => write!(
                f,
                "b2b {b2b_user_id}: its email belongs to several identities ({}); not linked",
                identities.join(", ")
            ),
        }
    }
}

/// What a reindex did.
#[derive(Debug, Clone, Default)]
pub struct ReindexReport {
    /// Links added.
    pub added: Vec<Link>,
    /// Links the index already held.
    pub kept: usize,
    /// Links the blocks prove that the index could not take.
    pub conflicts: Vec<ReindexConflict>,
    /// Identity emails recorded.
    pub emails_recorded: usize,
    /// Sales entity positions recorded in the entity lookup.
    pub entity_positions: usize,
    /// B2B user emails recorded in the email lookup.
    pub b2b_emails: usize,
    /// Blocks that are not configured, so their part was skipped.
    pub skipped: Vec<BlockName>,
}

impl ReindexReport {
    fn tally(&mut self, claimed_by: &str, block: LinkBlock, external_id: &str, outcome: AddOutcome) {
        match outcome {
            AddOutcome::Added(link) => self.added.push(link),
            AddOutcome::Kept(_) => self.kept += 1,
            AddOutcome::Conflict { held_by } => self.conflicts.push(ReindexConflict::Held {
                claimed_by: claimed_by.to_owned(),
                block,
                external_id: external_id.to_owned(),
                held_by,
            }),
        }
    }

    fn skip(&mut self, block: BlockName) {
        if !self.skipped.contains(&block) {
            self.skipped.push(block);
        }
    }
}

/// Where a reindex reports its progress (a terminal progress bar, or nothing).
pub trait ReindexProgress {
    /// A step begins; `total` is its length in `unit`s when known.
    fn start(&self, step: &'static str, unit: &'static str, total: Option<u64>);
    /// The length of the current step became known.
    fn set_total(&self, total: u64);
    /// `done` more units of the current step are complete.
    fn advance(&self, done: u64);
    /// The current step is complete.
    fn finish(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl ReindexProgress for NoProgress {
    fn start(&self, _: &'static str, _: &'static str, _: Option<u64>) {}
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// One progress bar per step on stderr (hidden when stderr is not a terminal).
#[derive(Default)]
pub struct ProgressBars {
    current: Mutex<Option<ProgressBar>>,
}

impl ProgressBars {
    fn with_bar(&self, act: impl FnOnce(&ProgressBar)) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref()
        {
            act(bar);
        }
    }
}

impl ReindexProgress for ProgressBars {
    fn start(&self, step: &'static str, unit: &'static str, total: Option<u64>) {
        let bar = ProgressBar::new(total.unwrap_or(0));
        let template = format!("{{prefix:>14}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{elapsed}})");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(step);
        if let Ok(mut current) = self.current.lock() {
            *current = Some(bar);
        }
    }

    fn set_total(&self, total: u64) {
        self.with_bar(|bar| bar.set_length(total));
    }

    fn advance(&self, done: u64) {
        self.with_bar(|bar| bar.inc(done));
    }

    fn finish(&self) {
        self.with_bar(ProgressBar::finish);
    }
}

/// Rebuilds the index from the blocks (see the module documentation for the strategy).
pub async fn reindex(
    clients: &BlockClients,
    index: &LinkIndex,
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
) -> Result<ReindexReport, ReindexError> {
    let options = ReindexOptions {
        page_size: options.page_size.clamp(1, 1000),
        concurrency: options.concurrency.max(1),
        ..options
    };
    if options.restart {
        index.set_meta(CRM_PROGRESS_KEY, None).await?;
        index.set_meta(B2B_PROGRESS_KEY, None).await?;
    }
    let mut report = ReindexReport::default();
    let directory = directory_emails(clients, options, progress, &mut report).await?;
    report.emails_recorded += index.fill_missing_emails(&directory).await?;
    link_crm_persons(clients, index, options, progress, &mut report).await?;
    let searched = search_emails(clients, index, options, progress, &mut report).await?;
    report.emails_recorded += index.fill_missing_emails(&searched).await?;
    let mut emails = index.emails().await?;
    emails.extend(directory);
    link_b2b_users(clients, index, &emails, options, progress, &mut report).await?;
    position_sales_entities(clients, index, options, progress, &mut report).await?;
    index.set_meta(CRM_PROGRESS_KEY, None).await?;
    index.set_meta(B2B_PROGRESS_KEY, None).await?;
    Ok(report)
}

/// Step 1: identity emails from the Sales directory and the Assets users list.
async fn directory_emails(
    clients: &BlockClients,
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
    report: &mut ReindexReport,
) -> Result<Vec<EmailRecord>, ReindexError> {
    let mut emails = Vec::new();
    let mut keep = |unique_id: Option<String>, email: Option<String>| {
        if let (Some(identity_id), Some(email)) = (non_blank(unique_id), non_blank(email)) {
            emails.push(EmailRecord { identity_id, email });
        }
    };
    match clients.sales() {
        Ok(sales) => {
            let mut walk = PageWalk::new(None, options, progress, (BlockName::Sales, "Sales users"), |page| {
                sales.list_users(page, options.page_size)
            });
            while let Some(users) = walk.next_items(None).await? {
                users.into_iter().for_each(|user| keep(user.unique_id, user.email));
            }
        }
        Err(_) => report.skip(BlockName::Sales),
    }
    match clients.assets() {
        Ok(assets) => {
            progress.start("Assets users", "lists", Some(1));
            assets
                .list_users()
                .await?
                .into_iter()
                .for_each(|user| keep(user.unique_id, user.email));
            progress.advance(1);
            progress.finish();
        }
        Err(_) => report.skip(BlockName::Assets),
    }
    Ok(emails)
}

/// Step 2: CRM persons with a non-blank `unique_id`.
async fn link_crm_persons(
    clients: &BlockClients,
    index: &LinkIndex,
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
    report: &mut ReindexReport,
) -> Result<(), ReindexError> {
    let Ok(crm) = clients.crm() else {
        report.skip(BlockName::Crm);
        return Ok(());
    };
    let filter = PersonFilter::default();
    let mut walk = PageWalk::new(
        Some(CRM_PROGRESS_KEY),
        options,
        progress,
        (BlockName::Crm, "CRM persons"),
        |page| crm.list_persons(&filter, page, options.page_size),
    );
    while let Some(persons) = walk.next_items(Some(index)).await? {
        let proven: Vec<(String, String)> = persons
            .into_iter()
            .filter_map(|person| Some((non_blank(person.unique_id)?, canonical_person_id(&person.id))))
            .collect();
        let person_ids: Vec<String> = proven.iter().map(|(_, person)| person.clone()).collect();
        let survivors: BTreeMap<String, String> = index
            .survivors_of(&person_ids)
            .await?
            .into_iter()
            .map(|merge| (merge.person_id, merge.survivor_id))
            .collect();
        for (identity_id, person_id) in proven {
            let person_id = survivors.get(&person_id).cloned().unwrap_or(person_id);
            let outcome = index
                .add(NewLink {
                    identity_id: &identity_id,
                    block: LinkBlock::Crm,
                    external_id: &person_id,
                    source: LinkSource::Reindex,
                    email: None,
                })
                .await?;
            report.tally(&identity_id, LinkBlock::Crm, &person_id, outcome);
        }
        walk.commit(index).await?;
    }
    Ok(())
}

/// Step 3: emails of linked identities only Search knows.
async fn search_emails(
    clients: &BlockClients,
    index: &LinkIndex,
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
    report: &mut ReindexReport,
) -> Result<Vec<EmailRecord>, ReindexError> {
    let Ok(search) = clients.search() else {
        report.skip(BlockName::Search);
        return Ok(Vec::new());
    };
    let missing = index.linked_identities_without_email().await?;
    progress.start("Search emails", "identities", Some(missing.len() as u64));
    let mut reads = stream::iter(missing)
        .map(|identity_id| async move {
            let found = search.get_identity(&identity_id).await?;
            Ok::<_, BlockError>((identity_id, found.and_then(|identity| identity.email)))
        })
        .buffer_unordered(options.concurrency);
    let mut emails = Vec::new();
    while let Some(read) = reads.next().await {
        let (identity_id, email) = read?;
        if let Some(email) = non_blank(email) {
            emails.push(EmailRecord { identity_id, email });
        }
        progress.advance(1);
    }
    progress.finish();
    emails.sort_by(|a, b| a.identity_id.cmp(&b.identity_id));
    Ok(emails)
}

/// Step 4: B2B users whose email belongs to exactly one identity.
async fn link_b2b_users(
    clients: &BlockClients,
    index: &LinkIndex,
    emails: &[EmailRecord],
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
    report: &mut ReindexReport,
) -> Result<(), ReindexError> {
    let Ok(b2b) = clients.b2b() else {
        report.skip(BlockName::B2b);
        return Ok(());
    };
    let mut owners: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for record in emails {
        owners
            .entry(normalize_email(&record.email))
            .or_default()
            .insert(&record.identity_id);
    }
    let filter = B2bUserFilter::default();
    let mut walk = PageWalk::new(
        Some(B2B_PROGRESS_KEY),
        options,
        progress,
        (BlockName::B2b, "B2B users"),
        |page| b2b.list_users(&filter, options.page_size, page),
    );
    while let Some(users) = walk.next_items(Some(index)).await? {
        let seen: Vec<(String, i64)> = users
            .iter()
            .filter_map(|user| Some((non_blank(user.email.clone())?, user.id)))
            .collect();
        index.record_b2b_emails(&seen).await?;
        report.b2b_emails += seen.len();
        for user in users {
            let Some(email) = non_blank(user.email) else { continue };
            let Some(identities) = owners.get(&normalize_email(&email)) else {
                continue;
            };
            let external_id = user.id.to_string();
            match identities.iter().collect::<Vec<_>>().as_slice() {
                [identity_id] => {
                    let outcome = index
                        .add(NewLink {
                            identity_id,
                            block: LinkBlock::B2b,
                            external_id: &external_id,
                            source: LinkSource::Reindex,
                            email: None,
                        })
                        .await?;
                    report.tally(identity_id, LinkBlock::B2b, &external_id, outcome);
                }
                several => report.conflicts.push(ReindexConflict::SharedEmail {
                    b2b_user_id: user.id,
                    identities: several.iter().map(|id| (**id).to_owned()).collect(),
                }),
            }
        }
        walk.commit(index).await?;
    }
    Ok(())
}

/// Step 5: every Sales entity's page, at the page size the entity lookup counts in.
async fn position_sales_entities(
    clients: &BlockClients,
    index: &LinkIndex,
    options: ReindexOptions,
    progress: &dyn ReindexProgress,
    report: &mut ReindexReport,
) -> Result<(), ReindexError> {
    let Ok(sales) = clients.sales() else {
        report.skip(BlockName::Sales);
        return Ok(());
    };
    let options = ReindexOptions {
        page_size: ENTITY_PAGE_SIZE,
        ..options
    };
    let mut walk = PageWalk::new(None, options, progress, (BlockName::Sales, "Sales entities"), |page| {
        sales.list_entities(page, ENTITY_PAGE_SIZE)
    });
    let mut page = 0;
    let mut listed = 0;
    while let Some(entities) = walk.next_items(None).await? {
        page += 1;
        listed += entities.len() as u64;
        let positions: Vec<(String, u32)> = entities
            .into_iter()
            .filter_map(|entity| Some((non_blank(entity.unique_id)?, page)))
            .collect();
        index.record_entity_positions(&positions, ENTITY_PAGE_SIZE).await?;
        report.entity_positions += positions.len();
    }
    index.record_entity_list_total(listed).await?;
    Ok(())
}

fn non_blank(text: Option<String>) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A walk over a paginated list: pages fetched `concurrency` at a time once the length is
/// known (one at a time before), items handed out in page order, and, when it has a
/// resume key, the last completed page kept in the index's metadata (`size:page`).
struct PageWalk<'a, T, F> {
    resume_key: Option<&'static str>,
    options: ReindexOptions,
    progress: &'a dyn ReindexProgress,
    /// The block walked, for errors.
    block: BlockName,
    step: &'static str,
    fetch: F,
    /// The next page to fetch; `None` before the walk started.
    next: Option<u32>,
    /// The last page, once a block reported the total.
    last: Option<u32>,
    /// Whether the last window reached the end of the list.
    ended: bool,
    /// Pages handed out but not committed: (last page of the window, items left).
    window: Option<(u32, std::vec::IntoIter<Vec<T>>)>,
    _items: PhantomData<fn() -> T>,
}

impl<'a, T, F, Fut> PageWalk<'a, T, F>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Result<Page<T>, BlockError>>,
{
    fn new(
        resume_key: Option<&'static str>,
        options: ReindexOptions,
        progress: &'a dyn ReindexProgress,
        (block, step): (BlockName, &'static str),
        fetch: F,
    ) -> Self {
        Self {
            resume_key,
            options,
            progress,
            block,
            step,
            fetch,
            next: None,
            last: None,
            ended: false,
            window: None,
            _items: PhantomData,
        }
    }

    /// The page to start from: after the recorded one, when the page size matches.
    async fn first_page(&self, index: Option<&LinkIndex>) -> Result<u32, ReindexError> {
        let (Some(key), Some(index)) = (self.resume_key, index) else {
            return Ok(1);
        };
        let recorded = index.meta(key).await?;
        let resumed = recorded.as_deref().and_then(|value| {
            let (size, page) = value.split_once(':')?;
            (size.parse::<u32>().ok()? == self.options.page_size).then(|| page.parse::<u32>().ok())?
        });
        Ok(resumed.map_or(1, |page| page.saturating_add(1)))
    }

    /// The items of the next page, or `None` at the end of the list. Call
    /// [`PageWalk::commit`] after each window's pages are applied to record progress.
    async fn next_items(&mut self, index: Option<&LinkIndex>) -> Result<Option<Vec<T>>, ReindexError> {
        loop {
            if let Some((_, pages)) = &mut self.window
                && let Some(items) = pages.next()
            {
                return Ok(Some(items));
            }
            if self.window.is_some() {
                // A window without a resume key needs no commit.
                self.window = None;
            }
            if self.ended {
                self.progress.finish();
                return Ok(None);
            }
            self.fetch_window(index).await?;
        }
    }

    async fn fetch_window(&mut self, index: Option<&LinkIndex>) -> Result<(), ReindexError> {
        let first = match self.next {
            Some(next) => next,
            None => {
                let first = self.first_page(index).await?;
                let recorded = u64::from(first.saturating_sub(1));
                self.progress.start(self.step, "pages", None);
                self.progress.advance(recorded);
                first
            }
        };
        let width = u32::try_from(self.options.concurrency).unwrap_or(u32::MAX);
        let end = match self.last {
            Some(last) => last.min(first.saturating_add(width - 1)),
            None => first,
        };
        if first > MAX_WALK_PAGES {
            return Err(BlockError::ListDidNotEnd {
                block: self.block,
                list: self.step,
                pages: MAX_WALK_PAGES,
            }
            .into());
        }
        if first > end {
            self.ended = true;
            self.window = Some((end, Vec::new().into_iter()));
            return Ok(());
        }
        let pages = try_join_all((first..=end).map(|page| self.fetch_page(page))).await?;
        let mut items = Vec::with_capacity(pages.len());
        let mut more = true;
        for page in pages {
            let Some(page) = page else {
                more = false;
                break;
            };
            if let (None, Some(total)) = (self.last, page.total) {
                let last = u32::try_from(total.div_ceil(u64::from(self.options.page_size))).unwrap_or(u32::MAX);
                self.last = Some(last);
                self.progress.set_total(u64::from(last));
            }
            let full = page.items.len() >= self.options.page_size as usize;
            more = !page.items.is_empty() && page.has_next.unwrap_or(full);
            items.push(page.items);
            if !more {
                break;
            }
        }
        self.progress.advance(u64::from(end - first + 1));
        self.ended = !more || self.last.is_some_and(|last| end >= last);
        self.next = Some(end + 1);
        self.window = Some((end, items.into_iter()));
        Ok(())
    }

    /// A page, or `None` past the end (a DRF list answers 404 for a page beyond it).
    async fn fetch_page(&self, page: u32) -> Result<Option<Page<T>>, BlockError> {
        match (self.fetch)(page).await {
            Ok(found) => Ok(Some(found)),
            Err(error) if page > 1 && error.status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records the current window as completed (when the walk has a resume key).
    async fn commit(&mut self, index: &LinkIndex) -> Result<(), ReindexError> {
        let Some((end, pages)) = &self.window else {
            return Ok(());
        };
        if pages.len() > 0 {
            return Ok(());
        }
        if let Some(key) = self.resume_key {
            let value = format!("{}:{end}", self.options.page_size);
            index.set_meta(key, Some(&value)).await?;
        }
        Ok(())
    }
}
