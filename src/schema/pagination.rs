//! Relay connections over the blocks' page-number pagination: opaque cursors, `first`
//! validated (never silently clamped), and the one or two upstream pages that cover the
//! requested window fetched concurrently. A failing page fails the connection rather than
//! returning fewer items.

use async_graphql::SimpleObject;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use std::{convert::Infallible, sync::Arc};

use async_graphql::{Context, dataloader::Loader};
use futures::future::join_all;

use super::{
    errors::{IntoGraphql, SchemaError},
    load_one, loaders,
};
use crate::{
    cache::Record,
    limits::MAX_FIRST,
    loaders::{BlockLoader, Loaded, Loaders, PageKey, RecordKey, RecordPage, remember},
};

/// A page of a list with Relay cursors (exposed as `IdentityConnection`,
/// `PersonConnection`, `OrganizationConnection`).
pub struct PagedConnection<N> {
    pub(super) edges: Vec<PagedEdge<N>>,
    pub(super) page_info: PageInfo,
    pub(super) total_count: Option<u64>,
}

impl<N> PagedConnection<Option<N>> {
    /// The page without the items that have no node (records the block sent without the key
    /// their type is cached by), and how many were left out. Cursors stay the positions in
    /// the block's list, and `pageInfo` spans the whole window read, so paging goes on past
    /// them.
    pub fn without_missing(self) -> (PagedConnection<N>, usize) {
        let read = self.edges.len();
        let edges: Vec<PagedEdge<N>> = self
            .edges
            .into_iter()
            .filter_map(|edge| {
                edge.node.map(|node| PagedEdge {
                    cursor: edge.cursor,
                    node,
                })
            })
            .collect();
        let left_out = read - edges.len();
        let page = PagedConnection {
            edges,
            page_info: self.page_info,
            total_count: self.total_count,
        };
        (page, left_out)
    }
}

/// One item of a page with its cursor.
pub struct PagedEdge<N> {
    pub(super) cursor: String,
    pub(super) node: N,
}

/// The GraphQL objects of one connection type: async-graphql needs a concrete type name
/// per node type, and each type gets its own description. Invoked beside each node type.
macro_rules! connection_objects {
    ($node:ty, $connection:literal, $edge:literal, $connection_doc:literal, $edge_doc:literal) => {
        #[doc = $connection_doc]
        #[async_graphql::Object(name = $connection)]
        impl $crate::schema::pagination::PagedConnection<$node> {
            /// The items of this page, each with its cursor.
            async fn edges(&self) -> &[$crate::schema::pagination::PagedEdge<$node>] {
                &self.edges
            }
            /// Where this page sits in the whole list.
            async fn page_info(&self) -> &$crate::schema::pagination::PageInfo {
                &self.page_info
            }
            /// Number of items across all pages, when the block reports it.
            async fn total_count(&self) -> Option<u64> {
                self.total_count
            }
        }

        #[doc = $edge_doc]
        #[async_graphql::Object(name = $edge)]
        impl $crate::schema::pagination::PagedEdge<$node> {
            /// Opaque cursor of this item; pass it as `after` to continue after it.
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            /// The item.
            async fn node(&self) -> &$node {
                &self.node
            }
        }
    };
}
pub(crate) use connection_objects;

/// Where a page sits in its list.
#[derive(SimpleObject, Debug, Clone, Default)]
pub struct PageInfo {
    /// Whether items follow this page.
    pub has_next_page: bool,
    /// Whether items precede this page.
    pub has_previous_page: bool,
    /// Cursor of the first item of this page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of this page.
    pub end_cursor: Option<String>,
}

/// The window of items a `first`/`after` pair asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index of the first item wanted.
    pub offset: u64,
    /// How many items are wanted.
    pub first: u32,
}

impl Window {
    /// Validates `first` and decodes `after` (cursors carry their connection's name).
    pub fn parse(connection: &'static str, first: i32, after: Option<&str>) -> Result<Self, SchemaError> {
        if !(0..=MAX_FIRST).contains(&first) {
            return Err(SchemaError::bad_input(format!(
                "`first` must be between 0 and {MAX_FIRST}, got {first}"
            )));
        }
        let offset = match after {
            None => 0,
            Some(cursor) => decode_cursor(connection, cursor)
                .ok_or_else(|| SchemaError::bad_input("`after` is not a cursor of this connection"))?
                .saturating_add(1),
        };
        Ok(Self {
            offset,
            first: first as u32,
        })
    }

    /// The upstream page size and the 1-based pages that cover the window.
    pub fn pages(&self) -> (u32, Vec<u32>) {
        let size = self.first.max(1);
        let start = self.offset / u64::from(size);
        let start_page = u32::try_from(start.saturating_add(1)).unwrap_or(u32::MAX);
        let aligned = self.offset.is_multiple_of(u64::from(size));
        let pages = if aligned || self.first == 0 {
            vec![start_page]
        } else {
            vec![start_page, start_page.saturating_add(1)]
        };
        (size, pages)
    }

    /// Where in the concatenated pages the window starts.
    pub fn skip(&self) -> usize {
        (self.offset % u64::from(self.first.max(1))) as usize
    }
}

/// Encodes the cursor of the item at `offset`.
pub fn encode_cursor(connection: &str, offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{connection}:{offset}"))
}

fn decode_cursor(connection: &str, cursor: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, offset) = text.split_once(':')?;
    (name == connection).then_some(())?;
    offset.parse().ok()
}

/// What the fetched pages said.
pub struct Fetched<T> {
    /// Items of the covering pages, concatenated.
    pub items: Vec<T>,
    /// Total count, when known.
    pub total: Option<u64>,
    /// Whether the block said a page after the last fetched one exists.
    pub more_after: Option<bool>,
}

/// Builds the connection for `window` from the covering pages.
pub fn connection<T, N>(
    connection: &'static str,
    window: Window,
    fetched: Fetched<T>,
    mut node: impl FnMut(T) -> N,
) -> PagedConnection<N> {
    let Fetched {
        items,
        total,
        more_after,
    } = fetched;
    let fetched_count = items.len();
    let skip = window.skip();
    let wanted: Vec<T> = items.into_iter().skip(skip).take(window.first as usize).collect();
    let end = window.offset + wanted.len() as u64;
    let has_next = match total {
        Some(total) => end < total,
        None => fetched_count > skip + wanted.len() || more_after.unwrap_or(false),
    };
    let edges: Vec<PagedEdge<N>> = wanted
        .into_iter()
        .enumerate()
        .map(|(index, item)| PagedEdge {
            cursor: encode_cursor(connection, window.offset + index as u64),
            node: node(item),
        })
        .collect();
    let page_info = PageInfo {
        has_next_page: has_next,
        has_previous_page: window.offset > 0,
        start_cursor: edges.first().map(|edge| edge.cursor.clone()),
        end_cursor: edges.last().map(|edge| edge.cursor.clone()),
    };
    PagedConnection {
        edges,
        page_info,
        total_count: total,
    }
}

/// What a connection needs of the request's loader: it answers the page key `K` with pages
/// of `T`, and the key of its items with single `T`s.
pub trait LoadsPages<K: PageKey, T>:
    Loader<K, Value = Loaded<RecordPage<T>>, Error = Infallible> + Loader<K::ItemKey, Value = Loaded<T>, Error = Infallible>
{
}

impl<K: PageKey, T, L> LoadsPages<K, T> for L where
    L: Loader<K, Value = Loaded<RecordPage<T>>, Error = Infallible>
        + Loader<K::ItemKey, Value = Loaded<T>, Error = Infallible>
{
}

/// Feeds a page's items to this request's item loader, so later reads of them in the same
/// operation cost nothing.
async fn feed_items<K, T>(loaders: &Loaders, items: &[Arc<Record<T>>])
where
    K: PageKey<ItemKey: RecordKey<Record = T>>,
    T: Send + Sync + 'static,
    BlockLoader: LoadsPages<K, T>,
{
    let fed = items
        .iter()
        .map(|record| (K::item_key(&record.data), record.clone()))
        .collect();
    remember(loaders, fed).await;
}

/// Fetches the pages covering `window` concurrently and feeds every item to this
/// request's item loader (the shared cache got them when a page was fetched), unless a
/// page is a stale copy standing in for its failed block. Any failing
/// page fails the whole connection. A 404 for a page after the first (DRF's "invalid
/// page") reads as the end of the list.
pub async fn fetch_window<K, T>(
    ctx: &Context<'_>,
    window: Window,
    page_key: impl Fn(u32, u32) -> K,
) -> async_graphql::Result<Fetched<Arc<Record<T>>>>
where
    K: PageKey<ItemKey: RecordKey<Record = T>>,
    T: Send + Sync + 'static,
    BlockLoader: LoadsPages<K, T>,
{
    let loaders = loaders(ctx)?;
    let (size, pages) = window.pages();
    let answers = join_all(pages.iter().map(|&page| load_one(loaders, page_key(page, size)))).await;
    let mut fetched = Fetched {
        items: Vec::new(),
        total: None,
        more_after: Some(false),
    };
    let mut stale = false;
    for (index, answer) in answers.into_iter().enumerate() {
        let page = match answer {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(error) if index > 0 && error.is_not_found() => break,
            Err(error) => return Err(error).gql(),
        };
        stale |= loaders.is_stale(&page);
        fetched.total = page.data.total.or(fetched.total);
        fetched.more_after = page.data.has_next;
        fetched.items.extend(page.data.items.iter().cloned());
    }
    // Items of a stale page are labelled at the connection's path; a later read of one of
    // them in this operation goes to the cache (and is labelled there) instead.
    if !stale {
        feed_items::<K, T>(&loaders, &fetched.items).await;
    }
    Ok(fetched)
}

/// Like [`fetch_window`] for a list the block answers whole (it documents no pagination):
/// the one list is loaded (and cached) through `key`, the covering pages are cut from it
/// here, and their items are fed to this request's item loader (unless the list is a stale
/// copy standing in for its failed block). The key's fetch reads the list to the end or
/// fails, so `totalCount` is its length.
pub async fn fetch_whole_list_window<K, T>(
    ctx: &Context<'_>,
    window: Window,
    key: K,
) -> async_graphql::Result<Fetched<Arc<Record<T>>>>
where
    K: PageKey<ItemKey: RecordKey<Record = T>>,
    T: Send + Sync + 'static,
    BlockLoader: LoadsPages<K, T>,
{
    let loaders = loaders(ctx)?;
    let list = load_one(loaders, key).await.gql()?;
    let all: &[Arc<Record<T>>] = list.as_ref().map_or(&[], |list| &list.data.items);
    let (size, pages) = window.pages();
    let first_page = u64::from(pages.first().copied().unwrap_or(1));
    let start = (first_page - 1).saturating_mul(u64::from(size));
    let end = start.saturating_add(u64::from(size) * pages.len() as u64);
    let len = all.len() as u64;
    let covering = |at: u64| usize::try_from(at.min(len)).unwrap_or(all.len());
    let items: Vec<Arc<Record<T>>> = all[covering(start)..covering(end)].to_vec();
    if !list.as_ref().is_some_and(|list| loaders.is_stale(list)) {
        feed_items::<K, T>(&loaders, &items).await;
    }
    Ok(Fetched {
        items,
        total: Some(len),
        more_after: Some(end < len),
    })
}

/// The connection of `window` from fetched records.
pub fn paged<T, N>(
    name: &'static str,
    window: Window,
    fetched: Fetched<Arc<Record<T>>>,
    node: impl FnMut(Arc<Record<T>>) -> N,
) -> PagedConnection<N> {
    connection(name, window, fetched, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_over_the_cap_is_refused() {
        assert!(Window::parse("persons", 101, None).is_err());
        assert!(Window::parse("persons", -1, None).is_err());
        assert!(Window::parse("persons", 100, None).is_ok());
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_connection() {
        let cursor = encode_cursor("persons", 41);
        assert_eq!(
            Window::parse("persons", 10, Some(&cursor)).map(|w| w.offset).ok(),
            Some(42)
        );
        assert!(Window::parse("organizations", 10, Some(&cursor)).is_err());
        assert!(Window::parse("persons", 10, Some("garbage!")).is_err());
    }

    #[test]
    fn unaligned_windows_need_two_pages() {
        let window = Window { offset: 5, first: 10 };
        assert_eq!(window.pages(), (10, vec![1, 2]));
        assert_eq!(window.skip(), 5);
        let aligned = Window { offset: 20, first: 10 };
        assert_eq!(aligned.pages(), (10, vec![3]));
    }
}
