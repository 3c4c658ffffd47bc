//! Secret resolution against real files, directories and symbolic links.

use std::fs;

use serde_json::json;
use tempfile::TempDir;

use super::*;

fn template(text: &str) -> SecretValue {
    SecretValue::Template(text.to_owned())
}

fn secrets(entries: Vec<(&str, SecretValue)>) -> Map<SecretValue> {
    entries
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn env() -> BTreeMap<String, String> {
    [
        ("SLACK_URL", "https://hooks.example/T000"),
        ("AWS_KEY_ID", "AKIAEXAMPLE"),
        ("EMPTY", ""),
        ("STROEM_WORKER_TOKEN", "must-stay-hidden"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A secret directory with a few files, and an outside directory.
struct Fixture {
    secrets: TempDir,
    outside: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let secrets = TempDir::new().expect("temp dir");
        let outside = TempDir::new().expect("temp dir");
        fs::write(secrets.path().join("db_password"), "hunter2\n").expect("write");
        fs::write(secrets.path().join("two_newlines"), "value\n\n").expect("write");
        fs::write(secrets.path().join("crlf"), "value\r\n").expect("write");
        fs::write(secrets.path().join("empty"), "\n").expect("write");
        fs::write(secrets.path().join("worker_token"), "tok-123456").expect("write");
        fs::write(
            secrets.path().join("pem"),
            "-----BEGIN-----\nabcd\nef\n-----END-----\n",
        )
        .expect("write");
        fs::write(outside.path().join("private"), "outside").expect("write");
        fs::create_dir(secrets.path().join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(
            outside.path().join("private"),
            secrets.path().join("escape_link"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(
            secrets.path().join("db_password"),
            secrets.path().join("inside_link"),
        )
        .expect("symlink");
        Fixture { secrets, outside }
    }

    fn path(&self, name: &str) -> String {
        self.secrets.path().join(name).display().to_string()
    }

    fn resolve(&self, secrets: &Map<SecretValue>) -> Result<Value, Vec<SecretError>> {
        resolve(
            secrets,
            &env(),
            &[
                self.secrets.path().to_path_buf(),
                PathBuf::from("/nonexistent/secrets"),
            ],
            &[self.secrets.path().join("worker_token")],
        )
    }

    /// Error lines with the temporary directories replaced, for snapshots.
    fn redact(&self, errors: &[SecretError]) -> String {
        let secrets_dir = self.secrets.path().display().to_string();
        let outside_dir = self.outside.path().display().to_string();
        errors
            .iter()
            .map(|e| {
                format!("{:?}: {e}", e.kind)
                    .replace(&secrets_dir, "<secrets>")
                    .replace(&outside_dir, "<outside>")
                    .replace(outside_name(&self.outside), "<outside-name>")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn outside_name(dir: &TempDir) -> &str {
    dir.path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8")
}

#[test]
fn resolves_env_files_literals_and_nested_maps() {
    let f = Fixture::new();
    let defs = secrets(vec![
        ("SLACK_URL", template("{{ env.SLACK_URL }}")),
        (
            "DB_PASSWORD",
            template(&format!("{{{{ file('{}') }}}}", f.path("db_password"))),
        ),
        (
            "LINKED",
            template(&format!("{{{{ file('{}') }}}}", f.path("inside_link"))),
        ),
        (
            "DOTTED",
            template(&format!(
                "{{{{ file('{}/../db_password') }}}}",
                f.path("sub")
            )),
        ),
        (
            "TWO",
            template(&format!("{{{{ file('{}') }}}}", f.path("two_newlines"))),
        ),
        (
            "CRLF",
            template(&format!("{{{{ file('{}') }}}}", f.path("crlf"))),
        ),
        ("LITERAL", template("plain-value")),
        (
            "aws",
            SecretValue::Map(secrets(vec![
                ("key_id", template("{{ env.AWS_KEY_ID }}")),
                ("region", template("eu-{{ 'north' }}-1")),
            ])),
        ),
    ]);
    let resolved = f.resolve(&defs).expect("resolves");
    assert_eq!(
        resolved,
        json!({
            "SLACK_URL": "https://hooks.example/T000",
            "DB_PASSWORD": "hunter2",
            "LINKED": "hunter2",
            "DOTTED": "hunter2",
            "TWO": "value\n",
            "CRLF": "value",
            "LITERAL": "plain-value",
            "aws": {"key_id": "AKIAEXAMPLE", "region": "eu-north-1"},
        })
    );
}

#[test]
fn every_failing_secret_is_reported_by_name() {
    let f = Fixture::new();
    let outside = f.outside.path().join("private").display().to_string();
    let outside_name = f
        .outside
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8");
    let defs = secrets(vec![
        ("UNSET", template("{{ env.NOT_SET }}")),
        ("HIDDEN", template("{{ env.STROEM_WORKER_TOKEN }}")),
        ("EMPTY_ENV", template("{{ env.EMPTY }}")),
        (
            "MISSING_FILE",
            template(&format!("{{{{ file('{}') }}}}", f.path("nope"))),
        ),
        ("RELATIVE", template("{{ file('db_password') }}")),
        ("OUTSIDE", template(&format!("{{{{ file('{outside}') }}}}"))),
        (
            "DOTDOT",
            template(&format!(
                "{{{{ file('{}/../{outside_name}/private') }}}}",
                f.path("sub/..")
            )),
        ),
        (
            "SYMLINK",
            template(&format!("{{{{ file('{}') }}}}", f.path("escape_link"))),
        ),
        (
            "REFUSED",
            template(&format!("{{{{ file('{}') }}}}", f.path("worker_token"))),
        ),
        (
            "EMPTY_FILE",
            template(&format!("{{{{ file('{}') }}}}", f.path("empty"))),
        ),
        ("SYNTAX", template("{{ env.SLACK_URL ")),
        (
            "nested",
            SecretValue::Map(secrets(vec![("deep", template("{{ env.ALSO_UNSET }}"))])),
        ),
        ("GOOD", template("{{ env.SLACK_URL }}")),
    ]);
    let errors = f.resolve(&defs).expect_err("fails");
    insta::assert_snapshot!(f.redact(&errors));
}

#[test]
fn too_short_secrets_are_named_for_the_warning() {
    let resolved = json!({
        "a": "hunter2",
        "short": "abc",
        "pem": "-----BEGIN-----\nabcd\nef\n-----END-----",
        "nested": {"token": "tok-123456", "tiny": "xy"},
    });
    assert_eq!(unmaskable(&resolved), ["short", "nested.tiny"]);
}
