// Package testenv starts the real services Zombi's tests run against — a
// throwaway PostgreSQL cluster and an S3-compatible object store on
// 127.0.0.1 — once per test binary, and hands each test its own database or
// bucket. Nothing here is used outside tests.
package testenv
