# syntax=docker/dockerfile:1
# givfleet's container image: `givfleet` is the entry point, the API the default command.
#   docker build -t givfleet .
#   docker run --rm givfleet --help
# Configuration (URLs, encryption keys) comes from the environment at run time; nothing secret is baked in.
# The root filesystem may be mounted read-only: the process writes only to GIVFLEET_HOME and /tmp (mount both
# as volumes; the Helm chart in helm/givfleet uses emptyDirs).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler for any dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, read from pyproject.toml, in a layer of their own (rebuilt only when they change).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt
# The package, installed in place: service.db.migrate finds migrations/ and alembic.ini beside service/.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY graphql ./graphql
COPY service ./service
RUN pip install --no-deps --editable . \
    && python -m compileall -q /app/service /app/migrations

FROM python:${PYTHON_VERSION}-slim AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} givfleet \
    && useradd --system --uid ${UID} --gid givfleet --home-dir /var/lib/givfleet --no-create-home \
        --shell /usr/sbin/nologin givfleet \
    && install --directory --owner givfleet --group givfleet --mode 0700 /var/lib/givfleet
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIVFLEET_HOME=/var/lib/givfleet \
    GIVFLEET_API__HOST=0.0.0.0 \
    GIVFLEET_API__PORT=8000 \
    GIVFLEET_LOG__JSON_OUTPUT=true \
    GIVFLEET_SECURITY__GENERATE_KEY_FILE=false
WORKDIR /var/lib/givfleet
VOLUME ["/var/lib/givfleet"]
USER ${UID}:${UID}
EXPOSE 8000
ENTRYPOINT ["givfleet"]
CMD ["api"]
