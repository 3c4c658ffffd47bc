-- Accounts, sessions, API keys and the audit trail (API §5, issue #12), mirroring
-- migrations/sqlite column for column. E-mail addresses are stored lower-cased, so the unique
-- index compares them without regard to case. Secrets are never stored: refresh tokens as
-- HMAC-SHA256, API keys as SHA-256, passwords as argon2id PHC strings.

CREATE TABLE users (
    user_id       UUID PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT,
    password_hash TEXT,
    is_admin      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_created ON users (created_at DESC, user_id);

CREATE TABLE user_groups (
    user_id    UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);
CREATE INDEX user_groups_name ON user_groups (group_name);

-- OIDC links: the user a provider's subject signs in as (API §5.4).
CREATE TABLE user_identities (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);

-- A login starts a family; each refresh rotates the family's token (API §5.2).
CREATE TABLE refresh_families (
    family_id  UUID PRIMARY KEY NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id  UUID NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE api_keys (
    prefix       TEXT PRIMARY KEY NOT NULL,
    user_id      UUID NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX api_keys_user_name ON api_keys (user_id, name);

CREATE TABLE audit (
    audit_id   UUID PRIMARY KEY NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT,
    via        TEXT,
    source_ip  TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    status     BIGINT NOT NULL,
    request_id TEXT,
    detail     TEXT
);
CREATE INDEX audit_at ON audit (at DESC, audit_id);
CREATE INDEX audit_actor ON audit (actor, at DESC);
CREATE INDEX audit_action ON audit (action, at DESC);
