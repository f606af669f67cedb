#!/bin/sh
# Runs once, on an empty data directory (docker-entrypoint-initdb.d): the schema owner and the
# application role of docs/access.md. Neither is a superuser; coffer_app cannot bypass RLS.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres \
  -v owner_pw="$OWNER_DB_PASSWORD" -v app_pw="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE coffer_owner LOGIN PASSWORD :'owner_pw' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE ROLE coffer_app LOGIN PASSWORD :'app_pw' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE coffer OWNER coffer_owner;
SQL
