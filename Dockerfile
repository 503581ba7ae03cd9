# ernte worker / beat image: `docker compose build` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 ernte && mkdir /data && chown ernte:ernte /data

# Dependencies first (cached while only the code changes), then the code.
COPY pyproject.toml README.md ./
COPY harvester ./harvester
COPY indexer ./indexer
COPY config ./config
RUN pip install .

# ernte finds config/ (sources, German word lists, index template) next to its packages, so
# the packages are imported from /app, where config/ sits, rather than from site-packages.
ENV PYTHONPATH=/app \
    ERNTE_DATA_DIR=/data \
    ERNTE_LOG_FORMAT=json

USER ernte
VOLUME ["/data"]
CMD ["ernte", "worker"]
