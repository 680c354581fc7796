//! Who may join: the shared cluster token (each side proves it knows it by signing the other's
//! random nonce with HMAC-SHA-256, so the token itself never travels), the chorus version, the
//! scenario a worker insists on, and the rule that a master off loopback needs a token.
//! Plain functions: the master and the worker call them on what they read.

use std::net::SocketAddr;

use ring::hmac;

use super::protocol::{PROTOCOL, ScenarioPin};

/// The chorus version on both ends of a link.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The environment variable holding the token, for both `run --master` and `worker`.
pub const TOKEN_ENV: &str = "CHORUS_CLUSTER_TOKEN";

/// A fresh random nonce (128 bits, hex).
pub fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The proof that the `role` ("worker" or "master") knows `token`, for the other side's nonce.
pub fn proof(token: &str, role: &str, nonce: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let message = format!("chorus-cluster-{PROTOCOL} {role} {nonce}");
    hex(hmac::sign(&key, message.as_bytes()).as_ref())
}

/// Whether `proof` is `role`'s proof of `token` for `nonce` (compared in constant time).
pub fn verify(token: &str, role: &str, nonce: &str, proof: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let message = format!("chorus-cluster-{PROTOCOL} {role} {nonce}");
    let Some(tag) = unhex(proof) else {
        return false;
    };
    hmac::verify(&key, message.as_bytes(), &tag).is_ok()
}

/// The SHA-256 of a scenario's text, hex.
pub fn scenario_digest(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

/// What the master knows when a worker says hello.
#[derive(Debug, Clone)]
pub struct MasterIdentity {
    pub token: Option<String>,
    /// The nonce the master sent this worker.
    pub nonce: String,
    pub scenario: ScenarioPin,
}

/// What a worker said in its `Hello`.
#[derive(Debug, Clone)]
pub struct HelloView<'a> {
    pub protocol: u32,
    pub version: &'a str,
    pub name: &'a str,
    pub proof: Option<&'a str>,
    pub scenario: Option<&'a ScenarioPin>,
}

/// Accepts a worker, or says why not (the message goes to both sides' output).
pub fn check_hello(master: &MasterIdentity, hello: &HelloView<'_>) -> Result<(), String> {
    let name = hello.name;
    if hello.protocol != PROTOCOL || hello.version != VERSION {
        return Err(format!(
            "worker {name:?} runs chorus {} (cluster protocol {}) but the master runs chorus {VERSION} \
             (cluster protocol {PROTOCOL}); run the same chorus version on the master and every worker",
            hello.version, hello.protocol
        ));
    }
    match (&master.token, hello.proof) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(format!(
                "worker {name:?} has no cluster token but the master requires one; \
                 start the worker with --cluster-token or {TOKEN_ENV} set to the master's token"
            ));
        }
        (None, Some(_)) => {
            return Err(format!(
                "worker {name:?} has a cluster token but the master has none; \
                 give the master the same --cluster-token (or {TOKEN_ENV}), or start the worker without one"
            ));
        }
        (Some(token), Some(proof)) => {
            if !verify(token, "worker", &master.nonce, proof) {
                return Err(format!(
                    "worker {name:?} has a wrong cluster token; give the master and every worker \
                     the same --cluster-token (or {TOKEN_ENV})"
                ));
            }
        }
    }
    if let Some(pin) = hello.scenario {
        if pin.sha256 != master.scenario.sha256 {
            return Err(format!(
                "worker {name:?} expects the scenario {} (sha256 {}) but the master runs {} (sha256 {}); \
                 start the worker with the master's scenario file, or without --scenario",
                pin.name,
                short(&pin.sha256),
                master.scenario.name,
                short(&master.scenario.sha256)
            ));
        }
    }
    Ok(())
}

/// Refuses to listen for workers off loopback without a token: anyone who can reach the port
/// could otherwise join and receive the scenario and its accounts.
pub fn check_bind(bind: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    if bind.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        return Ok(());
    }
    Err(format!(
        "--master-bind {bind} is not a loopback address: any machine that reaches it could join \
         and receive the scenario and its data files; set a shared secret with --cluster-token \
         or {TOKEN_ENV} (on the master and every worker), or bind 127.0.0.1"
    ))
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(token: Option<&str>) -> MasterIdentity {
        MasterIdentity {
            token: token.map(str::to_owned),
            nonce: "n1".to_owned(),
            scenario: ScenarioPin {
                sha256: scenario_digest("a"),
                name: "scenario.yaml".to_owned(),
            },
        }
    }

    fn hello<'a>(proof: Option<&'a str>, scenario: Option<&'a ScenarioPin>) -> HelloView<'a> {
        HelloView {
            protocol: PROTOCOL,
            version: VERSION,
            name: "w1",
            proof,
            scenario,
        }
    }

    #[test]
    fn the_token_is_proven_never_sent() {
        let good = proof("secret", "worker", "n1");
        assert!(!good.contains("secret"));
        assert!(check_hello(&master(Some("secret")), &hello(Some(&good), None)).is_ok());
        let bad = proof("other", "worker", "n1");
        let err = check_hello(&master(Some("secret")), &hello(Some(&bad), None)).unwrap_err();
        assert_eq!(
            err,
            "worker \"w1\" has a wrong cluster token; give the master and every worker the same \
             --cluster-token (or CHORUS_CLUSTER_TOKEN)"
        );
        // A master's proof is not a worker's.
        let replayed = proof("secret", "master", "n1");
        assert!(check_hello(&master(Some("secret")), &hello(Some(&replayed), None)).is_err());
        assert!(!verify("secret", "worker", "n1", "zz"));
        let err = check_hello(&master(Some("secret")), &hello(None, None)).unwrap_err();
        assert!(err.contains("has no cluster token"), "{err}");
        let err = check_hello(&master(None), &hello(Some(&good), None)).unwrap_err();
        assert!(err.contains("the master has none"), "{err}");
        assert!(check_hello(&master(None), &hello(None, None)).is_ok());
    }

    #[test]
    fn other_versions_and_scenarios_are_refused_with_what_to_do() {
        let mut old = hello(None, None);
        old.version = "0.0.1";
        let err = check_hello(&master(None), &old).unwrap_err();
        assert_eq!(
            err,
            format!(
                "worker \"w1\" runs chorus 0.0.1 (cluster protocol {PROTOCOL}) but the master runs chorus \
                 {VERSION} (cluster protocol {PROTOCOL}); run the same chorus version on the master and every worker"
            )
        );
        let pin = ScenarioPin {
            sha256: scenario_digest("b"),
            name: "other.yaml".to_owned(),
        };
        let err = check_hello(&master(None), &hello(None, Some(&pin))).unwrap_err();
        assert!(
            err.starts_with("worker \"w1\" expects the scenario other.yaml (sha256 "),
            "{err}"
        );
        assert!(err.contains("but the master runs scenario.yaml"), "{err}");
        let same = master(None).scenario;
        assert!(check_hello(&master(None), &hello(None, Some(&same))).is_ok());
    }

    #[test]
    fn off_loopback_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:5557".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5557".parse().unwrap();
        assert!(check_bind(&local, None).is_ok());
        assert!(check_bind(&any, Some("t")).is_ok());
        let err = check_bind(&any, None).unwrap_err();
        assert!(
            err.starts_with("--master-bind 0.0.0.0:5557 is not a loopback address"),
            "{err}"
        );
        assert!(check_bind(&any, Some("")).is_err());
    }
}
