//! Variable names for extracted and generated values: from the name the value goes by where
//! it is sent or offered, one per origin, numbered when a name is taken.

use std::collections::{HashMap, HashSet};

use super::model::{DraftRequest, ExtractSource};

pub(crate) fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    out
}

pub(crate) fn last_word(request: &DraftRequest) -> String {
    request
        .path
        .iter()
        .rev()
        .find(|segment| {
            !segment.is_empty()
                && !segment.chars().all(|c| c.is_ascii_digit())
                && !segment.contains("{{")
        })
        .cloned()
        .unwrap_or_else(|| "value".to_owned())
}

/// Where a variable's value comes from: the same pattern at another response reuses its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Provenance {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) source: String,
}

/// Variable names: one per origin, `name_2`, `name_3`... when a name is taken (a counter per
/// name, so a capture with thousands of them stays linear).
#[derive(Default)]
pub(crate) struct Names {
    pub(crate) by_provenance: HashMap<Provenance, String>,
    taken: HashSet<String>,
    next_suffix: HashMap<String, usize>,
}

impl Names {
    pub(crate) fn name_for(&mut self, origin: Provenance, wanted: &str) -> String {
        if let Some(name) = self.by_provenance.get(&origin) {
            return name.clone();
        }
        let base = sanitize(wanted);
        let mut name = base.clone();
        while self.taken.contains(&name) {
            let n = self.next_suffix.entry(base.clone()).or_insert(2);
            name = format!("{base}_{n}");
            *n += 1;
        }
        self.taken.insert(name.clone());
        self.by_provenance.insert(origin, name.clone());
        name
    }
}

/// The plain name a JSONPath's last key sits under (`$.data.createPost.post.id`: `post`).
pub(crate) fn json_parent(source: &ExtractSource) -> Option<String> {
    let ExtractSource::JsonPath(path) = source else {
        return None;
    };
    let keys: Vec<&str> = path.split(['.', '[']).collect();
    let parent = keys.len().checked_sub(2).map(|i| keys[i])?;
    let plain = !parent.is_empty()
        && parent != "$"
        && parent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (plain && !is_generic(parent)).then(|| parent.to_owned())
}

pub(crate) fn is_generic(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "id" | "value" | "data" | "authorization" | "key" | "code"
    )
}
