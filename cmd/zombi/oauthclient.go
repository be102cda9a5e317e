package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/zombi-db/zombi/auth"
	"golang.org/x/crypto/bcrypt"
)

// oauthClient makes an OAuth2 client: a secret (new, or read from stdin)
// and the --oauth-client value that holds its bcrypt hash.
//
//	zombi oauth-client [-secret-stdin] [-cost N] ID ROLE[@NAMESPACE]
func oauthClient(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("zombi oauth-client", flag.ContinueOnError)
	fromStdin := fs.Bool("secret-stdin", false, "hash the secret on the first line of stdin instead of making one")
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost of the hash; each step up doubles the time a check takes (10: tens of milliseconds)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: zombi oauth-client [-secret-stdin] [-cost N] ID ROLE[@NAMESPACE]\n\n"+
			"Prints a new client secret and the --oauth-client value for it: ROLE is reader,\n"+
			"writer or admin, on every namespace or on NAMESPACE (dotted) and below.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want a client ID and a role")
	}
	id, grant := fs.Arg(0), fs.Arg(1)
	if *cost < auth.MinBcryptCost || *cost > bcrypt.MaxCost {
		return fmt.Errorf("-cost must be between %d and %d", auth.MinBcryptCost, bcrypt.MaxCost)
	}
	var secret string
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		secret = strings.TrimRight(line, "\r\n")
		if secret == "" || len(secret) > 72 {
			return errors.New("the secret must be 1 to 72 bytes")
		}
	} else {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = base64.RawURLEncoding.EncodeToString(b[:])
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), *cost)
	if err != nil {
		return err
	}
	value := id + ":" + grant + ":" + string(hash)
	if _, err := auth.ParseClient(value); err != nil {
		return err
	}
	if !*fromStdin {
		fmt.Fprintf(stdout, "client secret (shown once): %s\n", secret)
		fmt.Fprintf(stdout, "client credential:          %s:%s\n", id, secret)
	}
	fmt.Fprintf(stdout, "server flag:                --oauth-client '%s'\n", value)
	return nil
}
