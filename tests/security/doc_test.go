// Package security holds the tests of Zombi's resource bounds: each
// attack of the security issue run against a real `zombi serve` process,
// with assertions on bounds (bytes, counts, statuses), never on time.
package security
