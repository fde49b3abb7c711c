# syntax=docker/dockerfile:1
#
# Amplify as a slim, non-root image:
#   docker build -t amplify .
#   docker run --rm -p 8000:8000 -v amplify-data:/var/lib/amplify amplify    # SQLite, all-in-one
#   docker run --rm amplify keys create --org Acme --role admin              # any `amplify` command
# compose.yaml runs it on PostgreSQL with API and worker processes apart.

ARG PYTHON_VERSION=3.11

# --- build: a virtualenv holding amplify and its dependencies ----------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# No pip or setuptools inside the virtualenv: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/amplify
WORKDIR /src
# What the wheel is built from (pyproject's setuptools config ships migrations/, email_templates/
# and app/'s templates and static files as package data; alembic.ini is only for development).
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
COPY email_templates ./email_templates
# Every dependency has a binary wheel (uvloop, httptools, asyncpg, pydantic-core, css-inline …),
# so no compiler is needed; pip compiles the bytecode once, here.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip --python /opt/amplify/bin/python install /src

# --- runtime ------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="Amplify" \
      org.opencontainers.image.description="Self-hosted email-campaign amplification: digests, tracked share links, dashboards." \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/amplify/bin:$PATH \
    AMPLIFY_VAR_DIR=/var/lib/amplify \
    AMPLIFY_DATABASE_URL=sqlite+aiosqlite:////var/lib/amplify/amplify.db
# The runtime needs no installer: drop pip, setuptools and wheel from the base image too.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/amplify \
       --no-create-home --shell /usr/sbin/nologin amplify \
    && install -d -o amplify -g amplify -m 0750 /var/lib/amplify
COPY --from=build /opt/amplify /opt/amplify
USER amplify
WORKDIR /var/lib/amplify
# SQLite database, generated development secret and mail sink outbox (when not on PostgreSQL).
VOLUME ["/var/lib/amplify"]
EXPOSE 8000
# Liveness of `amplify serve` on its default port; worker containers turn it off (compose.yaml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# `amplify` is the entrypoint: `docker run IMAGE worker`. A leading `amplify` is accepted too
# (`docker compose run --rm api-1 amplify keys create …`). exec: amplify is PID 1 and gets
# SIGTERM itself (uvicorn and the worker both stop cleanly on it).
ENTRYPOINT ["/bin/sh", "-c", "[ \"$1\" != amplify ] || shift; exec amplify \"$@\"", "amplify"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
