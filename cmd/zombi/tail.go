package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// tailRetry is how long zombi tail waits before it reconnects.
const tailRetry = time.Second

// errTailDone: the stream ended and need not be resumed.
var errTailDone = errors.New("done")

// tailCommand follows a table's live tail (GET /tables/{table}/stream)
// and prints each event's JSON on a line of stdout; gaps, drops and
// reconnects go to stderr. It resumes after the last offset it printed
// (Last-Event-ID) whenever the stream ends, until ctx ends.
func tailCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: zombi tail [flags] <[namespace.]table>

Prints the table's events as they are acknowledged, one JSON object a line:
{"offset","stream","partition","ingest_time","table","event"}. Reconnects
after the last offset printed when the stream ends. docs/stream.md.

`)
		fs.PrintDefaults()
	}
	server := fs.String("url", envOr("ZOMBI_URL", "http://127.0.0.1:8181"), "the server's URL (env ZOMBI_URL)")
	token := fs.String("token", os.Getenv("ZOMBI_TOKEN"), "bearer token, a reader's at least when auth is on (env ZOMBI_TOKEN)")
	from := fs.String("from", "", "start after this offset (0: everything the hot tier holds); default: the events acknowledged from now on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("zombi tail takes one table")
	}
	last := ""
	if *from != "" {
		if _, err := strconv.ParseUint(*from, 10, 64); err != nil {
			return fmt.Errorf("--from %q is not an offset", *from)
		}
		last = *from
	}
	u := strings.TrimSuffix(*server, "/") + "/tables/" + url.PathEscape(fs.Arg(0)) + "/stream"
	out := bufio.NewWriter(stdout)
	for {
		err := tailOnce(ctx, u, *token, &last, out, stderr)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errTailDone):
			return nil
		case err != nil:
			var fatal *tailError
			if errors.As(err, &fatal) && !fatal.retry {
				return err
			}
			fmt.Fprintf(stderr, "zombi tail: %v; reconnecting after offset %s\n", err, orNone(last))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(tailRetry):
		}
	}
}

// tailError is a refused stream; retry says whether trying again may
// help (503, 429, 5xx).
type tailError struct {
	status int
	body   string
	retry  bool
}

func (e *tailError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.body) }

// tailOnce reads one stream from after *last, printing its events and
// moving *last past each, until the stream ends.
func tailOnce(ctx context.Context, u, token string, last *string, out *bufio.Writer, stderr io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		s := resp.StatusCode
		return &tailError{status: s, body: strings.TrimSpace(string(b)),
			retry: s == http.StatusTooManyRequests || s >= 500}
	}
	r := bufio.NewReader(resp.Body)
	var id, event, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return errors.New("the stream ended")
			}
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				data = value
			}
			continue
		}
		// A blank line ends a message.
		switch event {
		case "":
			if data != "" {
				out.WriteString(data)
				out.WriteByte('\n')
				if err := out.Flush(); err != nil {
					return fmt.Errorf("%w: writing: %v", errTailDone, err)
				}
			}
		case "gap":
			fmt.Fprintf(stderr, "zombi tail: gap: %s\n", data)
		case "dropped":
			fmt.Fprintf(stderr, "zombi tail: dropped: %s\n", data)
		}
		if id != "" {
			*last = id
		}
		id, event, data = "", "", ""
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func orNone(s string) string {
	if s == "" {
		return "(none yet)"
	}
	return s
}
