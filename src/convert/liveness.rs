//! Extracts that nothing reads are dropped: a request can sit in two sections (a page the
//! flow loads and `on_stop` loads again before the logout), and the value one copy extracts
//! may only ever be read after the other copy extracted it anew. The order a user runs the
//! sections in decides: `on_start`, then each flow over and over (its end leads back to its
//! start), then `on_stop`.

use std::collections::HashMap;

use super::model::{Draft, DraftStep, MessageStep, SendBody, Think};
use super::slots::slots;

/// One request's variables, in the order a section runs them.
#[derive(Clone)]
struct Use {
    extracts: Vec<String>,
    reads: Vec<String>,
    /// The step runs only when this condition holds: what it extracts may not be set (unless
    /// a step for the opposite condition, `not (...)`, extracts it too).
    when: Option<String>,
}

/// Every identifier inside the `{{ }}` of `text`: `{{ a ~ b }}` reads a and b.
fn reads_of(text: &str, reads: &mut Vec<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        for word in inner.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()) {
                reads.push(word.to_owned());
            }
        }
        rest = &rest[start + end + 2..];
    }
}

fn flatten(steps: &[DraftStep], out: &mut Vec<Use>) {
    for step in steps {
        match step {
            DraftStep::Request(request) => {
                let mut reads = Vec::new();
                for found in slots(request) {
                    reads_of(&found.value, &mut reads);
                }
                if let Some(when) = &request.when {
                    reads_of(&format!("{{{{ {when} }}}}"), &mut reads);
                }
                let mut extracts: Vec<String> =
                    request.extracts.iter().map(|e| e.var.clone()).collect();
                if let Some(socket) = &request.socket {
                    socket_uses(&socket.steps, &mut reads, &mut extracts);
                }
                out.push(Use {
                    extracts,
                    reads,
                    when: request.when.clone(),
                });
            }
            DraftStep::Repeat { steps, .. } => flatten(steps, out),
            DraftStep::Think(Think::Template { template, .. }) => {
                let mut reads = Vec::new();
                reads_of(template, &mut reads);
                out.push(Use {
                    extracts: Vec::new(),
                    reads,
                    when: None,
                });
            }
            DraftStep::Think(Think::Seconds(_)) => {}
        }
    }
}

/// What a socket's steps read (the messages they send, the values they wait for) and set.
fn socket_uses(steps: &[MessageStep], reads: &mut Vec<String>, extracts: &mut Vec<String>) {
    for step in steps {
        match step {
            MessageStep::Send(body) | MessageStep::Every(_, body) => match body {
                SendBody::Json(value) => reads_of(&value.to_string(), reads),
                SendBody::Text(text) => reads_of(text, reads),
            },
            MessageStep::Receive {
                equals,
                extracts: set,
                ..
            } => {
                if let Some((_, value)) = equals {
                    reads_of(value, reads);
                }
                extracts.extend(set.iter().map(|(var, _)| var.clone()));
            }
            MessageStep::Think(_) => {}
        }
    }
}

/// A section's uses, with the positions of the uses that read or extract each variable: a
/// question about one variable visits only the steps that name it.
struct Section {
    uses: Vec<Use>,
    naming: HashMap<String, Vec<usize>>,
}

impl Section {
    fn new(uses: Vec<Use>) -> Self {
        let mut naming: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, item) in uses.iter().enumerate() {
            for var in item.reads.iter().chain(&item.extracts) {
                let positions = naming.entry(var.clone()).or_default();
                if positions.last() != Some(&position) {
                    positions.push(position);
                }
            }
        }
        Self { uses, naming }
    }
}

/// Whether `var` is read in `section.uses[from..]` before an extract sets it again.
fn read_before_set(section: &Section, from: usize, var: &str) -> Option<bool> {
    let positions = section.naming.get(var)?;
    let start = positions.partition_point(|&p| p < from);
    let mut conditions: Vec<&str> = Vec::new();
    for item in positions[start..].iter().map(|&p| &section.uses[p]) {
        if item.reads.iter().any(|r| r == var) {
            return Some(true);
        }
        if item.extracts.iter().any(|e| e == var) {
            let Some(when) = item.when.as_deref() else {
                return Some(false);
            };
            let opposite = |a: &str, b: &str| {
                b.strip_prefix("not (").and_then(|b| b.strip_suffix(')')) == Some(a)
            };
            if conditions
                .iter()
                .any(|seen| opposite(seen, when) || opposite(when, seen))
            {
                return Some(false);
            }
            conditions.push(when);
        }
    }
    None
}

/// Drops every extract whose value no step can read.
pub(crate) fn prune(draft: &mut Draft) {
    let section = |steps: &[DraftStep]| {
        let mut uses = Vec::new();
        flatten(steps, &mut uses);
        Section::new(uses)
    };
    let on_start = section(&draft.on_start);
    let flows: Vec<Section> = draft
        .flows
        .iter()
        .map(|flow| section(&flow.steps))
        .collect();
    let on_stop = section(&draft.on_stop);
    // After a flow (or on_start, when no flow runs): on_stop, from its start.
    let read_by_on_stop = |var: &str| read_before_set(&on_stop, 0, var) == Some(true);
    let read_by_a_flow_start = |var: &str| {
        flows
            .iter()
            .any(|f| read_before_set(f, 0, var) == Some(true))
    };

    let live_in_on_start =
        |index: usize, var: &str| match read_before_set(&on_start, index + 1, var) {
            Some(read) => read,
            None => read_by_a_flow_start(var) || read_by_on_stop(var),
        };
    let live_in_flow = |flow: &Section, index: usize, var: &str| {
        match read_before_set(flow, index + 1, var) {
            Some(read) => read,
            // The flow runs again from its start, or the run ends.
            None => read_before_set(flow, 0, var) == Some(true) || read_by_on_stop(var),
        }
    };
    let live_in_on_stop =
        |index: usize, var: &str| read_before_set(&on_stop, index + 1, var) == Some(true);

    let mut position = 0;
    retain(&mut draft.on_start, &mut position, &|i, var| {
        live_in_on_start(i, var)
    });
    for (flow, uses) in draft.flows.iter_mut().zip(&flows) {
        let mut position = 0;
        retain(&mut flow.steps, &mut position, &|i, var| {
            live_in_flow(uses, i, var)
        });
    }
    let mut position = 0;
    retain(&mut draft.on_stop, &mut position, &|i, var| {
        live_in_on_stop(i, var)
    });
}

fn retain(steps: &mut [DraftStep], position: &mut usize, live: &dyn Fn(usize, &str) -> bool) {
    for step in steps {
        match step {
            DraftStep::Request(request) => {
                let index = *position;
                request.extracts.retain(|e| live(index, &e.var));
                *position += 1;
            }
            DraftStep::Repeat { steps, .. } => retain(steps, position, live),
            DraftStep::Think(Think::Template { .. }) => *position += 1,
            DraftStep::Think(Think::Seconds(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(extracts: &[&str], reads: &[&str], when: Option<&str>) -> Use {
        Use {
            extracts: extracts.iter().map(|s| (*s).to_owned()).collect(),
            reads: reads.iter().map(|s| (*s).to_owned()).collect(),
            when: when.map(str::to_owned),
        }
    }

    #[test]
    fn a_value_extracted_under_a_condition_and_its_opposite_is_set_anew() {
        let both = [
            step(&["token"], &["id"], Some("id is defined")),
            step(&["token"], &["id"], Some("not (id is defined)")),
            step(&[], &["token"], None),
        ];
        let all = Section::new(both.to_vec());
        assert_eq!(read_before_set(&all, 0, "token"), Some(false));
        // Only one of the two: the earlier value may still be the one read.
        assert_eq!(read_before_set(&all, 1, "token"), Some(true));
        let rest = Section::new(both[1..].to_vec());
        assert_eq!(read_before_set(&rest, 0, "token"), Some(true));
    }
}
