"""`ernte serve`: the search page and the JSON API over the index (embedded or Elasticsearch).

app.py         the application: routers, static files, security headers, error shape
api.py         /api/search, /api/records/{id}, /api/status, /healthz (the CLI's models)
pages.py       the German search page and record page (server-rendered, Jinja2)
search.py      query parameters -> SearchRequest (as `ernte search`), the open index
formatting.py  German numbers, dates and labels; untrusted record text made safe
server.py      runs the application under uvicorn
"""
