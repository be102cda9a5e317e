package ingest

import (
	"context"
	"errors"
	"testing"
)

func TestChargeGrow(t *testing.T) {
	l := NewInFlight(100)
	a, b := NewCharge(l), NewCharge(l)
	if !a.Grow(60) || b.Grow(60) || !b.Grow(40) || a.Grow(1) {
		t.Fatal("growths past the limit must fail, within it succeed")
	}
	if a.Bytes() != 60 || b.Bytes() != 40 || l.Bytes() != 100 {
		t.Fatalf("charges %d and %d, %d in all; want 60, 40, 100", a.Bytes(), b.Bytes(), l.Bytes())
	}
	if l.Fits(1) {
		t.Fatal("Fits(1) with the limit reached")
	}
	a.Release()
	b.Release()
	if l.Bytes() != 0 || a.Bytes() != 0 {
		t.Fatalf("%d bytes reserved after releasing everything", l.Bytes())
	}
	// A charge alone may pass the limit, also growing, so that one
	// oversized request still runs.
	if !a.Grow(500) || !a.Grow(500) || b.Grow(1) {
		t.Fatal("an oversized charge must pass alone and block others")
	}
	a.Release()

	var free Charge // of no InFlight: unlimited
	if !free.Grow(1 << 40) {
		t.Fatal("the zero Charge must take anything")
	}
	free.Release()
}

func TestChargeNeed(t *testing.T) {
	ctx := context.Background()
	l := NewInFlight(100)
	body, holder, waiter := NewCharge(l), NewCharge(l), NewCharge(l)
	if !body.Grow(90) || !holder.Grow(5) {
		t.Fatal("could not charge")
	}
	// holder's records do not fit: it takes the overdraft and passes the
	// limit.
	if err := holder.Need(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if l.Bytes() != 145 || holder.Bytes() != 55 {
		t.Fatalf("%d bytes reserved (holder %d), want 145 (55)", l.Bytes(), holder.Bytes())
	}
	// While it holds it, nothing else grows, and the next Need waits.
	if body.Grow(1) {
		t.Fatal("Grow succeeded past the limit")
	}
	done := make(chan error, 1)
	go func() { done <- waiter.Need(ctx, 50) }()
	select {
	case err := <-done:
		t.Fatalf("Need returned (%v) while the overdraft was held and nothing fit", err)
	default:
	}
	holder.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l.Bytes() != 140 || waiter.Bytes() != 50 {
		t.Fatalf("%d bytes reserved (waiter %d), want 140 (50)", l.Bytes(), waiter.Bytes())
	}
	waiter.Release()
	// Bytes that become free end a wait as well as the overdraft does.
	if err := waiter.Need(ctx, 5); err != nil || l.Bytes() != 95 {
		t.Fatalf("Need(5) with 10 free: %v, %d reserved", err, l.Bytes())
	}
	waiter.Release()
	body.Release()
	if l.Bytes() != 0 {
		t.Fatalf("%d bytes reserved after releasing everything", l.Bytes())
	}

	// A wait ends with its context.
	if !body.Grow(100) || !holder.Grow(0) {
		t.Fatal("could not charge")
	}
	if err := holder.Need(ctx, 10); err != nil { // takes the overdraft
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := waiter.Need(cctx, 10); !errors.Is(err, context.Canceled) || waiter.Bytes() != 0 {
		t.Fatalf("Need with a canceled context: %v, charged %d", err, waiter.Bytes())
	}
	holder.Release()
	body.Release()
	if l.Bytes() != 0 {
		t.Fatalf("%d bytes reserved after releasing everything", l.Bytes())
	}
}
