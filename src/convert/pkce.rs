//! OAuth 2.0 PKCE (RFC 7636) in a capture: a `code_challenge` the client sent to the
//! authorization endpoint and, later, the `code_verifier` whose SHA-256 it is. Neither came
//! from a server, and they belong together, so each user makes its own pair: the verifier in
//! `vars:` (`pkce_verifier()`), the challenge computed from it (`pkce_challenge(...)`).

use base64::Engine as _;

use super::model::DraftRequest;
use super::slots::{Slot, set_slot, slots};

/// The generated variable and what convert did, when the capture has a PKCE pair.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pkce {
    /// (name, template, comment) for `vars:`.
    pub(crate) var: (String, String, String),
    /// The recorded challenge and verifier, now templates: not to be correlated.
    pub(crate) values: [String; 2],
}

/// S256 of a verifier.
fn challenge_of(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Finds the pair and templates both places.
pub(crate) fn template_pkce(requests: &mut [DraftRequest]) -> Option<Pkce> {
    // (position, value) of each challenge and verifier sent, in one pass.
    let mut challenges: Vec<(usize, String)> = Vec::new();
    let mut verifiers: Vec<(usize, String)> = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        for found in slots(request) {
            match found.key.as_deref() {
                Some("code_challenge") => challenges.push((index, found.value.into_owned())),
                Some("code_verifier") => verifiers.push((index, found.value.into_owned())),
                _ => {}
            }
        }
    }
    // Each verifier's challenge, computed once.
    let verifiers: Vec<(usize, String, String)> = verifiers
        .into_iter()
        .map(|(at, verifier)| (at, challenge_of(&verifier), verifier))
        .collect();
    let (challenge, verifier) = challenges.iter().find_map(|(at, challenge)| {
        verifiers
            .iter()
            .find(|(later, of, _)| later > at && of == challenge)
            .map(|(_, _, verifier)| (challenge.clone(), verifier.clone()))
    })?;
    for request in requests.iter_mut() {
        let changed: Vec<(Slot, &str)> = slots(request)
            .into_iter()
            .filter_map(|found| {
                if found.value == challenge.as_str() {
                    Some((found.slot, "{{ pkce_challenge(code_verifier) }}"))
                } else if found.value == verifier.as_str() {
                    Some((found.slot, "{{ code_verifier }}"))
                } else {
                    None
                }
            })
            .collect();
        for (slot, template) in changed {
            set_slot(request, &slot, template);
        }
    }
    Some(Pkce {
        var: (
            "code_verifier".to_owned(),
            "{{ pkce_verifier() }}".to_owned(),
            "PKCE: the recording's client made a verifier and sent its SHA-256 as code_challenge; each virtual user makes its own".to_owned(),
        ),
        values: [challenge, verifier],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::model::RecordedBody;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    #[test]
    fn the_rfc_7636_pair_is_found_and_templated() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        let authorize = exchange(
            "GET",
            &format!(
                "http://op/auth?client_id=app&code_challenge={challenge}&code_challenge_method=S256"
            ),
            303,
            "",
            "",
        );
        let mut token = exchange("POST", "http://op/token", 200, "", "{}");
        token.request_body = Some(RecordedBody {
            mime: "application/x-www-form-urlencoded".to_owned(),
            text: format!("grant_type=authorization_code&code=abc&code_verifier={verifier}"),
        });
        let mut requests = vec![draft_request(&authorize), draft_request(&token)];
        let found = template_pkce(&mut requests).unwrap();
        assert_eq!(found.var.0, "code_verifier");
        assert_eq!(
            requests[0].query[1].1,
            "{{ pkce_challenge(code_verifier) }}"
        );
        assert!(
            matches!(&requests[1].body, crate::convert::model::DraftBody::Form(pairs)
            if pairs[2].1 == "{{ code_verifier }}")
        );
    }
}
