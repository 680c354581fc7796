//! Faithfulness on real open-source applications (issue 13): each module installs nothing
//! itself (`tests/apps/<app>/install.sh` does, under `target/apps/<app>`), starts its
//! application on 127.0.0.1 over fresh data with several accounts, records a realistic session
//! in Chromium through chorus's recorder, converts it with no options, checks it, runs it, and
//! judges the replay by what the application stored.

mod django;
mod dokuwiki;
mod graphql;
mod json_server_auth;
mod jupyter;
mod oidc;
mod redmine;
mod socketio_chat;
mod trac;
