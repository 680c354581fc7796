//! `chorus demo`: the built-in demo application, and the workflow against it. `--serve-only`
//! serves the app; otherwise the app starts empty, `demo/provision.yaml` creates its
//! accounts (`chorus provision`), and everything is written to `./chorus-demo/` for the user
//! to read and edit. Then `--record` puts the recorder in front of the app, and the default
//! converts the sample capture shipped in the binary (`chorus convert`) and runs it
//! (`chorus run`, with the page or `--headless`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser as _;

use super::args::{DemoArgs, ProvisionArgs, RecordArgs};
use super::{Cli, Command, EXIT_OK};
use crate::demo::{App, AppOptions, Seed, Server, TEACHER_PASSWORD, TEACHER_USERNAME};
use crate::engine::EmitRow;

/// The hand-written 2013 playback, shipped in the binary.
const HAND_WRITTEN_SCENARIO: &str = include_str!("../../demo/scenario.yaml");
/// The 2013 create_users.js for the demo app.
const PROVISION_FILE: &str = include_str!("../../demo/provision.yaml");
/// A student's session on the demo app recorded with `chorus record` and Chromium (the test
/// `the_shipped_demo_capture_is_a_recorded_student_session` remakes it).
const SAMPLE_CAPTURE: &str = include_str!("../../demo/capture.har");
const DEFAULT_SEED: Seed = Seed {
    classes: 10,
    students: 10,
};

pub(super) async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.serve_only {
        return serve_only(&args).await;
    }
    // What would be refused at the end is refused before the app starts.
    if args.record {
        crate::record::access::check_listen(
            args.record_listen,
            false,
            args.web.i_know_this_is_open,
        )
        .map_err(anyhow::Error::msg)?;
    } else if !args.headless {
        super::settings::web_config(&args.web).await?;
    }
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("could not create {}", args.dir.display()))?;
    let app = App::new(AppOptions {
        events_period_secs: args.events_period_secs,
        seed: None,
    });
    let listen = args.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = serve(&app, listen).await?;
    println!(
        "chorus demo: the demo app (a classroom game platform) is on {}",
        server.url()
    );
    let accounts = provision(&args, &server, seed).await?;
    let code = if args.record {
        record(&args, &server, &accounts).await
    } else {
        replay(&args, &server, &accounts).await
    };
    server.shutdown().await;
    code
}

/// The users CSV and the accounts in it.
struct Accounts {
    csv: PathBuf,
    rows: Vec<EmitRow>,
}

impl Accounts {
    /// A column of the first account (`username`, `password`), for the login hint.
    fn first(&self, column: &str) -> &str {
        self.rows
            .first()
            .and_then(|row| row.columns.iter().find(|(name, _)| name == column))
            .map_or("", |(_, value)| value.as_str())
    }
}

/// `chorus provision chorus-demo/provision.yaml`: the teacher creates the classes and
/// registers the students; their accounts go to the users CSV.
async fn provision(args: &DemoArgs, server: &Server, seed: Seed) -> anyhow::Result<Accounts> {
    let file = args.dir.join("provision.yaml");
    std::fs::write(&file, PROVISION_FILE)
        .with_context(|| format!("could not write {}", file.display()))?;
    let users_csv = args
        .users_csv
        .clone()
        .unwrap_or_else(|| args.dir.join("users.csv"));
    let provision = ProvisionArgs {
        file: file.clone(),
        host: Some(server.url()),
        output: users_csv.clone(),
        concurrency: 8,
        vars: vec![
            format!("classes={}", seed.classes),
            format!("students={}", seed.students),
        ],
        insecure: false,
    };
    println!(
        "provisioning {} classes x {} students: {}",
        seed.classes,
        seed.students,
        provision_command(&provision)
    );
    let provisioned = super::provision::provision_file(&provision).await?;
    let failed = provisioned.failed();
    if failed > 0 || provisioned.rows.is_empty() {
        bail!(
            "the demo app's accounts could not all be created ({failed} failed, above); this is a bug in chorus demo"
        );
    }
    Ok(Accounts {
        csv: users_csv,
        rows: provisioned.rows,
    })
}

fn provision_command(args: &ProvisionArgs) -> String {
    let mut words = vec![
        "chorus provision".to_owned(),
        args.file.display().to_string(),
    ];
    if let Some(host) = &args.host {
        words.push(format!("-H {host}"));
    }
    words.extend(args.vars.iter().map(|var| format!("--var {var}")));
    words.push(format!("-o {}", args.output.display()));
    words.join(" ")
}

async fn serve(app: &App, listen: SocketAddr) -> anyhow::Result<Server> {
    crate::demo::serve(app, listen).await.with_context(|| {
        format!("could not serve the demo app on {listen} (another program may use the port: choose another with --listen)")
    })
}

async fn serve_only(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    if args.users_csv.is_some() && args.seed.is_none() {
        bail!(
            "--users-csv with --serve-only writes the accounts --seed creates: add --seed CLASSESxSTUDENTS, e.g. --seed 10x10"
        );
    }
    let app = App::new(AppOptions {
        events_period_secs: args.events_period_secs,
        seed: args.seed,
    });
    if let Some(path) = &args.users_csv {
        app.write_users_csv(path)
            .with_context(|| format!("could not write the users CSV {}", path.display()))?;
    }
    let server = serve(
        &app,
        args.listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8001))),
    )
    .await?;
    let base = server.url();
    println!("chorus demo app listening on {base}");
    println!("  teacher login: {TEACHER_USERNAME} / {TEACHER_PASSWORD}");
    if let Some(seed) = args.seed {
        println!(
            "  seeded {} classes x {} students",
            seed.classes, seed.students
        );
        if let Some(path) = &args.users_csv {
            println!("  student accounts written to {}", path.display());
        }
    }
    println!("  open {base}/ in a browser; server statistics at {base}/__demo/stats");
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c()
        .await
        .context("could not listen for Ctrl-C")?;
    server.shutdown().await;
    Ok(EXIT_OK.into())
}

/// Converts the sample capture, writes it and its scenario next to the users, and runs the
/// scenario through `chorus run`.
async fn replay(args: &DemoArgs, server: &Server, accounts: &Accounts) -> anyhow::Result<ExitCode> {
    let scenario = convert_sample(&args.dir)?;
    let hand_written = args.dir.join("hand-written.yaml");
    std::fs::write(&hand_written, HAND_WRITTEN_SCENARIO)
        .with_context(|| format!("could not write {}", hand_written.display()))?;
    println!(
        "  {} is the same session written by hand (the 2013 playback), to compare",
        hand_written.display()
    );
    let students = accounts.rows.len() as u64;
    let users = args.load.users.unwrap_or(students.clamp(1, 50));
    let spawn_rate = args.load.spawn_rate.unwrap_or(10.0);
    let mut argv: Vec<String> = vec![
        "chorus".into(),
        "run".into(),
        scenario.display().to_string(),
    ];
    argv.extend(["--data".into(), format!("users={}", accounts.csv.display())]);
    argv.extend([
        "-H".into(),
        args.load.host.clone().unwrap_or_else(|| server.url()),
    ]);
    argv.extend([
        "-u".into(),
        users.to_string(),
        "-r".into(),
        spawn_rate.to_string(),
    ]);
    if let Some(run_time) = &args.load.run_time {
        // As the user wrote it: `60s` stays `60s`.
        argv.extend(["-t".into(), run_time.written.clone()]);
    }
    if args.headless {
        // The demo is meant to run clean: a single failure fails it.
        argv.extend([
            "--headless".into(),
            "--threshold".into(),
            "failures<1".into(),
        ]);
    } else {
        argv.push("--autostart".into());
        argv.extend([
            "--web-host".into(),
            args.web.web_host.clone(),
            "--web-port".into(),
            args.web.web_port.to_string(),
        ]);
        if let Some(auth) = &args.web.web_auth {
            argv.extend(["--web-auth".into(), auth.clone()]);
        }
        for name in &args.web.web_allowed_host {
            argv.extend(["--web-allowed-host".into(), name.clone()]);
        }
        if args.web.i_know_this_is_open {
            argv.push("--i-know-this-is-open".into());
        }
        println!(
            "  on the page: watch the statistics and charts, change the user count, stop, download the reports"
        );
    }
    if let Some(prefix) = &args.output.csv {
        argv.extend(["--csv".into(), prefix.display().to_string()]);
    }
    if let Some(path) = &args.output.json {
        argv.extend(["--json".into(), path.display().to_string()]);
    }
    if let Some(path) = &args.output.html {
        argv.extend(["--html".into(), path.display().to_string()]);
    }
    if let Some(path) = &args.output.markdown {
        argv.extend(["--markdown".into(), path.display().to_string()]);
    }
    if let Some(path) = &args.output.junit {
        argv.extend(["--junit".into(), path.display().to_string()]);
    }
    println!("  running: {}", argv[1..].join(" "));
    let cli = Cli::try_parse_from(&argv).context("the demo built an invalid command line")?;
    let Command::Run(run) = cli.command else {
        unreachable!("the demo builds a run command")
    };
    super::run::run(*run).await
}

/// The app behind the recorder: the user clicks through the proxy, and gets the commands that
/// turn their capture into a load test.
async fn record(args: &DemoArgs, server: &Server, accounts: &Accounts) -> anyhow::Result<ExitCode> {
    let captures = args.dir.join("captures");
    let record = RecordArgs {
        target: Some(server.url()),
        forward: false,
        mitm: false,
        listen: args.record_listen,
        output: captures.clone(),
        force: false,
        include: Vec::new(),
        exclude: Vec::new(),
        max_body: crate::record::DEFAULT_MAX_BODY,
        insecure: false,
        ca_dir: None,
        proxy_auth: None,
        i_know_this_is_open: args.web.i_know_this_is_open,
    };
    let (username, password) = (accounts.first("username"), accounts.first("password"));
    println!(
        "  log in through the recorder (the address below) as a student, e.g. {username} / {password}, and play a game session"
    );
    let code = super::record::record(record).await?;
    let dir = args.dir.display();
    let capture = newest_capture(&captures).map_or_else(
        || format!("{}/<capture>.har", captures.display()),
        |path| path.display().to_string(),
    );
    println!();
    println!("next, with your capture:");
    println!("  chorus convert {capture} -o {dir}/my-scenario.yaml");
    println!("  chorus demo --serve-only --listen 127.0.0.1:8001        # in another terminal");
    println!("  chorus provision {dir}/provision.yaml -H http://127.0.0.1:8001 -o {dir}/users.csv");
    println!(
        "  chorus run {dir}/my-scenario.yaml --data users={dir}/users.csv -H http://127.0.0.1:8001 --check"
    );
    println!(
        "  chorus run {dir}/my-scenario.yaml --data users={dir}/users.csv -H http://127.0.0.1:8001"
    );
    Ok(code)
}

/// `chorus convert chorus-demo/capture.har -o chorus-demo/scenario.yaml` with the capture
/// shipped in the binary; returns the scenario's path.
fn convert_sample(dir: &Path) -> anyhow::Result<PathBuf> {
    let capture = dir.join("capture.har");
    std::fs::write(&capture, SAMPLE_CAPTURE)
        .with_context(|| format!("could not write {}", capture.display()))?;
    let source = capture.display().to_string();
    let (har, _) = crate::har::read::read_str(SAMPLE_CAPTURE, &source)?;
    let conversion = crate::convert::convert_owned(har, &source, &Default::default())?;
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, &conversion.yaml)
        .with_context(|| format!("could not write {}", scenario.display()))?;
    println!(
        "converted the sample capture: chorus convert {source} -o {}",
        scenario.display()
    );
    println!(
        "  (a student's session recorded with chorus record and Chromium) {} request(s), {} value(s) carried from response to request, {} generated per user; each user logs in with its own row of the users CSV",
        conversion.requests, conversion.extracted_values, conversion.generated_values
    );
    Ok(scenario)
}

/// The capture the recorder just wrote: the newest `.har` in the folder.
fn newest_capture(folder: &Path) -> Option<PathBuf> {
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "har"))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max()
        .map(|(_, path)| path)
}
