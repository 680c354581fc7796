//! How sure a tie is: whether a value a request sends may be tied to an offer of an earlier
//! response, judged by the value's shape, the place that offered it and the names both go by.

use super::offers::Place;
use super::slots::{Slot, SlotValue};
use crate::values::Shape;

pub(crate) fn is_id_like(key: &str) -> bool {
    // Compared without a lowercase copy: this runs for every value of every request.
    let ends_with = |suffix: &str| {
        key.len() >= suffix.len()
            && key.as_bytes()[key.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends_with("id") || ends_with("ids") || key.eq_ignore_ascii_case("code")
}

/// Names of values that a server hands out per page or per session for the next request to
/// send back: taken from the newest page that served them.
pub(crate) fn is_token_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    [
        "csrf",
        "xsrf",
        "token",
        "nonce",
        "sectok",
        "authenticity",
        "verification",
        "viewstate",
        "changecheck",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Why a tie of a value of `shape` in `slot` to an offer at `place` under `key` is not
/// certain enough, or `None` when it is. `path` is the request's recorded path, segment by segment; `known`
/// says whether a path (`/issues/7`) was already in an earlier request's URL.
pub(crate) fn refusal(
    slot: &SlotValue<'_>,
    path: &[String],
    place: &Place,
    key: Option<&str>,
    shape: Shape,
    known: &dyn Fn(&str) -> bool,
) -> Option<&'static str> {
    let same_key = slot.key.is_some() && slot.key.as_deref() == key;
    let slot_id_like =
        matches!(slot.slot, Slot::PathSegment(_)) || slot.key.as_deref().is_some_and(is_id_like);
    let offer_id_like = key.is_some_and(is_id_like);
    match shape {
        // A visible field's value is a choice the page offered (a select's option), not a
        // token handed over, unless its name says token.
        Shape::Token => match place {
            Place::FormField { hidden: false }
                if !slot.key.as_deref().is_some_and(is_token_name) =>
            {
                Some("a value a visible form field offered: a choice, not a token")
            }
            _ => None,
        },
        Shape::Number => match place {
            Place::Location { before } => {
                let Slot::PathSegment(index) = slot.slot else {
                    return Some("a small number a Location also holds, in another place");
                };
                let mine = if index == 0 {
                    String::new()
                } else {
                    format!("/{}", path[..index].join("/"))
                };
                if mine != *before {
                    Some("a small number a Location also holds, at another place in the path")
                } else if known(&format!("{mine}/{}", slot.value)) {
                    Some("a small number the client already had before this Location")
                } else {
                    None
                }
            }
            Place::Json { .. } if slot_id_like && offer_id_like => None,
            Place::LocationQuery | Place::Header | Place::Meta if same_key && offer_id_like => None,
            Place::FormField { hidden: true }
                if same_key && (offer_id_like || slot.value.len() >= 4) =>
            {
                None
            }
            Place::Link => None,
            Place::FormField { .. } => {
                Some("a small number a form also shows, a choice rather than a value handed over")
            }
            _ => Some("a small number a response also holds, with nothing tying the two"),
        },
        Shape::Word => match place {
            Place::Json { .. } if slot_id_like && offer_id_like => None,
            Place::Link => None,
            _ => Some("a plain word a response also holds, by coincidence or as a constant"),
        },
        Shape::Text => Some("text a person wrote, not a value handed over"),
    }
}
