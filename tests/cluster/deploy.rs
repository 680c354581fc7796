//! `deploy/kubernetes/`: the manifests validate and the chorus command lines in them parse.

use super::*;

/// `deploy/kubernetes/`: every resource validates against the Kubernetes schemas
/// (`kubernetes-validate --strict`, from PyPI; `.ci/run` installs it under target/tools), the
/// chorus command lines in it parse, and its example scenario loads with its example data.
#[test]
fn kubernetes_manifests_validate_and_their_command_lines_parse() {
    use clap::Parser as _;
    use yaml_rust2::{Yaml, YamlLoader};

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let folder = root.join("deploy/kubernetes");
    let files: Vec<PathBuf> = [
        "scenario-configmap.yaml",
        "data-secret.yaml",
        "master.yaml",
        "workers.yaml",
    ]
    .iter()
    .map(|name| folder.join(name))
    .collect();
    let mut documents = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        documents.extend(YamlLoader::load_from_str(&text).unwrap());
    }
    let kind = |doc: &Yaml| doc["kind"].as_str().unwrap_or_default().to_owned();
    let mut command_lines = 0;
    for doc in &documents {
        let Some(containers) = doc["spec"]["template"]["spec"]["containers"].as_vec() else {
            continue;
        };
        for container in containers {
            let mut argv = vec!["chorus".to_owned()];
            argv.extend(
                container["args"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned()),
            );
            if let Err(err) = chorus::cli::Cli::try_parse_from(&argv) {
                panic!(
                    "{} {}: {argv:?} does not parse: {err}",
                    kind(doc),
                    container["name"].as_str().unwrap()
                );
            }
            command_lines += 1;
        }
    }
    assert_eq!(command_lines, 2);
    let config = documents.iter().find(|d| kind(d) == "ConfigMap").unwrap();
    let secret = documents
        .iter()
        .find(|d| kind(d) == "Secret" && d["metadata"]["name"].as_str() == Some("chorus-data"))
        .unwrap();
    let dir = output_dir("cluster_kubernetes_manifests");
    std::fs::write(
        dir.join("scenario.yaml"),
        config["data"]["scenario.yaml"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("users.csv"),
        secret["stringData"]["users.csv"].as_str().unwrap(),
    )
    .unwrap();
    let options = chorus::scenario::LoadOptions {
        data_overrides: vec![("users".to_owned(), dir.join("users.csv"))],
        ..Default::default()
    };
    chorus::scenario::load(&dir.join("scenario.yaml"), &options)
        .expect("the example scenario loads");

    let installed = root.join("target/tools/kubernetes-validate/bin/kubernetes-validate");
    let tool = std::env::var_os("CHORUS_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .or_else(|| installed.is_file().then_some(installed));
    let Some(tool) = tool else {
        let why = "kubernetes-validate is not installed: python3 -m venv target/tools/kubernetes-validate \
                   && target/tools/kubernetes-validate/bin/pip install kubernetes-validate==1.37.0";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "under CI the schemas must be checked; {why}"
        );
        eprintln!("skipped the schema validation: {why}");
        return;
    };
    let output = Command::new(&tool)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}", tool.display()));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    // One "passed" line per resource: nothing was skipped as unknown.
    let resources = documents.len();
    assert_eq!(
        printed.matches(" passed for resource ").count(),
        resources,
        "{printed}"
    );
}
