package hot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const (
	crashDirEnv   = "ZOMBI_HOT_CRASH_DIR"
	crashRoundEnv = "ZOMBI_HOT_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashRoundEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild appends with Sync durability from several goroutines until it
// is killed, and prints "seq key value" for every acknowledged record. Half
// the records carry an idempotency key (equal to the value).
func crashChild(dir, round string) {
	db, err := Open(dir, Options{Logger: discardLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var line []byte
			for i := 0; ; i++ {
				recs := make([]Record, 1+i%4)
				for j := range recs {
					v := fmt.Sprintf("r%s-w%d-%d-%d", round, w, i, j)
					recs[j].Value = []byte(v)
					if (i+j)%2 == 0 {
						recs[j].Key = v
					}
				}
				res, err := db.Append(context.Background(), "events", recs)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				line = line[:0]
				for j, r := range res {
					key := recs[j].Key
					if key == "" {
						key = "-"
					}
					line = fmt.Appendf(line, "%d %s %s\n", r.Seq, key, recs[j].Value)
				}
				// One write per append: a line on stdout means the
				// append returned.
				mu.Lock()
				_, err = os.Stdout.Write(line)
				mu.Unlock()
				if err != nil {
					os.Exit(2)
				}
			}
		})
	}
	wg.Wait()
}

type ackedRecord struct {
	seq        uint64
	key, value string
}

// TestCrashKill runs a child process that appends with Sync durability,
// kills it with SIGKILL after a random number of acknowledged appends, and
// checks that every acknowledged record survived exactly once, that keys
// still deduplicate, and that sequences do not go back.
func TestCrashKill(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var all []ackedRecord
	var maxSeq uint64
	for round := range 4 {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 50 + rand.IntN(3000)
		sc := bufio.NewScanner(stdout)
		var acked []ackedRecord
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				// A torn last line cannot happen: each append is one
				// write of whole lines to a pipe.
				t.Fatalf("round %d: bad line %q", round, sc.Text())
			}
			seq, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			key := f[1]
			if key == "-" {
				key = ""
			}
			acked = append(acked, ackedRecord{seq, key, f[2]})
			if !killed && len(acked) >= killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
				// Keep reading: lines already in the pipe were
				// acknowledged before the kill.
			}
		}
		if err := sc.Err(); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited by itself: %v\n%s", round, err, stderr.String())
		}
		t.Logf("round %d: killed after %d acknowledged records", round, len(acked))
		all = append(all, acked...)

		db := openT(t, dir, Options{})
		stored := map[uint64]Event{}
		byValue := map[string]int{}
		for _, e := range readAll(t, db, "events") {
			stored[e.Seq] = e
			byValue[string(e.Value)]++
		}
		for v, n := range byValue {
			if n != 1 {
				t.Fatalf("round %d: value %q stored %d times", round, v, n)
			}
		}
		for _, a := range all {
			e, ok := stored[a.seq]
			if !ok {
				t.Fatalf("round %d: acknowledged seq %d (%s) lost", round, a.seq, a.value)
			}
			if string(e.Value) != a.value || e.Key != a.key {
				t.Fatalf("round %d: seq %d is %q/%q, acknowledged %q/%q", round, a.seq, e.Key, e.Value, a.key, a.value)
			}
			maxSeq = max(maxSeq, a.seq)
		}
		// Keys acknowledged before the crash are duplicates now, with
		// the acknowledged sequence.
		var retry []Record
		var want []uint64
		for _, a := range acked {
			if a.key != "" {
				retry = append(retry, Record{Key: a.key, Value: []byte("retry")})
				want = append(want, a.seq)
			}
		}
		res := mustAppend(t, db, "events", retry...)
		for i, r := range res {
			if !r.Duplicate || r.Seq != want[i] {
				t.Fatalf("round %d: retry of key %q: %+v, want duplicate of %d", round, retry[i].Key, r, want[i])
			}
		}
		res = mustAppend(t, db, "events", rec("", fmt.Sprintf("parent-%d", round)))
		if res[0].Seq <= maxSeq {
			t.Fatalf("round %d: new seq %d after crash, acknowledged up to %d", round, res[0].Seq, maxSeq)
		}
		maxSeq = res[0].Seq
		all = append(all, ackedRecord{seq: res[0].Seq, value: fmt.Sprintf("parent-%d", round)})
		mustClose(t, db)
	}
}
