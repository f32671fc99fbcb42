# syntax=docker/dockerfile:1
# A static ircam-auth on a distroless base, running as a non-root user.
#   docker build -t ircam-auth .
#   docker run --rm -p 9000:9000 -p 3893:3893 ircam-auth
# Fixtures: mount a file at /fixtures/fixtures.yaml (-v ./my.yaml:/fixtures/fixtures.yaml:ro).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ircam-auth ./cmd/ircam-auth

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ircam-auth /usr/local/bin/ircam-auth
COPY fixtures/default.yaml /fixtures/fixtures.yaml
# Inside a container, listen on every interface; publish the ports to
# reach them from the host.
ENV IRCAM_AUTH_LISTEN=0.0.0.0:9000 \
    IRCAM_AUTH_LDAP_LISTEN=0.0.0.0:3893 \
    IRCAM_AUTH_FIXTURES=/fixtures/fixtures.yaml
EXPOSE 9000 3893
USER nonroot:nonroot
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/ircam-auth", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ircam-auth"]
