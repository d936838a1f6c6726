-- Member search (`GET /v1/users?q=`) without reading the whole organization: trigram
-- indexes (pg_trgm, shipped with PostgreSQL's contrib) serve `LIKE '%…%'` on each searched
-- field, so a substring of three characters or more is found through the index. Without a
-- pending list (fastupdate = off) new users go into the index at once, so a search never
-- re-reads a long list of recent insertions.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_search_idx ON users USING gin (
    lower(first_name) gin_trgm_ops,
    lower(last_name) gin_trgm_ops,
    email_normalized gin_trgm_ops,
    username_normalized gin_trgm_ops
) WITH (fastupdate = off);
