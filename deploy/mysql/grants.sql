-- The MySQL account hpa-tier runs as: run once as an administrator, after
-- replacing REPLACE-ME with the password (the one in the Secret's MYSQL_PWD).
-- Rename the database or the user here and in the config (mysql_db,
-- mysql_user) together.
--
-- The privileges are exactly what the statements of src/store/mysql.rs need,
-- and tests/it/e2e.rs runs the binary as a user made from this very file
-- (and, for each privilege, as one made without it, which must fail):
--
--   CREATE   CREATE TABLE IF NOT EXISTS for hpa_tier_runs and hpa_tier_schema.
--            MySQL checks it even when the table exists, so every run that
--            records needs it, not only the first.
--   SELECT   history, holds and the last runs; the schema version.
--   INSERT   one row per run, and one per schema migration.
--   UPDATE   never changes a row, but the INSERT ... ON DUPLICATE KEY UPDATE
--            that makes writing a spooled record twice harmless requires it.
--   ALTER    schema migration 2 (the forecast_capacity column and the index
--            the forecast's history read is served from).
--
-- Not needed: DELETE, DROP, INDEX (indexes come with CREATE TABLE and ALTER
-- TABLE), nor anything for GET_LOCK/RELEASE_LOCK, which any user may call.
--
-- REQUIRE SSL: the server refuses this user on a connection without TLS.
CREATE DATABASE IF NOT EXISTS hpa_tier CHARACTER SET utf8mb4;
CREATE USER 'hpa_tier'@'%' IDENTIFIED BY 'REPLACE-ME' REQUIRE SSL;
GRANT CREATE, SELECT, INSERT, UPDATE, ALTER ON hpa_tier.* TO 'hpa_tier'@'%';
