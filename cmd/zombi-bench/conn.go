package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// conn is a minimal HTTP/1.1 keep-alive client over one TCP connection. The
// load generator runs on the same cores as the server it measures, so it
// must be cheap: net/http's client costs about as much CPU per request as
// the server does. It sends prebuilt requests and reads only the status
// line, Content-Length or chunked framing, and the body; it handles nothing
// else (no redirects), which is all zombi's ingest API needs.
type conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	// deadline is the connection's I/O deadline. It is moved only when
	// less than requestTimeout is left, not before every request: each
	// move is a timer update in the runtime, on CPU the server needs.
	deadline time.Time
}

// requestTimeout bounds a request: it fails after at least this long and
// at most twice as long.
const requestTimeout = 30 * time.Second

func dial(u *url.URL) (*conn, error) {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("only http:// targets are supported, not %s", u.Scheme)
	}
	c := &conn{addr: addr}
	return c, c.redial()
}

func (c *conn) redial() error {
	if c.c != nil {
		c.c.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.c, c.r = nc, bufio.NewReaderSize(nc, 16<<10)
	c.deadline = time.Time{}
	return nil
}

func (c *conn) Close() error { return c.c.Close() }

// request builds the bytes of one POST.
func request(u *url.URL, path, token string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, u.Host, len(body))
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// do sends req at now and returns the response status, reading and
// discarding the body so the connection can be reused.
func (c *conn) do(req []byte, now time.Time) (int, error) {
	if c.deadline.Sub(now) < requestTimeout {
		c.deadline = now.Add(2 * requestTimeout)
		if err := c.c.SetDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		const cl, te = "content-length:", "transfer-encoding:"
		switch {
		case len(h) > len(cl) && bytes.EqualFold(h[:len(cl)], []byte(cl)):
			length, err = strconv.Atoi(string(bytes.TrimSpace(h[len(cl):])))
			if err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", h)
			}
		case len(h) > len(te) && bytes.EqualFold(h[:len(te)], []byte(te)):
			chunked = bytes.EqualFold(bytes.TrimSpace(h[len(te):]), []byte("chunked"))
		}
	}
	if chunked {
		return status, c.discardChunks()
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length or chunked framing")
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// discardChunks reads a chunked body to its end.
func (c *conn) discardChunks() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			// Trailers, then the final CRLF.
			for {
				t, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(t) <= 2 {
					return nil
				}
			}
		}
		if _, err := c.r.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}
