//! Tests of configuration loading on real files in temporary directories.

mod errors;
mod example;
mod load;

use std::collections::BTreeMap;
use std::path::Path;

use tempfile::TempDir;

use super::{Config, ConfigError, ConfigSource};

/// A working directory with a `stroem.yaml` of `yaml` (none when `None`) and the extra
/// `files`, loaded with the environment `env`.
struct Setup {
    dir: TempDir,
    env: BTreeMap<String, String>,
}

impl Setup {
    fn new(yaml: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().expect("temporary directory");
        if let Some(yaml) = yaml {
            std::fs::write(dir.path().join("stroem.yaml"), yaml).expect("write stroem.yaml");
        }
        Setup {
            dir,
            env: BTreeMap::from([("HOSTNAME".to_owned(), "test-host".to_owned())]),
        }
    }

    fn file(self, name: &str, content: &str) -> Setup {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::write(path, content).expect("write file");
        self
    }

    fn env(mut self, name: &str, value: &str) -> Setup {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn source(&self) -> ConfigSource {
        ConfigSource {
            config: None,
            env: self.env.clone(),
            cwd: self.dir.path().to_path_buf(),
        }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.source())
    }

    fn ok(&self) -> Config {
        match self.load() {
            Ok(config) => config,
            Err(error) => panic!("configuration should load:\n{error}"),
        }
    }

    /// The error text, with the temporary directory replaced by `<tmp>`.
    fn error(&self) -> String {
        match self.load() {
            Ok(config) => panic!("configuration should not load: {config:?}"),
            Err(error) => error
                .to_string()
                .replace(&self.dir.path().display().to_string(), "<tmp>"),
        }
    }
}
