//! Decoding `auth.acl` (issue #12): `default` and the ordered `rules`, each a map
//! `{workspace, tasks, groups, users, allow}`. The key table describes maps but not lists of
//! maps, so the keys of each rule are checked here, with the same "did you mean" suggestions.

use crate::workflow::diagnostic::suggest;

use super::auth::{GROUP_RULE, valid_group};
use super::read::{Cx, Section};
use super::tree::{Item, Value};
use super::types::{Access, AclConfig, AclRule};

const RULE_KEYS: [&str; 5] = ["workspace", "tasks", "groups", "users", "allow"];

pub fn acl(cx: &mut Cx, auth: &Section) -> AclConfig {
    let Some(section) = cx.section(auth, "acl") else {
        return AclConfig::default();
    };
    let default = cx
        .choice(&section, "default", &Access::ALL)
        .unwrap_or(Access::Run);
    let mut rules = Vec::new();
    if let Some(item) = section.get("rules") {
        let path = section.path_of("rules");
        match &item.value {
            Value::Seq(items) => {
                for (index, rule) in items.iter().enumerate() {
                    if let Some(rule) = decode_rule(cx, rule, &format!("{path}[{index}]")) {
                        rules.push(rule);
                    }
                }
            }
            _ => {
                let message = format!(
                    "'{path}' must be a list of rules, found {}",
                    item.kind().describe()
                );
                cx.error(&item.origin, path, message);
            }
        }
    }
    AclConfig { default, rules }
}

fn decode_rule(cx: &mut Cx, item: &Item, path: &str) -> Option<AclRule> {
    let Some(rule) = Section::of(item, path.to_owned()) else {
        let message = format!(
            "'{path}' must be a map such as {{workspace: prod, tasks: [deploy-*], groups: [ops], allow: run}}, found {}",
            item.kind().describe()
        );
        cx.error(&item.origin, path.to_owned(), message);
        return None;
    };
    for entry in rule.entries {
        if !RULE_KEYS.contains(&entry.key.as_str()) {
            let mut message = format!("unknown key '{path}.{}'", entry.key);
            if let Some(near) = suggest(&entry.key, RULE_KEYS.iter().copied()) {
                message.push_str(&format!("; did you mean '{path}.{near}'?"));
            }
            cx.error(&entry.key_origin, format!("{path}.{}", entry.key), message);
        }
    }
    let workspace = cx
        .string(&rule, "workspace")
        .unwrap_or_else(|| "*".to_owned());
    let tasks = cx
        .strings(&rule, "tasks")
        .unwrap_or_else(|| vec!["*".to_owned()]);
    let groups = cx.strings(&rule, "groups").unwrap_or_default();
    if let Some(item) = rule.get("groups") {
        for group in groups.iter().filter(|group| !valid_group(group)) {
            let key = rule.path_of("groups");
            let message = format!("'{key}': invalid group name '{group}'; {GROUP_RULE}");
            cx.error(&item.origin, key, message);
        }
    }
    let users = cx.strings(&rule, "users").unwrap_or_default();
    let allow = cx.choice(&rule, "allow", &Access::ALL);
    if rule.get("allow").is_none() {
        cx.missing(&rule, "allow", "in every access rule (none, view or run)");
    }
    Some(AclRule {
        workspace,
        tasks,
        groups,
        users: users.iter().map(|user| user.to_lowercase()).collect(),
        allow: allow?,
    })
}
