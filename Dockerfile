FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APEX_THREADS=1
RUN apt-get update && apt-get install -y --no-install-recommends default-jre-headless libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The runtime lock only (no pytest, playwright, ruff), every file checked against its hash. torch's CPU build
# comes from the PyTorch index on its own (PyPI's is the CUDA one), then everything else from PyPI.
COPY requirements.lock ./
RUN awk '/^torch==/{p=1} p{print} p&&!/\\$/{exit}' requirements.lock > /tmp/torch.lock \
    && pip install --no-cache-dir --require-hashes --no-deps --index-url https://download.pytorch.org/whl/cpu \
       -r /tmp/torch.lock \
    && pip install --no-cache-dir --require-hashes -r requirements.lock \
    && rm /tmp/torch.lock
COPY . .
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["uvicorn", "apex_site.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
