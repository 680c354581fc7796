//! Structure: the login and the reads that follow it go to `on_start`; the rest is one flow,
//! or one flow per `--split-on` match, identical flows merged into one with a weight.

use regex::Regex;

use super::model::DraftRequest;

/// Positions (into the request list) of `on_start` and of each flow, in recorded order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub(crate) on_start: Vec<usize>,
    /// (name, positions, how many recorded flows had this shape)
    pub(crate) flows: Vec<(String, Vec<usize>, u32)>,
}

fn path_of(request: &DraftRequest) -> String {
    format!("/{}", request.path.join("/"))
}

/// Lays out `requests`: `login` is the position of the login request, if one was found.
pub(crate) fn layout(
    requests: &[DraftRequest],
    login: Option<usize>,
    split_on: Option<&Regex>,
) -> Layout {
    let starts_flow =
        |index: usize| split_on.is_some_and(|regex| regex.is_match(&path_of(&requests[index])));
    let mut on_start = Vec::new();
    let mut next = 0;
    if let Some(login) = login {
        on_start.extend(0..=login);
        next = login + 1;
        // The reads right after the login only depend on it: once per user.
        while next < requests.len() && requests[next].method == "GET" && !starts_flow(next) {
            on_start.push(next);
            next += 1;
        }
    }
    if split_on.is_some() {
        // Whatever comes before the first flow start is setup too.
        while next < requests.len() && !starts_flow(next) {
            on_start.push(next);
            next += 1;
        }
    }
    let mut recorded: Vec<Vec<usize>> = Vec::new();
    for index in next..requests.len() {
        if recorded.is_empty() || starts_flow(index) {
            recorded.push(Vec::new());
        }
        recorded.last_mut().expect("pushed above").push(index);
    }
    let mut flows: Vec<(String, Vec<usize>, u32)> = Vec::new();
    for positions in recorded {
        let shape: Vec<String> = positions
            .iter()
            .map(|&i| format!("{} {}", requests[i].method, path_of(&requests[i])))
            .collect();
        let same = flows.iter_mut().find(|(_, other, _)| {
            let other_shape: Vec<String> = other
                .iter()
                .map(|&i| format!("{} {}", requests[i].method, path_of(&requests[i])))
                .collect();
            dedup_runs(&other_shape) == dedup_runs(&shape)
        });
        match same {
            Some((_, _, count)) => *count += 1,
            None => {
                let first = &requests[positions[0]];
                let name = if split_on.is_some() {
                    format!("{} {}", first.method, path_of(first))
                } else {
                    "recorded session".to_owned()
                };
                flows.push((name, positions, 1));
            }
        }
    }
    Layout { on_start, flows }
}

/// A shape with repeats collapsed, so flows that differ only in a loop's count are one flow.
fn dedup_runs(shape: &[String]) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for item in shape {
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    fn requests(list: &[(&str, &str)]) -> Vec<DraftRequest> {
        list.iter()
            .map(|(method, path)| {
                draft_request(&exchange(method, &format!("http://app{path}"), 200, "", ""))
            })
            .collect()
    }

    #[test]
    fn login_and_following_reads_go_to_on_start() {
        let list = requests(&[
            ("GET", "/"),
            ("POST", "/login"),
            ("GET", "/courses"),
            ("GET", "/config"),
            ("POST", "/start"),
            ("GET", "/x"),
        ]);
        let layout = layout(&list, Some(1), None);
        assert_eq!(layout.on_start, [0, 1, 2, 3]);
        assert_eq!(
            layout.flows,
            vec![("recorded session".to_owned(), vec![4, 5], 1)]
        );
    }

    #[test]
    fn split_on_makes_flows_and_merges_identical_ones() {
        let list = requests(&[
            ("POST", "/login"),
            ("POST", "/start"),
            ("POST", "/events"),
            ("POST", "/end"),
            ("POST", "/start"),
            ("POST", "/events"),
            ("POST", "/events"),
            ("POST", "/end"),
            ("POST", "/save"),
        ]);
        let regex = Regex::new("/start$|/save$").unwrap();
        let layout = layout(&list, Some(0), Some(&regex));
        assert_eq!(layout.on_start, [0]);
        assert_eq!(
            layout.flows,
            vec![
                ("POST /start".to_owned(), vec![1, 2, 3], 2),
                ("POST /save".to_owned(), vec![8], 1)
            ]
        );
    }
}
