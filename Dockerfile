# imageflow worker, emulator, starter and the tenants-apart Temporal server in one small image.
#   docker build -t imageflow .
#   docker run --env-file worker.env imageflow            # the worker (default)
#   docker run imageflow /emulator --addr 0.0.0.0:8900    # the cloud emulator
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/worker ./worker && \
    CGO_ENABLED=0 go build -trimpath -o /out/emulator ./emulator/cmd/emulator && \
    CGO_ENABLED=0 go build -trimpath -o /out/starter ./starter && \
    CGO_ENABLED=0 go build -trimpath -o /out/temporal-server ./internal/devserver/cmd/temporal-server
# Distroless has no shell to make directories in, and Docker seeds a new named volume from the
# image's directory at the mount point: made here and owned by nonroot (65532), /data is a volume
# the emulator can write to, not a root-owned one it cannot.
RUN mkdir -p /out-data/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /out-data/data /data
USER 65532:65532
EXPOSE 9090
ENTRYPOINT []
CMD ["/worker"]
