# gengate: one image for API nodes (`gengate serve --no-worker`), workers (`gengate worker`)
# and the all-in-one default (`gengate serve`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    GENGATE_HOST=0.0.0.0 GENGATE_PORT=8000 GENGATE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home --uid 1000 gengate \
    && mkdir -p /data && chown gengate /data

USER gengate
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GENGATE_PORT','8000'), timeout=2)"
CMD ["gengate", "serve"]
