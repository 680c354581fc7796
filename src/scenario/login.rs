//! Compiling what logins need from the top level of a scenario: `auth:` (credentials the
//! engine answers challenges with), `relogin:` (what says a session ended) and the values of
//! the environment variables templates read (`env("NAME")`). Part of loading; problems go
//! to the `Context`.

use super::load::Context;
use super::raw::{RawAuth, RawRelogin, RawText};
use super::{Credentials, LoadOptions, Relogin, Scenario, UrlPattern};

impl Context<'_> {
    /// `auth:`: two templates, rendered per user when a server asks.
    pub(super) fn credentials(&mut self, raw: RawAuth) -> Option<Credentials> {
        let username = self.template("auth.username", &raw.username);
        let password = self.template("auth.password", &raw.password);
        Some(Credentials {
            username: username?,
            password: password?,
        })
    }

    /// `relogin:`: statuses and/or a redirect pattern; it runs `on_start` again, so there
    /// must be one.
    pub(super) fn relogin(&mut self, raw: RawRelogin, scenario: &Scenario) -> Option<Relogin> {
        let redirect = match raw.redirect {
            Some(RawText::Text(glob)) => Some(UrlPattern::glob(&glob)),
            Some(RawText::Matches(source)) => match regex::Regex::new(&source) {
                Ok(regex) => Some(UrlPattern::regex(regex)),
                Err(err) => {
                    let message = format!("bad regex: {}", err.to_string().replace('\n', " "));
                    self.problem("relogin.redirect.matches", false, message);
                    return None;
                }
            },
            None => None,
        };
        let statuses = raw.status.map(|s| s.0).unwrap_or_default();
        if statuses.is_empty() && redirect.is_none() {
            self.problem(
                "relogin",
                false,
                "say what ends a session: `status: [401]` and/or `redirect: /login*`",
            );
            return None;
        }
        if scenario.on_start.is_empty() {
            self.problem(
                "relogin",
                true,
                "`relogin` runs `on_start` again, and this scenario has no `on_start`: put the login there",
            );
            return None;
        }
        Some(Relogin { statuses, redirect })
    }

    /// The value of every environment variable a template names: from `--env`-like options
    /// first (a cluster worker's), then the process's. A missing one is a problem where it
    /// is read.
    pub(super) fn environment(&mut self, options: &LoadOptions) -> Vec<(String, String)> {
        let mut values: Vec<(String, String)> = Vec::new();
        for (path, name) in std::mem::take(&mut self.env_uses) {
            if values.iter().any(|(known, _)| *known == name) {
                continue;
            }
            let given = options
                .env
                .iter()
                .rev()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| value.clone());
            match given.or_else(|| std::env::var(&name).ok()) {
                Some(value) => values.push((name, value)),
                None => self.problem(
                    &path,
                    false,
                    format!(
                        "env({name:?}): the environment variable {name} is not set; set it where chorus runs (export {name}=...)"
                    ),
                ),
            }
        }
        values.sort();
        values
    }
}
