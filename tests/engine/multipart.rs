//! `multipart:` bodies as a real parser reads them (axum's `Multipart`, which is multer):
//! every text field and file part, in order, with names, file names, media types and bytes,
//! and a fresh boundary per request.

use std::collections::BTreeSet;

use crate::util::{output_dir, upload};

use super::{load_yaml, run_rounds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_and_file_part_reaches_the_server_with_a_fresh_boundary_each_time() {
    let dir = output_dir("multipart_parts");
    std::fs::write(
        dir.join("users.csv"),
        "username,password\nalice,pw\nbob,pw\n",
    )
    .unwrap();
    // Bytes a careless writer would break: CRLF, a boundary-like line, NUL, invalid UTF-8.
    let logo: Vec<u8> = b"\x89PNG\r\n\x1a\n--\r\n------chorusFormBoundary\r\n\x00\xff\xfe end"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(4096))
        .collect();
    std::fs::write(dir.join("logo.png"), &logo).unwrap();
    let (addr, log) = upload::start().await;
    let text = format!(
        r#"host: http://{addr}
data:
  users: {{ file: users.csv, as: user }}
flows:
  - name: report
    steps:
      - post: /projects/team/issues
        multipart:
          authenticity_token: "tok-{{{{ vu }}}}-{{{{ iteration }}}}"
          "issue[subject]": "Printer jams (reported by {{{{ user.username }}}})"
          "attachments[dummy][file]": {{ filename: "", content_type: application/octet-stream, content: "" }}
          notes: {{ filename: "notes {{{{ user.username }}}}.txt", content_type: "text/plain; charset=utf-8", content: "line 1\r\nline \"2\" é" }}
          logo: {{ filename: logo.png, content_type: image/png, file: logo.png }}
          count: 3
"#
    );
    let scenario = load_yaml(&dir, &text);
    let result = run_rounds(scenario, 2, 2).await;
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    let mut boundaries = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    for request in &received {
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", "/projects/team/issues")
        );
        let content_type = request.headers["content-type"].to_str().unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or_else(|| panic!("{content_type}"));
        boundaries.insert(boundary.to_owned());
        let parts = request.parts.as_ref().expect("a multipart body");
        let names: Vec<&str> = parts.iter().map(|part| part.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "authenticity_token",
                "issue[subject]",
                "attachments[dummy][file]",
                "notes",
                "logo",
                "count"
            ]
        );
        assert!(parts[0].bytes.starts_with(b"tok-"));
        assert_eq!(parts[0].file_name, None);
        let subject = String::from_utf8(parts[1].bytes.clone()).unwrap();
        let user = subject
            .strip_prefix("Printer jams (reported by ")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{subject}"))
            .to_owned();
        subjects.insert(subject);
        let empty = &parts[2];
        assert_eq!(empty.file_name.as_deref(), Some(""));
        assert_eq!(
            empty.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert!(empty.bytes.is_empty());
        let notes = &parts[3];
        assert_eq!(notes.file_name, Some(format!("notes {user}.txt")));
        assert_eq!(
            notes.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(notes.bytes, "line 1\r\nline \"2\" é".as_bytes());
        assert_eq!(parts[4].file_name.as_deref(), Some("logo.png"));
        assert_eq!(parts[4].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[4].bytes, logo, "the file's bytes, unchanged");
        assert_eq!(parts[5].bytes, b"3");
    }
    assert_eq!(boundaries.len(), 4, "a fresh boundary per request");
    assert_eq!(
        subjects,
        BTreeSet::from([
            "Printer jams (reported by alice)".to_owned(),
            "Printer jams (reported by bob)".to_owned()
        ])
    );
}
