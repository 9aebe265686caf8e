# The gateway image: `docker compose up` runs it with PostgreSQL, Redis and Prometheus.
# Non-root, the locked requirements.txt (hash-checked) then `pip install --no-deps .`, config.yaml baked in (override with a mounted file and
# GATEWAY_CONFIG), and a HEALTHCHECK on /healthz that needs nothing but the Python stdlib.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/gateway --create-home \
      --shell /usr/sbin/nologin gateway

WORKDIR /app
COPY requirements.txt ./
RUN pip install --require-hashes --no-deps -r requirements.txt
COPY pyproject.toml README.md schema.sql config.yaml ./
COPY gateway ./gateway
RUN pip install --no-deps . && rm -rf /root/.cache

# Runtime state (embedded SQLite when DATABASE_URL is unset, the spill file of rows waiting for
# the database) lives in the gateway user's home, not in the image's code directory.
ENV GATEWAY_CONFIG=/app/config.yaml \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    DATABASE_URL=sqlite:////var/lib/gateway/gateway.db \
    GATEWAY_SPILL_PATH=/var/lib/gateway/gateway-spill.jsonl
WORKDIR /var/lib/gateway
USER gateway

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('GATEWAY_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]

# SIGTERM (docker stop) drains in-flight streams within server.shutdown_grace_s: give
# `docker stop -t` / compose `stop_grace_period` a little more than that.
STOPSIGNAL SIGTERM
CMD ["gateway", "serve"]
