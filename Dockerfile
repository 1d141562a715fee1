# One image for the Ray head, the api and the worker (Ray needs the same Python and the
# same code on every node).
FROM python:3.11-slim
WORKDIR /srv/statsaga
COPY pyproject.toml README.md ./
COPY app ./app
COPY actors ./actors
COPY storage ./storage
COPY sbemu ./sbemu
COPY config ./config
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["statsaga", "run"]
