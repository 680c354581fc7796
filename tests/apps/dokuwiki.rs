//! DokuWiki (Debian bookworm's `dokuwiki` 2022-07-31a, installed by
//! `tests/apps/dokuwiki/install.sh`), the PHP application with per-page edit tokens: the login
//! and logout carry DokuWiki's `sectok`, and every edit form its own `sectok`, `date` (the
//! page's modification time, checked on save against edit conflicts), `prefix`, `suffix` and
//! `changecheck`. Each instance is PHP's built-in server (`php -S`, a few workers) over the
//! package's code, with a configuration and data folder of its own in a temporary folder
//! (Debian's `inc/preload.php` lets `DOKU_CONF` be defined before DokuWiki starts; an
//! `auto_prepend_file` does it): plain-text accounts with salted SHA-1 hashes, an ACL letting
//! the `user` group create and edit pages, PHP sessions in the instance's folder.
//!
//! The session: open the wiki, log in, search for the page named after the user, follow the
//! search page's "create or edit the page" link, write it, edit it ("... (edited by user01)"),
//! delete it (DokuWiki deletes a page saved empty), log out. Each user works on a page of its
//! own, so that a faithful replay never meets another user's edit lock.
//!
//! Judged from the instance's data folder: the changelog `data/meta/_dokuwiki.changes` (one
//! line per create, edit and delete, with the user), the revisions in `data/attic/`, the
//! pages left in `data/pages/`, and the PHP sessions still logged in.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use chorus::har::{self, Har};

use crate::util;
use crate::util::apps::{self, Account, ServerProcess};
use crate::util::browser::Browser;
use crate::util::mutation;

/// Where Debian's package puts DokuWiki's code and default configuration.
const DOKU_INC: &str = "/usr/share/dokuwiki";
const DEBIAN_CONF: &str = "/etc/dokuwiki";

/// The folders DokuWiki's `savedir` must hold before it starts.
const DATA_DIRS: &[&str] = &[
    "pages",
    "attic",
    "meta",
    "media",
    "media_attic",
    "media_meta",
    "cache",
    "index",
    "locks",
    "tmp",
    "log",
];

/// PHP's built-in server answers one request per worker at a time.
const WORKERS: &str = "4";

/// A running DokuWiki over fresh data; stopped, and its folder removed, when dropped.
struct DokuWiki {
    base: String,
    _server: ServerProcess,
    dir: tempfile::TempDir,
}

/// One line of DokuWiki's changelog (`data/meta/_dokuwiki.changes`).
#[derive(Debug, Clone, PartialEq)]
struct Change {
    date: u64,
    ip: String,
    /// `C` created, `E` edited, `e` minor edit, `D` deleted, `R` reverted.
    kind: String,
    page: String,
    user: String,
    summary: String,
}

/// Starts DokuWiki on a free port over a fresh configuration and data folder in which
/// `accounts` can log in and create, edit and delete pages.
fn start(accounts: &[Account]) -> DokuWiki {
    apps::installed("dokuwiki");
    let began = std::time::Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("chorus-dokuwiki-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let conf = root.join("conf");
    let data = root.join("data");
    write_conf(&conf, &data, accounts);
    for sub in DATA_DIRS {
        std::fs::create_dir_all(data.join(sub)).unwrap();
    }
    std::fs::write(
        data.join("pages/start.txt"),
        "====== Team wiki ======\n\nWelcome. Everyone keeps notes on a page named after \
         themselves: search for your user name to find yours or to start it.\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("sessions")).unwrap();
    let prepend = root.join("prepend.php");
    std::fs::write(
        &prepend,
        format!(
            "<?php define('DOKU_CONF', '{}/');\n",
            php_quoted(&conf.to_string_lossy())
        ),
    )
    .unwrap();

    let port = apps::free_port();
    let log = std::fs::File::create(root.join("server.log")).unwrap();
    let mut server = ServerProcess::spawn(
        "dokuwiki (php -S)",
        Command::new("php")
            .arg("-S")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-t")
            .arg(DOKU_INC)
            .arg("-d")
            .arg(format!("auto_prepend_file={}", prepend.display()))
            .arg("-d")
            .arg(format!(
                "session.save_path={}",
                root.join("sessions").display()
            ))
            .args(["-d", "display_errors=0", "-d", "log_errors=1", "-d"])
            .arg(format!(
                "error_log={}",
                root.join("php-errors.log").display()
            ))
            .env("PHP_CLI_SERVER_WORKERS", WORKERS)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    apps::wait_for_http(
        &mut server.process,
        port,
        "/doku.php?id=start",
        Duration::from_secs(30),
    );
    eprintln!(
        "dokuwiki answers on port {port} after {:?}",
        began.elapsed()
    );
    DokuWiki {
        base: format!("http://127.0.0.1:{port}"),
        _server: server,
        dir,
    }
}

/// The instance's `conf/`: Debian's defaults, and of its own `local.php` (the data folder),
/// `acl.auth.php` and `users.auth.php`.
fn write_conf(conf: &Path, data: &Path, accounts: &[Account]) {
    std::fs::create_dir_all(conf).unwrap();
    for entry in std::fs::read_dir(DEBIAN_CONF).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Debian's acl and users files are symlinks to the system's; the web server
        // snippets are not DokuWiki's.
        let own = matches!(
            name.as_ref(),
            "local.php" | "acl.auth.php" | "users.auth.php" | "apache.conf" | "lighttpd.conf"
        );
        if !own && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), conf.join(&*name)).unwrap();
        }
    }
    std::fs::write(
        conf.join("local.php"),
        format!(
            "<?php\n$conf['title'] = 'Team wiki';\n$conf['savedir'] = '{}';\n\
             $conf['useacl'] = 1;\n$conf['superuser'] = '@admin';\n\
             $conf['disableactions'] = 'register,resendpwd';\n",
            php_quoted(&data.to_string_lossy())
        ),
    )
    .unwrap();
    // Everyone reads; the `user` group creates, edits and deletes pages (8: upload and below).
    std::fs::write(conf.join("acl.auth.php"), "*\t@ALL\t1\n*\t@user\t8\n").unwrap();
    let mut users = String::from("# login:passwordhash:Real Name:email:groups\n");
    for account in accounts {
        users.push_str(&format!(
            "{0}:{1}:{2}:{0}@example.org:user\n",
            account.username,
            ssha(&account.password),
            display_name(account)
        ));
    }
    std::fs::write(conf.join("users.auth.php"), users).unwrap();
}

/// The name DokuWiki shows for an account: `user01` is "User 01".
fn display_name(account: &Account) -> String {
    let digits = account
        .username
        .trim_start_matches(|c: char| !c.is_ascii_digit());
    format!("User {digits}")
}

/// A salted SHA-1 password hash in LDAP's `{SSHA}` form, one of DokuWiki's (`PassHash`,
/// which reads a salt of 4 bytes).
fn ssha(password: &str) -> String {
    let salt: [u8; 4] = rand::random();
    let mut input = password.as_bytes().to_vec();
    input.extend_from_slice(&salt);
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    let mut hashed = digest.as_ref().to_vec();
    hashed.extend_from_slice(&salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(hashed)
    )
}

/// `text` inside single quotes in PHP.
fn php_quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

impl DokuWiki {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Every line of the wiki's changelog, oldest first.
    fn changes(&self) -> Vec<Change> {
        let text =
            std::fs::read_to_string(self.data().join("meta/_dokuwiki.changes")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                (fields.len() >= 6).then(|| Change {
                    date: fields[0].parse().unwrap_or(0),
                    ip: fields[1].to_owned(),
                    kind: fields[2].to_owned(),
                    page: fields[3].to_owned(),
                    user: fields[4].to_owned(),
                    summary: fields[5].to_owned(),
                })
            })
            .collect()
    }

    /// The current text of a page, if it exists.
    fn page(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.data().join("pages").join(page_file(id, "txt"))).ok()
    }

    /// The ids of the pages that exist now.
    fn pages(&self) -> Vec<String> {
        let pages = self.data().join("pages");
        let mut ids = Vec::new();
        let mut stack = vec![pages.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(relative) = path
                    .strip_prefix(&pages)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(|p| p.strip_suffix(".txt"))
                {
                    ids.push(relative.replace('/', ":"));
                }
            }
        }
        ids.sort();
        ids
    }

    /// The text a page had at revision `date`, from the attic (DokuWiki keeps each revision
    /// gzipped under the time it was saved).
    fn revision(&self, id: &str, date: u64) -> Option<String> {
        let path = self
            .data()
            .join("attic")
            .join(page_file(id, &format!("{date}.txt.gz")));
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    }

    /// For each user, how many PHP sessions are still logged in as that user (DokuWiki's
    /// logout removes the user from the session; the session file stays).
    fn logged_in_sessions(&self) -> BTreeMap<String, usize> {
        let user = regex::Regex::new(r#""auth";a:\d+:\{s:4:"user";s:\d+:"([^"]+)""#).unwrap();
        let mut counts = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path().join("sessions")).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            if let Some(found) = user.captures(&text) {
                *counts.entry(found[1].to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// PHP's log of errors, for failure messages.
    fn php_errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("php-errors.log")).unwrap_or_default()
    }
}

/// A page id's file under `pages/` or `attic/`: `ns:page` is `ns/page.<ext>`.
fn page_file(id: &str, ext: &str) -> String {
    format!("{}.{ext}", id.replace(':', "/"))
}

/// The page the session creates, edits and deletes: named after the user.
fn notes_page(account: &Account) -> String {
    account.username.clone()
}

/// The page's text when created.
fn created_text(account: &Account) -> String {
    format!(
        "Notes of {}\n\nThis week: review the release notes.",
        account.username
    )
}

/// The page's text after the edit; it names the user.
fn edited_text(account: &Account) -> String {
    format!(
        "Notes of {0}\n\nThis week: review the release notes and the changelog (edited by {0}).",
        account.username
    )
}

/// The session a person clicks through in the browser: open the wiki, log in, search for the
/// page named after the user, create it from the search page's link, edit it, delete it
/// (save it empty), log out. Panics, with the page's text, when a step does not arrive.
async fn session(browser: &mut Browser, base: &str, account: &Account) {
    let wait = Duration::from_secs(30);
    let page = notes_page(account);
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_text("#dokuwiki__header", wait, |t| t.contains("Team wiki"))
        .await;
    browser.click("li.action.login a").await;
    browser.wait_text("#dw__login", wait, |_| true).await;
    browser
        .fill("#dw__login input[name=u]", &account.username)
        .await;
    browser
        .fill("#dw__login input[name=p]", &account.password)
        .await;
    browser.screenshot("login").await;
    browser.click("#dw__login button[type=submit]").await;
    browser
        .wait_text("#dokuwiki__usertools", wait, |t| {
            t.contains(&format!("({})", account.username))
        })
        .await;

    // Search for the page named after the user; the results offer to create it.
    browser.fill("#qsearch__in", &account.username).await;
    browser.click("#dw__search button[type=submit]").await;
    browser
        .wait_text("div.page", wait, |t| t.contains("named after your query"))
        .await;
    browser
        .click(&format!("div.page a.wikilink2[data-wiki-id=\"{page}\"]"))
        .await;

    // Create it.
    save_text(browser, &created_text(account), "notes started").await;
    browser
        .wait_text("div.page", wait, |t| {
            t.contains("review the release notes.")
        })
        .await;

    // Edit it, after reading it as a person would. The pause is the recording's think time,
    // which the replay repeats; it also keeps the edit out of the creation's second, which
    // DokuWiki's attic (one text per page and second) could not tell apart.
    reading_pause().await;
    browser.click("#dokuwiki__pagetools li.edit a").await;
    save_text(
        browser,
        &edited_text(account),
        &format!("edited by {}", account.username),
    )
    .await;
    browser
        .wait_text("div.page", wait, |t| {
            t.contains(&format!("(edited by {})", account.username))
        })
        .await;
    browser.screenshot("edited").await;

    // Delete it: DokuWiki deletes a page saved empty.
    reading_pause().await;
    browser.click("#dokuwiki__pagetools li.edit a").await;
    save_text(browser, "", "done").await;
    browser
        .wait_text("div.page", wait, |t| t.contains("does not exist anymore"))
        .await;

    browser.click("li.action.logout a").await;
    browser
        .wait_text("#dokuwiki__usertools", wait, |t| t.contains("Log In"))
        .await;
    browser.screenshot("logged-out").await;
}

/// A person reading the page before going on: a think time in the recording, not a wait
/// for anything the browser could signal.
async fn reading_pause() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// On the edit form: replaces the text, writes the summary, saves.
async fn save_text(browser: &mut Browser, text: &str, summary: &str) {
    browser
        .wait_text("#dw__editform", Duration::from_secs(30), |_| true)
        .await;
    browser.fill("#wiki__text", text).await;
    browser.fill("#edit__summary", summary).await;
    browser.click("#edbtn__save").await;
}

/// Records the session of `account` on `wiki` in Chromium; the capture's path.
async fn record(wiki: &DokuWiki, account: &Account, out: &Path) -> PathBuf {
    let base = wiki.base.clone();
    let account = account.clone();
    apps::record_in_chromium(out, async move |browser| {
        session(browser, &base, &account).await;
    })
    .await
}

/// A request of a capture: method, URL path and query, and the form fields sent.
#[derive(Debug)]
struct Sent {
    method: String,
    target: String,
    fields: Vec<(String, String)>,
}

/// The requests of a capture.
fn requests(har: &Har) -> Vec<Sent> {
    har.log
        .entries
        .iter()
        .map(|entry| {
            let url = url::Url::parse(&entry.request.url).unwrap();
            let target = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let fields = entry
                .request
                .post_data
                .as_ref()
                .map(|post| {
                    post.params
                        .iter()
                        .map(|p| (p.name.clone(), p.value.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            Sent {
                method: entry.request.method.clone(),
                target,
                fields,
            }
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The changelog lines of one page, as (kind, user).
fn history(wiki: &DokuWiki, page: &str) -> Vec<(String, String)> {
    wiki.changes()
        .into_iter()
        .filter(|c| c.page == page)
        .map(|c| (c.kind, c.user))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokuwiki_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(21);
    let wiki = start(&accounts);
    let out = util::output_dir("apps_dokuwiki_recorded");
    let user = &accounts[0];
    let capture = record(&wiki, user, &out).await;

    // What the wiki stored: the page created, edited and deleted, by user01.
    let page = notes_page(user);
    let name = user.username.clone();
    crate::eqnice!(
        vec![
            ("C".to_owned(), name.clone()),
            ("E".to_owned(), name.clone()),
            ("D".to_owned(), name.clone()),
        ],
        history(&wiki, &page)
    );
    let edit = wiki
        .changes()
        .into_iter()
        .find(|c| c.page == page && c.kind == "E")
        .unwrap();
    assert_eq!(edit.summary, format!("edited by {name}"));
    let edited = wiki.revision(&page, edit.date).unwrap_or_else(|| {
        panic!(
            "no revision {} of {page} in the attic\n{}",
            edit.date,
            wiki.php_errors()
        )
    });
    assert!(edited.contains(&format!("(edited by {name})")), "{edited}");
    assert_eq!(wiki.page(&page), None, "the page was deleted");
    assert_eq!(wiki.pages(), vec!["start".to_owned()]);
    assert_eq!(wiki.logged_in_sessions(), BTreeMap::new(), "logged out");

    // What the capture holds: the login with its sectok, three edit forms each followed by
    // the save that sends the form's tokens, the logout.
    let (har, _) = har::read::read_file(&capture).unwrap();
    let requests = requests(&har);
    let login = requests
        .iter()
        .find(|r| r.method == "POST" && field(&r.fields, "do") == Some("login"))
        .expect("the login POST");
    assert_eq!(field(&login.fields, "u"), Some(name.as_str()));
    assert!(field(&login.fields, "sectok").is_some());
    let saves: Vec<&Vec<(String, String)>> = requests
        .iter()
        .filter(|r| r.method == "POST" && field(&r.fields, "do[save]").is_some())
        .map(|r| &r.fields)
        .collect();
    assert_eq!(saves.len(), 3, "{requests:#?}");
    for save in &saves {
        for token in ["sectok", "date", "prefix", "suffix", "changecheck"] {
            assert!(field(save, token).is_some(), "no {token} in {save:?}");
        }
        assert_ne!(field(save, "sectok"), Some(""));
    }
    assert_eq!(field(saves[0], "date"), Some(""), "a new page has no date");
    assert!(
        field(saves[1], "date").is_some_and(|d| d.parse::<u64>().is_ok()),
        "the edit form's date is the page's time: {:?}",
        saves[1]
    );
    assert!(
        field(saves[1], "wikitext")
            .unwrap()
            .contains("edited by user01")
    );
    assert_eq!(field(saves[2], "wikitext"), Some(""));
    let edit_forms = requests
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains("do=edit"))
        .count();
    assert_eq!(edit_forms, 3, "{requests:#?}");
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.target.contains("do=logout")
            && r.target.contains("sectok=")),
        "the logout link carries the sectok: {requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokuwiki_replay_is_faithful() {
    let accounts = Account::numbered(21);
    let out = util::output_dir("apps_dokuwiki_replay");
    let recorded_on = start(&accounts);
    let capture = record(&recorded_on, &accounts[0], &out).await;
    drop(recorded_on);
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    apps::users_csv(&accounts[1..], &users);

    let checked_on = start(&accounts);
    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);
    apps::check_passes(&scenario, &users, &checked_on.base);
    let application = mutation::Application::Running {
        base: &checked_on.base,
        concurrency: 2,
    };
    mutation::mutation_test(&scenario, &capture, &users, &application).assert_all_caught();
    drop(checked_on);

    let wiki = start(&accounts);
    let (result, output) = apps::run(&scenario, &users, &wiki.base, 20, 60);
    let table = apps::result_table(&result);
    let context = format!(
        "run result:\n{table}\nchorus said:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // Every save the run counts as a success is a line of the wiki's changelog.
    let requests = apps::scenario_requests(&scenario);
    let saves: Vec<&chorus::scenario::Request> = requests
        .iter()
        .filter(|r| r.method == http::Method::POST && apps::body_has_field(r, "do[save]"))
        .collect();
    assert!(
        !saves.is_empty(),
        "the scenario has no save (a POST with do[save])"
    );
    let (sent, failed) = apps::reported(&result, &saves);
    let changes = wiki.changes();
    assert_eq!(
        sent - failed,
        changes.len() as u64,
        "the run reports {} successful saves ({sent} sent, {failed} failed); the wiki \
         stored {} changes: {:?}\n{context}",
        sent - failed,
        changes.len(),
        changes.iter().take(10).collect::<Vec<_>>()
    );

    // Each as the user that logged in: on the page named after it, the edit naming it. The
    // attic keeps one text per page and second: an edit in the same second as the page's
    // creation (a fast iteration) cannot be read back, so those are counted, not judged, and
    // most edits must be.
    let mut edits = 0;
    let mut unreadable = 0;
    for change in &changes {
        assert_eq!(
            change.page, change.user,
            "a change to another user's page, or by another user: {change:?}\n{context}"
        );
        if change.kind == "E" {
            edits += 1;
            assert_eq!(
                change.summary,
                format!("edited by {}", change.user),
                "the edit's summary in the changelog: {change:?}"
            );
            let same_second = changes.iter().any(|other| {
                other.page == change.page && other.date == change.date && other.kind != "E"
            });
            if same_second {
                unreadable += 1;
                continue;
            }
            let text = wiki.revision(&change.page, change.date).unwrap_or_default();
            assert!(
                text.contains(&format!("(edited by {})", change.user)),
                "{change:?} stored {text:?}"
            );
        }
    }
    assert!(
        edits > 0 && unreadable * 2 <= edits,
        "{unreadable} of {edits} edits share their second with another change of the page"
    );

    // Every one of the 20 accounts did work.
    let workers: std::collections::BTreeSet<&str> =
        changes.iter().map(|c| c.user.as_str()).collect();
    let expected: std::collections::BTreeSet<&str> =
        accounts[1..].iter().map(|a| a.username.as_str()).collect();
    crate::eqnice!(expected, workers);

    // Nothing left behind: every page created was deleted, every session logged out.
    crate::eqnice!(vec!["start".to_owned()], wiki.pages());
    crate::eqnice!(BTreeMap::<String, usize>::new(), wiki.logged_in_sessions());
}
