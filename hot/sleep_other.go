//go:build !linux

package hot

import "time"

// sleep waits for d; only Linux has the precise version.
func sleep(d time.Duration) { time.Sleep(d) }
