//! Access rules (issue #12 item 6): which tasks, jobs and logs a user may see (`view`) or also
//! trigger and cancel (`run`). Rules are tried in order; the first whose subjects include the
//! caller and whose workspace and task globs match the task decides. Admins and servers
//! without authentication bypass the rules. A pure function of the configuration and the
//! caller, evaluated in Rust for one task and translated into a [`Visibility`] for the store's
//! lists and counts.

use crate::config::{Access, AclConfig, AclRule};
use crate::store::{Visibility, VisibilityRule};

use super::principal::{Caller, Principal};

/// The rules of `auth.acl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    config: AclConfig,
}

impl Acl {
    pub fn new(config: AclConfig) -> Self {
        Acl { config }
    }

    /// What `caller` may do with task `task` of workspace `workspace`.
    pub fn access(&self, caller: &Caller, workspace: &str, task: &str) -> Access {
        match caller {
            Caller::Open => Access::Run,
            Caller::Anonymous => Access::None,
            Caller::User(principal) if principal.is_admin => Access::Run,
            Caller::User(principal) => self
                .rules_for(principal)
                .find(|rule| {
                    glob(&rule.workspace, workspace)
                        && rule.tasks.iter().any(|pattern| glob(pattern, task))
                })
                .map_or(self.config.default, |rule| rule.allow),
        }
    }

    /// Which jobs `caller` may see, for the store's lists and counts; `None` sees everything.
    pub fn visibility(&self, caller: &Caller) -> Option<Visibility> {
        let principal = match caller {
            Caller::Open => return None,
            Caller::Anonymous => {
                return Some(Visibility {
                    rules: Vec::new(),
                    default: false,
                });
            }
            Caller::User(principal) if principal.is_admin => return None,
            Caller::User(principal) => principal,
        };
        let visibility = Visibility {
            rules: self
                .rules_for(principal)
                .map(|rule| VisibilityRule {
                    workspace: rule.workspace.clone(),
                    tasks: rule.tasks.clone(),
                    visible: rule.allow >= Access::View,
                })
                .collect(),
            default: self.config.default >= Access::View,
        };
        let everything = visibility.default && visibility.rules.iter().all(|rule| rule.visible);
        (!everything).then_some(visibility)
    }

    /// The rules whose subjects include `principal`, in order.
    fn rules_for<'a>(&'a self, principal: &'a Principal) -> impl Iterator<Item = &'a AclRule> {
        self.config
            .rules
            .iter()
            .filter(move |rule| applies_to(rule, principal))
    }
}

/// A rule without `groups` and `users` applies to everyone.
fn applies_to(rule: &AclRule, principal: &Principal) -> bool {
    if rule.groups.is_empty() && rule.users.is_empty() {
        return true;
    }
    rule.users
        .iter()
        .any(|user| user.eq_ignore_ascii_case(&principal.email))
        || rule
            .groups
            .iter()
            .any(|group| principal.groups.iter().any(|own| own == group))
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none) and
/// `?` exactly one; everything else matches itself, case-sensitively.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::auth::principal::Via;

    fn user(email: &str, groups: &[&str], is_admin: bool) -> Caller {
        Caller::User(Principal {
            user_id: Uuid::nil(),
            email: email.to_owned(),
            is_admin,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            via: Via::Token,
        })
    }

    fn rule(
        workspace: &str,
        tasks: &[&str],
        groups: &[&str],
        users: &[&str],
        allow: Access,
    ) -> AclRule {
        AclRule {
            workspace: workspace.to_owned(),
            tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            allow,
        }
    }

    #[test]
    fn globs_match_stars_and_question_marks_only() {
        assert!(glob("*", ""));
        assert!(glob("deploy-*", "deploy-web"));
        assert!(glob("*-prod", "db-prod"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("v?", "v1"));
        assert!(!glob("v?", "v10"));
        assert!(!glob("deploy-*", "Deploy-web"));
        assert!(glob("[x]", "[x]"));
        assert!(!glob("a*b", "aXXc"));
        assert!(glob("**", "anything"));
    }

    #[test]
    fn the_first_matching_rule_wins_and_admins_bypass() {
        let acl = Acl::new(AclConfig {
            default: Access::None,
            rules: vec![
                rule("prod", &["deploy-*"], &["ops"], &[], Access::Run),
                rule("prod", &["*"], &["ops"], &[], Access::View),
                rule("*", &["*"], &[], &["Bob@Example.test"], Access::View),
            ],
        });
        let ops = user("o@example.test", &["ops"], false);
        assert_eq!(acl.access(&ops, "prod", "deploy-web"), Access::Run);
        assert_eq!(acl.access(&ops, "prod", "backup"), Access::View);
        assert_eq!(acl.access(&ops, "dev", "backup"), Access::None);
        let bob = user("bob@example.test", &[], false);
        assert_eq!(acl.access(&bob, "dev", "x"), Access::View);
        let admin = user("a@example.test", &[], true);
        assert_eq!(acl.access(&admin, "dev", "x"), Access::Run);
        assert_eq!(acl.access(&Caller::Open, "dev", "x"), Access::Run);
        assert_eq!(acl.visibility(&admin), None);
        assert_eq!(acl.visibility(&Caller::Open), None);
        let visibility = acl.visibility(&ops).expect("restricted");
        assert_eq!(visibility.rules.len(), 2);
        assert!(!visibility.default);
    }

    #[test]
    fn without_rules_everyone_may_run_everything() {
        let acl = Acl::default();
        let someone = user("s@example.test", &[], false);
        assert_eq!(acl.access(&someone, "ws", "task"), Access::Run);
        assert_eq!(acl.visibility(&someone), None);
    }
}
