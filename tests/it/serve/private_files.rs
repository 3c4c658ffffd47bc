//! Files that hold secrets are private to the server's user (issue #16 item 4): the data
//! directory, the SQLite database with its `-wal`/`-shm` files, the job logs, and each
//! attempt's I/O directory with the step's input, output and script files; the I/O
//! directories of attempts a crashed worker left behind are removed when the worker starts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::server_harness::{Backend, Home, serve_test, step};

const WORKSPACE: &str = r#"
tasks:
  io:
    input:
      token: { type: string, secret: true }
      marker: { type: string, required: true }
    flow:
      look:
        type: script
        input: { token: "{{ input.token }}", marker: "{{ input.marker }}" }
        script: |
          io=$(dirname "$STROEM_INPUT")
          echo "$io" > "$INPUT_MARKER"
          printf 'OUTPUT: {"dir": "%s", "input": "%s", "output": "%s", "script": "%s", "path": "%s"}\n' \
            "$(stat -c %a "$io")" "$(stat -c %a "$STROEM_INPUT")" "$(stat -c %a "$STROEM_OUTPUT")" \
            "$(stat -c %a "$0")" "$io"
"#;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every directory and file under `root` is reachable by its owner only.
fn assert_private_tree(root: &Path) {
    assert_eq!(mode(root), 0o700, "{}", root.display());
    for entry in std::fs::read_dir(root).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_private_tree(&path);
        } else {
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is {:o}",
                path.display(),
                mode(&path)
            );
        }
    }
}

serve_test! {
    async fn secret_holding_files_are_private_and_stale_io_dirs_are_removed(backend) {
        let home = Home::new(backend).await;
        let workspace = home.workspace(WORKSPACE);
        home.configure_workspace(&workspace);
        let data = home.path().join("data");
        // What a worker killed mid-attempt left behind: an attempt directory with the step's
        // input (a secret) in it.
        let stale = data.join("attempts/0190c1a2-dead-7000-8000-000000000000");
        std::fs::create_dir_all(stale.join("io-x")).expect("stale dir");
        std::fs::write(stale.join("io-x/input.json"), r#"{"token": "left-behind"}"#)
            .expect("stale input");

        let server = home.start().await;
        assert!(!stale.exists(), "the stale attempt directory is still there");
        let marker = home.scratch().join("io-dir");
        let body = json!({"input": {"token": "io-secret-value", "marker": marker}}).to_string();
        let id = server.execute("default", "io", &body).await;
        let job = server.wait_finished(id).await;
        assert_eq!(job["status"], "completed", "{job:#}");
        let output = &step(&job, "look")["output"];
        assert_eq!(
            (&output["dir"], &output["input"], &output["output"], &output["script"]),
            (&json!("700"), &json!("600"), &json!("600"), &json!("600")),
            "{output:#}"
        );
        let io_dir = std::fs::read_to_string(&marker).expect("marker");
        assert!(!Path::new(io_dir.trim()).exists(), "{io_dir} outlived its attempt");

        assert_eq!(mode(&data), 0o700);
        assert_private_tree(&data.join("logs"));
        if backend == Backend::Sqlite {
            for name in ["stroem.db", "stroem.db-wal", "stroem.db-shm"] {
                let path = data.join(name);
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
        server.stop().await;
    }
}
