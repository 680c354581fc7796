//! Reverse mode's header rewriting, so the browser stays on the proxy: `Origin` and `Referer`
//! on the way in; `Location`, and the `Domain` and `Secure` of `Set-Cookie`, on the way out.
//! Plain functions over header values.

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

fn replace_prefix(value: &[u8], from: &str, to: &str) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let rest = text.strip_prefix(from)?;
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some(format!("{to}{rest}"))
}

impl ReverseRewrite {
    /// The new value of a request header going to the application, if it changes.
    pub(crate) fn request_value(&self, name: &[u8], value: &[u8]) -> Option<String> {
        if name.eq_ignore_ascii_case(b"origin") || name.eq_ignore_ascii_case(b"referer") {
            return replace_prefix(value, &self.browser_origin, &self.target_origin);
        }
        None
    }

    /// The new value of a response header going to the browser, if it changes.
    pub(crate) fn response_value(&self, name: &[u8], value: &[u8]) -> Option<String> {
        if name.eq_ignore_ascii_case(b"location") {
            return replace_prefix(value, &self.target_origin, &self.browser_origin);
        }
        if name.eq_ignore_ascii_case(b"set-cookie") {
            let text = std::str::from_utf8(value).ok()?;
            let new = self.set_cookie(text);
            return (new != text).then_some(new);
        }
        None
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
        let rewrite = rewrite();
        let changed =
            |name: &str, value: &str| rewrite.response_value(name.as_bytes(), value.as_bytes());
        assert_eq!(
            changed("Location", "https://app.example.org/student?x=1").as_deref(),
            Some("http://127.0.0.1:9090/student?x=1")
        );
        assert_eq!(
            changed(
                "set-cookie",
                "sid=1; Domain=.example.org; Path=/; Secure; HttpOnly"
            )
            .as_deref(),
            Some("sid=1; Path=/; HttpOnly")
        );
        assert_eq!(changed("Set-Cookie", "other=2; Domain=elsewhere.com"), None);
        // A location elsewhere is left alone.
        assert_eq!(changed("location", "https://app.example.org.evil/"), None);
        assert_eq!(changed("content-type", "https://app.example.org/"), None);
    }

    #[test]
    fn origin_and_referer_point_at_the_target() {
        let rewrite = rewrite();
        let changed =
            |name: &str, value: &str| rewrite.request_value(name.as_bytes(), value.as_bytes());
        assert_eq!(
            changed("Origin", "http://127.0.0.1:9090").as_deref(),
            Some("https://app.example.org")
        );
        assert_eq!(
            changed("referer", "http://127.0.0.1:9090/login").as_deref(),
            Some("https://app.example.org/login")
        );
        assert_eq!(changed("referer", "http://127.0.0.1:90901/login"), None);
    }
}
