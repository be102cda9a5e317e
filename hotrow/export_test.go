package hotrow

// The internals that the tests, in package hotrow_test, check.

// Tags of format 2, to write malformed values.
const (
	TagNull        = tagNull
	TagInt         = tagInt
	TagLong        = tagLong
	TagFloat       = tagFloat
	TagDecimal     = tagDecimal
	TagDate        = tagDate
	TagTime        = tagTime
	TagTimestampTz = tagTimestampTz
	TagString      = tagString
	TagUUID        = tagUUID
	TagFixed       = tagFixed
	TagList        = tagList
	TagMap         = tagMap
)

const (
	MaxDepth     = maxDepth
	MicrosPerDay = microsPerDay
)

var (
	ErrValue        = errValue
	AppendFloatJSON = appendFloatJSON
)
