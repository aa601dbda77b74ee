//! Reading a paged list to its end. Every walk over an upstream list goes through here: it
//! reads every page (a few at a time, in order) until the block says the list ended, or it
//! fails with an error that says what was not read. No walk stops early and answers part
//! of a list as if it were all of it.

use std::{future::Future, ops::ControlFlow};

use futures::{StreamExt, TryStreamExt, stream};

use super::{BlockError, BlockName, wire::Page};

/// Pages of one list a walk has in flight at once: a walk holds at most this many of its
/// block's request permits, so it cannot starve the other operations.
pub const WALK_CONCURRENCY: usize = 4;

/// Pages a walk reads before it decides that the block's list does not end (a block that
/// always answers "more"): 100,000 pages, ten million records at 100 a page. Reaching it
/// is an error ([`BlockError::ListDidNotEnd`]), never a shorter list.
pub const MAX_WALK_PAGES: u32 = 100_000;

/// One list of one block, read `page_size` records a page.
#[derive(Debug, Clone, Copy)]
pub struct ListWalk {
    /// The block that serves the list.
    pub block: BlockName,
    /// What the list is, for errors (`entities list`).
    pub list: &'static str,
    /// Records asked for per page.
    pub page_size: u32,
}

impl ListWalk {
    /// Reads the list from page 1 to its end, handing each page's items to `visit` in page
    /// order with the page number; `visit` may stop the walk early (a search that found
    /// what it looked for). Once a page tells the total, the following pages are fetched
    /// [`WALK_CONCURRENCY`] at a time; a page past the end that the block answers with 404
    /// (a DRF list) ends the list. Returns the number of pages read.
    pub async fn visit<T, F, Fut>(
        &self,
        fetch: F,
        mut visit: impl FnMut(u32, Vec<T>) -> ControlFlow<()>,
    ) -> Result<u32, BlockError>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<Page<T>, BlockError>>,
    {
        let mut next = 1u32;
        let mut last_known: Option<u32> = None;
        loop {
            let window_end = match last_known {
                Some(last) if last > next => last.min(next.saturating_add(WALK_CONCURRENCY as u32 - 1)),
                _ => next,
            };
            let pages: Vec<Option<Page<T>>> = stream::iter(next..=window_end)
                .map(|number| {
                    let page = fetch(number);
                    async move {
                        match page.await {
                            Ok(page) => Ok(Some(page)),
                            Err(error) if number > 1 && error.is_not_found() => Ok(None),
                            Err(error) => Err(error),
                        }
                    }
                })
                .buffered(WALK_CONCURRENCY)
                .try_collect()
                .await?;
            for (number, page) in (next..=window_end).zip(pages) {
                let Some(page) = page else {
                    return Ok(number - 1);
                };
                if last_known.is_none()
                    && let Some(total) = page.total
                {
                    let pages = total.div_ceil(u64::from(self.page_size.max(1))).max(1);
                    last_known = Some(u32::try_from(pages).unwrap_or(u32::MAX));
                }
                let more =
                    !page.items.is_empty() && page.has_next.unwrap_or(page.items.len() >= self.page_size as usize);
                if visit(number, page.items).is_break() || !more {
                    return Ok(number);
                }
            }
            if window_end >= MAX_WALK_PAGES {
                return Err(BlockError::ListDidNotEnd {
                    block: self.block,
                    list: self.list,
                    pages: window_end,
                });
            }
            next = window_end + 1;
        }
    }

    /// Every item of the list, with the page it was on.
    pub async fn read_all<T, F, Fut>(&self, fetch: F) -> Result<Vec<(u32, T)>, BlockError>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<Page<T>, BlockError>>,
    {
        let mut items = Vec::new();
        self.visit(fetch, |number, page| {
            items.extend(page.into_iter().map(|item| (number, item)));
            ControlFlow::Continue(())
        })
        .await?;
        Ok(items)
    }

    /// The first item `matches` accepts, reading no further than the page it is on; `None`
    /// after the whole list was read without one.
    pub async fn find<T, F, Fut>(
        &self,
        fetch: F,
        mut matches: impl FnMut(&T) -> bool,
    ) -> Result<Option<(u32, T)>, BlockError>
    where
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<Page<T>, BlockError>>,
    {
        let mut found = None;
        self.visit(fetch, |number, page| {
            match page.into_iter().find(|item| matches(item)) {
                Some(item) => {
                    found = Some((number, item));
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            }
        })
        .await?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    /// A list of `records` numbers served `size` a page, telling its total when `tells_total`.
    fn numbers(
        records: u32,
        size: u32,
        tells_total: bool,
        fetched: Arc<AtomicU32>,
    ) -> impl Fn(u32) -> std::future::Ready<Result<Page<u32>, BlockError>> {
        move |page| {
            fetched.fetch_add(1, Ordering::Relaxed);
            let start = (page - 1) * size;
            let items: Vec<u32> = (start..(start + size).min(records)).collect();
            std::future::ready(Ok(Page {
                has_next: Some(start + size < records),
                total: tells_total.then_some(u64::from(records)),
                items,
            }))
        }
    }

    fn walk(page_size: u32) -> ListWalk {
        ListWalk {
            block: BlockName::Sales,
            list: "entities list",
            page_size,
        }
    }

    #[tokio::test]
    async fn reads_every_page_past_any_former_cap() {
        for tells_total in [true, false] {
            let fetched = Arc::new(AtomicU32::new(0));
            let items = walk(100)
                .read_all(numbers(23_050, 100, tells_total, fetched.clone()))
                .await
                .unwrap();
            assert_eq!(items.len(), 23_050);
            assert_eq!(items.last(), Some(&(231, 23_049)));
            assert_eq!(fetched.load(Ordering::Relaxed), 231, "one request per page");
        }
    }

    #[tokio::test]
    async fn find_stops_at_the_page_it_found() {
        let fetched = Arc::new(AtomicU32::new(0));
        let found = walk(10)
            .find(numbers(1_000, 10, false, fetched.clone()), |n| *n == 35)
            .await
            .unwrap();
        assert_eq!(found, Some((4, 35)));
        assert_eq!(fetched.load(Ordering::Relaxed), 4);
        let missing = walk(10)
            .find(numbers(1_000, 10, true, fetched.clone()), |n| *n == 5_000)
            .await
            .unwrap();
        assert_eq!(missing, None);
    }

    #[tokio::test]
    async fn a_list_that_never_ends_is_an_error_not_a_shorter_list() {
        let endless = |page: u32| {
            std::future::ready(Ok::<_, BlockError>(Page {
                items: vec![page],
                total: None,
                has_next: Some(true),
            }))
        };
        let error = walk(1).read_all(endless).await.unwrap_err();
        assert!(
            matches!(
                error,
                BlockError::ListDidNotEnd {
                    pages: MAX_WALK_PAGES,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.code().as_str(), "INCOMPLETE");
        assert!(error.to_string().contains("entities list"), "{error}");
    }
}
