# shoal server image: the locked Python dependencies, the server, nothing else.
#   docker build -t shoal .
#   docker run -p 5002:5002 -p 50000:50000/udp -e SHOAL_RTC_PUBLIC_IP=<host's public IP> shoal
# All WebRTC media goes through one UDP port (SHOAL_RTC_UDP_PORT), so one published port is
# enough; the announced address is the host's, not the container's (see README, "Deploying").
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/shoal
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install -c requirements/lock.txt pip setuptools \
 && python -m pip install -c requirements/lock.txt . \
 && useradd --system --uid 10001 --no-create-home shoal

USER shoal
ENV SHOAL_HOST=0.0.0.0 \
    SHOAL_PORT=5002 \
    SHOAL_RTC_UDP_PORT=50000
EXPOSE 5002/tcp 50000/udp
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"SHOAL_PORT\"]}/health', timeout=2)"]
ENTRYPOINT ["shoal", "serve"]
