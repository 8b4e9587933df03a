FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY detectors detectors
COPY rca rca
COPY ingest ingest
COPY notify notify
COPY console console
COPY benchmarks benchmarks
RUN pip install --no-cache-dir . \
    && python -c "from detectors.metric import warm_up; warm_up()"
ENV AIOPS_WORKER__WEB_HOST=0.0.0.0 \
    AIOPS_WORKER__DATADIR=/var/lib/aiops-stream
EXPOSE 6066 6067
ENTRYPOINT ["aiops"]
CMD ["worker"]
