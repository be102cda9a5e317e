package catalog

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameLen bounds a namespace level or table name in bytes.
const maxNameLen = 255

// validName checks a namespace level or a table name. Names become path
// segments of table locations, so anything that could escape a directory
// or confuse a path (separators, dot segments, control bytes) is refused.
func validName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalid, kind)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: %s name is longer than %d bytes", ErrInvalid, kind, maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrInvalid, kind)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %s name %q is a path segment", ErrInvalid, kind, name)
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("%w: %s name %q contains a path separator", ErrInvalid, kind, name)
	}
	for _, r := range name {
		switch {
		case unicode.Is(unicode.Cc, r):
			return fmt.Errorf("%w: %s name %q contains a control character", ErrInvalid, kind, name)
		case r == utf8.RuneError:
			// A JSON decoder puts U+FFFD where a body had invalid UTF-8:
			// refused rather than stored as something the client never
			// sent.
			return fmt.Errorf("%w: %s name %q contains U+FFFD (invalid UTF-8 in the request?)", ErrInvalid, kind, name)
		case bidiControl(r):
			return fmt.Errorf("%w: %s name %q contains a bidirectional control character (U+%04X), which makes a name display as another", ErrInvalid, kind, name, r)
		}
	}
	return nil
}

// bidiControl reports the Unicode bidirectional formatting characters
// (embeddings, overrides, isolates and marks).
func bidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// ValidateNamespace checks every level of ns; an empty namespace is
// refused.
func ValidateNamespace(ns Namespace) error {
	if len(ns) == 0 {
		return fmt.Errorf("%w: namespace is empty", ErrInvalid)
	}
	for _, level := range ns {
		if err := validName("namespace", level); err != nil {
			return err
		}
	}
	return nil
}

// ValidateIdent checks a table identifier.
func ValidateIdent(id Ident) error {
	if err := ValidateNamespace(id.Namespace); err != nil {
		return err
	}
	return validName("table", id.Name)
}
