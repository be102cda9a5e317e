package planning

import (
	"fmt"
	"strings"
)

// Mode is who plans a table's scans: the engine from the manifests, or
// this server.
type Mode string

// The planning modes, as loadTable's scan-planning-mode config says them.
const (
	ModeClient Mode = "client"
	ModeServer Mode = "server"
)

// TableProperty is the table property that chooses a table's mode; it
// wins over the server's default.
const TableProperty = "zombi.read.planning"

// ConfigKey is the loadTable config key (and catalog property) that tells
// a REST client who plans.
const ConfigKey = "scan-planning-mode"

// ParseMode reads a mode as given on the command line.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeClient, ModeServer:
		return m, nil
	}
	return "", fmt.Errorf("scan planning mode must be client or server, not %q", s)
}

// TableMode is the mode to announce for a table with properties props on
// a server whose default is def: the table's choice if it makes a valid
// one, else def when it is server, else none ("", the client decides; an
// engine plans itself unless configured otherwise).
func TableMode(props map[string]string, def Mode) Mode {
	if m, err := ParseMode(props[TableProperty]); err == nil {
		return m
	}
	if def == ModeServer {
		return ModeServer
	}
	return ""
}
