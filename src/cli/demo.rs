//! `chorus demo`: the built-in demo application, and the workflow against it. `--serve-only`
//! serves the app; `--record` adds the recorder in front of it; otherwise the app is seeded,
//! its users and the demo scenario are written to `./chorus-demo/` for the user to read and
//! edit, and `chorus run` runs them (with the page, or `--headless`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use super::args::{DemoArgs, RecordArgs};
use super::{Cli, Command, EXIT_OK};
use crate::demo::{App, AppOptions, Seed, Server, TEACHER_PASSWORD, TEACHER_USERNAME};

/// The hand-written 2013 playback, shipped in the binary.
const DEMO_SCENARIO: &str = include_str!("../../demo/scenario.yaml");
const DEFAULT_SEED: Seed = Seed {
    classes: 10,
    students: 10,
};

pub(super) async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.serve_only {
        return serve_only(&args).await;
    }
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("could not create {}", args.dir.display()))?;
    let users_csv = args
        .users_csv
        .clone()
        .unwrap_or_else(|| args.dir.join("users.csv"));
    let app = App::new(AppOptions {
        events_period_secs: args.events_period_secs,
        seed: Some(seed),
    });
    app.write_users_csv(&users_csv)
        .with_context(|| format!("could not write {}", users_csv.display()))?;
    let listen = args.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = serve(&app, listen).await?;
    println!(
        "chorus demo: the demo app (a classroom game platform) is on {}",
        server.url()
    );
    println!(
        "  {} classes x {} students; their accounts are in {}",
        seed.classes,
        seed.students,
        users_csv.display()
    );
    let code = if args.record {
        record(&args, &server, &users_csv).await
    } else {
        replay(&args, &server, &users_csv, seed).await
    };
    server.shutdown().await;
    code
}

async fn serve(app: &App, listen: SocketAddr) -> anyhow::Result<Server> {
    crate::demo::serve(app, listen).await.with_context(|| {
        format!("could not serve the demo app on {listen} (another program may use the port: choose another with --listen)")
    })
}

async fn serve_only(args: &DemoArgs) -> anyhow::Result<ExitCode> {
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

/// Writes the demo scenario next to the users and runs it through `chorus run`.
async fn replay(
    args: &DemoArgs,
    server: &Server,
    users_csv: &Path,
    seed: Seed,
) -> anyhow::Result<ExitCode> {
    let scenario = args.dir.join("scenario.yaml");
    std::fs::write(&scenario, DEMO_SCENARIO)
        .with_context(|| format!("could not write {}", scenario.display()))?;
    println!(
        "  the scenario (the 2013 playback, written by hand) is {}: read it, edit it, run it again",
        scenario.display()
    );
    let students = u64::from(seed.classes) * u64::from(seed.students);
    let users = args.load.users.unwrap_or(students.min(50));
    let spawn_rate = args.load.spawn_rate.unwrap_or(10.0);
    let mut argv: Vec<String> = vec![
        "chorus".into(),
        "run".into(),
        scenario.display().to_string(),
    ];
    argv.extend(["--data".into(), format!("users={}", users_csv.display())]);
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
    if let Some(run_time) = args.load.run_time {
        argv.extend(["-t".into(), format!("{}ms", run_time.as_millis())]);
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
    println!("  running: {}", argv[1..].join(" "));
    let cli = Cli::try_parse_from(&argv).context("the demo built an invalid command line")?;
    let Command::Run(run) = cli.command else {
        unreachable!("the demo builds a run command")
    };
    super::run::run(run).await
}

/// The app behind the recorder: the user clicks through the proxy, and gets the commands that
/// turn their capture into a load test.
async fn record(args: &DemoArgs, server: &Server, users_csv: &Path) -> anyhow::Result<ExitCode> {
    let captures = args.dir.join("captures");
    let record = RecordArgs {
        target: Some(server.url()),
        forward: false,
        mitm: false,
        listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        output: captures.clone(),
        include: Vec::new(),
        exclude: Vec::new(),
        max_body: crate::record::DEFAULT_MAX_BODY,
        insecure: false,
        ca_dir: None,
    };
    let (username, password, _) = first_student(users_csv)?;
    println!(
        "  log in at http://127.0.0.1:9090/ as a student, e.g. {username} / {password}, and play a game session"
    );
    let code = super::record::record(record).await?;
    let dir = args.dir.display();
    println!();
    println!(
        "next, with your capture (the newest file in {}):",
        captures.display()
    );
    println!(
        "  chorus convert {}/<capture>.har -o {dir}/my-scenario.yaml",
        captures.display()
    );
    println!(
        "  chorus demo --serve-only --seed 10x10 --users-csv {dir}/users.csv --listen 127.0.0.1:8001"
    );
    println!(
        "  chorus run {dir}/my-scenario.yaml --data users={dir}/users.csv -H http://127.0.0.1:8001 --check"
    );
    println!(
        "  chorus run {dir}/my-scenario.yaml --data users={dir}/users.csv -H http://127.0.0.1:8001"
    );
    Ok(code)
}

fn first_student(users_csv: &Path) -> anyhow::Result<(String, String, String)> {
    let mut reader = csv::Reader::from_path(users_csv)
        .with_context(|| format!("could not read {}", users_csv.display()))?;
    let row = reader
        .records()
        .next()
        .context("the users CSV is empty")?
        .with_context(|| format!("could not read {}", users_csv.display()))?;
    Ok((
        row[0].to_owned(),
        row[1].to_owned(),
        row.get(2).unwrap_or_default().to_owned(),
    ))
}
