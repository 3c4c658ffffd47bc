//! Accounts, refresh families, API keys, the audit trail and job visibility, on both backends.

use chrono::TimeDelta;

use super::backend_test;
use super::fixture::{Fixture, at};
use crate::store::{
    ApiKeyRecord, AuditEntry, AuditFilter, JobFilter, NewRefresh, NewUser, Rotation, StoreError,
    Visibility, VisibilityRule,
};

fn user(email: &str, groups: &[&str]) -> NewUser {
    NewUser {
        email: email.to_owned(),
        name: None,
        password_hash: Some("$argon2id$x".to_owned()),
        is_admin: false,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn refresh(hash: &str) -> NewRefresh<'_> {
    NewRefresh {
        hash,
        expires_at: at(3600),
    }
}

backend_test! {
    async fn users_groups_and_links_are_kept_with_unique_emails(db) {
        let ada = db.store.create_user(&user("ada@example.test", &["ops", "dev", "ops"]), at(0)).await.expect("create");
        assert_eq!(ada.groups, ["dev", "ops"]);
        let clash = db.store.create_user(&user("ada@example.test", &[]), at(1)).await;
        assert!(matches!(clash, Err(StoreError::Conflict { field: "email" })), "{clash:?}");
        db.store.link_identity("sso", "sub-1", ada.user_id, at(2)).await.expect("link");
        let linked = db.store.user_by_identity("sso", "sub-1").await.expect("read").expect("found");
        assert_eq!((linked.user_id, linked.providers.clone()), (ada.user_id, vec!["sso".to_owned()]));
        let again = db.store.link_identity("sso", "sub-1", ada.user_id, at(3)).await;
        assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
        assert_eq!(db.store.set_groups(ada.user_id, &["qa".to_owned()]).await.expect("set"), Some(vec!["qa".to_owned()]));
        assert_eq!(db.store.list_groups().await.expect("groups"), ["qa"]);
        let oidc = db.store.create_linked_user(&NewUser { password_hash: None, ..user("bo@example.test", &["sso"]) }, "sso", "sub-2", at(4)).await.expect("create");
        assert_eq!(oidc.password_hash, None);
        let (users, total) = db.store.list_users(1, 0).await.expect("list");
        assert_eq!((total, users[0].email.as_str()), (2, "bo@example.test"));
        // The initial user: created once, made an admin when it exists.
        assert!(db.store.ensure_user(&NewUser { is_admin: true, ..user("root@example.test", &[]) }, at(5)).await.expect("ensure"));
        assert!(!db.store.ensure_user(&NewUser { is_admin: true, ..user("ada@example.test", &[]) }, at(6)).await.expect("ensure"));
        assert!(db.store.user_by_email("ada@example.test").await.expect("read").expect("ada").is_admin);
        assert!(db.store.delete_user(ada.user_id).await.expect("delete"));
        assert_eq!(db.store.user_by_identity("sso", "sub-1").await.expect("read"), None);
        assert!(!db.store.delete_user(ada.user_id).await.expect("delete"));
    }
}

backend_test! {
    async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_family(db) {
        let ada = db.store.create_user(&user("ada@example.test", &[]), at(0)).await.expect("create");
        let family = db.store.start_family(ada.user_id, refresh("h1"), at(0)).await.expect("start");
        assert_eq!(
            db.store.rotate_refresh("h1", refresh("h2"), at(1)).await.expect("rotate"),
            Rotation::Rotated { user_id: ada.user_id, family_id: family }
        );
        assert_eq!(db.store.family_revoked(family).await.expect("read"), Some(false));
        assert_eq!(
            db.store.rotate_refresh("h1", refresh("h3"), at(2)).await.expect("rotate"),
            Rotation::Reused { user_id: ada.user_id, family_id: family }
        );
        assert_eq!(db.store.family_revoked(family).await.expect("read"), Some(true));
        // The family's newest token died with it; h3 was never stored.
        assert_eq!(db.store.rotate_refresh("h2", refresh("h4"), at(3)).await.expect("rotate"), Rotation::Invalid);
        assert_eq!(db.store.rotate_refresh("h3", refresh("h5"), at(3)).await.expect("rotate"), Rotation::Invalid);
        assert_eq!(db.store.rotate_refresh("nope", refresh("h6"), at(3)).await.expect("rotate"), Rotation::Invalid);
        // Expired tokens do not rotate.
        let other = db.store.start_family(ada.user_id, NewRefresh { hash: "e1", expires_at: at(10) }, at(0)).await.expect("start");
        assert_eq!(db.store.rotate_refresh("e1", refresh("e2"), at(10)).await.expect("rotate"), Rotation::Invalid);
        assert_eq!(db.store.family_revoked(other).await.expect("read"), Some(false));
    }
}

backend_test! {
    async fn of_two_refreshes_at_once_exactly_one_rotates(db) {
        let ada = db.store.create_user(&user("ada@example.test", &[]), at(0)).await.expect("create");
        let family = db.store.start_family(ada.user_id, refresh("h1"), at(0)).await.expect("start");
        let (a, b) = tokio::join!(
            db.store.rotate_refresh("h1", refresh("a2"), at(1)),
            db.store.rotate_refresh("h1", refresh("b2"), at(1)),
        );
        let outcomes = [a.expect("a"), b.expect("b")];
        let rotated = outcomes.iter().filter(|o| matches!(o, Rotation::Rotated { .. })).count();
        let reused = outcomes.iter().filter(|o| matches!(o, Rotation::Reused { .. })).count();
        assert_eq!((rotated, reused), (1, 1), "{outcomes:?}");
        assert_eq!(db.store.family_revoked(family).await.expect("read"), Some(true));
    }
}

backend_test! {
    async fn a_password_change_revokes_every_family_and_logout_one(db) {
        let ada = db.store.create_user(&user("ada@example.test", &[]), at(0)).await.expect("create");
        let one = db.store.start_family(ada.user_id, refresh("one"), at(0)).await.expect("start");
        let two = db.store.start_family(ada.user_id, refresh("two"), at(0)).await.expect("start");
        assert_eq!(db.store.revoke_family_of("one", at(1)).await.expect("logout"), Some(ada.user_id));
        assert_eq!((db.store.family_revoked(one).await.expect("r"), db.store.family_revoked(two).await.expect("r")), (Some(true), Some(false)));
        assert!(db.store.set_password(ada.user_id, "$argon2id$new", at(2)).await.expect("set"));
        assert_eq!(db.store.family_revoked(two).await.expect("r"), Some(true));
        assert_eq!(db.store.revoke_family_of("unknown", at(3)).await.expect("logout"), None);
    }
}

backend_test! {
    async fn api_keys_are_unique_per_user_and_name(db) {
        let ada = db.store.create_user(&user("ada@example.test", &[]), at(0)).await.expect("create");
        let record = ApiKeyRecord {
            prefix: "strm_1234567".to_owned(),
            user_id: ada.user_id,
            name: "ci".to_owned(),
            created_at: at(0),
            expires_at: Some(at(0) + TimeDelta::days(1)),
            last_used_at: None,
        };
        db.store.create_api_key(&record, "hash").await.expect("create");
        let same_name = db.store.create_api_key(&ApiKeyRecord { prefix: "strm_7654321".to_owned(), ..record.clone() }, "h").await;
        assert!(matches!(same_name, Err(StoreError::Conflict { field: "name" })), "{same_name:?}");
        let same_prefix = db.store.create_api_key(&ApiKeyRecord { name: "other".to_owned(), ..record.clone() }, "h").await;
        assert!(matches!(same_prefix, Err(StoreError::Conflict { field: "prefix" })), "{same_prefix:?}");
        db.store.touch_api_key("strm_1234567", at(5)).await.expect("touch");
        let (found, hash) = db.store.api_key("strm_1234567").await.expect("read").expect("found");
        assert_eq!((found.last_used_at, hash.as_str()), (Some(at(5)), "hash"));
        assert_eq!(db.store.list_api_keys(ada.user_id).await.expect("list").len(), 1);
        let bob = db.store.create_user(&user("bob@example.test", &[]), at(0)).await.expect("create");
        assert!(!db.store.delete_api_key(bob.user_id, "strm_1234567").await.expect("delete"));
        assert!(db.store.delete_api_key(ada.user_id, "strm_1234567").await.expect("delete"));
    }
}

backend_test! {
    async fn audit_entries_filter_and_page(db) {
        for (index, (actor, action)) in [("a@x", "auth.login"), ("b@x", "auth.login"), ("a@x", "job.trigger"), ("a@x", "api_key.create")].iter().enumerate() {
            db.store.insert_audit(&AuditEntry {
                audit_id: uuid::Uuid::now_v7(),
                at: at(i64::try_from(index).expect("small")),
                actor: Some((*actor).to_owned()),
                via: None,
                source_ip: Some("127.0.0.1".to_owned()),
                action: (*action).to_owned(),
                target: None,
                outcome: "success".to_owned(),
                status: 200,
                request_id: None,
            }).await.expect("insert");
        }
        let filter = |actor: Option<&str>, action: Option<&str>| AuditFilter {
            actor: actor.map(str::to_owned),
            action: action.map(str::to_owned),
            limit: 50,
            ..AuditFilter::default()
        };
        let (all, total) = db.store.list_audit(&filter(None, None)).await.expect("list");
        assert_eq!((total, all[0].action.as_str()), (4, "api_key.create"));
        assert_eq!(db.store.list_audit(&filter(Some("a@x"), None)).await.expect("list").1, 3);
        assert_eq!(db.store.list_audit(&filter(None, Some("auth."))).await.expect("list").1, 2);
        // `_` is literal, not a LIKE wildcard.
        assert_eq!(db.store.list_audit(&filter(None, Some("api_key.create"))).await.expect("list").1, 1);
        assert_eq!(db.store.list_audit(&filter(None, Some("apiXkey.create"))).await.expect("list").1, 0);
        let since = AuditFilter { since: Some(at(2)), until: Some(at(3)), ..filter(None, None) };
        assert_eq!(db.store.list_audit(&since).await.expect("list").1, 1);
    }
}

backend_test! {
    async fn visibility_filters_lists_and_counts_by_glob_first_match_wins(db) {
        let fx = Fixture::new();
        for (index, (workspace, task)) in [("prod", "deploy-web"), ("prod", "deploy_db"), ("prod", "backup"), ("dev", "deploy-web"), ("dev", "deployXdb")].iter().enumerate() {
            let (mut job, routing) = fx.job("single", at(i64::try_from(index).expect("small")), 0);
            job.workspace = (*workspace).to_owned();
            job.task = (*task).to_owned();
            db.store.create_job(&job, &routing).await.expect("create");
        }
        let visibility = Visibility {
            rules: vec![
                VisibilityRule { workspace: "prod".into(), tasks: vec!["deploy-*".into()], visible: false },
                VisibilityRule { workspace: "p?od".into(), tasks: vec!["*".into()], visible: true },
                VisibilityRule { workspace: "*".into(), tasks: vec!["deploy_db".into(), "[x]".into()], visible: true },
            ],
            default: false,
        };
        let (jobs, total) = db.store.list_jobs(&JobFilter { visibility: Some(visibility.clone()), ..JobFilter::default() }).await.expect("list");
        let mut seen: Vec<String> = jobs.iter().map(|job| format!("{}/{}", job.workspace, job.task_name)).collect();
        seen.sort();
        // `deploy_db` must not match `deployXdb` (`_` is literal), `[x]` is no character class.
        assert_eq!((total, seen), (2, vec!["prod/backup".to_owned(), "prod/deploy_db".to_owned()]));
        let counts = db.store.job_counts(None, Some(&visibility)).await.expect("counts");
        assert_eq!(counts.pending, 2);
        let nothing = Visibility { rules: Vec::new(), default: false };
        assert_eq!(db.store.job_counts(None, Some(&nothing)).await.expect("counts").pending, 0);
        let everything = Visibility { rules: vec![VisibilityRule { workspace: "x".into(), tasks: vec![], visible: false }], default: true };
        assert_eq!(db.store.job_counts(Some("dev"), Some(&everything)).await.expect("counts").pending, 2);
    }
}
