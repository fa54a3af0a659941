# imageflow worker, emulator and starter in one small image.
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
    CGO_ENABLED=0 go build -trimpath -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /
USER nonroot
EXPOSE 9090
ENTRYPOINT []
CMD ["/worker"]
