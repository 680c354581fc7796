//! Fuzz properties of what the page's API accepts (docs/security.md, "Fuzzing"): any JSON
//! value or Locust form gives a refusal or a request within the bounds a run can take.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{Plan, from_locust_form, start_request, users_change};
use crate::engine::Load;
use crate::fuzzing::{config, json_value};

fn within_bounds(plan: &Plan) -> bool {
    let [stage] = plan.stages() else {
        return false;
    };
    let load = match stage.load {
        Load::Users { users, spawn_rate } => {
            (1..=10_000_000).contains(&users) && spawn_rate.is_finite() && spawn_rate > 0.0
        }
        Load::Arrivals {
            per_second,
            max_users,
        } => (1..=10_000_000).contains(&max_users) && per_second.is_finite() && per_second > 0.0,
    };
    load && stage.duration.is_none_or(|time| !time.is_zero())
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn any_json_is_a_refusal_or_a_run_within_bounds(body in json_value()) {
        if let Ok(request) = start_request(&body) {
            prop_assert!(within_bounds(&request.plan), "{:?}", request);
        }
        if let Ok(change) = users_change(&body) {
            prop_assert!((1..=10_000_000).contains(&change.users));
            prop_assert!(change.spawn_rate.is_none_or(|rate| rate.is_finite() && rate > 0.0));
        }
    }

    #[test]
    fn any_locust_form_is_a_refusal_or_a_run_within_bounds(
        pairs in vec(
            (
                prop::sample::select(vec!["user_count", "spawn_rate", "host", "run_time", "x"]),
                prop_oneof!["[ -~]{0,10}", "[0-9.e+-]{1,8}[smhdy]?"],
            ),
            0..6,
        ),
    ) {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        if let Ok(request) = start_request(&from_locust_form(&pairs)) {
            prop_assert!(within_bounds(&request.plan), "{:?}", request);
        }
    }

    #[test]
    fn any_body_bytes_read_as_the_handlers_read_them_are_a_refusal_or_a_run_within_bounds(
        bytes in prop_oneof![
            json_value().prop_map(|value| value.to_string().into_bytes()),
            (json_value(), any::<usize>(), any::<u8>()).prop_map(|(value, at, byte)| {
                let mut bytes = value.to_string().into_bytes();
                let at = at % bytes.len();
                bytes[at] ^= byte;
                bytes
            }),
            "(user_count|spawn_rate|host|run_time|x)=[ -~%]{0,10}(&[a-z_]{1,10}=[ -~%]{0,10}){0,4}"
                .prop_map(String::into_bytes),
            vec(any::<u8>(), 0..64),
        ],
    ) {
        // `/api/start` and `/api/users`: a JSON body.
        if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            if let Ok(request) = start_request(&body) {
                prop_assert!(within_bounds(&request.plan), "{:?}", request);
            }
            let _ = users_change(&body);
        }
        // `/swarm`: Locust's form.
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        if let Ok(request) = start_request(&from_locust_form(&pairs)) {
            prop_assert!(within_bounds(&request.plan), "{:?}", request);
        }
    }
}
