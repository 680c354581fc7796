//! Reverse mode's header rewriting, so the browser stays on the proxy: `Origin` and `Referer`
//! on the way in; `Location`, and the `Domain` and `Secure` of `Set-Cookie`, on the way out.
//! Plain functions over header maps.

use http::header::{self, HeaderMap, HeaderValue};

/// The two origins of one reverse-mode exchange.
#[derive(Debug, Clone)]
pub(crate) struct ReverseRewrite {
    /// e.g. `http://127.0.0.1:8001`
    pub(crate) target_origin: String,
    /// The host name of the target, to match cookie domains.
    pub(crate) target_host: String,
    /// The origin the browser used, e.g. `http://127.0.0.1:9090`.
    pub(crate) browser_origin: String,
    /// The target is HTTPS but the browser talks plain HTTP to the proxy: `Secure` cookies
    /// would never come back, so the flag is dropped.
    pub(crate) strip_secure: bool,
}

fn replace_prefix(value: &HeaderValue, from: &str, to: &str) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let rest = text.strip_prefix(from)?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    HeaderValue::from_str(&format!("{to}{rest}")).ok()
}

impl ReverseRewrite {
    pub(crate) fn request_headers(&self, headers: &mut HeaderMap) {
        for name in [header::ORIGIN, header::REFERER] {
            if let Some(value) = headers.get(&name) {
                if let Some(new) = replace_prefix(value, &self.browser_origin, &self.target_origin)
                {
                    headers.insert(name, new);
                }
            }
        }
    }

    pub(crate) fn response_headers(&self, headers: &mut HeaderMap) {
        if let Some(value) = headers.get(header::LOCATION) {
            if let Some(new) = replace_prefix(value, &self.target_origin, &self.browser_origin) {
                headers.insert(header::LOCATION, new);
            }
        }
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| match value.to_str() {
                Ok(text) => {
                    HeaderValue::from_str(&self.set_cookie(text)).unwrap_or_else(|_| value.clone())
                }
                Err(_) => value.clone(),
            })
            .collect();
        if !cookies.is_empty() {
            headers.remove(header::SET_COOKIE);
            for cookie in cookies {
                headers.append(header::SET_COOKIE, cookie);
            }
        }
    }

    fn set_cookie(&self, text: &str) -> String {
        let mut parts = text.split(';');
        let mut out = parts.next().unwrap_or_default().to_owned();
        for attribute in parts {
            let key = attribute
                .split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let drop = match key.as_str() {
                "domain" => {
                    let domain = attribute
                        .split_once('=')
                        .map(|(_, d)| d.trim().trim_start_matches('.').to_ascii_lowercase())
                        .unwrap_or_default();
                    let host = self.target_host.to_ascii_lowercase();
                    host == domain || host.ends_with(&format!(".{domain}"))
                }
                "secure" => self.strip_secure,
                _ => false,
            };
            if !drop {
                out.push(';');
                out.push_str(attribute);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite() -> ReverseRewrite {
        ReverseRewrite {
            target_origin: "https://app.example.org".to_owned(),
            target_host: "app.example.org".to_owned(),
            browser_origin: "http://127.0.0.1:9090".to_owned(),
            strip_secure: true,
        }
    }

    #[test]
    fn location_and_cookies_point_back_at_the_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LOCATION,
            "https://app.example.org/student?x=1".parse().unwrap(),
        );
        headers.append(
            header::SET_COOKIE,
            "sid=1; Domain=.example.org; Path=/; Secure; HttpOnly"
                .parse()
                .unwrap(),
        );
        headers.append(
            header::SET_COOKIE,
            "other=2; Domain=elsewhere.com".parse().unwrap(),
        );
        rewrite().response_headers(&mut headers);
        assert_eq!(
            headers[header::LOCATION],
            "http://127.0.0.1:9090/student?x=1"
        );
        let cookies: Vec<&str> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cookies,
            vec!["sid=1; Path=/; HttpOnly", "other=2; Domain=elsewhere.com"]
        );
    }

    #[test]
    fn origin_and_referer_point_at_the_target() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, "http://127.0.0.1:9090".parse().unwrap());
        headers.insert(
            header::REFERER,
            "http://127.0.0.1:9090/login".parse().unwrap(),
        );
        rewrite().request_headers(&mut headers);
        assert_eq!(headers[header::ORIGIN], "https://app.example.org");
        assert_eq!(headers[header::REFERER], "https://app.example.org/login");
        // A location elsewhere is left alone.
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LOCATION,
            "https://app.example.org.evil/".parse().unwrap(),
        );
        rewrite().response_headers(&mut headers);
        assert_eq!(headers[header::LOCATION], "https://app.example.org.evil/");
    }
}
