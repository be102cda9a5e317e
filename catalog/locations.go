package catalog

import (
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/zombi-db/zombi/internal/location"
)

// Where tables and views may live, and what their metadata may point at.
//
// A table or view location lies strictly below one of the catalog's roots:
// the warehouse, or a prefix the operator allowed (Options.AllowedLocations).
// It never equals, contains or lies inside another table's or view's
// location (the store enforces that atomically, see Store.Create), and in
// the warehouse it is never a namespace's directory, where the catalog puts
// that namespace's tables. Every file the metadata names directly — the
// metadata log, manifest lists, statistics, and the data and metadata write
// paths — lies inside the location. Files named inside manifests are
// checked where Zombi opens or deletes them (warehouse.Confine), not at
// commit time: a client may reference data files elsewhere, and Zombi then
// never reads or deletes them.

// writePathKeys are the table properties that move where files are
// written; each must lie inside the table location.
var writePathKeys = []string{
	table.WriteDataPathKey,
	table.WriteMetadataPathKey,
	"write.object-storage.path",
	"write.folder-storage.path",
}

// parseRoots parses the warehouse root and the allowed locations.
func parseRoots(warehouse string, allowed []string) ([]location.Location, error) {
	var roots []location.Location
	for _, r := range append([]string{warehouse}, allowed...) {
		l, err := location.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("catalog: allowed location: %w", err)
		}
		if l.Path() == "/" && l.Scheme() == "file" {
			return nil, fmt.Errorf("catalog: allowed location %q is the file system root", r)
		}
		roots = append(roots, l)
	}
	return roots, nil
}

// defaultLocation is where a new table or view lives when the client names
// no location: under the warehouse, by namespace, with a random suffix so a
// table created after another was dropped or renamed away never shares its
// files. Names are folded to location-safe characters (see pathSegment):
// engines disagree on whether a location is percent-decoded, so a location
// must mean the same path to all of them.
func (s *Service) defaultLocation(id Ident) string {
	return s.namespaceLocation(id.Namespace) + "/" + pathSegment(id.Name) + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}

// namespaceLocation is the directory under which the catalog puts the
// tables of ns: <warehouse>/<namespace levels>.
func (s *Service) namespaceLocation(ns Namespace) string {
	parts := []string{strings.TrimSuffix(s.wh.Root(), "/")}
	for _, level := range ns {
		parts = append(parts, pathSegment(level))
	}
	return strings.Join(parts, "/")
}

// pathSegment keeps ASCII letters, digits, '.', '_' and '-' of a name and
// replaces every other byte with '_'. A segment made only of dots becomes
// underscores too.
func pathSegment(name string) string {
	b := []byte(name)
	dots := true
	for i, c := range b {
		if !safeSegmentByte(c) {
			b[i] = '_'
		}
		dots = dots && b[i] == '.'
	}
	if dots {
		return strings.Repeat("_", len(b))
	}
	return string(b)
}

func safeSegmentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// plainLocation reports whether a location's path is made of characters
// every engine reads the same way: no percent escapes, spaces, '?', '#' or
// other bytes that URL parsers treat differently.
func plainLocation(loc string) bool {
	for i := 0; i < len(loc); i++ {
		c := loc[i]
		if !safeSegmentByte(c) && !strings.ContainsRune("/:=+,@~", rune(c)) {
			return false
		}
	}
	return true
}

// place checks that loc may hold a table or view (what names it in
// errors) and returns it canonical: plain characters, strictly below the
// warehouse or an allowed location.
func (s *Service) place(what, loc string) (location.Location, error) {
	if !plainLocation(loc) {
		return location.Location{}, fmt.Errorf("%w: %s %q may only contain ASCII letters, digits and . _ - / : = + , @ ~", ErrInvalid, what, loc)
	}
	l, err := location.Parse(loc)
	if err != nil {
		return location.Location{}, fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
	}
	for _, r := range s.roots {
		if r.Below(l) {
			return l, nil
		}
	}
	if len(s.roots) == 1 {
		return location.Location{}, fmt.Errorf("%w: %s %q is not inside the warehouse %s", ErrInvalid, what, loc, s.wh.Root())
	}
	return location.Location{}, fmt.Errorf("%w: %s %q is not inside the warehouse %s or an allowed location (--allowed-locations)", ErrInvalid, what, loc, s.wh.Root())
}

// inRoots reports whether loc lies inside one of the catalog's roots.
func (s *Service) inRoots(loc string) bool {
	l, err := location.Parse(loc)
	if err != nil {
		return false
	}
	for _, r := range s.roots {
		if r.Contains(l) {
			return true
		}
	}
	return false
}

// checkNotNamespaceDir refuses a location in the warehouse that is the
// directory of an existing namespace: the catalog puts that namespace's
// tables there, and a table owning the directory would own them. The
// directory of a namespace folds its levels (pathSegment), so the
// namespaces whose directory loc could be are found level by level.
func (s *Service) checkNotNamespaceDir(tx Tx, loc location.Location) error {
	root := s.roots[0]
	if !root.Below(loc) {
		return nil
	}
	rel := strings.TrimPrefix(loc.Path(), strings.TrimSuffix(root.Path(), "/"))
	segs := strings.Split(strings.Trim(rel, "/"), "/")
	candidates := []Namespace{nil}
	for _, seg := range segs {
		var next []Namespace
		for _, parent := range candidates {
			children, err := tx.ListNamespaces(parent, "", 0)
			if err != nil {
				return err
			}
			for _, c := range children {
				if pathSegment(c[len(c)-1]) == seg {
					next = append(next, c)
				}
			}
		}
		if len(next) == 0 {
			return nil
		}
		candidates = next
	}
	return fmt.Errorf("%w: location %s is the directory of namespace %s", ErrLocationInUse, loc, strings.Join(candidates[0], "."))
}

// confine checks that every file meta names directly lies inside its
// location. With a base (whose metadata file is baseFile), only what the
// change added is checked: files an older location held stay the table's,
// but Zombi deletes only inside the current location.
func confine(meta, base table.Metadata, baseFile string) error {
	loc, err := location.Parse(meta.Location())
	if err != nil {
		return fmt.Errorf("%w: table location: %w", ErrInvalid, err)
	}
	check := func(what, p string) error {
		l, err := location.Parse(p)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
		}
		if !loc.Contains(l) {
			return fmt.Errorf("%w: %s %q is not inside the table location %s", ErrInvalid, what, p, loc)
		}
		return nil
	}
	props := meta.Properties()
	for _, key := range writePathKeys {
		if p, ok := props[key]; ok {
			if err := check(key, p); err != nil {
				return err
			}
		}
	}
	// Files and snapshots the base already has were checked when they
	// came in. Two sets: a path that spells a snapshot ID is no known file.
	known := map[string]bool{}
	knownSnapshots := map[int64]bool{}
	if baseFile != "" {
		known[baseFile] = true
	}
	if base != nil {
		for _, sn := range base.Snapshots() {
			// Snapshots are immutable: one the base has was checked.
			knownSnapshots[sn.SnapshotID] = true
		}
		for st := range base.Statistics() {
			known[st.StatisticsPath] = true
		}
		for st := range base.PartitionStatistics() {
			known[st.StatisticsPath] = true
		}
		for e := range base.PreviousFiles() {
			known[e.MetadataFile] = true
		}
	}
	for _, sn := range meta.Snapshots() {
		if knownSnapshots[sn.SnapshotID] {
			continue
		}
		if sn.ManifestList == "" && len(sn.ManifestLocations) == 0 {
			return fmt.Errorf("%w: snapshot %d names no manifest list", ErrInvalid, sn.SnapshotID)
		}
		if sn.ManifestList != "" {
			if err := check(fmt.Sprintf("manifest list of snapshot %d", sn.SnapshotID), sn.ManifestList); err != nil {
				return err
			}
		}
		for _, m := range sn.ManifestLocations {
			if err := check(fmt.Sprintf("manifest of snapshot %d", sn.SnapshotID), m); err != nil {
				return err
			}
		}
	}
	for st := range meta.Statistics() {
		if known[st.StatisticsPath] {
			continue
		}
		if err := check(fmt.Sprintf("statistics file of snapshot %d", st.SnapshotID), st.StatisticsPath); err != nil {
			return err
		}
	}
	for st := range meta.PartitionStatistics() {
		if known[st.StatisticsPath] {
			continue
		}
		if err := check(fmt.Sprintf("partition statistics file of snapshot %d", st.SnapshotID), st.StatisticsPath); err != nil {
			return err
		}
	}
	for e := range meta.PreviousFiles() {
		if known[e.MetadataFile] {
			continue
		}
		if err := check("metadata log entry", e.MetadataFile); err != nil {
			return err
		}
	}
	return nil
}
