//! The functions (and filters) templates may call: random values, hashes and encodings that
//! real logins need (`sha256`, `hmac_sha256`, base64 and base64url, `url_encode`,
//! `jwt_claims`, a PKCE pair), and `env("NAME")`. Plain functions over their arguments; the
//! only state they read is the user's variables (`env` reads the values loading took from
//! the environment).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::vars::from_json;

/// Names the environment defines as functions; never reported as unknown variables.
pub(crate) const FUNCTIONS: &[&str] = &[
    "uuid",
    "random_int",
    "random_string",
    "now_ms",
    "now_s",
    "sha256",
    "hmac_sha256",
    "base64",
    "base64url",
    "base64_decode",
    "base64url_decode",
    "url_encode",
    "jwt_claims",
    "env",
    "pkce_verifier",
    "pkce_challenge",
];

/// The variable `Vars::for_user` puts the environment values loading read under, for `env()`.
/// Not a name a scenario can set (it is not an identifier a file may use: see `load`).
pub(crate) const ENV_VARIABLE: &str = "__env__";

/// Adds every function, and the one-argument ones (and `hmac_sha256(key)`) as filters too:
/// `{{ password | sha256 }}`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("uuid", uuid);
    env.add_function("random_int", random_int);
    env.add_function("random_string", random_string);
    env.add_function("now_ms", || super::template::unix_time().as_millis() as u64);
    env.add_function("now_s", || super::template::unix_time().as_secs());
    env.add_function("hmac_sha256", hmac_sha256);
    // As a filter the text comes first: `{{ message | hmac_sha256(key) }}`.
    env.add_filter("hmac_sha256", |text: String, key: String| {
        hmac_sha256(key, text)
    });
    env.add_function("env", env_var);
    env.add_function("pkce_verifier", pkce_verifier);
    macro_rules! both {
        ($($name:literal => $function:expr),* $(,)?) => {$(
            env.add_function($name, $function);
            env.add_filter($name, $function);
        )*};
    }
    both! {
        "sha256" => sha256,
        "base64" => base64,
        "base64url" => base64url,
        "base64_decode" => base64_decode,
        "base64url_decode" => base64url_decode,
        "url_encode" => url_encode,
        "jwt_claims" => jwt_claims,
        "pkce_challenge" => pkce_challenge,
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A random version 4 UUID.
fn uuid() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf000 << 64) | (0x4000 << 64)) & !(0xc << 60) | (0x8 << 60);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn random_int(low: i64, high: i64) -> Result<i64, Error> {
    if low > high {
        return Err(invalid(format!(
            "random_int({low}, {high}): the first bound is above the second"
        )));
    }
    Ok(rand::random_range(low..=high))
}

fn random_string(length: usize) -> Result<String, Error> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if length > 65_536 {
        return Err(invalid(format!(
            "random_string({length}): at most 65536 characters"
        )));
    }
    Ok((0..length)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect())
}

/// Lower-case hex, two digits a byte (a table, not `format!`: a signature per request).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// SHA-256 of the text's UTF-8 bytes, in lower-case hex.
pub(crate) fn sha256(text: String) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref())
}

/// HMAC-SHA-256 of `text` keyed with `key` (both as UTF-8), in lower-case hex.
pub(crate) fn hmac_sha256(key: String, text: String) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    hex(ring::hmac::sign(&key, text.as_bytes()).as_ref())
}

pub(crate) fn base64(text: String) -> String {
    STANDARD.encode(text.as_bytes())
}

/// base64url without padding (RFC 4648 §5), as JWTs and PKCE write it.
pub(crate) fn base64url(text: String) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// Decoders that take text with or without its `=` padding.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

fn decode_text(name: &str, engine: &GeneralPurpose, text: &str) -> Result<String, Error> {
    let bytes = engine
        .decode(text.trim())
        .map_err(|err| invalid(format!("{name}: {text:?} is not {name} text: {err}")))?;
    String::from_utf8(bytes).map_err(|_| {
        invalid(format!(
            "{name}: {text:?} decodes to bytes that are not UTF-8 text"
        ))
    })
}

fn base64_decode(text: String) -> Result<String, Error> {
    decode_text("base64", &STANDARD_LENIENT, &text)
}

fn base64url_decode(text: String) -> Result<String, Error> {
    decode_text("base64url", &URL_SAFE_LENIENT, &text)
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is
/// percent-encoded: safe in a query value, a form value and a path segment alike.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn url_encode(text: String) -> String {
    utf8_percent_encode(&text, QUERY_VALUE).to_string()
}

/// The claims (payload) of a JWT as a map, without verifying the signature. A leading
/// `Bearer ` is allowed, so an `Authorization` value works as it is.
fn jwt_claims(token: String) -> Result<Value, Error> {
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    let mut segments = token.split('.');
    let payload = match (segments.next(), segments.next(), segments.next()) {
        (Some(_), Some(payload), Some(_)) => payload,
        _ => {
            return Err(invalid(format!(
                "jwt_claims: {} is not a JWT (three base64url parts separated by dots)",
                shorten(token)
            )));
        }
    };
    let text = decode_text("base64url", &URL_SAFE_LENIENT, payload).map_err(|_| {
        invalid(format!(
            "jwt_claims: the payload of {} is not base64url JSON",
            shorten(token)
        ))
    })?;
    let claims: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
        invalid(format!(
            "jwt_claims: the payload of {} is not JSON: {err}",
            shorten(token)
        ))
    })?;
    Ok(from_json(&claims))
}

/// The start of a long value, for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(24) {
        Some((at, _)) => format!("{:?}...", &text[..at]),
        None => format!("{text:?}"),
    }
}

/// An environment variable: the value loading read (so every user, and every worker of a
/// cluster, sees the same); a name loading could not see (`env(name)` of a variable) is read
/// from the environment now.
fn env_var(state: &State<'_, '_>, name: String) -> Result<String, Error> {
    if let Some(value) = state
        .lookup(ENV_VARIABLE)
        .and_then(|values| values.get_attr(&name).ok())
        .filter(|value| !value.is_undefined())
    {
        return Ok(value.to_string());
    }
    std::env::var(&name).map_err(|_| {
        invalid(format!(
            "env({name:?}): the environment variable {name} is not set"
        ))
    })
}

/// A PKCE code verifier (RFC 7636 §4.1): 32 random bytes in base64url, 43 characters.
fn pkce_verifier() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2): base64url(SHA-256(verifier)),
/// without padding.
fn pkce_challenge(verifier: String) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// The names of the environment variables a template's expression reads with a literal
/// argument: `env("API_KEY")`, `env('X')`.
pub(super) fn env_names(expression: &str) -> Vec<String> {
    static CALL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\benv\s*\(\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\)"#)
            .expect("a valid regex")
    });
    CALL.captures_iter(expression)
        .filter_map(|captures| captures.get(1).or_else(|| captures.get(2)))
        .map(|name| name.as_str().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_values() {
        // FIPS 180-2 "abc"; RFC 4231 test case 2.
        assert_eq!(
            sha256("abc".to_owned()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hmac_sha256("Jefe".to_owned(), "what do ya want for nothing?".to_owned()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn base64_round_trips_with_or_without_padding() {
        assert_eq!(base64("ab?>".to_owned()), "YWI/Pg==");
        assert_eq!(base64url("ab?>".to_owned()), "YWI_Pg");
        assert_eq!(base64_decode("YWI/Pg==".to_owned()).unwrap(), "ab?>");
        assert_eq!(base64_decode("YWI/Pg".to_owned()).unwrap(), "ab?>");
        assert_eq!(base64url_decode("YWI_Pg".to_owned()).unwrap(), "ab?>");
        assert_eq!(base64url_decode("YWI_Pg==".to_owned()).unwrap(), "ab?>");
        let err = base64_decode("not base64!".to_owned()).unwrap_err();
        assert!(err.to_string().contains("is not base64 text"), "{err}");
        let err = base64_decode("/w==".to_owned()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn url_encode_leaves_only_unreserved_characters() {
        assert_eq!(
            url_encode("a b&c=d/é~x-y_z.".to_owned()),
            "a%20b%26c%3Dd%2F%C3%A9~x-y_z."
        );
    }

    #[test]
    fn jwt_claims_read_the_payload() {
        // RFC 7519 §3.1's example JWT.
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
                     eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
                     dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let claims = jwt_claims(token.to_owned()).unwrap();
        assert_eq!(claims.get_attr("iss").unwrap().as_str(), Some("joe"));
        assert_eq!(
            i64::try_from(claims.get_attr("exp").unwrap()).unwrap(),
            1_300_819_380
        );
        let bearer = jwt_claims(format!("Bearer {token}")).unwrap();
        assert_eq!(bearer.get_attr("iss").unwrap().as_str(), Some("joe"));
        let err = jwt_claims("abc".to_owned()).unwrap_err();
        assert!(err.to_string().contains("is not a JWT"), "{err}");
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned()),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = pkce_verifier();
        assert_eq!(verifier.len(), 43);
        assert!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{verifier}"
        );
        assert_ne!(verifier, pkce_verifier());
    }

    #[test]
    fn env_names_are_found_in_literal_calls() {
        assert_eq!(
            env_names(r#"env("API_KEY") ~ env( 'OTHER' ) ~ env(name) ~ myenv("NO")"#),
            ["API_KEY", "OTHER"]
        );
    }
}
