// Package ingestpb holds the Protobuf messages of Zombi's ingest API
// (zombi.proto) and the Go code protoc-gen-go generates from them.
//
// zombi.pb.go is generated; never edit it by hand. Change zombi.proto and
// run `go generate ./ingest/ingestpb`. Generation needs no protoc binary:
// internal/protoc compiles the .proto file in Go and runs protoc-gen-go,
// both at the versions pinned in go.mod.
package ingestpb

//go:generate go run ./internal/protoc -plugin "go tool protoc-gen-go" -param paths=source_relative -out . zombi.proto
