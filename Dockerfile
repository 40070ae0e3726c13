FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY schema schema
COPY policies policies
COPY node node
COPY hub hub
COPY adapters adapters
RUN pip install --no-cache-dir -c requirements.lock .
# The `district` volume (compose.yaml) mounts here: the hub's sources and the nodes'
# credentials, written by `init`. A new volume takes this folder's owner.
RUN mkdir -p /var/lib/linli && chown nobody:nogroup /var/lib/linli
WORKDIR /var/lib/linli
USER nobody
