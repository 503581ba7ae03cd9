# ernte worker / beat image: `docker compose build` (see docker-compose.yml).
# The image installs ernte as a user would: a wheel built from this checkout, its dependencies
# pinned by constraints.txt (regenerate with `make constraints`). The source tree is not in the
# final image; the configuration ernte reads ships inside the wheel (harvester/defaults/,
# indexer/resources/), and /app/config (the working directory's `config/`, mounted by
# docker-compose.yml) overrides it.

FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY harvester ./harvester
COPY indexer ./indexer
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 ernte && mkdir /data /app && chown ernte:ernte /data

# Pinned dependencies first (a cached layer while only ernte's code changes), then the wheel.
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --constraint /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt

ENV ERNTE_DATA_DIR=/data \
    ERNTE_LOG_FORMAT=json

WORKDIR /app
USER ernte
VOLUME ["/data"]
CMD ["ernte", "worker"]
