# Builds the zombi server image used by docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/zombi ./cmd/zombi

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/zombi /zombi
EXPOSE 8181
ENTRYPOINT ["/zombi"]
CMD ["serve", "--listen", "0.0.0.0:8181", "--data-dir", "/data"]
