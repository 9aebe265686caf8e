# Shared by scripts/test and scripts/bench: make sure PostgreSQL and Redis answer on 127.0.0.1,
# starting the local ones when they are installed but down. Usage: . scripts/services.sh
PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

ensure_services() {
  if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      echo "starting PostgreSQL" >&2
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
      for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
    fi
  fi
  if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
      echo "starting Redis" >&2
      redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
      for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
    fi
  fi
  local missing=()
  pg_up || missing+=("PostgreSQL on $PG_HOST:$PG_PORT")
  redis_up || missing+=("Redis on 127.0.0.1:$REDIS_PORT")
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Not reachable: ${missing[*]}." >&2
    echo "Start them there (the compose file's PostgreSQL and Redis are not published on the host)." >&2
    return 1
  fi
}
