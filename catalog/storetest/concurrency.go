package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zombi-db/zombi/catalog"
)

var concurrencyTests = []test{
	{"NoLostUpdate", testConcurrentNoLostUpdate},
	{"CreateTableOnce", testConcurrentCreateTable},
	{"CreateNamespaceOnce", testConcurrentCreateNamespace},
	{"DropNamespaceVsCreateTable", testConcurrentDropVsCreateTable},
	{"DropNamespaceVsCreateChild", testConcurrentDropVsCreateChild},
	{"MultiTableSwaps", testConcurrentMultiTableSwaps},
}

const (
	goroutines = 16
	increments = 4
)

// parallel runs fn(0) … fn(n-1) in goroutines released together and waits
// for them.
func parallel(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentNoLostUpdate(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	for _, tc := range []struct {
		name string
		// read returns the location the next swap expects: in the same
		// transaction as the swap, or in an earlier View as the catalog's
		// commit path does.
		sameTx bool
	}{
		{"LoadInUpdate", true},
		{"LoadInView", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := ident(ns("a"), tc.name)
			createTable(t, s, id, "m")
			var (
				successes, failures atomic.Int64
				mu                  sync.Mutex
				committed           = map[string]bool{}
			)
			parallel(goroutines, func(int) {
				for done := 0; done < increments; {
					var cur, next string
					if !tc.sameTx {
						var err error
						if cur, err = loadTable(t, s, id); err != nil {
							t.Errorf("LoadTable: %v", err)
							return
						}
					}
					err := s.Update(t.Context(), func(tx catalog.Tx) error {
						if tc.sameTx {
							var err error
							if cur, err = loadT(tx, id); err != nil {
								return err
							}
						}
						next = cur + "x"
						return swapT(tx, id, cur, next)
					})
					switch {
					case err == nil:
						successes.Add(1)
						done++
						mu.Lock()
						if committed[next] {
							t.Errorf("two commits moved the pointer to %d x", len(next)-1)
						}
						committed[next] = true
						mu.Unlock()
					case errors.Is(err, catalog.ErrCommitFailed):
						failures.Add(1)
					default:
						t.Errorf("Update: %v", err)
						return
					}
				}
			})
			if t.Failed() {
				return
			}
			const total = goroutines * increments
			if got := successes.Load(); got != total {
				t.Fatalf("%d successful swaps, want %d", got, total)
			}
			wantTable(t, s, id, "m"+strings.Repeat("x", total))
			t.Logf("%d swaps, %d lost the race", total, failures.Load())
		})
	}
}

func testConcurrentCreateTable(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	id := ident(ns("a"), "t")
	errs := make([]error, goroutines)
	parallel(goroutines, func(i int) {
		errs[i] = s.Update(t.Context(), func(tx catalog.Tx) error {
			return createT(tx, id, fmt.Sprintf("loc-%d", i))
		})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("CreateTable succeeded in goroutines %d and %d", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, catalog.ErrTableExists):
			t.Fatalf("CreateTable in goroutine %d: %v, want ErrTableExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no CreateTable succeeded")
	}
	wantTable(t, s, id, fmt.Sprintf("loc-%d", winner))
}

func testConcurrentCreateNamespace(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("p"))
	for _, n := range []catalog.Namespace{ns("a"), ns("p", "c")} {
		t.Run(n.String(), func(t *testing.T) {
			errs := make([]error, goroutines)
			parallel(goroutines, func(i int) {
				errs[i] = s.Update(t.Context(), func(tx catalog.Tx) error {
					return tx.CreateNamespace(n, map[string]string{"by": fmt.Sprint(i)})
				})
			})
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("CreateNamespace succeeded in goroutines %d and %d", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, catalog.ErrNamespaceExists):
					t.Fatalf("CreateNamespace in goroutine %d: %v, want ErrNamespaceExists", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no CreateNamespace succeeded")
			}
			wantNamespace(t, s, n, map[string]string{"by": fmt.Sprint(winner)})
		})
	}
}

const raceRounds = 20

// race runs drop and create together and checks that exactly one of them
// won: the drop (create then fails with createLoses) or the create (drop
// then fails with ErrNamespaceNotEmpty).
func race(t *testing.T, round int, drop, create func() error, createLoses error) (dropped bool) {
	t.Helper()
	var dropErr, createErr error
	parallel(2, func(i int) {
		// Alternate which goroutine starts first.
		if i == round%2 {
			dropErr = drop()
		} else {
			createErr = create()
		}
	})
	switch {
	case dropErr == nil && errors.Is(createErr, createLoses):
		return true
	case createErr == nil && errors.Is(dropErr, catalog.ErrNamespaceNotEmpty):
		return false
	default:
		t.Fatalf("round %d: drop: %v; create: %v", round, dropErr, createErr)
		return false
	}
}

func testConcurrentDropVsCreateTable(t *testing.T, s catalog.Store) {
	wins := 0
	for round := range raceRounds {
		n := ns(fmt.Sprint("r", round))
		id := ident(n, "t")
		createNamespaces(t, s, n)
		dropped := race(t, round,
			func() error {
				return s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DropNamespace(n) })
			},
			func() error {
				return s.Update(t.Context(), func(tx catalog.Tx) error { return createT(tx, id, "loc") })
			},
			catalog.ErrNoSuchNamespace)
		if dropped {
			wins++
			wantNoNamespace(t, s, n)
			wantNoTable(t, s, id)
		} else {
			wantNamespace(t, s, n, map[string]string{})
			wantTable(t, s, id, "loc")
		}
	}
	// No table is left in a missing namespace.
	st := dump(t, s)
	if len(st.tables) != raceRounds-wins {
		t.Fatalf("%d tables reachable, want %d (drop won %d of %d rounds)", len(st.tables), raceRounds-wins, wins, raceRounds)
	}
	t.Logf("drop won %d of %d rounds", wins, raceRounds)
}

func testConcurrentDropVsCreateChild(t *testing.T, s catalog.Store) {
	wins := 0
	for round := range raceRounds {
		parent := ns(fmt.Sprint("r", round))
		child := ns(parent[0], "c")
		createNamespaces(t, s, parent)
		dropped := race(t, round,
			func() error {
				return s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DropNamespace(parent) })
			},
			// The caller checks the parent, as the contract asks.
			func() error {
				return s.Update(t.Context(), func(tx catalog.Tx) error {
					if _, err := tx.LoadNamespace(parent); err != nil {
						return err
					}
					return tx.CreateNamespace(child, nil)
				})
			},
			catalog.ErrNoSuchNamespace)
		if dropped {
			wins++
			wantNoNamespace(t, s, parent)
			wantNoNamespace(t, s, child)
		} else {
			wantNamespace(t, s, child, map[string]string{})
		}
	}
	st := dump(t, s)
	if want := 2 * (raceRounds - wins); len(st.namespaces) != want {
		t.Fatalf("%d namespaces reachable, want %d (drop won %d of %d rounds)", len(st.namespaces), want, wins, raceRounds)
	}
	// An orphan would be reported by LoadNamespace but not reachable.
	for round := range raceRounds {
		parent := ns(fmt.Sprint("r", round))
		if _, err := loadNamespace(t, s, parent); errors.Is(err, catalog.ErrNoSuchNamespace) {
			wantNoNamespace(t, s, ns(parent[0], "c"))
		}
	}
	t.Logf("drop won %d of %d rounds", wins, raceRounds)
}

func testConcurrentMultiTableSwaps(t *testing.T, s catalog.Store) {
	createNamespaces(t, s, ns("a"))
	x, y := ident(ns("a"), "x"), ident(ns("a"), "y")
	createTable(t, s, x, "v")
	createTable(t, s, y, "v")
	const writers = 4
	var (
		successes atomic.Int64
		stop      = make(chan struct{})
		readerErr = make(chan error, 1)
	)
	// A reader checks that every View sees both tables at the same version.
	go func() {
		var err error
		defer func() { readerErr <- err }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var lx, ly string
			err = s.View(t.Context(), func(tx catalog.Tx) error {
				var err error
				if lx, err = loadT(tx, x); err != nil {
					return err
				}
				ly, err = loadT(tx, y)
				return err
			})
			if err == nil && lx != ly {
				err = fmt.Errorf("a View saw x at %q and y at %q", lx, ly)
			}
			if err != nil {
				return
			}
		}
	}()
	parallel(writers, func(i int) {
		// Half the writers swap x then y, half y then x.
		order := []catalog.Ident{x, y}
		if i%2 == 1 {
			order = []catalog.Ident{y, x}
		}
		for done := 0; done < increments; {
			err := s.Update(t.Context(), func(tx catalog.Tx) error {
				for _, id := range order {
					cur, err := loadT(tx, id)
					if err != nil {
						return err
					}
					if err := swapT(tx, id, cur, cur+"x"); err != nil {
						return err
					}
				}
				return nil
			})
			switch {
			case err == nil:
				successes.Add(1)
				done++
			case errors.Is(err, catalog.ErrCommitFailed):
			default:
				t.Errorf("Update: %v", err)
				return
			}
		}
	})
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}
	want := "v" + strings.Repeat("x", writers*increments)
	wantTable(t, s, x, want)
	wantTable(t, s, y, want)
}
