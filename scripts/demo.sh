#!/usr/bin/env bash
# Rebuild the demo catalog into a throwaway in-memory search server, twice, to show
# the alias moving from one timestamped index to the next.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${VENV:-.venv}/bin
export DEMO_SQLITE_PATH=$PWD/example/demo.sqlite3

step() { printf '\n== %s\n' "$*" >&2; }
reindex() {
    printf '$ reindex %s\n' "$*" >&2
    "$bin/reindex" --settings demo.settings --pythonpath example "$@"
}

step "a fresh demo database with 5000 products"
rm -f "$DEMO_SQLITE_PATH"
"$bin/python" example/manage.py migrate --verbosity 0
# Saved a day ago, as a live table's rows were: update then sends only what the demo changes.
"$bin/python" example/manage.py seed --products 5000 --days-ago 1
# The admin's user, for the Index health page at the end.
DJANGO_SUPERUSER_PASSWORD=reindex-demo "$bin/python" example/manage.py createsuperuser \
    --noinput --username admin --email admin@example.com --verbosity 0

step "an in-memory search server"
# Its stdin is our pipe: when this script ends, the server sees EOF and stops. What it
# says goes to a log, shown only if it does not start.
server_log=example/testserver.log
coproc SERVER { exec "$bin/python" -m reindex.testserver 2>"$server_log"; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
if ! read -r -t 30 url <&"${SERVER[0]}"; then
    cat "$server_log" >&2
    echo "demo: the search server did not start" >&2
    exit 1
fi
export REINDEX_ES_URL=$url
echo "listening on $url" >&2

step "the site's index definitions"
reindex list
step "first rebuild: creates products-<timestamp> and points the alias at it"
reindex rebuild
reindex status
step "second rebuild: a new index, the alias moved, the old one dropped"
reindex rebuild
reindex status
step "the live indexes match the definitions in code: diff exits 0"
reindex diff
step "a product renamed and one withdrawn; update sends just the rows changed since the last run"
"$bin/python" example/manage.py shell --verbosity 0 -c "
from catalog.models import Product
renamed, withdrawn = Product.objects.order_by('pk')[:2]
renamed.name = 'Crème Brûlée Torch'
renamed.save()
withdrawn.is_active = False
withdrawn.save()
"
reindex update
step "the same saves were queued by the change queue (no search request in the save); drain sends them"
reindex queue status
reindex drain
step "verify: the live indexes agree with the tables"
reindex verify --full
step "a search: rows read from the database in the index's order (reindex.search)"
"$bin/python" example/manage.py shell --verbosity 0 -c "
import reindex
results = reindex.search('products', {'match': {'name': 'teapot'}}, per_page=5)
print(results.count(), 'products match \"teapot\"; the first five:')
for product in results:
    print(f'  {product.name:40} {product.category.name:20} {product.price:>8}  score {product.search_hit.score:.2f}')
"

step "the index's health: the endpoint an uptime monitor polls, and the admin's page"
port=${DEMO_PORT:-8000}
"$bin/python" example/manage.py runserver --insecure --noreload "127.0.0.1:$port" >/dev/null 2>&1 &
site=$!
trap 'kill "$site" 2>/dev/null || true; kill "$SERVER_PID" 2>/dev/null || true' EXIT
"$bin/python" - "$port" <<'PY'
import json, sys, time, urllib.error, urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/reindex/health"
for _ in range(100):
    try:
        with urllib.request.urlopen(url) as answer:
            status, body = answer.status, json.load(answer)
        break
    except urllib.error.HTTPError as answer:
        status, body = answer.code, json.load(answer)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"demo: the site did not answer on {url}")
print(f"$ curl {url}\nHTTP {status}: healthy={body['healthy']}, problems={body['problems']}", file=sys.stderr)
PY
cat >&2 <<TEXT

The search page:               http://127.0.0.1:$port/search/?q=teapot
The admin's Index health page: http://127.0.0.1:$port/admin/reindex/indexhealth/
  user: admin   password: reindex-demo
The health endpoint:           http://127.0.0.1:$port/reindex/health
TEXT
if [ -t 0 ] && [ -t 1 ]; then
    echo "Serving until Ctrl-C (the search server stops with it)." >&2
    wait "$site" || true
else
    echo "(run 'make demo' in a terminal to keep serving them)" >&2
fi
