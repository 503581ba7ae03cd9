#!/usr/bin/env bash
# One-shot set-up of the compose stack's Elasticsearch security (service `es-setup`):
#   1. a CA and a certificate for the `elasticsearch` service (TLS on HTTP and transport),
#   2. the `kibana_system` password (Kibana's own service user),
#   3. the role `ernte_writer` and the user `ernte` that ernte connects as (never `elastic`).
# Idempotent: certificates are made once; role, user and passwords are (re)set on every run,
# so changing a password in .env and re-running `docker compose up es-setup` applies it.
# Passwords come from the environment (.env) and are sent in request bodies read from stdin,
# never on a command line or in this container's log.
set -euo pipefail

certs=config/certs
es=https://elasticsearch:9200
for name in ELASTIC_PASSWORD KIBANA_PASSWORD ERNTE_ES_PASSWORD; do
  if [ -z "${!name:-}" ]; then
    echo "es-setup: set $name in .env (see README, 'Quick start with Docker')" >&2
    exit 1
  fi
done

if [ ! -f "$certs/ca/ca.crt" ]; then
  echo "es-setup: creating the certificate authority"
  bin/elasticsearch-certutil ca --silent --pem --out "$certs/ca.zip"
  unzip -q -o "$certs/ca.zip" -d "$certs"
fi
if [ ! -f "$certs/elasticsearch/elasticsearch.crt" ]; then
  echo "es-setup: creating the certificate of the elasticsearch service"
  printf 'instances:\n  - name: elasticsearch\n    dns: [elasticsearch, localhost]\n    ip: [127.0.0.1]\n' \
    > "$certs/instances.yml"
  bin/elasticsearch-certutil cert --silent --pem --in "$certs/instances.yml" --out "$certs/certs.zip" \
    --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
  unzip -q -o "$certs/certs.zip" -d "$certs"
fi
# Keys readable by Elasticsearch (group root) only; the CA certificate is public (ernte, Kibana).
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 750 {} \;
find "$certs" -type f -exec chmod 640 {} \;
chmod 755 "$certs" "$certs/ca"
chmod 644 "$certs/ca/ca.crt"

# curl as `elastic`; the password goes through a config file on stdin, not the command line.
es_curl() {
  printf 'user = "elastic:%s"\n' "$ELASTIC_PASSWORD" |
    curl --silent --show-error --cacert "$certs/ca/ca.crt" --config - \
      -H 'Content-Type: application/json' "$@"
}

echo "es-setup: waiting for Elasticsearch"
until curl --silent --cacert "$certs/ca/ca.crt" "$es" | grep -q "missing authentication credentials"; do
  sleep 5
done

echo "es-setup: setting the kibana_system password"
printf '{"password": "%s"}' "$KIBANA_PASSWORD" |
  es_curl -X POST "$es/_security/user/kibana_system/_password" --data-binary @- | grep -q '^{}'

echo "es-setup: role ernte_writer and user ernte"
es_curl -X PUT "$es/_security/role/ernte_writer" --data-binary @/setup/ernte-role.json \
  | grep -q '"created"'
printf '{"password": "%s", "roles": ["ernte_writer"], "full_name": "ernte harvester"}' \
  "$ERNTE_ES_PASSWORD" |
  es_curl -X PUT "$es/_security/user/ernte" --data-binary @- | grep -q '"created"'
echo "es-setup: done"
