# remotemcp's container image: the static binary of make build on an empty
# base, run as uid 65532 with nothing to write (README: Container image).
#
#   docker build -t remotemcp --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker run --rm --read-only -p 8080:8080 remotemcp \
#     --public-url https://mcp.example.com --auth jwt --issuer https://sso.example.com
#
# The build stage needs the golang image from a registry; .ci/image.sh
# builds the runtime stage below from a locally built binary instead.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not copied (.dockerignore): pass the version in.
ARG VERSION=devel
ARG COMMIT=
RUN make build VERSION="${VERSION}" COMMIT="${COMMIT}"

# The runtime stage: nothing but the binary and the CA certificates it needs
# to reach identity providers, JWKS and Redis over TLS. No shell, so no
# HEALTHCHECK: probe GET /healthz (liveness) and /readyz (readiness) from
# outside, as deploy/kubernetes does.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/bin/remotemcp /remotemcp
USER 65532:65532
# In a container the listener must take connections from outside it; a
# non-loopback listener needs --public-url (and refuses --auth none).
ENV REMOTEMCP_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/remotemcp"]
