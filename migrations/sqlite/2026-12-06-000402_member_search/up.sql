-- Member search (`GET /v1/users?q=`) without reading the whole organization: a trigram
-- full-text index of the searched fields, so a substring of three characters or more is
-- found through the index. Each user gets a stable integer key (an explicit INTEGER PRIMARY
-- KEY survives VACUUM, the implicit rowid of `users` may not), which is the index's rowid.
CREATE TABLE user_search_keys (
    key     INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE REFERENCES users (id)
);
CREATE VIRTUAL TABLE users_search USING fts5 (
    first_name, last_name, email, username,
    tokenize = 'trigram'
);

INSERT INTO user_search_keys (user_id) SELECT id FROM users ORDER BY id;
INSERT INTO users_search (rowid, first_name, last_name, email, username)
SELECT k.key, u.first_name, u.last_name, u.email_normalized, u.username_normalized
FROM users u JOIN user_search_keys k ON k.user_id = u.id;

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_search_keys (user_id) VALUES (new.id);
    INSERT INTO users_search (rowid, first_name, last_name, email, username)
    VALUES ((SELECT key FROM user_search_keys WHERE user_id = new.id),
            new.first_name, new.last_name, new.email_normalized, new.username_normalized);
END;

CREATE TRIGGER users_search_update
AFTER UPDATE OF first_name, last_name, email_normalized, username_normalized ON users BEGIN
    UPDATE users_search
    SET first_name = new.first_name, last_name = new.last_name,
        email = new.email_normalized, username = new.username_normalized
    WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = new.id);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM users_search WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = old.id);
    DELETE FROM user_search_keys WHERE user_id = old.id;
END;
