//! What real logins need from the scenario language, at load: `auth:`, `relogin:`,
//! `multipart:`, the template functions (hashes, base64, `url_encode`, `jwt_claims`,
//! `env`, PKCE) and `--var`; the exact text of each mistake's message. Loaded with
//! `scenario::load_str`, as if the text were `dir/scenario.yaml`.

use std::path::{Path, PathBuf};

use chorus::scenario::{
    self, Body, FileContent, LoadOptions, Part, Scenario, StepKind, Template, Vars,
};

fn dir(name: &str) -> PathBuf {
    let dir = crate::util::output_dir(name);
    std::fs::write(dir.join("users.csv"), "username,password\nalice,pw-alice\n").unwrap();
    dir
}

fn load(dir: &Path, text: &str, options: &LoadOptions) -> Result<Scenario, String> {
    scenario::load_str(text, &dir.join("s.yaml"), options)
        .map_err(|err| err.to_string().replace(&format!("{}/", dir.display()), ""))
}

fn request(scenario: &Scenario, flow: usize, step: usize) -> &scenario::Request {
    match &scenario.flows[flow].steps[step].kind {
        StepKind::Request(request) => request,
        other => panic!("not a request: {other:?}"),
    }
}

fn render(template: &Template, vars: &Vars) -> String {
    template.render(vars).unwrap_or_else(|err| panic!("{err}"))
}

const HEAD: &str = "host: http://127.0.0.1:9\ndata:\n  users: { file: users.csv, as: user }\n";

#[test]
fn auth_relogin_and_multipart_load_into_the_model() {
    let dir = dir("scenario_logins_model");
    std::fs::write(dir.join("logo.png"), b"\x89PNG\x00").unwrap();
    let text = format!(
        "{HEAD}auth:\n  username: \"{{{{ user.username }}}}\"\n  password: \"{{{{ user.password }}}}\"\n\
         relogin:\n  status: [401, 403]\n  redirect: /admin/login/*\n\
         on_start:\n  - get: /login\n\
         flows:\n  - steps:\n      - post: /projects/team/issues\n        multipart:\n\
         \x20         authenticity_token: \"{{{{ vu }}}}\"\n\
         \x20         \"issue[subject]\": \"Printer jams (reported by {{{{ user.username }}}})\"\n\
         \x20         \"attachments[dummy][file]\": {{ filename: \"\", content: \"\" }}\n\
         \x20         logo: {{ filename: logo.png, content_type: image/png, file: logo.png }}\n"
    );
    let scenario = load(&dir, &text, &LoadOptions::default()).unwrap();
    let vars = Vars::for_user(&scenario, 0).unwrap();
    let auth = scenario.auth.as_ref().expect("auth");
    assert_eq!(render(&auth.username, &vars), "alice");
    assert_eq!(render(&auth.password, &vars), "pw-alice");
    let relogin = scenario.relogin.as_ref().expect("relogin");
    assert_eq!(relogin.statuses, [401, 403]);
    let login = url::Url::parse("http://127.0.0.1:9/admin/login/?next=/x").unwrap();
    assert!(relogin.redirects_to_login(302, Some(&login)));
    assert!(!relogin.redirects_to_login(200, Some(&login)));
    let elsewhere = url::Url::parse("http://127.0.0.1:9/admin/pages/").unwrap();
    assert!(!relogin.redirects_to_login(302, Some(&elsewhere)));
    let Some(Body::Multipart(parts)) = &request(&scenario, 0, 0).body else {
        panic!("a multipart body");
    };
    let names: Vec<&str> = parts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "authenticity_token",
            "issue[subject]",
            "attachments[dummy][file]",
            "logo"
        ]
    );
    let Part::Text(subject) = &parts[1].1 else {
        panic!("a text part")
    };
    assert_eq!(render(subject, &vars), "Printer jams (reported by alice)");
    let Part::File(empty) = &parts[2].1 else {
        panic!("a file part")
    };
    assert_eq!(
        empty.content_type, "application/octet-stream",
        "the default"
    );
    let Part::File(logo) = &parts[3].1 else {
        panic!("a file part")
    };
    let FileContent::File { written, bytes, .. } = &logo.content else {
        panic!("read from the file")
    };
    assert_eq!(
        (written.as_str(), &bytes[..]),
        ("logo.png", &b"\x89PNG\x00"[..])
    );
    assert_eq!(scenario.attached_files().len(), 1);
}

#[test]
fn mistakes_in_the_new_sections_are_placed_and_explained() {
    let dir = dir("scenario_logins_mistakes");
    let text = format!(
        "{HEAD}auth:\n  username: \"{{{{ user.username }}}}\"\n  pasword: x\n\
         relogin:\n  status: 401\n\
         flows:\n  - steps:\n      - post: /a\n        form: {{ a: b }}\n        multipart: {{ a: b }}\n\
         \x20     - post: /b\n        multipart:\n          f: {{ filname: a.txt }}\n\
         \x20         g: {{ content: x, file: y.txt }}\n          h: {{ file: missing.bin }}\n\
         \x20         i: [1]\n          j: {{ content_type: \"\" }}\n"
    );
    let err = load(&dir, &text, &LoadOptions::default()).unwrap_err();
    let expected = [
        // The top level could not be read, so `relogin` is looked at once `auth` is fixed.
        "s.yaml:6:3: auth.pasword: unknown field `pasword`; did you mean `password`?",
        "s.yaml:13:9: flows[0].steps[0].multipart: a request has one body: `form` and `multipart` are both here",
        "s.yaml:16:16: flows[0].steps[1].multipart.f.filname: unknown field `filname`; did you mean `filename`?",
        "s.yaml:17:28: flows[0].steps[1].multipart.g.file: a file part has `content` or `file`, not both",
        "s.yaml:18:22: flows[0].steps[1].multipart.h.file: cannot read missing.bin: No such file or directory (os error 2) (a `file:` is relative to the scenario's folder)",
        "s.yaml:19:14: flows[0].steps[1].multipart.i: expected a text, or a file part `{ filename: a.txt, content_type: text/plain, content: ... }` (or `file: path`), found a list",
        "s.yaml:20:30: flows[0].steps[1].multipart.j.content_type: \"\" is not a media type such as text/plain",
    ];
    let got: Vec<String> = err
        .lines()
        .map(|line| line.replace(&format!("{}/", dir.display()), ""))
        .collect();
    crate::eqnice!(expected.to_vec(), got);
    let no_login = format!("{HEAD}relogin:\n  status: 401\nflows: [{{steps: [{{get: /}}]}}]\n");
    assert_eq!(
        load(&dir, &no_login, &LoadOptions::default()).unwrap_err(),
        "s.yaml:4:1: relogin: `relogin` runs `on_start` again, and this scenario has no `on_start`: put the login there"
    );
    let empty =
        format!("{HEAD}on_start: [{{get: /}}]\nrelogin: {{}}\nflows: [{{steps: [{{get: /}}]}}]\n");
    assert_eq!(
        load(&dir, &empty, &LoadOptions::default()).unwrap_err(),
        "s.yaml:5:10: relogin: say what ends a session: `status: [401]` and/or `redirect: /login*`"
    );
}

#[test]
fn template_functions_render_and_are_not_unknown_variables() {
    let dir = dir("scenario_logins_functions");
    let text = format!(
        "{HEAD}vars:\n  token: \"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiJ9.c2ln\"\n\
         \x20 verifier: dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\n\
         flows:\n  - steps:\n      - get: \"/x?sub={{{{ jwt_claims(token).sub }}}}&role={{{{ (token | jwt_claims).role }}}}\
         &h={{{{ user.password | sha256 }}}}&m={{{{ hmac_sha256('key', user.username) }}}}\
         &b={{{{ user.username | base64 }}}}&u={{{{ 'a/b?' | base64url }}}}&d={{{{ base64_decode('YWxpY2U=') }}}}\
         &q={{{{ url_encode('a b&c') }}}}&c={{{{ pkce_challenge(verifier) }}}}&p={{{{ pkce_verifier() | length }}}}\"\n"
    );
    let scenario = load(&dir, &text, &LoadOptions::default()).unwrap();
    let vars = Vars::for_user(&scenario, 0).unwrap();
    let url = render(&request(&scenario, 0, 0).url, &vars);
    let query: Vec<(String, String)> = url::Url::parse(&format!("http://h{url}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("{name} in {url}"))
    };
    assert_eq!(get("sub"), "alice");
    assert_eq!(get("role"), "admin");
    assert_eq!(get("h").len(), 64);
    assert_eq!(get("m").len(), 64);
    assert_eq!(get("b"), "YWxpY2U=");
    assert_eq!(get("u"), "YS9iPw");
    assert_eq!(get("d"), "alice");
    assert_eq!(
        get("q"),
        "a b&c",
        "percent-encoded in the URL, decoded by the parser"
    );
    assert!(url.contains("q=a%20b%26c"), "{url}");
    assert_eq!(get("c"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(get("p"), "43");
    // The name each expression is counted under is still its variable.
    assert!(request(&scenario, 0, 0).name.starts_with("/x?sub=[token]"));
}

#[test]
fn env_is_read_when_the_scenario_loads_and_a_missing_variable_is_named() {
    let dir = dir("scenario_logins_env");
    let text = format!(
        "{HEAD}headers:\n  X-Api-Key: \"{{{{ env('CHORUS_TEST_API_KEY') }}}}\"\n\
         flows:\n  - steps:\n      - get: \"/x?path={{{{ env(\\\"PATH\\\") | length > 0 }}}}\"\n"
    );
    let err = load(&dir, &text, &LoadOptions::default()).unwrap_err();
    assert_eq!(
        err,
        "s.yaml:5:14: headers.X-Api-Key: env(\"CHORUS_TEST_API_KEY\"): the environment variable CHORUS_TEST_API_KEY is not set; set it where chorus runs (export CHORUS_TEST_API_KEY=...)"
    );
    let options = LoadOptions {
        env: vec![("CHORUS_TEST_API_KEY".to_owned(), "s3cret".to_owned())],
        ..LoadOptions::default()
    };
    let scenario = load(&dir, &text, &options).unwrap();
    assert!(
        scenario
            .env
            .iter()
            .any(|(name, value)| name == "CHORUS_TEST_API_KEY" && value == "s3cret")
    );
    let vars = Vars::for_user(&scenario, 0).unwrap();
    let (_, key) = &scenario.defaults.headers[0];
    assert_eq!(render(key, &vars), "s3cret");
    assert_eq!(render(&request(&scenario, 0, 0).url, &vars), "/x?path=true");
}

#[test]
fn var_options_set_and_add_variables_with_their_types() {
    let dir = dir("scenario_logins_vars");
    let text = format!(
        "{HEAD}vars:\n  tenant: default\n  pages: 2\n\
         flows:\n  - steps:\n      - get: \"/{{{{ tenant }}}}/{{{{ pages * 2 }}}}/{{{{ extra }}}}\"\n"
    );
    let err = load(&dir, &text, &LoadOptions::default()).unwrap_err();
    assert!(err.contains("unknown variable `extra`"), "{err}");
    let options = LoadOptions {
        vars: vec![
            ("tenant".to_owned(), "acme".to_owned()),
            ("pages".to_owned(), "5".to_owned()),
            ("extra".to_owned(), "{{ not a template }}".to_owned()),
        ],
        ..LoadOptions::default()
    };
    let scenario = load(&dir, &text, &options).unwrap();
    let vars = Vars::for_user(&scenario, 0).unwrap();
    assert_eq!(
        render(&request(&scenario, 0, 0).url, &vars),
        "/acme/10/{{ not a template }}"
    );
}
