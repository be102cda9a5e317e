// Command zombi-testenv starts the throwaway Postgres cluster, S3 server and
// MinIO that Zombi's test suites share, prints shell `export` lines pointing the
// test fixtures at them, and keeps them running until it gets SIGINT or
// SIGTERM. scripts/test.sh uses it; it is not part of the product.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/zombi-db/zombi/internal/testenv"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	env, err := testenv.StartShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zombi-testenv:", err)
		os.Exit(1)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("export %s=%q\n", k, env[k])
	}
	fmt.Println("# ready")
	_ = os.Stdout.Sync()
	<-sig
	testenv.StopS3()
	testenv.StopPostgres()
}
