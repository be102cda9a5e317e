package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/zombi-db/zombi/catalog"
)

// Key prefixes. See the package comment for the layout.
const (
	prefixMeta         = 0x00
	prefixNamespace    = 'n'
	prefixTable        = 't'
	prefixReceipt      = 'r'
	prefixReceiptIndex = 'c'
	prefixLease        = 'l'
	prefixLocation     = 'L'
	prefixUUID         = 'u'
)

// formatKey holds the key layout version; formatVersion is the one this
// package writes and reads.
var (
	formatKey     = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	formatVersion = []byte("2")
	// formatVersion1 stored a table's metadata location as the whole
	// value of its key and kept no location or UUID indexes; Open upgrades
	// it in place (see decodeEntry).
	formatVersion1 = []byte("1")
)

var errCorrupt = errors.New("embedded: corrupt record")

// appendString appends s in an order-preserving, self-delimiting form: 0x00
// is escaped as 0x00 0xFF and the string ends with 0x00 0x01. Comparing two
// encodings byte-wise orders them as the strings themselves, and no encoding
// is a prefix of another.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0x00 {
			dst = append(dst, 0x00, 0xFF)
			continue
		}
		dst = append(dst, s[i])
	}
	return append(dst, 0x00, 0x01)
}

// decodeString decodes one appendString encoding from the front of b and
// returns it with the rest of b.
func decodeString(b []byte) (string, []byte, error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0x00 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errCorrupt
		}
		switch b[i+1] {
		case 0x01:
			out = append(out, b[:i]...)
			return string(out), b[i+2:], nil
		case 0xFF:
			out = append(out, b[:i+1]...)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, errCorrupt
		}
	}
	return "", nil, errCorrupt
}

// appendNamespace appends the depth of ns followed by its levels. The depth
// makes the encoding of a namespace a prefix only of the keys of its own
// direct children (namespaces one level deeper, or its tables), never of
// deeper descendants.
func appendNamespace(dst []byte, ns catalog.Namespace) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ns)))
	for _, level := range ns {
		dst = appendString(dst, level)
	}
	return dst
}

// namespaceKey is the key of ns's record.
func namespaceKey(ns catalog.Namespace) []byte {
	return appendNamespace([]byte{prefixNamespace}, ns)
}

// childrenPrefix is the prefix shared by the keys of parent's direct child
// namespaces and no other key.
func childrenPrefix(parent catalog.Namespace) []byte {
	k := binary.AppendUvarint([]byte{prefixNamespace}, uint64(len(parent)+1))
	for _, level := range parent {
		k = appendString(k, level)
	}
	return k
}

// tablesPrefix is the prefix shared by the keys of the tables in ns and no
// other key.
func tablesPrefix(ns catalog.Namespace) []byte {
	return appendNamespace([]byte{prefixTable}, ns)
}

func tableKey(id catalog.Ident) []byte {
	return appendString(tablesPrefix(id.Namespace), id.Name)
}

// entryMarker starts every entry value of format 2. A format-1 value is a
// bare metadata location, which never starts with 0x00.
const entryMarker = 0x00

// encodeEntry encodes e as entryMarker, the kind, then the metadata
// location, location and UUID, each length-prefixed.
func encodeEntry(e catalog.Entry) []byte {
	b := []byte{entryMarker, byte(e.Kind)}
	b = appendBytes(b, e.MetadataLocation)
	b = appendBytes(b, e.Location)
	return appendBytes(b, e.UUID)
}

// decodeEntry reverses encodeEntry; a format-1 value is a table with only
// its metadata location.
func decodeEntry(v []byte) (catalog.Entry, error) {
	if len(v) == 0 {
		return catalog.Entry{}, errCorrupt
	}
	if v[0] != entryMarker {
		return catalog.Entry{Kind: catalog.KindTable, MetadataLocation: string(v)}, nil
	}
	if len(v) < 2 {
		return catalog.Entry{}, errCorrupt
	}
	e := catalog.Entry{Kind: catalog.Kind(v[1])}
	if e.Kind != catalog.KindTable && e.Kind != catalog.KindView {
		return catalog.Entry{}, errCorrupt
	}
	var err error
	b := v[2:]
	if e.MetadataLocation, b, err = readBytes(b); err != nil {
		return catalog.Entry{}, err
	}
	if e.Location, b, err = readBytes(b); err != nil {
		return catalog.Entry{}, err
	}
	if e.UUID, b, err = readBytes(b); err != nil {
		return catalog.Entry{}, err
	}
	if len(b) != 0 {
		return catalog.Entry{}, errCorrupt
	}
	return e, nil
}

// locationKey indexes an entry by its location: prefixLocation, the
// canonical location (which holds no 0x00), 0x00, then the entry's key
// without its prefix byte. The keys of the entries at exactly loc share
// the prefix locationPrefix(loc); those strictly below loc start with
// prefixLocation followed by loc's ChildPrefix.
func locationKey(loc string, id catalog.Ident) []byte {
	return append(locationPrefix(loc), tableKey(id)[1:]...)
}

func locationPrefix(loc string) []byte {
	k := append([]byte{prefixLocation}, loc...)
	return append(k, 0x00)
}

// uuidKey indexes an entry by its UUID; the value is the entry's key.
func uuidKey(uuid string) []byte {
	return append([]byte{prefixUUID}, uuid...)
}

// identOfKey decodes a table key (with or without its prefix byte).
func identOfKey(k []byte) (catalog.Ident, error) {
	if len(k) > 0 && k[0] == prefixTable {
		k = k[1:]
	}
	depth, n := binary.Uvarint(k)
	if n <= 0 || depth == 0 || depth > uint64(len(k)) {
		return catalog.Ident{}, errCorrupt
	}
	k = k[n:]
	id := catalog.Ident{Namespace: make(catalog.Namespace, depth)}
	var err error
	for i := range id.Namespace {
		if id.Namespace[i], k, err = decodeString(k); err != nil {
			return catalog.Ident{}, err
		}
	}
	if id.Name, k, err = decodeString(k); err != nil {
		return catalog.Ident{}, err
	}
	if len(k) != 0 {
		return catalog.Ident{}, errCorrupt
	}
	return id, nil
}

func receiptKey(key string) []byte {
	return append([]byte{prefixReceipt}, key...)
}

// appendTime appends t so that byte-wise order is time order: the Unix
// seconds with the sign bit flipped, then the nanoseconds, both big-endian.
func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

// receiptIndexPrefix is the prefix of the index keys of the receipts created
// at t; receiptIndexKey is the index entry of one receipt.
func receiptIndexPrefix(t time.Time) []byte {
	return appendTime([]byte{prefixReceiptIndex}, t)
}

func receiptIndexKey(created time.Time, key string) []byte {
	return append(receiptIndexPrefix(created), key...)
}

// successor returns the smallest key greater than every key starting with
// prefix, or nil if there is none.
func successor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			s := bytes.Clone(prefix[:i+1])
			s[i]++
			return s
		}
	}
	return nil
}

// encodeProps encodes namespace properties as a count followed by
// length-prefixed keys and values, in key order.
func encodeProps(props map[string]string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(props)))
	for _, k := range slices.Sorted(maps.Keys(props)) {
		b = appendBytes(b, k)
		b = appendBytes(b, props[k])
	}
	return b
}

func decodeProps(b []byte) (map[string]string, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	props := make(map[string]string, n)
	for range n {
		var k, v string
		if k, b, err = readBytes(b); err != nil {
			return nil, err
		}
		if v, b, err = readBytes(b); err != nil {
			return nil, err
		}
		props[k] = v
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return props, nil
}

// encodeReceipt encodes everything but the key: status, creation time,
// operation and finally the body.
func encodeReceipt(r catalog.Receipt) []byte {
	b := binary.AppendVarint(nil, int64(r.Status))
	b = binary.AppendVarint(b, r.Created.Unix())
	b = binary.AppendUvarint(b, uint64(r.Created.Nanosecond()))
	b = appendBytes(b, r.Op)
	return append(b, r.Body...)
}

func decodeReceipt(key string, b []byte) (*catalog.Receipt, error) {
	status, b, err := readVarint(b)
	if err != nil {
		return nil, err
	}
	sec, b, err := readVarint(b)
	if err != nil {
		return nil, err
	}
	nsec, b, err := readUvarint(b)
	if err != nil || nsec >= 1e9 {
		return nil, errCorrupt
	}
	op, b, err := readBytes(b)
	if err != nil {
		return nil, err
	}
	return &catalog.Receipt{
		Key:     key,
		Op:      op,
		Status:  int(status),
		Body:    bytes.Clone(b),
		Created: time.Unix(sec, int64(nsec)).UTC(),
	}, nil
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func readBytes(b []byte) (string, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(b)) {
		return "", nil, errCorrupt
	}
	return string(b[:n]), b[n:], nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, b[n:], nil
}

func readVarint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, b[n:], nil
}

// leaseKey is prefixLease name; the value is the holder's length as a
// uvarint, the holder, then the expiry as appendTime writes it.
func leaseKey(name string) []byte {
	return append([]byte{prefixLease}, name...)
}

func encodeLease(holder string, until time.Time) []byte {
	b := binary.AppendUvarint(nil, uint64(len(holder)))
	b = append(b, holder...)
	return appendTime(b, until)
}

func decodeLease(v []byte) (holder string, until time.Time, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return "", time.Time{}, errors.New("malformed lease")
	}
	holder = string(v[k : k+int(n)])
	until, err = decodeTime(v[k+int(n):])
	return holder, until, err
}

// decodeTime reverses appendTime; b must hold exactly its 12 bytes.
func decodeTime(b []byte) (time.Time, error) {
	if len(b) != 12 {
		return time.Time{}, errors.New("malformed time")
	}
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC(), nil
}
