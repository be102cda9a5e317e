// Package server is Zombi's HTTP surface: it binds the generated OpenAPI
// router (package openapi) to the catalog service, maps domain errors to the
// Iceberg error format once, and adds authentication, request metrics,
// body limits and health endpoints.
package server
