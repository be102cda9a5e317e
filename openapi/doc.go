// Package openapi holds Zombi's own OpenAPI document for the HTTP surface it
// serves (zombi.yaml) and the Go code oapi-codegen generates from it:
// request and response types and an echo router for ServerInterface.
// Files named *.gen.go are generated; never edit them by hand — change the
// YAML and run `go generate ./openapi`.
package openapi

//go:generate go tool oapi-codegen -config oapi-codegen.yaml zombi.yaml

import "encoding/json"

// RawJSON carries an already-encoded JSON document, such as table metadata
// read from its metadata file, through generated types without decoding it.
type RawJSON = json.RawMessage
