# One image for all six slipway services; docker-compose.yml picks the service with
# `python -m services.<name>`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package is built from: the repository's .venv, .slipway and tests stay out of
# the image without relying on a .dockerignore.
COPY pyproject.toml ./
COPY contracts ./contracts
COPY libs ./libs
COPY services ./services
COPY slipway ./slipway
COPY examples ./examples
COPY migrations ./migrations
RUN pip install .

# Services never need root; /data is where each one keeps its SQLite file and run state.
RUN useradd --create-home --uid 10001 slipway \
    && mkdir -p /data \
    && chown slipway:slipway /data
USER slipway
ENV SLIPWAY_DATA_DIR=/data
VOLUME ["/data"]

# Run from the installed package, not the copied sources. No CMD of its own: each compose
# service names its module, so the image never starts "some" service by accident.
WORKDIR /data
