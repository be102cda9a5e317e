// Command zombi runs the Zombi server: an Iceberg REST catalog that also
// accepts writes.
//
//	zombi serve          run the server (flags or ZOMBI_* environment variables)
//	zombi migrate        apply the Postgres schema migrations and exit
//	zombi oauth-client   make an OAuth2 client's secret and its --oauth-client value
//	zombi tail           follow a table's events as they are acknowledged
//	zombi version        print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "zombi:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: zombi <command> [flags]

commands:
  serve          run the catalog server
  migrate        apply Postgres schema migrations (needs --postgres-url)
  oauth-client   make an OAuth2 client: a secret and its --oauth-client value
  tail           follow a table's events as they are acknowledged (JSON lines)
  version        print the version

Run "zombi serve -h" for the flags; each flag can also be set with an
environment variable named ZOMBI_ and the flag name in upper case with
underscores (--postgres-url is ZOMBI_POSTGRES_URL).
`)
}

func run(args []string) error {
	if len(args) == 0 {
		usage()
		return errors.New("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		cfg, err := parseConfig("serve", args[1:])
		if err != nil {
			return err
		}
		tuneGC()
		tuneProcs()
		return serve(ctx, cfg)
	case "migrate":
		cfg, err := parseConfig("migrate", args[1:])
		if err != nil {
			return err
		}
		return migrate(ctx, cfg)
	case "oauth-client":
		return oauthClient(args[1:], os.Stdin, os.Stdout)
	case "tail":
		return tailCommand(ctx, args[1:], os.Stdout, os.Stderr)
	case "version", "--version", "-version":
		fmt.Println("zombi", version)
		return nil
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}
