# One image for the Ray head, the api and the worker (Ray needs the same Python and the
# same code on every node).
FROM python:3.11-slim
WORKDIR /srv/statsaga
# The runtime dependencies first, exactly as locked (each file checked against its hash),
# so that a code change rebuilds only the last layers.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY actors ./actors
COPY storage ./storage
COPY sbemu ./sbemu
COPY config ./config
RUN pip install --no-cache-dir --no-deps .
# Not root: a flaw in the API or in Ray then cannot rewrite the installed code.
RUN useradd --system --uid 10001 --create-home statsaga
USER statsaga
EXPOSE 8000
CMD ["statsaga", "run"]
