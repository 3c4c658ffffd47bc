//! What every container runner decides the same way, as pure functions: the program a container
//! starts (WF §6.1, §6.3), the limits of `resources` (WF §2.5, §6.5), where Strøm's files are
//! inside it (WF §6.6, §11.1) and the labels that tie a container to its attempt.

use std::collections::BTreeMap;
use std::path::Path;

use super::spec::{Limits, StepSpec};

/// Where the working copy is mounted for `runner: docker` script steps (WF §6.6).
pub const WORKSPACE_DIR: &str = "/workspace";
/// Where the attempt's I/O directory is mounted (WF §11.1).
pub const IO_DIR: &str = "/stroem";

/// Label keys on every container (and pod) Strøm starts.
pub mod label {
    /// Marks a container as Strøm's.
    pub const MANAGED: &str = "io.stroem.managed";
    pub const JOB: &str = "io.stroem.job";
    pub const STEP: &str = "io.stroem.step";
    pub const ATTEMPT: &str = "io.stroem.attempt";
    /// The worker's name (display only).
    pub const WORKER: &str = "io.stroem.worker";
    /// The attempt directory of the worker process that started it: once that directory is
    /// gone, the process is dead and the container a leftover.
    pub const INSTANCE: &str = "io.stroem.instance";
    /// The root holding the worker's attempt directories (`<data_dir>/attempts`).
    pub const SCRATCH_ROOT: &str = "io.stroem.scratch-root";
}

/// The labels of an attempt's container.
pub fn labels(
    spec: &StepSpec,
    worker: &str,
    instance: Option<&Path>,
    scratch_root: Option<&Path>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (label::MANAGED.to_owned(), "true".to_owned()),
        (label::JOB.to_owned(), spec.job_id.to_string()),
        (label::STEP.to_owned(), spec.step.clone()),
        (label::ATTEMPT.to_owned(), spec.attempt.to_string()),
        (label::WORKER.to_owned(), worker.to_owned()),
    ]);
    if let (Some(instance), Some(root)) = (instance, scratch_root) {
        labels.insert(label::INSTANCE.to_owned(), instance.display().to_string());
        labels.insert(label::SCRATCH_ROOT.to_owned(), root.display().to_string());
    }
    labels
}

/// The ENTRYPOINT and CMD a container is created with; `None` keeps the image's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

/// The program of a `type: docker` / `type: pod` step (WF §6.3): `entrypoint` replaces the
/// image's ENTRYPOINT and `command` its CMD; `cmd` alone runs as `/bin/sh -c <cmd>` with the
/// ENTRYPOINT cleared, and with `entrypoint` is split shell-style into its arguments.
pub fn prepared_image(
    entrypoint: Option<&[String]>,
    command: Option<&[String]>,
    cmd: Option<&str>,
) -> Result<Command, String> {
    let owned = |items: &[String]| items.to_vec();
    match (entrypoint, command, cmd) {
        (_, Some(_), Some(_)) => Err("'cmd' cannot be combined with 'command'".to_owned()),
        (None, None, Some(cmd)) => Ok(Command {
            entrypoint: Some(vec!["/bin/sh".to_owned()]),
            cmd: Some(vec!["-c".to_owned(), cmd.to_owned()]),
        }),
        (Some(entrypoint), None, Some(cmd)) => Ok(Command {
            entrypoint: Some(owned(entrypoint)),
            cmd: Some(split_words(cmd).map_err(|error| format!("cmd: {error}"))?),
        }),
        (entrypoint, command, None) => Ok(Command {
            entrypoint: entrypoint.map(owned),
            cmd: command.map(owned),
        }),
    }
}

/// A script step's command line (already in container paths) as ENTRYPOINT and CMD.
pub fn script_command(argv: Vec<String>) -> Result<Command, String> {
    let mut argv = argv.into_iter();
    let program = argv
        .next()
        .ok_or_else(|| "the action's interpreter is empty".to_owned())?;
    Ok(Command {
        entrypoint: Some(vec![program]),
        cmd: Some(argv.collect()),
    })
}

/// Splits `text` into words like a POSIX shell does, without expansions: blanks separate
/// words, single quotes keep everything, double quotes keep everything but `\"`, `\\`, `\$`
/// and `` \` ``, and a backslash outside quotes keeps the next character.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("a trailing backslash escapes nothing".to_owned()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A CPU quantity (`2`, `0.5`, `500m`) in billionths of a CPU (Docker's `NanoCpus`).
pub fn nano_cpus(cpu: &str) -> Option<i64> {
    let (number, scale) = match cpu.strip_suffix('m') {
        Some(milli) => (milli, 1_000_000.0),
        None => (cpu, 1_000_000_000.0),
    };
    let value: f64 = number.parse().ok()?;
    let nanos = (value * scale).round();
    (value > 0.0 && (1.0..9.0e18).contains(&nanos)).then_some(nanos as i64)
}

/// A memory quantity (`512Mi`, `2Gi`, `1G`, `1000`) in bytes.
pub fn memory_bytes(memory: &str) -> Option<i64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| memory.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((memory, 1.0));
    let value: f64 = number.parse().ok()?;
    let bytes = (value * scale).ceil();
    (value > 0.0 && bytes.is_finite() && bytes < 9.0e18).then_some(bytes as i64)
}

/// The limits of `resources` as (nano CPUs, memory bytes); a value that does not parse is an
/// error naming it (validation accepts only parseable ones, so this is a defence).
pub fn limits(resources: Option<&Limits>) -> Result<(Option<i64>, Option<i64>), String> {
    let Some(limits) = resources else {
        return Ok((None, None));
    };
    let cpu = limits
        .cpu
        .as_deref()
        .map(|cpu| nano_cpus(cpu).ok_or_else(|| format!("resources.cpu: invalid quantity '{cpu}'")))
        .transpose()?;
    let memory = limits
        .memory
        .as_deref()
        .map(|memory| {
            memory_bytes(memory)
                .ok_or_else(|| format!("resources.memory: invalid quantity '{memory}'"))
        })
        .transpose()?;
    Ok((cpu, memory))
}

/// `(repository, tag)` for pulling `image`: the tag after the last `:` of the last path
/// component, else `latest`; a digest reference (`…@sha256:…`) is pulled whole.
pub fn pull_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (image[..at].to_owned(), Some(image[at + 1..].to_owned()))
        }
        None => (image.to_owned(), Some("latest".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn cmd_alone_runs_in_a_shell_and_clears_the_entrypoint() {
        let command = prepared_image(None, None, Some("echo $HOME && ls")).unwrap();
        assert_eq!(command.entrypoint, Some(words(&["/bin/sh"])));
        assert_eq!(command.cmd, Some(words(&["-c", "echo $HOME && ls"])));
    }

    #[test]
    fn cmd_with_an_entrypoint_is_split_into_its_arguments() {
        let entrypoint = words(&["/usr/bin/env"]);
        let command = prepared_image(
            Some(&entrypoint),
            None,
            Some(r#"printf '%s %s' "a b" c\ d"#),
        )
        .unwrap();
        assert_eq!(command.entrypoint, Some(entrypoint));
        assert_eq!(command.cmd, Some(words(&["printf", "%s %s", "a b", "c d"])));
    }

    #[test]
    fn entrypoint_and_command_replace_the_images_own() {
        let entrypoint = words(&["python3"]);
        let args = words(&["-c", "print(1)"]);
        let both = prepared_image(Some(&entrypoint), Some(&args), None).unwrap();
        assert_eq!(both.entrypoint, Some(entrypoint));
        assert_eq!(both.cmd, Some(args.clone()));
        let only_command = prepared_image(None, Some(&args), None).unwrap();
        assert_eq!(only_command.entrypoint, None);
        assert_eq!(
            prepared_image(None, None, None).unwrap(),
            Command::default()
        );
        assert!(prepared_image(None, Some(&args), Some("x")).is_err());
    }

    #[test]
    fn split_words_reports_unterminated_quotes() {
        assert!(split_words("echo 'a").is_err());
        assert!(split_words("echo \"a").is_err());
        assert!(split_words("echo a\\").is_err());
        assert_eq!(split_words("  a   ''  b ").unwrap(), words(&["a", "", "b"]));
    }

    #[test]
    fn quantities_in_docker_units() {
        assert_eq!(nano_cpus("2"), Some(2_000_000_000));
        assert_eq!(nano_cpus("0.5"), Some(500_000_000));
        assert_eq!(nano_cpus("500m"), Some(500_000_000));
        assert_eq!(nano_cpus("0"), None);
        assert_eq!(memory_bytes("512Mi"), Some(536_870_912));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("1000"), Some(1000));
        assert_eq!(memory_bytes("0.5Ki"), Some(512));
        assert_eq!(memory_bytes("lots"), None);
    }

    #[test]
    fn pull_references_default_to_latest() {
        let pair = |repo: &str, tag: Option<&str>| (repo.to_owned(), tag.map(str::to_owned));
        assert_eq!(pull_reference("alpine"), pair("alpine", Some("latest")));
        assert_eq!(pull_reference("alpine:3.20"), pair("alpine", Some("3.20")));
        assert_eq!(
            pull_reference("localhost:5000/team/app"),
            pair("localhost:5000/team/app", Some("latest"))
        );
        assert_eq!(
            pull_reference("localhost:5000/app:1"),
            pair("localhost:5000/app", Some("1"))
        );
        assert_eq!(
            pull_reference("alpine@sha256:abc"),
            pair("alpine@sha256:abc", None)
        );
    }
}
