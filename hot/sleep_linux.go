package hot

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// sleep blocks the calling thread for d with nanosleep(2), which wakes
// within the kernel's timer slack (50µs by default). time.Sleep waits for
// the runtime's network poller, whose timeout has millisecond resolution
// when no goroutine is runnable.
func sleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		err := unix.Nanosleep(&ts, &ts)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
