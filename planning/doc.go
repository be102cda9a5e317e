// Package planning is Zombi's server-side scan planning: the work behind the
// REST catalog's planTableScan, fetchPlanningResult, cancelPlanning and
// fetchScanTasks endpoints.
//
// A Planner turns a scan request into a plan: a list of pages, each a set of
// the snapshot's data manifests (plus all of its delete manifests) small
// enough to plan in bounded memory. The first page is planned at once and
// answered inline; the others are handed out as plan tasks and planned when
// the client fetches them. Planning itself is iceberg-go's (table.Scan over
// a snapshot whose manifest list names only the page's manifests), so
// partition and column-stats pruning, delete-file matching (position,
// equality, deletion vectors) and residuals are the library's, and every
// file it opens goes through warehouse.Confine for the table's location.
//
// What a plan reads is decided by a Source: CatalogSource plans committed
// snapshots; a Source may also add data files beyond the snapshot's
// manifests (Target.Extra), which are planned as if a later commit had
// added them. Plans live in memory on the node that made them, bounded in
// number and estimated size, and are forgotten when cancelled or unused
// for their lifetime.
package planning
