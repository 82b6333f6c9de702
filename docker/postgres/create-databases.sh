#!/bin/sh
# Run once by the postgres image, on an empty data volume: a role and a database for HAPI and
# for the hub's own state. The passwords come from the environment (docker/.env).
set -eu
psql --username=postgres --dbname=postgres -v ON_ERROR_STOP=1 \
    -v hapi_password="$HAPI_DB_PASSWORD" -v hub_password="$HUB_DB_PASSWORD" <<'SQL'
CREATE ROLE hapi LOGIN PASSWORD :'hapi_password';
CREATE DATABASE hapi OWNER hapi;
CREATE ROLE hub LOGIN PASSWORD :'hub_password';
CREATE DATABASE hub OWNER hub;
SQL
