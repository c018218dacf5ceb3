# labelloop: one image for the web server, the orchestrator and the migration step.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LABELLOOP_MODELS_DIR=/data/models
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 labelloop \
    && mkdir -p /data/models && chown -R labelloop:labelloop /data
USER labelloop
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["labelloop", "serve", "--host", "0.0.0.0", "--port", "8000"]
