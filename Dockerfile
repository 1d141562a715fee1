# One image for the Ray head, the api and the worker (Ray needs the same Python and the
# same code on every node).

# Build stage: python-qpid-proton is published only as source, so installing it needs a
# C compiler, which the final image does without.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/statsaga
ENV PATH=/opt/statsaga/bin:$PATH
WORKDIR /srv/statsaga
# The runtime dependencies first, exactly as locked (each download checked against its
# hash), so that a code change rebuilds only the last layers.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY actors ./actors
COPY storage ./storage
COPY sbemu ./sbemu
COPY devstack ./devstack
COPY config ./config
RUN pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
COPY --from=build /opt/statsaga /opt/statsaga
ENV PATH=/opt/statsaga/bin:$PATH
WORKDIR /srv/statsaga
COPY config ./config
# Not root: a flaw in the API or in Ray then cannot rewrite the installed code.
RUN useradd --system --uid 10001 --create-home statsaga
USER statsaga
EXPOSE 8000
CMD ["statsaga", "run"]
