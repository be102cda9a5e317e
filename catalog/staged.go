package catalog

import "time"

// StagedBatch is one node's events of one table written as data files and
// waiting for the table's shared commit: in a cluster, every node stages
// its batches and the node holding the table's commit lease commits all of
// them in one append (package flusher). A batch holds the node's events
// after After through Through.
type StagedBatch struct {
	// ID is the store's, set when the batch is staged.
	ID        int64
	TableUUID string
	// Table is where the table was when the batch was staged: a hint.
	Table          Ident
	Node           string
	After, Through uint64
	Rows           int64
	// Oldest is the append time of the batch's oldest event.
	Oldest time.Time
	// FormatVersion is the table's format version the files were encoded
	// for.
	FormatVersion int
	Files         []StagedFile
	Created       time.Time
}

// StagedFile is one data file of a batch: its DataFile encoded with
// iceberg-go's codec for the partition spec and schema it was written in.
type StagedFile struct {
	SpecID, SchemaID int
	Data             []byte
}
