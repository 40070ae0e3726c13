FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY schema schema
COPY policies policies
COPY node node
COPY hub hub
COPY adapters adapters
RUN pip install --no-cache-dir -c requirements.lock .
USER nobody
