//! What the responses so far offered, indexed so that correlation costs the same per request
//! whatever the capture's length: offers by value, grouped by place and key (the tie rules
//! judge a group alike, so one judgement and one binary search serve the whole group), and
//! the first page that linked to each URL, with the offer of the link a person clicked. Only
//! values some request sends are kept.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use super::model::{Exchange, ExtractSource, push_snug};
use super::offers::{Offer, Place, location_pattern};
use super::slots::percent_decode;

/// One offer of a value: the response that made it, which of its offers it is (the offer
/// itself is made again when tried: keeping every offer's rule would hold a large capture
/// several times over), and its place in recorded order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub(crate) response: usize,
    /// Its position in `offers(response)`.
    pub(crate) index: usize,
    /// Counts every offer kept, in the order they were seen: breaks ties as recorded order.
    order: usize,
}

/// The offers of one value at one kind of place under one key, oldest first.
#[derive(Debug, Clone)]
struct Group {
    place: Place,
    key: Option<String>,
    members: Vec<Member>,
}

/// Every offer of one value so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offered {
    groups: Vec<Group>,
    /// The newest response that offered the value.
    pub(crate) newest: usize,
}

/// The order candidates are tried in, best first: tokens from the newest page that served
/// them; other values from the place that reads best and the response that first handed
/// them over (a form field or meta from the newest page).
pub(crate) fn preference(place: &Place) -> i64 {
    match place {
        Place::Json { in_array: false } => 0,
        Place::Location { .. } => 1,
        Place::LocationQuery => 2,
        Place::FormField { hidden: true } | Place::Meta => 3,
        Place::FormField { hidden: false } => 4,
        Place::Header => 5,
        Place::Json { in_array: true } => 6,
        Place::Link => 7,
        Place::Raw => 8,
    }
}

impl Offered {
    /// Whether a visible form field offered the value (a choice the page showed).
    pub(crate) fn by_a_visible_field(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g.place == Place::FormField { hidden: false })
    }

    /// The offers a tie may be made to, in the order they are tried, and the first refusal in
    /// recorded order: `refused` judges an offer of a response. It must refuse a group's
    /// offers from some response on, or none, or all (a place the client already knew
    /// before a response is known after it too).
    pub(crate) fn ranked<'a>(
        &'a self,
        token: bool,
        refused: impl Fn(&Place, Option<&str>, usize) -> Option<&'static str>,
    ) -> (
        impl Iterator<Item = &'a Member> + 'a,
        Option<(&'static str, usize)>,
    ) {
        let mut first_refusal: Option<(&'static str, usize, usize)> = None;
        let mut cursors: Vec<Cursor<'a>> = Vec::new();
        for group in &self.groups {
            let refused =
                |member: &Member| refused(&group.place, group.key.as_deref(), member.response);
            let kept = group.members.partition_point(|m| refused(m).is_none());
            if let Some(first) = group.members.get(kept) {
                if let Some(reason) = refused(first) {
                    if first_refusal.is_none_or(|(_, _, order)| first.order < order) {
                        first_refusal = Some((reason, first.response, first.order));
                    }
                }
            }
            let kept = &group.members[..kept];
            let newest_first =
                token || matches!(group.place, Place::FormField { .. } | Place::Meta);
            let members: Box<dyn Iterator<Item = &'a Member> + 'a> = if newest_first {
                // Newest response first; one response's offers in their order.
                Box::new(
                    kept.chunk_by(|a, b| a.response == b.response)
                        .rev()
                        .flatten(),
                )
            } else {
                Box::new(kept.iter())
            };
            cursors.push(Cursor {
                members: members.peekable(),
                preference: preference(&group.place),
                newest_first,
            });
        }
        let key = move |cursor: &mut Cursor<'a>| -> Option<(i64, i64, usize)> {
            let member = cursor.members.peek()?;
            let response = member.response as i64;
            Some(if token {
                (-response, cursor.preference, member.order)
            } else if cursor.newest_first {
                (cursor.preference, -response, member.order)
            } else {
                (cursor.preference, response, member.order)
            })
        };
        let merged = std::iter::from_fn(move || {
            let best = cursors
                .iter_mut()
                .enumerate()
                .filter_map(|(index, cursor)| key(cursor).map(|key| (key, index)))
                .min_by_key(|(key, _)| *key)?
                .1;
            cursors[best].members.next()
        });
        (
            merged,
            first_refusal.map(|(reason, response, _)| (reason, response)),
        )
    }
}

/// One group's offers, in the order they are tried, and how they compare with other groups'.
struct Cursor<'a> {
    members: std::iter::Peekable<Box<dyn Iterator<Item = &'a Member> + 'a>>,
    preference: i64,
    newest_first: bool,
}

/// The offers of every response so far, for the values requests send.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The values worth keeping, by hash (a value that only shares a hash is kept for
    /// nothing: never asked about).
    wanted: HashSet<u64>,
    hasher: RandomState,
    by_value: HashMap<String, Offered>,
    kept: usize,
}

impl Seen {
    /// Keeps offers of the `wanted` values only.
    pub(crate) fn new(wanted: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let hasher = RandomState::new();
        Self {
            wanted: wanted
                .into_iter()
                .map(|value| hasher.hash_one(value.as_ref()))
                .collect(),
            hasher,
            ..Self::default()
        }
    }

    /// Whether offers of `value` are kept.
    pub(crate) fn wants(&self, value: &str) -> bool {
        self.wanted.contains(&self.hasher.hash_one(value))
    }

    /// Keeps the offers of response `response` (from [`super::offers::offers_where`]: each
    /// offer with its position among the response's offers) whose value is wanted.
    pub(crate) fn add(&mut self, response: usize, offers: Vec<(usize, Offer)>) {
        for (index, offer) in offers {
            if !self.wants(&offer.value) {
                continue;
            }
            let offered = self.by_value.entry(offer.value).or_default();
            offered.newest = response;
            let at = match offered
                .groups
                .iter()
                .position(|g| g.place == offer.place && g.key == offer.key)
            {
                Some(at) => at,
                None => {
                    push_snug(
                        &mut offered.groups,
                        Group {
                            place: offer.place,
                            key: offer.key,
                            members: Vec::new(),
                        },
                    );
                    offered.groups.len() - 1
                }
            };
            push_snug(
                &mut offered.groups[at].members,
                Member {
                    response,
                    index,
                    order: self.kept,
                },
            );
            self.kept += 1;
        }
    }

    pub(crate) fn get(&self, value: &str) -> Option<&Offered> {
        self.by_value.get(value)
    }
}

/// `path?query` of a URL, the way links are matched to the requests they sent.
pub(crate) fn shown(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The first page that had a link to each `path?query`, read page by page as far as asked.
#[derive(Debug, Default)]
pub(crate) struct FirstLinks {
    first: HashMap<String, usize>,
    read: usize,
}

impl FirstLinks {
    /// The first of `exchanges[..before]` whose page links to `target` (`path?query`).
    pub(crate) fn before(
        &mut self,
        exchanges: &[Exchange],
        before: usize,
        target: &str,
    ) -> Option<usize> {
        while self.read < before.min(exchanges.len()) {
            let i = self.read;
            if let Some(page) = exchanges[i].page() {
                for link in &page.links {
                    if let Ok(url) = exchanges[i].url.join(&link.href) {
                        self.first.entry(shown(&url)).or_insert(i);
                    }
                }
            }
            self.read += 1;
        }
        self.first.get(target).copied().filter(|&i| i < before)
    }
}

/// How many earlier pages are searched for a link the person clicked.
pub(crate) const LINK_WINDOW: usize = 8;

/// The link the person clicked to send `request`: a link in one of the last pages whose href
/// is the request's URL, that appeared only after the session changed something (so it names
/// something the session made, not a constant), found by its text.
pub(crate) fn link_offer(
    index: usize,
    exchanges: &[Exchange],
    first_links: &mut FirstLinks,
    first_written: Option<usize>,
    account: &[(String, String)],
    j: usize,
) -> Option<(usize, Offer)> {
    let target = &exchanges[j].url;
    let wanted = shown(target);
    let href_is_target = |page_url: &url::Url, href: &str| {
        page_url
            .join(href)
            .ok()
            .is_some_and(|url| shown(&url) == wanted)
    };
    let first_seen = first_links.before(exchanges, j, &wanted)?;
    // The link must have appeared after a write of this session.
    if first_written.is_none_or(|w| w >= first_seen) {
        return None;
    }
    (first_seen..j).rev().take(LINK_WINDOW).find_map(|i| {
        let page = exchanges[i].page()?;
        let link = page
            .links
            .iter()
            .find(|l| href_is_target(&exchanges[i].url, &l.href))?;
        let text = templated_text(&link.text, account);
        // A text the same for every user cannot pick this user's object.
        if text == link.text {
            return None;
        }
        let path: Vec<&str> = target.path().trim_start_matches('/').split('/').collect();
        let before = format!("/{}", path[..index.min(path.len())].join("/"));
        let before = if index == 0 { String::new() } else { before };
        Some((
            i,
            Offer {
                value: percent_decode(path.get(index).copied().unwrap_or_default()).into_owned(),
                source: ExtractSource::Link {
                    text,
                    pattern: location_pattern(&before),
                },
                key: None,
                place: Place::Link,
            },
        ))
    })
}

/// A text with the account's own values as templates (a link named after the user).
pub(crate) fn templated_text(text: &str, account: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (value, column) in account {
        if value.chars().count() >= 4 && column != "password" {
            out = out.replace(value.as_str(), &format!("{{{{ user.{column} }}}}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::model::ExtractSource;

    fn offer(value: &str, place: Place, key: &str) -> Offer {
        Offer {
            value: value.to_owned(),
            source: ExtractSource::Header(String::new()),
            key: Some(key.to_owned()),
            place,
        }
    }

    #[test]
    fn offers_are_tried_in_rank_order_and_a_group_is_refused_from_a_response_on() {
        let token = "t0k3nABC99";
        let field = || offer(token, Place::FormField { hidden: true }, "csrf");
        let json = || offer(token, Place::Json { in_array: false }, "token");
        let mut seen = Seen::new([token]);
        seen.add(0, vec![(0, field()), (1, offer("other", Place::Meta, "m"))]);
        seen.add(1, vec![(0, json())]);
        seen.add(2, vec![(0, field()), (1, json())]);
        let offered = seen.get(token).unwrap();
        assert_eq!(offered.newest, 2);
        assert!(
            seen.get("other").is_none(),
            "a value no request sends is not kept"
        );
        let order = |token: bool, refused: &dyn Fn(&Place, usize) -> Option<&'static str>| {
            let (ranked, first_refusal) = offered.ranked(token, |place, _, i| refused(place, i));
            let order: Vec<(usize, usize)> = ranked.map(|m| (m.response, m.index)).collect();
            (order, first_refusal)
        };
        // A token: the newest response first, then the place that reads best.
        assert_eq!(
            order(true, &|_, _| None),
            (vec![(2, 1), (2, 0), (1, 0), (0, 0)], None)
        );
        // Another value: the place that reads best, oldest first (form fields newest first).
        assert_eq!(
            order(false, &|_, _| None),
            (vec![(1, 0), (2, 1), (2, 0), (0, 0)], None)
        );
        // Form fields refused from response 2 on: the first refusal in recorded order.
        let late_fields = |place: &Place, i: usize| {
            (matches!(place, Place::FormField { .. }) && i >= 2).then_some("late")
        };
        assert_eq!(
            order(false, &late_fields),
            (vec![(1, 0), (2, 1), (0, 0)], Some(("late", 2)))
        );
    }
}
