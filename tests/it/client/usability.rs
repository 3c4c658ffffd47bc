//! What a new user tripped on (issue #15, items 13 and 14), through the real binary.

use super::*;

/// The last 8 hex digits of an id: what the UI shows.
fn short(id: &str) -> String {
    let digits = id.replace('-', "");
    digits[digits.len() - 8..].to_owned()
}

#[test]
fn job_verbs_take_the_short_id_the_ui_shows() {
    let server = Server::start();
    let output = server.run(&["trigger", "hello", "--set", "name=Short", "--wait"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = stdout(&output).lines().next().expect("job id").to_owned();
    let part = short(&id);

    let output = server.run(&["status", &part]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains(&id), "{}", stdout(&output));
    let output = server.run(&["logs", &part]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("hello Short"),
        "{}",
        stdout(&output)
    );
    let output = server.run(&["logs", &part, "--follow"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("hello Short"),
        "{}",
        stdout(&output)
    );
    // The start of the id works the same way.
    let output = server.run(&["status", &id[..13]]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let output = server.run(&["trigger", "long"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let long = stdout(&output).lines().next().expect("job id").to_owned();
    let output = server.run(&["cancel", &short(&long)]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("job {long} cancelled\n"));

    // The two jobs' ids start alike (UUIDv7 starts with the time): the shared start is
    // ambiguous, and the error lists both.
    let shared: String = id
        .chars()
        .zip(long.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    assert!(shared.replace('-', "").len() >= 4, "{id} {long}");
    let output = server.run(&["status", &shared]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("ambiguous"), "{text}");
    assert!(text.contains(&id) && text.contains(&long), "{text}");

    // Not an id at all: a usage error before anything is sent.
    for bad in ["abc", "xyz12345"] {
        let output = server.run(&["status", bad]);
        assert_eq!(code(&output), 2, "{bad}: {}", stderr(&output));
    }
}

#[test]
fn small_mistakes_get_clear_answers() {
    let server = Server::start();
    // A typo in the task name: the nearest task is suggested, like `stroem run` does.
    let output = server.run(&["trigger", "helo", "--set", "name=x"]);
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("did you mean 'hello'?"),
        "{}",
        stderr(&output)
    );

    // A step the job does not have is an error naming its steps, not an empty log.
    let output = server.run(&["trigger", "hello", "--set", "name=Steps", "--wait"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = stdout(&output).lines().next().expect("job id").to_owned();
    for args in [
        &["logs", &id, "--step", "nope"][..],
        &["logs", &id, "--step", "nope", "--follow"],
    ] {
        let output = server.run(args);
        assert_eq!(code(&output), 3, "{args:?}: {}", stderr(&output));
        let text = stderr(&output);
        assert!(text.contains("no step 'nope'"), "{args:?}: {text}");
        assert!(text.contains("greet"), "{args:?}: {text}");
    }
    let output = server.run(&["logs", &id, "--step", "greet"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("hello Steps"),
        "{}",
        stdout(&output)
    );

    // An unknown status is a usage error naming the valid ones, before anything is sent.
    let output = server.run(&["jobs", "--status", "done"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("completed"), "{}", stderr(&output));
}

/// `--server` and `--token` belong to the client verbs (and `--server` to `work`); `-o` to the
/// verbs that print documents. Other verbs' help does not offer them.
#[test]
fn help_shows_client_options_only_where_they_apply() {
    let server = Server::start();
    let help = |verb: &str| {
        let output = server.run(&[verb, "--help"]);
        assert_eq!(code(&output), 0, "{verb}: {}", stderr(&output));
        stdout(&output)
    };
    for verb in [
        "status",
        "trigger",
        "jobs",
        "logs",
        "cancel",
        "workspaces",
        "tasks",
    ] {
        let text = help(verb);
        for option in ["--server", "--token", "--output"] {
            assert!(
                text.contains(option),
                "{verb} --help lacks {option}:\n{text}"
            );
        }
    }
    let expected: [(&str, &[&str], &[&str]); 4] = [
        ("serve", &[], &["--server", "--token", "--output"]),
        ("work", &["--server"], &["--token", "--output"]),
        ("validate", &["--output"], &["--server", "--token"]),
        ("run", &["--output"], &["--server", "--token"]),
    ];
    for (verb, shown, hidden) in expected {
        let text = help(verb);
        for option in shown {
            assert!(
                text.contains(option),
                "{verb} --help lacks {option}:\n{text}"
            );
        }
        for option in hidden {
            assert!(
                !text.contains(option),
                "{verb} --help shows {option}:\n{text}"
            );
        }
    }
}

/// Server log lines carry no colour codes when stderr is a file (issue #15 item 14).
#[test]
fn serve_logs_are_plain_text_when_stderr_is_not_a_terminal() {
    let home = tempfile::tempdir().expect("home");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let config = serde_json::json!({
        "data_dir": home.path().join("data"),
        "listen": format!("127.0.0.1:{port}"),
    });
    std::fs::write(home.path().join("stroem.yaml"), config.to_string()).expect("config");
    let log = home.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stroem"))
        .args(["serve", "-c", "stroem.yaml"])
        .current_dir(home.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("STROEM__LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("stroem serve starts");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&url).call().is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not answer within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\x1b'), "colour codes in the log:\n{text:?}");
}
