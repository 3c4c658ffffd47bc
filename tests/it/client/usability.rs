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
