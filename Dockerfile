# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY email_templates ./email_templates
RUN pip install --no-cache-dir --disable-pip-version-check build \
    && python -m build --wheel --outdir /dist

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 AMPLIFY_VAR_DIR=/var/lib/amplify
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --disable-pip-version-check /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 10001 --home-dir /var/lib/amplify --create-home amplify
USER amplify
WORKDIR /var/lib/amplify
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["amplify", "serve", "--host", "0.0.0.0", "--port", "8000"]
