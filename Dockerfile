# idflow serve in a container. No Docker engine runs where idflow is tested,
# so this file is kept minimal and checked by reading; dist/check.sh tests the
# same binary (built with the same `dist` profile) outside a container.
#
#   docker build -t idflow .
#   docker run -p 8080:8080 -v idflow-data:/var/lib/idflow idflow \
#     serve --addr 0.0.0.0:8080 --base-url https://id.example.com --config /var/lib/idflow/project.json

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist -p idflow-cli \
 && install -m 0755 target/dist/idflow /usr/local/bin/idflow

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/idflow --create-home idflow
COPY --from=build /usr/local/bin/idflow /usr/local/bin/idflow
USER 10001
WORKDIR /var/lib/idflow
VOLUME /var/lib/idflow
EXPOSE 8080
# /health answers {"status":"ok"}; bash's /dev/tcp needs no curl in the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && grep -q '\"ok\"' <&3"]
ENTRYPOINT ["idflow"]
# The database (and the key file beside it) live in the volume.
CMD ["serve", "--addr", "0.0.0.0:8080", "--db", "/var/lib/idflow/idflow.db"]
